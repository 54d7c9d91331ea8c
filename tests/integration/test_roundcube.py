"""Roundcube webmail (Debian's roundcube package) in headless Chromium against imapd on a
loopback TCP port, driven through the page as a person would: log in through the form, sort
INBOX by date and by subject both ways, switch to the threaded view, open a message with
attachments, mark one read, flag one, move one to a folder, delete one, quick-search; the page
(the message list's rows, their order, subjects, thread depth) and the mbox files afterwards are
checked.

Roundcube sorts and threads on the server when the server can (SORT and THREAD, RFC 5256) and
otherwise sorts by itself, fetching one header field of every message. Its IMAP debug log
(imap_debug, in the test's log dir) records the conversation; the test asserts that each sort
and the threaded view went through SORT and THREAD and that no such fetch happened. That part
comes after the checks that hold either way (what the mailbox files show, the attachment names,
the search result), and the list orders that only the server's SORT and THREAD decide are
checked after it.

Everything runs on 127.0.0.1 in the test's temp dir: lighttpd with its own configuration
(roundcube/lighttpd.conf), a php-cgi the test starts (FastCGI on a Unix socket), Roundcube with a
configuration directory of its own (roundcube/config.inc.php plus Debian's defaults.inc.php;
ROUNDCUBE_CONFIG_DIR points php-cgi at it, so /etc/roundcube is neither read nor changed), its
SQLite database, logs and temp files; chromedriver and Chromium with a profile there, every host
name resolving nowhere but loopback. The test stops all of it and fails when a process is left.
Screenshots of each step go to <tmp_path>/screenshots (the test prints the path).

Needs root (the throwaway user); the packages come from tests/deps.sh check. A missing package
fails the test."""
import ctypes
import email.policy
import email.utils
import importlib.util
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from email.parser import BytesParser

import pytest

import clients_util
from clients_util import build_mbox, fixture, imap_connect, read_mbox
from conftest import free_port, wait_listening

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(HERE, "roundcube")
ROUNDCUBE_WEB = "/var/lib/roundcube/public_html"
# Debian ships Roundcube's defaults as a conffile; the test copies it, changes nothing there.
ROUNDCUBE_DEFAULTS = "/etc/roundcube/defaults.inc.php"
LIGHTTPD = "/usr/sbin/lighttpd"
PHP_CGI = "/usr/bin/php-cgi"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
PACKAGES = "php-cgi lighttpd roundcube roundcube-sqlite3 chromium chromium-driver python3-selenium"

WAIT = 30  # seconds any one page change may take


# --- the mail --------------------------------------------------------------------------------

def _msgid(key):
    return f"<{key}@mail.imapd.test>"


# key, subject, sender, Date, the key it replies to (None: a new conversation). The dates carry
# different zones, so that the order of the local clock times differs from the real order; the
# file's order differs from both. "minutes-re" replies to a message that is not in the mailbox.
MAIL = [
    ("budget", "Budget review for spring", "Alice Archer <alice@north.example>",
     "Mon, 02 Mar 2026 09:15:00 +0100", None),
    ("ferry", "Fwd: Ferry timetable for the summer", "Bruno Costa <bruno@south.example>",
     "Mon, 02 Mar 2026 07:40:00 -0500", None),
    ("choir", "Choir rehearsal moved to Thursday", "Chen Wei <chen@east.example>",
     "Mon, 02 Mar 2026 18:05:00 +0900", None),
    ("budget-re1", "Re: Budget review for spring", "Dana Novak <dana@west.example>",
     "Mon, 02 Mar 2026 11:30:00 +0100", "budget"),
    ("lamp", "Lamp repair estimate", "Emil Berg <emil@north.example>",
     "Tue, 03 Mar 2026 08:00:00 +0000", None),
    ("choir-re1", "Re: Choir rehearsal moved to Thursday", "Fatima Zahra <fatima@south.example>",
     "Mon, 02 Mar 2026 12:20:00 +0100", "choir"),
    ("garden", "Garden allotment waiting list", "Goran Ilic <goran@east.example>",
     "Tue, 03 Mar 2026 10:10:00 +0200", None),
    ("kayak", "Kayak club membership renewal", "Hana Sato <hana@west.example>",
     "Tue, 03 Mar 2026 16:45:00 -0800", None),
    ("budget-re2", "Re: Budget review for spring - revised figures",
     "Alice Archer <alice.archer@office.example>", "Tue, 03 Mar 2026 07:55:00 +0100",
     "budget-re1"),
    ("dress", "Dress rehearsal photos", "Ivan Petrov <ivan@north.example>",
     "Wed, 04 Mar 2026 09:00:00 +0300", None),
    ("attach", None, None, None, None),  # tests/fixtures/messages/mixed-attachments.eml
    ("invoice", "Invoice 2026-031 for March", "Julia Keller <julia@south.example>",
     "Wed, 04 Mar 2026 13:25:00 +0100", None),
    ("choir-re2", "Re: Choir rehearsal moved to Thursday - parking",
     "Kofi Mensah <kofi@east.example>", "Tue, 03 Mar 2026 06:15:00 +0000", "choir"),
    ("harbour", "Harbour festival volunteers", "Lena Fischer <lena@west.example>",
     "Wed, 04 Mar 2026 20:30:00 +0100", None),
    ("minutes-re", "Re: Minutes from the board meeting", "Marco Rossi <marco@north.example>",
     "Thu, 05 Mar 2026 08:45:00 +0100", "minutes"),
    ("orchard", "Orchard pruning day", "Nadia Haddad <nadia@south.example>",
     "Thu, 05 Mar 2026 10:00:00 -0300", None),
    ("quiz", "Quiz night at the library", "Oscar Lind <oscar@east.example>",
     "Thu, 05 Mar 2026 19:10:00 +0100", None),
    ("garden-re1", "Re: Garden allotment waiting list", "Priya Nair <priya@west.example>",
     "Fri, 06 Mar 2026 07:30:00 +0530", "garden"),
    ("roof", "Roof inspection on Friday", "Quentin Moreau <quentin@north.example>",
     "Fri, 06 Mar 2026 09:20:00 +0100", None),
    ("bike", "Bike shed keys", "Rosa Jimenez <rosa@south.example>",
     "Fri, 06 Mar 2026 12:00:00 +0000", None),
    ("tickets", "Theatre tickets for Saturday", "Sven Olsen <sven@east.example>",
     "Fri, 06 Mar 2026 15:40:00 +0100", None),
    ("ipad", "iPad for the reading room", "Tomas Horak <tomas@west.example>",
     "Sat, 07 Mar 2026 10:05:00 +0100", None),
    ("garden-re2", "Re: Garden allotment waiting list - plot 14", "Goran Ilic <goran@east.example>",
     "Sat, 07 Mar 2026 08:00:00 +0200", "garden-re1"),
    ("walk", "Walking route along the river", "Uma Patel <uma@north.example>",
     "Sat, 07 Mar 2026 14:15:00 -0500", None),
    ("yoga", "Yoga mats donated", "Victor Dubois <victor@south.example>",
     "Sun, 08 Mar 2026 09:30:00 +0100", None),
    ("zoning", "Zoning notice for Elm Street", "Wanda Kowalska <wanda@east.example>",
     "Sun, 08 Mar 2026 11:45:00 +0100", None),
    ("newsletter", "Newsletter draft for April", "Xavier Lopez <xavier@west.example>",
     "Sun, 08 Mar 2026 16:00:00 +0000", None),
    ("potluck", "Potluck sign-up sheet", "Yara Said <yara@north.example>",
     "Mon, 09 Mar 2026 08:10:00 +0100", None),
    ("election", "Election of the new treasurer", "Zoltan Nagy <zoltan@south.example>",
     "Mon, 09 Mar 2026 10:20:00 -0700", None),
    ("antenna", "Antenna on the roof terrace", "Agnes Varga <agnes@east.example>",
     "Mon, 09 Mar 2026 12:35:00 +0100", None),
]

ATTACHMENT_FIXTURE = "mixed-attachments.eml"
ATTACHMENT_NAMES = ["form-page1.png", "form-page2.pdf"]
FOLDER = "Archive"
SEARCH_WORD = "rehearsal"
# What the steps act on, by key.
MARK_READ, FLAG, MOVE, DELETE = "lamp", "kayak", "harbour", "bike"


def make_message(key, subject, sender, date, parent, keys):
    chain = []
    p = parent
    while p is not None:
        chain.append(p)
        p = keys.get(p)
    refs = [_msgid(k) for k in reversed(chain)]
    head = [f"Date: {date}", f"From: {sender}", "To: Residents <residents@mail.imapd.test>",
            f"Subject: {subject}", f"Message-ID: {_msgid(key)}"]
    if refs:
        head += [f"In-Reply-To: {refs[-1]}", "References: " + " ".join(refs)]
    head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    body = f"Message {key}: {subject}.\n\nSee you there.\n"
    return ("\n".join(head) + "\n\n" + body).encode()


class Mail:
    """A message of the test's INBOX with what the test knows of it."""

    def __init__(self, key, raw, seq):
        self.key, self.raw, self.seq = key, raw, seq
        h = BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)
        self.subject = str(h["Subject"])
        self.sender = str(h["From"])
        self.date = email.utils.parsedate_to_datetime(h["Date"]).timestamp()
        self.msgid = str(h["Message-ID"]).strip()
        refs = (h["References"] or "").split()
        self.parent_id = refs[-1] if refs else None


def inbox_messages():
    parents = {k: p for k, _, _, _, p in MAIL}
    out = []
    for seq, (key, subject, sender, date, parent) in enumerate(MAIL, 1):
        if key == "attach":
            raw = fixture(ATTACHMENT_FIXTURE)
        else:
            raw = make_message(key, subject, sender, date, parent, parents)
        out.append(Mail(key, raw, seq))
    return out


def base_subject(s):
    """RFC 5256's base subject for the subjects above: leading "Re:"/"Fwd:" (any case, with
    the blanks around them) and trailing "(fwd)" removed, blanks folded."""
    s = re.sub(r"\s+", " ", s).strip()
    while True:
        t = re.sub(r"^(re|fwd?)\s*:\s*", "", s, flags=re.I)
        t = re.sub(r"\s*\(fwd\)$", "", t, flags=re.I)
        if t == s:
            return s
        s = t


def sort_order(msgs, field, order):
    """The order SORT (field) gives, ties broken by sequence number as RFC 5256 says, and the
    reverse of it for DESC (Roundcube reverses the server's ascending answer)."""
    if field == "date":
        key = (lambda m: (m.date, m.seq))
    else:
        # i;ascii-casemap: ASCII letters compared as upper case.
        key = (lambda m: (base_subject(m.subject).upper(), m.seq))
    out = sorted(msgs, key=key)
    return out[::-1] if order == "DESC" else out


def thread_view(msgs):
    """The threaded list Roundcube shows for THREAD=REFERENCES with date sorting, newest first:
    (subject, depth) rows. The threads come from the References chains (a reply whose parent is
    not in the mailbox starts a thread of its own); siblings in date order; the threads ordered
    by their newest message, newest first (Roundcube orders the server's threads by SORT's
    index)."""
    by_id = {m.msgid: m for m in msgs}
    children = {}
    roots = []
    for m in msgs:
        if m.parent_id in by_id:
            children.setdefault(m.parent_id, []).append(m)
        else:
            roots.append(m)

    def walk(m, depth, out):
        out.append((m.subject, depth))
        for c in sorted(children.get(m.msgid, []), key=lambda c: (c.date, c.seq)):
            walk(c, depth + 1, out)
        return out

    def newest(m):
        return max([m.date] + [newest(c) for c in children.get(m.msgid, [])])

    rows = []
    for r in sorted(roots, key=lambda r: -newest(r)):
        walk(r, 0, rows)
    return rows


# --- processes -------------------------------------------------------------------------------

def session_members(sid, zombies=False):
    """Processes whose session id is sid: the live ones, or the zombies among them whose
    parent is this process."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) != sid:
            continue
        if zombies:
            if fields[0] == "Z" and int(fields[1]) == os.getpid():
                out.append(int(d))
        elif fields[0] != "Z":
            out.append(int(d))
    return out


def processes_naming(path):
    """Live processes whose command line names something under path (Chromium's profile,
    its crash handlers' database in the HOME the test gave it)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    out.append(int(d))
        except OSError:
            pass
    return out


def finish(pids, name, timeout=15):
    """Waits for the given processes to end, reaping those that are this process's children
    (through child_subreaper); kills what is still running then. Returns those it killed."""
    deadline = time.time() + timeout
    pending = set(pids)
    left = []
    while pending:
        for pid in list(pending):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                pending.discard(pid)
                continue
            if fields[0] == "Z":
                if int(fields[1]) == os.getpid():
                    try:
                        os.waitpid(pid, 0)
                    except ChildProcessError:
                        pass
                pending.discard(pid)
            elif time.time() > deadline:
                left.append(f"{name}: {pid}")
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                pending.discard(pid)
        if pending:
            time.sleep(0.05)
    return left


def child_subreaper(on):
    """prctl(PR_SET_CHILD_SUBREAPER): while on, the processes that php-cgi and Chromium leave
    to the system when their parent exits first (php-cgi's workers, Chromium's crash handler)
    become this process's children, so that stop_session() and finish() can wait for them."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1 if on else 0, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())


def stop_session(proc, name, timeout=15):
    """Ends a process the test started in a session of its own (SIGTERM, then SIGKILL) and
    waits until nothing of that session is left. Returns the pids that had to be killed."""
    sid = proc.pid
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.time() + timeout
    while session_members(sid) and time.time() < deadline:
        time.sleep(0.05)
    left = session_members(sid)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in session_members(sid, zombies=True):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return [f"{name}: {pid}" for pid in left]


def php_literal(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fill(template, values):
    with open(os.path.join(TEMPLATES, template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", v)
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"{template}: unfilled {left}"
    return text


class Webmail:
    """lighttpd + php-cgi serving Debian's Roundcube on 127.0.0.1, configured for imapd at
    imap_host:imap_port; everything under base."""

    def __init__(self, base, imap_host, imap_port):
        self.base = base
        self.config_dir = os.path.join(base, "config")
        self.log_dir = os.path.join(base, "logs")
        for d in ("config", "logs", "temp", "upload"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        shutil.copy(ROUNDCUBE_DEFAULTS, os.path.join(self.config_dir, "defaults.inc.php"))
        db = os.path.join(base, "roundcube.db")
        open(db, "w").close()  # Roundcube fills an empty SQLite file with its schema
        with open(os.path.join(self.config_dir, "config.inc.php"), "w") as f:
            f.write(fill("config.inc.php", {
                "IMAP_HOST": php_literal(f"{imap_host}:{imap_port}"),
                "DB_DSN": php_literal(f"sqlite:///{db}?mode=0600"),
                "LOG_DIR": php_literal(self.log_dir),
                "TEMP_DIR": php_literal(os.path.join(base, "temp")),
                "DES_KEY": php_literal(secrets.token_hex(12)),
            }))
        self.port = free_port()
        sock = os.path.join(base, "php.sock")
        conf = os.path.join(base, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write(fill("lighttpd.conf", {"PORT": str(self.port), "DIR": base,
                                           "CONFIG_DIR": self.config_dir}))
        self.procs = []
        self.web_log = None
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PHP_FCGI_CHILDREN": "3",
               "PHP_FCGI_MAX_REQUESTS": "10000",
               # Roundcube's configuration directory (program/include/iniset.php).
               "ROUNDCUBE_CONFIG_DIR": self.config_dir}
        self.php_log = open(os.path.join(base, "php-cgi.log"), "wb")
        self.php = subprocess.Popen([PHP_CGI, "-b", sock], env=env, stdout=self.php_log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(("php-cgi", self.php))
        try:
            self.start(sock, conf, env)
        except BaseException:
            self.stop()
            raise

    def start(self, sock, conf, env):
        deadline = time.time() + 15
        while not os.path.exists(sock):
            assert self.php.poll() is None, "php-cgi exited: " + self.read("php-cgi.log")
            assert time.time() < deadline, "php-cgi did not make its socket"
            time.sleep(0.02)
        self.web_log = open(os.path.join(self.base, "lighttpd.log"), "wb")
        self.web = subprocess.Popen([LIGHTTPD, "-D", "-f", conf], stdout=self.web_log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={"PATH": env["PATH"]})
        self.procs.append(("lighttpd", self.web))
        wait_listening(self.port, self.web)
        self.url = f"http://127.0.0.1:{self.port}/"

    def read(self, name):
        path = os.path.join(self.base, name)
        if not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def imap_log(self):
        return self.read("logs/imap.log")

    def errors(self):
        return self.read("logs/errors.log")

    def stop(self):
        left = []
        for name, p in reversed(self.procs):
            left += stop_session(p, name)
        self.php_log.close()
        if self.web_log:
            self.web_log.close()
        return left


class Browser:
    """chromedriver (on a loopback port) driving a headless Chromium, both in a session of
    their own that stop() ends."""

    def __init__(self, base):
        self.base = base
        self.port = free_port()
        self.log = open(os.path.join(base, "chromedriver.log"), "wb")
        self.proc = subprocess.Popen(
            # Without --allowed-ips it listens on 127.0.0.1 and ::1 only.
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": base})
        self.driver = None
        try:
            self.start()
        except BaseException:
            self.stop()
            raise

    def start(self):
        from selenium import webdriver
        base = self.base
        wait_listening(self.port, self.proc)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  f"--user-data-dir={os.path.join(base, 'profile')}", "--window-size=1400,1000",
                  "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps", "--disable-domain-reliability",
                  "--disable-client-side-phishing-detection", "--no-pings",
                  "--metrics-recording-only", "--lang=en-US",
                  # No name resolves: the browser reaches 127.0.0.1 and nothing else.
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                  "--proxy-server=direct://", "--proxy-bypass-list=*"):
            opts.add_argument(a)
        self.driver = webdriver.Remote(command_executor=f"http://127.0.0.1:{self.port}",
                                       options=opts)
        self.driver.set_page_load_timeout(WAIT)

    def stop(self):
        # Chromium's crash handlers run in sessions of their own; they name the HOME.
        others = processes_naming(self.base)
        if self.driver is not None:
            try:
                self.driver.quit()
            except Exception:
                pass
        left = stop_session(self.proc, "chromedriver")
        left += finish(others + processes_naming(self.base), "chromium")
        self.log.close()
        return left


# --- Roundcube's IMAP log ----------------------------------------------------------------------

LOG_LINE = re.compile(r"^\[[^\]]*\]: <[^>]*> \[[^\]]*\] ([CS]): (.*)$")


def imap_commands(log):
    """The commands in Roundcube's IMAP log, as (tag, command text, tagged status line)."""
    cmds = []
    pending = {}
    for ln in log.splitlines():
        m = LOG_LINE.match(ln)
        if not m:
            continue
        side, text = m.groups()
        if side == "C":
            tag, _, rest = text.partition(" ")
            entry = [tag, rest, None]
            cmds.append(entry)
            pending[tag] = entry
        else:
            tag = text.split(" ", 1)[0]
            if tag in pending:
                pending.pop(tag)[2] = text[len(tag) + 1:]
    return [tuple(c) for c in cmds]


# A fetch of one header field (or the date) over a message set: Roundcube's own sorting when the
# server cannot sort (rcube_imap_generic::fetchHeaderIndex).
CLIENT_SORT_FETCH = re.compile(
    r"^(UID )?FETCH \S+ \((UID )?(FLAGS )?(INTERNALDATE )?"
    r"(BODY\.PEEK\[HEADER\.FIELDS \((DATE|SUBJECT|FROM|TO|CC|REPLY-TO|SENDER)\)\]|INTERNALDATE)\)$",
    re.I)


def sort_commands(cmds):
    return [(c, st) for _, c, st in cmds if re.match(r"(UID )?SORT ", c, re.I)]


def thread_commands(cmds):
    return [(c, st) for _, c, st in cmds if re.match(r"(UID )?THREAD ", c, re.I)]


def client_sort_fetches(cmds):
    return [c for _, c, _ in cmds if CLIENT_SORT_FETCH.match(c)]


def capabilities(log):
    """Every capability the server named to Roundcube (CAPABILITY responses and codes)."""
    caps = set()
    for m in re.finditer(r"(?:\* CAPABILITY|\[CAPABILITY) ([^\]\r\n]*)", log):
        caps.update(m.group(1).split())
    return caps


# --- the page --------------------------------------------------------------------------------

ROWS_JS = """
return Array.from(document.querySelectorAll('#messagelist tbody tr')).map(function (tr) {
    var s = tr.querySelector('td.subject span.subject a span')
        || tr.querySelector('td.subject span.subject a') || tr.querySelector('td.subject');
    // The widescreen layout indents a thread's reply by padding its subject cell, a
    // multiple of env.thread_padding per level.
    var cell = tr.querySelector('td.subject');
    var pad = cell && cell.style.paddingLeft ? parseFloat(cell.style.paddingLeft) : 0;
    var unit = parseFloat(rcmail.env.thread_padding || '1');
    return {id: tr.id, cls: tr.className, shown: tr.style.display != 'none',
            subject: s ? s.textContent.trim() : '', depth: Math.round(pad / unit)};
});
"""

# The row is the only one selected and the preview frame shows its message, loaded.
PREVIEW_JS = """
var tr = document.getElementById(arguments[0]);
var sel = rcmail.message_list.get_selection();
if (!tr || sel.length != 1 || sel[0] != tr.uid || !tr.classList.contains('selected'))
    return false;
var f = document.getElementById('messagecontframe');
var w = f && f.contentWindow;
return !!(w && w.rcmail && w.document.readyState == 'complete' && w.rcmail.env.uid == tr.uid);
"""

# Counts Roundcube's finished requests per action (its 'responseafter' event), once per page.
HOOK_JS = """
if (!window.__imapd_test) {
    window.__imapd_test = [];
    rcmail.addEventListener('responseafter', function (e) {
        window.__imapd_test.push(e.response && e.response.action);
    });
}
return window.__imapd_test.length;
"""


class Roundcube:
    """The page, with waits on what Roundcube reports it has done."""

    def __init__(self, browser, webmail, shots):
        from selenium.webdriver.support.ui import WebDriverWait
        self.d = browser.driver
        self.webmail = webmail
        self.shots = shots
        self.n = 0
        self.wait = WebDriverWait(self.d, WAIT, poll_frequency=0.05)
        self.steps = []     # (label, offset into the IMAP log before the step, after)
        self.label = "start"  # the step under way, set by the test

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def shot(self, name):
        self.n += 1
        self.d.save_screenshot(os.path.join(self.shots, f"{self.n:02d}-{name}.png"))

    def until(self, cond, what):
        from selenium.common.exceptions import TimeoutException
        try:
            return self.wait.until(lambda d: cond())
        except TimeoutException:
            self.shot("timeout")
            with open(os.path.join(self.shots, "timeout.html"), "w") as f:
                f.write(self.d.page_source)
            raise AssertionError(f"timed out waiting for {what}; Roundcube's errors.log:\n"
                                 + self.webmail.errors()[-3000:])

    def rows(self):
        return [r for r in self.js(ROWS_JS) if r["id"]]

    def subjects(self):
        return [r["subject"] for r in self.rows() if r["shown"]]

    def idle(self):
        return self.js("return !!window.rcmail && !rcmail.busy && "
                       "!document.querySelector('#messagestack .loading');")

    def action(self, name, step, after=None):
        """Runs step() and waits until Roundcube has finished a request of action `name` (and
        then until after() holds, when given). The IMAP log's part written meanwhile is kept
        under the step's name."""
        since = self.js(HOOK_JS)
        start = len(self.webmail.imap_log())
        step()
        self.until(lambda: self.js("return window.__imapd_test.slice(arguments[0])"
                                   ".indexOf(arguments[1]) >= 0;", since, name)
                   and self.idle() and (after is None or after()),
                   f"Roundcube's {name!r} request")
        self.steps.append((self.label, start, len(self.webmail.imap_log())))

    def step_log(self, label):
        log = self.webmail.imap_log()
        return "".join(log[a:b] for n, a, b in self.steps if n == label)

    def row_id(self, subject):
        for r in self.rows():
            if r["subject"] == subject:
                return r["id"]
        raise AssertionError(f"{subject!r} is not in the list: {self.subjects()}")

    def select(self, subject):
        """Clicks the message's row and waits until the preview beside the list shows it
        (Roundcube ignores commands while it loads)."""
        rid = self.row_id(subject)
        self.d.find_element("css selector", f"#{rid} td.subject").click()
        self.until(lambda: self.js(PREVIEW_JS, rid) and self.idle(),
                   f"{subject!r} selected and previewed")
        return rid

    def list_options(self, col, order):
        """The list options dialog (the list header's Options button): sort column and
        order, Save."""
        from selenium.webdriver.support.ui import Select
        self.d.find_element("css selector", "#listmenulink").click()
        dialog = self.until(lambda: self.visible(".ui-dialog select[name=sort_col]"),
                            "the list options dialog")
        Select(dialog).select_by_value(col)
        Select(self.d.find_element("css selector", ".ui-dialog select[name=sort_ord]")
               ).select_by_value(order)
        self.shot(f"options-{col}-{order}")
        self.d.find_element("css selector", ".ui-dialog .ui-dialog-buttonset .mainaction").click()

    def hover(self, css):
        from selenium.webdriver.common.action_chains import ActionChains
        e = self.d.find_element("css selector", css)
        self.js("arguments[0].scrollIntoView({block: 'center'});", e)
        ActionChains(self.d).move_to_element(e).perform()

    def click_at(self, css):
        """A pointer click on the element (which may show only under the pointer)."""
        from selenium.webdriver.common.action_chains import ActionChains
        e = self.d.find_element("css selector", css)
        ActionChains(self.d).move_to_element(e).click().perform()

    def visible(self, css):
        for e in self.d.find_elements("css selector", css):
            if e.is_displayed():
                return e
        return None


def sorted_by(page, label, col, order):
    page.label = label
    page.action("list", lambda: page.list_options(col, order),
                lambda: page.js("return rcmail.env.sort_col == arguments[0] && "
                                "rcmail.env.sort_order == arguments[1];", col, order))
    page.shot(label)
    return page.subjects()


# --- the test --------------------------------------------------------------------------------

def check_installed():
    if os.geteuid() != 0:
        pytest.skip("needs root (a throwaway user, the test's own web server)")
    missing = [p for p in (LIGHTTPD, PHP_CGI, CHROMIUM, CHROMEDRIVER,
                           os.path.join(ROUNDCUBE_WEB, "index.php"),
                           "/usr/share/roundcube/SQL/sqlite.initial.sql")
               if not os.path.exists(p)]
    if not os.path.exists(ROUNDCUBE_DEFAULTS):
        missing.append(ROUNDCUBE_DEFAULTS)
    if importlib.util.find_spec("selenium") is None:
        missing.append("python3-selenium")
    assert not missing, (f"missing {missing}: tests/deps.sh check installs the packages "
                         f"({PACKAGES})")


@pytest.fixture
def webmail(tcp, tmp_path):
    check_installed()
    base = str(tmp_path / "roundcube")
    os.makedirs(base)
    child_subreaper(True)
    try:
        w = Webmail(base, tcp.host, tcp.port)
        yield w
        left = w.stop()
    finally:
        child_subreaper(False)
    print("--- Roundcube errors.log (tail) ---\n" + w.errors()[-4000:])
    assert not left, f"processes left behind: {left}"


@pytest.fixture
def browser(webmail, tmp_path):
    base = str(tmp_path / "browser")
    os.makedirs(base)
    b = Browser(base)
    yield b
    left = b.stop()
    assert not left, f"processes left behind: {left}"


def test_roundcube_lists_sorts_threads_flags_moves_deletes_searches(
        tcp, mailstore, webmail, browser, tmp_path):
    started = time.time()
    msgs = inbox_messages()
    mailstore.write_inbox(build_mbox([m.raw for m in msgs]))
    mailstore.write_mailbox(FOLDER, b"")
    # Subscribed, so that Roundcube's folder list shows it.
    c = imap_connect(tcp)
    assert c.subscribe(FOLDER)[0] == "OK"
    c.logout()
    by_key = {m.key: m for m in msgs}
    shots = str(tmp_path / "screenshots")
    os.makedirs(shots)
    print(f"screenshots and logs: {shots}, {webmail.base}")
    page = Roundcube(browser, webmail, shots)
    d = browser.driver

    # --- log in through the form ---
    d.get(webmail.url)
    page.until(lambda: page.visible("#rcmloginuser"), "the login form")
    page.shot("login")
    d.find_element("css selector", "#rcmloginuser").send_keys(tcp.login)
    d.find_element("css selector", "#rcmloginpwd").send_keys(tcp.password)
    d.find_element("css selector", "#rcmloginsubmit").click()
    page.until(lambda: len(page.rows()) == len(msgs) and page.idle(), "INBOX's message list")
    page.shot("inbox")
    assert sorted(page.subjects()) == sorted(m.subject for m in msgs)
    assert page.js("return rcmail.env.mailbox") == "INBOX"

    # --- sorting: by sent date and by subject, each ascending and descending ---
    seen_orders = {}
    for col in ("date", "subject"):
        for order in ("ASC", "DESC"):
            label = f"sort-{col}-{order}"
            seen_orders[(col, order)] = sorted_by(page, label, col, order)

    # --- the threaded view (newest first), as the dialog's list mode "Threads" saves it; the
    # dialog offers that mode only to a server that announced THREAD ---
    page.label = "threads"
    page.action("list", lambda: page.js("rcmail.set_list_options([], 'date', 'DESC', 1);"),
                lambda: page.js("return rcmail.env.sort_col == 'date' && "
                                "rcmail.env.sort_order == 'DESC';"))
    page.shot("threads")
    thread_rows = [(r["subject"], r["depth"]) for r in page.rows() if r["shown"]]
    thread_mode = page.js("return rcmail.env.threading ? true : false;")
    # Back to the plain list, newest first, for the steps below.
    page.label = "list"
    # (set_list_options sends nothing when the mode did not change; list_mailbox, which it
    # calls, always asks.)
    page.action("list", lambda: page.js(
        "rcmail.list_mailbox('', '', 'date_DESC', {_threads: 0});"),
        lambda: len(page.rows()) == len(msgs)
        and page.js("return !rcmail.env.threading;"))

    # --- open the message with attachments: the preview names both files ---
    page.label = "open"
    page.select(by_key["attach"].subject)
    page.until(lambda: page.js(
        "var f = document.getElementById('messagecontframe');"
        "var doc = f && f.contentDocument;"
        "var l = doc && doc.querySelector('#attachment-list');"
        "return l ? l.textContent : '';") or None, "the preview's attachment list")
    names = page.js(
        "var doc = document.getElementById('messagecontframe').contentDocument;"
        "return Array.from(doc.querySelectorAll('#attachment-list li a.filename'))"
        ".map(function (a) { return (a.querySelector('.attachment-name') || a)"
        ".textContent.trim(); });")
    page.shot("attachment")
    assert sorted(names) == ATTACHMENT_NAMES, names

    # --- mark one read (the toolbar's Mark menu: As read) ---
    page.label = "mark-read"
    page.select(by_key[MARK_READ].subject)
    rid = page.row_id(by_key[MARK_READ].subject)
    page.click_at("#markmessagemenulink")
    read = page.until(lambda: page.visible("#markmessage-menu a.read.active"),
                      "the Mark menu")
    page.action("mark", read.click,
                lambda: "unread" not in page.js(
                    "return document.getElementById(arguments[0]).className;", rid))
    page.shot("marked-read")

    # --- flag one: a click on the row's flag icon (it shows while the pointer is on the row) ---
    page.label = "flag"
    rid = page.row_id(by_key[FLAG].subject)
    page.hover(f"#{rid}")
    page.action("mark", lambda: page.click_at(f"#{rid} td.flags span.flag"),
                lambda: "flagged" in page.js(
                    "return document.getElementById(arguments[0]).className;", rid))
    page.shot("flagged")

    # --- move one to the folder ---
    page.label = "move"
    page.select(by_key[MOVE].subject)
    page.action("move", lambda: page.js("rcmail.command('move', arguments[0]);", FOLDER),
                lambda: by_key[MOVE].subject not in page.subjects())
    page.shot("moved")

    # --- delete one: the toolbar's Delete (flag_for_deletion: it is marked \\Deleted and
    # stays listed, struck through) ---
    page.label = "delete"
    page.select(by_key[DELETE].subject)
    rid = page.row_id(by_key[DELETE].subject)
    page.action("mark", lambda: d.find_element("css selector", "#toolbar-menu a.delete").click(),
                lambda: "deleted" in page.js(
                    "return document.getElementById(arguments[0]).className;", rid))
    page.shot("deleted")

    # --- quick search for a subject word ---
    page.label = "search"
    box = d.find_element("css selector", "input#mailsearchform[name=_q]")
    box.click()
    box.send_keys(SEARCH_WORD)
    from selenium.webdriver.common.keys import Keys
    page.action("search", lambda: box.send_keys(Keys.ENTER))
    page.shot("search")
    found = page.subjects()
    in_inbox = [m for m in msgs if m.key != MOVE]
    # Roundcube's quick search looks at Subject and From; the list stays newest first.
    want_found = [m for m in in_inbox
                  if SEARCH_WORD in m.subject.lower() or SEARCH_WORD in m.sender.lower()]
    assert len(want_found) >= 3
    assert found == [m.subject for m in sort_order(want_found, "date", "DESC")], found

    # --- the mailbox files: the flags persisted, the moved message in the folder ---
    page.label = "end"
    inbox = read_mbox(mailstore.inbox)
    archive = read_mbox(os.path.join(mailstore.mail_dir, FOLDER))
    got = {m.field("Message-ID"): m for m in inbox}
    assert sorted(got) == sorted(m.msgid for m in in_inbox)
    # The message opened with its attachments stays unread (mail_read_time -1: Roundcube
    # fetched it with BODY.PEEK); the deleted one is only flagged (flag_for_deletion).
    want_flags = {MARK_READ: {"\\Seen"}, FLAG: {"\\Flagged"}, DELETE: {"\\Deleted"}}
    for m in in_inbox:
        assert got[m.msgid].flags == want_flags.get(m.key, set()), (m.key, got[m.msgid].flags)
    assert [m.field("Message-ID") for m in archive] == [by_key[MOVE].msgid]
    assert archive[0].subject == by_key[MOVE].subject
    assert archive[0].flags == set()
    assert "IMAP Error" not in webmail.errors(), webmail.errors()[-3000:]

    # --- Roundcube sorted and threaded on the server ---
    log = webmail.imap_log()
    cmds = imap_commands(log)
    caps = " ".join(sorted(capabilities(log)))
    print("capabilities Roundcube was given:", caps)
    for c, st in sort_commands(cmds) + thread_commands(cmds):
        print("  ", c, "->", st)
    for col in ("date", "subject"):
        for order in ("ASC", "DESC"):
            part = imap_commands(page.step_log(f"sort-{col}-{order}"))
            sorts = [c for c, _ in sort_commands(part) if re.search(rf"\({col}\)", c, re.I)]
            own = client_sort_fetches(part)
            assert sorts and not own, (
                f"sorting by {col} {order}: Roundcube sent {sorts or 'no SORT'} and sorted by "
                f"itself with {own or 'nothing'}; the server's capabilities: {caps}")
    fallback = client_sort_fetches(cmds)
    assert not fallback, f"Roundcube sorted by itself: {fallback}"
    for c, st in sort_commands(cmds):
        assert st and st.startswith("OK"), (c, st)
    part = imap_commands(page.step_log("threads"))
    threads = thread_commands(part)
    assert threads, (f"the threaded view sent no THREAD: {[c for _, c, _ in part]}; the "
                     f"server's capabilities: {caps}")
    for c, st in threads:
        assert re.match(r"(UID )?THREAD (REFERENCES|REFS) ", c, re.I), c
        assert st and st.startswith("OK"), (c, st)

    # --- what the server's SORT and THREAD put on the page ---
    for (col, order), shown in seen_orders.items():
        want = [m.subject for m in sort_order(msgs, col, order)]
        assert shown == want, (col, order, shown)
    assert thread_mode, "Roundcube did not switch to the threaded view"
    assert thread_rows == thread_view(msgs), thread_rows
    print(f"roundcube test steps took {time.time() - started:.1f} s")
