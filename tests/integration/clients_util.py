"""Helpers for the real-client tests (test_clients*.py): imapd on a loopback TCP port through
systemd-socket-activate (one imapd per connection, as inetd/systemd Accept=yes start it),
mboxes built from the message fixtures, and a reader that parses an mbox file back so that
tests can assert on what the server left on disk.

Set IMAPD_CLIENTS_SERVER=dovecot to run the same client scripts against Debian's Dovecot imap
(preauthenticated as the throwaway user, mbox storage on the same files): a check that a
failing case is imapd's and not the test's. The default, and what `make check` runs, is imapd
with LOGIN through PAM.
"""
import imaplib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from conftest import IMAPD, ROOT, free_port, user_config, wait_listening

FIXTURES = os.path.join(ROOT, "tests", "fixtures", "messages")
DOVECOT_IMAP = "/usr/lib/dovecot/imap"

# Headers the server keeps its own state in; they are hidden from clients.
META_HEADERS = (b"status", b"x-status", b"x-uid", b"x-keywords", b"x-imapbase", b"x-imap",
                b"content-length")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def ctime(t):
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t))


def mbox_entry(msg, sender="fixture@imapd.test", t=1772438400):
    """One message as an MDA appends it: From_ line, LF line ends as given, body lines that
    begin with "From " quoted (mboxo), one blank line after."""
    if isinstance(msg, str):
        msg = msg.encode()
    lines = msg.split(b"\n")
    out = []
    in_body = False
    for ln in lines:
        if in_body and ln.startswith(b"From "):
            ln = b">" + ln
        if not in_body and ln in (b"", b"\r"):
            in_body = True
        out.append(ln)
    body = b"\n".join(out)
    if not body.endswith(b"\n"):
        body += b"\n"
    return b"From %s %s\n" % (sender.encode(), ctime(t).encode()) + body + b"\n"


def build_mbox(msgs, t0=1772438400):
    return b"".join(mbox_entry(m, t=t0 + i * 3600) for i, m in enumerate(msgs))


def simple_message(subject, body, sender="Sam Sender <sam@example.org>", msgid=None):
    msgid = msgid or "<%s@example.org>" % re.sub(r"[^A-Za-z0-9]", ".", subject)
    return ("Date: Tue, 3 Mar 2026 10:00:00 +0100\n"
            f"From: {sender}\n"
            "To: Robin Example <robin@home.example.net>\n"
            f"Subject: {subject}\n"
            f"Message-ID: {msgid}\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=us-ascii\n"
            "\n"
            f"{body}\n").encode()


class MboxMessage:
    def __init__(self, from_line, header_lines, body):
        self.from_line = from_line
        self.header_lines = header_lines      # raw lines, continuation lines kept, LF ends
        self.body = body
        self.separator = b"\n"                 # the blank line after the header, as stored

    def fields(self, name):
        name = name.lower().encode()
        out = []
        cur = None
        for ln in self.header_lines:
            if ln[:1] in (b" ", b"\t") and cur is not None:
                out[-1] += ln
                continue
            k, _, v = ln.partition(b":")
            cur = k.strip().lower()
            if cur == name:
                out.append(v)
            else:
                cur = None
        return [v.strip().decode("utf-8", "replace") for v in out]

    def field(self, name):
        f = self.fields(name)
        return f[0] if f else None

    @property
    def subject(self):
        return self.field("Subject")

    @property
    def uid(self):
        v = self.field("X-UID")
        return int(v.split()[0]) if v else None

    @property
    def flags(self):
        """IMAP flags as the metadata headers record them (\\Recent aside)."""
        status = self.field("Status") or ""
        xstatus = self.field("X-Status") or ""
        fl = set()
        if "R" in status:
            fl.add("\\Seen")
        for ch, name in (("A", "\\Answered"), ("F", "\\Flagged"), ("T", "\\Draft"),
                         ("D", "\\Deleted")):
            if ch in xstatus:
                fl.add(name)
        for k in (self.field("X-Keywords") or "").replace(",", " ").split():
            fl.add(k)
        return fl

    def visible(self):
        """The message as a client must see it, LF line ends: metadata headers dropped."""
        keep = []
        skipping = False
        for ln in self.header_lines:
            if ln[:1] in (b" ", b"\t"):
                if not skipping:
                    keep.append(ln)
                continue
            name = ln.split(b":", 1)[0].strip().lower()
            skipping = name in META_HEADERS
            if not skipping:
                keep.append(ln)
        return b"".join(keep) + self.separator + self.body


FROM_RE = re.compile(rb"^From \S*[ \t]+.*\d\d:\d\d")


def parse_mbox(data):
    """Splits an mbox at From_ lines that begin the file or follow a blank line. Drops UW's
    pseudo message. Each body loses the blank line that separates it from the next From_."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    starts = [i for i, ln in enumerate(lines)
              if FROM_RE.match(ln) and (i == 0 or lines[i - 1] in (b"", b"\r"))]
    msgs = []
    for n, s in enumerate(starts):
        e = starts[n + 1] if n + 1 < len(starts) else len(lines)
        chunk = lines[s + 1:e]
        if n + 1 < len(starts) and chunk and chunk[-1] == b"":
            chunk = chunk[:-1]
        elif n + 1 == len(starts) and chunk and chunk[-1] == b"":
            chunk = chunk[:-1]
        blank = next((i for i, ln in enumerate(chunk) if ln in (b"", b"\r")), len(chunk))
        hdr = [ln + b"\n" for ln in chunk[:blank]]
        body = b"".join(ln + b"\n" for ln in chunk[blank + 1:])
        m = MboxMessage(lines[s], hdr, body)
        m.separator = chunk[blank] + b"\n" if blank < len(chunk) else b""
        if m.field("X-IMAP") is not None:
            continue
        msgs.append(m)
    return msgs


def read_mbox(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return parse_mbox(f.read())


def crlf_to_lf(b):
    return b.replace(b"\r\n", b"\n")


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            out.append(int(d))
    return out


def as_user(user):
    def pre():
        os.setgroups([])
        os.setgid(user.gid)
        os.setuid(user.uid)
    return pre


class TcpServer:
    """imapd behind systemd-socket-activate --inetd on 127.0.0.1 (a new process for every
    connection, on fd 0/1). stop() ends the listener and waits for every connection's process;
    one that does not exit fails the test."""

    def __init__(self, pam, user, tmp, args=(), **extra):
        self.user = user
        self.conf_dir = None
        self.kind = os.environ.get("IMAPD_CLIENTS_SERVER", "imapd")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.login = user.name
        self.password = user.password
        self.log_path = os.path.join(tmp, "server.log")
        self.seen_children = set()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        cmd = ["systemd-socket-activate", "-a", "--inetd", "-l", f"{self.host}:{self.port}"]
        if self.kind == "dovecot":
            base = os.path.join(user.base, "dovecot")
            os.makedirs(os.path.join(base, "run"), exist_ok=True)
            for root, dirs, _ in os.walk(base):
                os.chown(root, user.uid, user.gid)
            conf = os.path.join(base, "dovecot.conf")
            with open(conf, "w") as f:
                f.write("mail_location = mbox:~/mail:INBOX=%s/%%u\n"
                        "log_path = %s/dovecot.log\nssl = no\nprotocols = imap\n"
                        "base_dir = %s/run\nmailbox_idle_check_interval = 1 secs\n"
                        % (user.spool_dir, base, base))
            os.chmod(conf, 0o644)
            server = [DOVECOT_IMAP, "-c", conf]
            cmd += self.as_user_cmd(server)
        else:
            pam.add(user.name, user.password)
            # Readable by the user too, for the tunnel (pytest's temp dirs are root's own).
            self.conf_dir = tempfile.mkdtemp(prefix="imapd-clients-")
            os.chmod(self.conf_dir, 0o755)
            conf = os.path.join(self.conf_dir, "imapd.conf")
            with open(conf, "w") as f:
                f.write("".join(f"{k} = {v}\n" for k, v in user_config(user, **extra).items()))
            os.chmod(conf, 0o644)
            env.update(pam.env)
            for k in pam.env:
                cmd += ["-E", k]
            cmd += [IMAPD, "-d", "-c", conf] + list(args)
            server = [IMAPD, "--preauth", "-c", conf]
        # The same server as a preauthenticated session run as the user: what a client's
        # tunnel command (ssh host imapd) starts.
        self.tunnel = " ".join(shlex.quote(a) for a in self.as_user_cmd(server))
        full = dict(os.environ)
        full.update(env)
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, env=full, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        try:
            wait_listening(self.port, self.proc)
        except AssertionError:
            self.stop()
            raise AssertionError("socket activation did not listen: " + self.log())

    # What the server's log shows when pam_wrapper (the test PAM stand-in), not imapd, failed:
    # it names its per-process directory /tmp/pam.X with a single character, and processes of
    # concurrent test runs race for those names.
    PWRAP_RACE = ("PWRAP_ERROR", "pam_start: Critical error")

    def pam_retry(self, step, attempts=4):
        """Runs step(); when it fails and the server log shows the pam_wrapper race during it,
        runs it again (a client step whose login failed has changed nothing)."""
        for n in range(attempts):
            start = len(self.log())
            try:
                return step()
            except AssertionError:
                text = self.log()[start:]
                if n + 1 == attempts or not any(w in text for w in self.PWRAP_RACE):
                    raise
            time.sleep(0.2)

    def as_user_cmd(self, argv):
        u = self.user
        return ["setpriv", f"--reuid={u.uid}", f"--regid={u.gid}", "--clear-groups", "env",
                f"USER={u.name}", f"LOGNAME={u.name}", f"HOME={u.home}"] + list(argv)

    @property
    def preauth(self):
        return self.kind == "dovecot"

    def url(self, path=""):
        return f"imap://{self.host}:{self.port}/{path}"

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout=15):
        """Stops listening, then waits for the per-connection processes to end."""
        kids = children_of(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        deadline = time.time() + timeout
        hung = []
        for pid in kids:
            while os.path.exists(f"/proc/{pid}") and time.time() < deadline:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                            break
                except OSError:
                    break
                time.sleep(0.05)
            if os.path.exists(f"/proc/{pid}/stat"):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except OSError:
                    state = "gone"
                if state not in ("Z", "gone"):
                    hung.append(pid)
                    os.kill(pid, signal.SIGKILL)
        self.logf.close()
        if self.conf_dir:
            shutil.rmtree(self.conf_dir, ignore_errors=True)
        assert not hung, f"server processes still running after the test: {hung}\n" + self.log()
        # Under the sanitizer build (IMAPD_BIN=build-san/...), a report fails the test even
        # when the client got what it wanted.
        log = self.log()
        for w in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert w not in log, log[-8000:]


# --- shared by the test_clients*.py modules ----------------------------------------------------

import pytest  # noqa: E402

CORPUS = ["plain-ascii.eml", "alternative.eml", "encoded-words.eml", "from-lines-in-body.eml",
          "mixed-attachments.eml"]


@pytest.fixture
def tcp(pam, user, mailstore, tmp_path):
    """imapd listening on 127.0.0.1 for the throwaway user; stopped after the test."""
    os.chmod(tmp_path, 0o755)
    srv = TcpServer(pam, user, str(tmp_path))
    yield srv
    srv.stop()
    # Shown by pytest only when the test failed.
    print("--- server log (tail) ---\n" + srv.log()[-6000:])


@pytest.fixture(scope="module")
def tls_cert():
    """A self-signed certificate for 127.0.0.1 and localhost (the key readable by root, who
    starts imapd); clients are told to trust exactly this certificate."""
    need("openssl")
    d = tempfile.mkdtemp(prefix="imapd-clients-tls-")
    os.chmod(d, 0o755)
    c = type("Cert", (), {})()
    c.cert, c.key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", c.key, "-out", c.cert])
    assert r.returncode == 0, r.stderr
    os.chmod(c.key, 0o600)
    os.chmod(c.cert, 0o644)
    yield c
    shutil.rmtree(d, ignore_errors=True)


def imap_connect(tcp):
    """An imaplib client logged in over TCP (or greeted with PREAUTH)."""
    def step():
        c = imaplib.IMAP4(tcp.host, tcp.port, timeout=30)
        if c.state != "AUTH":
            try:
                c.login(tcp.login, tcp.password)
            except imaplib.IMAP4.error as e:
                try:
                    c.shutdown()
                except OSError:
                    pass
                raise AssertionError("LOGIN failed: %s" % e)
        return c
    return tcp.pam_retry(step)


def need(prog):
    if shutil.which(prog) is None:
        pytest.skip(prog + " is not installed (tests/deps.sh check)")


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)


def subjects(msgs):
    """Subjects as a reader of the mbox file sees them (still RFC 2047 encoded)."""
    return [m.subject for m in parse_mbox(build_mbox(msgs))]


def procmail(user, msg):
    """Delivers msg to the user's spool as procmail does for a local user: as that user,
    with procmail's kernel and dotlock locking on the spool file."""
    need("procmail")
    # Where the user can read it (pytest's temp dirs are root's own).
    rc = os.path.join(user.base, "procmailrc")
    spool = os.path.join(user.spool_dir, user.name)
    with open(rc, "w") as f:
        f.write(f"DEFAULT={spool}\nLOCKTIMEOUT=30\n:0:\n{spool}\n")
    os.chmod(rc, 0o644)
    # An MTA hands procmail the message with a From_ line (postfix local, exim do).
    msg = b"From sam@example.org " + ctime(time.time()).encode() + b"\n" + msg
    r = run(["procmail", "-m", rc], input=msg, preexec_fn=as_user(user),
            env={"PATH": "/usr/bin:/bin", "HOME": user.home, "LOGNAME": user.name})
    assert r.returncode == 0, r.stderr


# --- mutt in a detached tmux ----------------------------------------------------------------

class Tmux:
    """A private tmux server (its own socket) running one program; keys in, screen out."""

    def __init__(self, tmp, cmd, env):
        need("tmux")
        self.sock = os.path.join(tmp, "tmux.sock")
        self.env = env
        self.tmux("new-session", "-d", "-x", "160", "-y", "40", "-s", "t", cmd)

    def tmux(self, *args):
        return subprocess.run(["tmux", "-S", self.sock] + list(args), env=self.env,
                              capture_output=True, timeout=20)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "t").stdout.decode("utf-8", "replace")

    def keys(self, *keys):
        self.tmux("send-keys", "-t", "t", *keys)

    def wait_for(self, text, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.screen()
            if text in s:
                return s
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on the screen:\n" + self.screen())

    def wait_line(self, text, mark, timeout=20):
        """Waits until the index line showing text carries the status mark."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for ln in self.screen().splitlines():
                if text in ln and mark in ln.split(text)[0]:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not marked {mark!r}:\n" + self.screen())

    def wait_gone(self, text, timeout=20):
        deadline = time.time() + timeout
        while text in self.screen():
            if time.time() > deadline:
                raise AssertionError(f"{text!r} still on the screen:\n" + self.screen())
            time.sleep(0.1)

    def running(self):
        return self.tmux("has-session", "-t", "t").returncode == 0

    def wait_exit(self, timeout=20):
        deadline = time.time() + timeout
        while self.running():
            if time.time() > deadline:
                raise AssertionError("the program did not exit:\n" + self.screen())
            time.sleep(0.1)

    def close(self):
        self.tmux("kill-server")


def start_mutt(tcp, tmp_path, ready, via="tcp", extra="", scheme="imap"):
    """mutt on the user's INBOX in a detached tmux, once the text ready is on the screen.
    via tcp: LOGIN through PAM on the listening port; via tunnel: mutt's `tunnel` command
    starts imapd --preauth as the user, as `ssh host imapd` does. Returns (tmux, screen,
    mutt's home)."""
    need("mutt")
    home = tmp_path / "mutthome"
    home.mkdir()
    rc = home / "muttrc"
    tunnel = "set tunnel=\"%s\"" % tcp.tunnel if via == "tunnel" else ""
    rc.write_text(f"""set imap_user="{tcp.login}"
set imap_pass="{tcp.password}"
set folder="{scheme}://{tcp.host}:{tcp.port}/"
{tunnel}
set spoolfile="+INBOX"
set ssl_starttls=no
set ssl_force_tls=no
set imap_passive=yes
set header_cache=""
set message_cachedir=""
set sort=mailbox-order
set index_format="%4C [%Z] %s"
set delete=yes
set move=no
set quit=yes
set mark_old=no
set wait_key=no
set pager_stop=yes
set pager_index_lines=0
set sleep_time=0
set charset="utf-8"
set mailcap_path=""
set implicit_autoview=no
alternative_order text/plain
{extra}
""")
    env = {"HOME": str(home), "TERM": "screen", "LANG": "C.UTF-8",
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    # -d 2: mutt's debug log (with the IMAP exchange) in its home, shown when a step fails.
    cmd = f"mutt -d 2 -n -F {rc} -f {scheme}://{tcp.host}:{tcp.port}/INBOX"

    def start():
        t = Tmux(str(tmp_path), cmd, env)
        try:
            return t, t.wait_for(ready)
        except AssertionError:
            t.close()
            raise
    t, screen = tcp.pam_retry(start)
    return t, screen, home


def show_debug(home):
    dbg = home / ".muttdebug0"
    if dbg.exists():
        print("--- mutt debug log (tail) ---\n" + dbg.read_text(errors="replace")[-8000:])
