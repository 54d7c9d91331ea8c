"""Run IMAP servers preauthenticated on stdin/stdout as a throwaway Unix user, and talk to them.

Shared by tests/bench/bench.py and tests/diff/diff.py. Standard library only.

- Account: a temporary Unix user (created as root, removed by cleanup()) with every file under
  one temporary directory: per server a home, a mail directory and a spool directory whose
  file named after the user is the INBOX.
- Server: how to start Dovecot's imap or imapd for that account.
- Conn: one running server process; command() sends a command (with literals) and returns the
  tagged status, the elapsed wall-clock time and, when asked, the untagged responses.
- parse_response(): turns one response (bytes, literals inline) into Python values.
"""

import grp
import os
import pwd
import re
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

MARKER = "imapd-bench throwaway"
DOVECOT_IMAP = "/usr/lib/dovecot/imap"


class ServerGone(Exception):
    """The server closed its output or exited."""


class StepTimeout(Exception):
    """No tagged response within the step's time limit."""


# ---------------------------------------------------------------------------------------------
# Account


class Account:
    def __init__(self, prefix="imapb"):
        if os.geteuid() != 0:
            raise SystemExit("must run as root: it creates a throwaway Unix user")
        self.top = tempfile.mkdtemp(prefix="imapd-bench-")
        os.chmod(self.top, 0o755)
        self.user = "%s%05d" % (prefix, os.getpid() % 100000)
        subprocess.run(["useradd", "-M", "-d", os.path.join(self.top, "home"), "-s",
                        "/usr/sbin/nologin", "-c", MARKER, "-U", self.user], check=True)
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.alive = True

    def area(self, name):
        """A fresh home/spool/mail-dir set for one server, owned by the user."""
        base = os.path.join(self.top, name)
        if os.path.exists(base):
            shutil.rmtree(base)
        home = os.path.join(base, "home")
        spool = os.path.join(base, "spool")
        maildir = os.path.join(home, "mail")
        for d in (base, home, spool, maildir):
            os.mkdir(d)
            os.chown(d, self.uid, self.gid)
        os.chmod(base, 0o755)
        return {"base": base, "home": home, "spool_dir": spool, "mail_dir": maildir,
                "inbox": os.path.join(spool, self.user), "user": self.user}

    def install_inbox(self, area, pristine):
        dst = area["inbox"]
        if pristine is None:
            return
        with open(pristine, "rb") as src, open(dst, "wb") as out:
            size = os.fstat(src.fileno()).st_size
            off = 0
            while off < size:
                n = os.sendfile(out.fileno(), src.fileno(), off, min(size - off, 1 << 30))
                if n == 0:
                    break
                off += n
        os.chown(dst, self.uid, self.gid)
        os.chmod(dst, 0o600)

    def cleanup(self):
        if not self.alive:
            return
        self.alive = False
        # A process still running as the user was started by this run (the user was made
        # for it); end each by its id so that userdel can go ahead.
        kill_uid_processes(self.uid)
        for _ in range(50):
            r = subprocess.run(["userdel", self.user], stderr=subprocess.PIPE)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        try:
            grp.getgrnam(self.user)
            subprocess.run(["groupdel", self.user], stderr=subprocess.DEVNULL)
        except KeyError:
            pass
        shutil.rmtree(self.top, ignore_errors=True)


def kill_uid_processes(uid):
    """SIGKILL, by pid, each process whose real uid is uid (a throwaway user's)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            os.kill(int(d), signal.SIGKILL)
                        break
        except (OSError, ValueError):
            pass


def remove_stale_accounts():
    """Remove throwaway users that an interrupted earlier run left behind (marked in GECOS)."""
    for pw in pwd.getpwall():
        if pw.pw_gecos == MARKER and pw.pw_dir.startswith(tempfile.gettempdir() + "/imapd-bench-"):
            kill_uid_processes(pw.pw_uid)
            subprocess.run(["userdel", pw.pw_name], stderr=subprocess.DEVNULL)
            shutil.rmtree(os.path.dirname(pw.pw_dir), ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Servers


class Server:
    """How to start one server for an account area. kind is 'dovecot' or 'imapd'."""

    def __init__(self, kind, account, area, imapd_cmd=None):
        self.kind = kind
        self.account = account
        self.area = area
        self.log = os.path.join(area["base"], kind + ".log")
        if kind == "dovecot":
            conf = os.path.join(area["base"], "dovecot.conf")
            with open(conf, "w") as f:
                f.write("# Minimal configuration for a preauthenticated imap process.\n"
                        "mail_location = mbox:%s:INBOX=%s/%%u\n"
                        "log_path = %s\n"
                        "ssl = no\n"
                        "protocols = imap\n"
                        "base_dir = %s/run\n" % (area["mail_dir"], area["spool_dir"],
                                                 self.log, area["base"]))
            os.chmod(conf, 0o644)
            self.argv = [DOVECOT_IMAP, "-c", conf]
        else:
            conf = os.path.join(area["base"], "imapd.conf")
            with open(conf, "w") as f:
                f.write("spool_dir = %s\nmail_dir = %s\n" % (area["spool_dir"],
                                                           area["mail_dir"]))
            os.chmod(conf, 0o644)
            tmpl = imapd_cmd or "imapd/imapd --preauth --config {config}"
            fill = dict(area)
            fill["config"] = conf
            self.argv = [a.format(**fill) for a in shlex.split(tmpl)]
            if not os.path.isabs(self.argv[0]) and "/" in self.argv[0]:
                self.argv[0] = os.path.abspath(self.argv[0])
        self.config = conf

    def available(self):
        exe = self.argv[0]
        if "/" not in exe:
            exe = shutil.which(exe) or exe
        return os.path.isfile(exe) and os.access(exe, os.X_OK)

    def start(self, timeout=10.0):
        env = {"USER": self.account.user, "LOGNAME": self.account.user,
               "HOME": self.area["home"], "MAIL": self.area["inbox"],
               "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C"}
        errf = open(self.log + ".stderr", "ab")
        try:
            p = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=errf, user=self.account.uid, group=self.account.gid,
                                 extra_groups=[], env=env, cwd=self.area["home"],
                                 start_new_session=True, bufsize=0)
        finally:
            errf.close()
        c = Conn(p, self.kind)
        c.greet(timeout)
        return c


# ---------------------------------------------------------------------------------------------
# Connection

_LIT = re.compile(rb"\{(\d+)\+?\}$")


class Conn:
    def __init__(self, proc, kind):
        self.p = proc
        self.kind = kind
        self.fd = proc.stdout.fileno()
        self.buf = bytearray()
        self.pos = 0
        self.ntag = 0
        self.greeting = b""
        self.bytes_in = 0

    # -- low level ---------------------------------------------------------------------------
    def _compact(self):
        # Only called where no caller holds an offset into buf other than self.pos.
        if self.pos > (1 << 20):
            del self.buf[:self.pos]
            self.pos = 0

    def _fill(self, deadline):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepTimeout()
            r, _, _ = select.select([self.fd], [], [], min(left, 1.0))
            if r:
                break
        data = os.read(self.fd, 1 << 20)
        if not data:
            raise ServerGone("server closed its output")
        self.bytes_in += len(data)
        self.buf += data

    def _send(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            raise ServerGone("server closed its input")

    def read_response(self, deadline):
        """One whole response (literals inline, without the final CRLF)."""
        self._compact()
        start = self.pos
        seg = start          # start of the current line segment (after the last literal)
        scan = start         # where to look for the next CRLF
        while True:
            i = self.buf.find(b"\r\n", scan)
            if i < 0:
                scan = max(seg, len(self.buf) - 1)
                self._fill(deadline)
                continue
            m = _LIT.search(self.buf, max(seg, i - 24), i)
            if m:
                end = i + 2 + int(m.group(1))
                while len(self.buf) < end:
                    self._fill(deadline)
                seg = scan = end
                continue
            self.pos = i + 2
            return bytes(self.buf[start:i])

    def skip_to_tagged(self, tag, deadline):
        """Skip untagged responses quickly (literals honoured) and return the tagged line."""
        needle = b"\r\n" + tag + b" "
        head = tag + b" "
        at_start = True
        while True:
            self._compact()
            buf = self.buf
            pos = self.pos
            if at_start:
                if len(buf) - pos < len(head):
                    self._fill(deadline)
                    continue
                if buf.startswith(head, pos):
                    return self.read_response(deadline)
            # the tagged line can only come before the next literal: searching the whole
            # buffer for it at every literal made the client quadratic in the bytes buffered
            lit = buf.find(b"}\r\n", pos)
            c = buf.find(needle, pos, lit + 3 if lit != -1 else len(buf))
            if lit != -1 and (c == -1 or lit < c):
                j = buf.rfind(b"{", max(pos, lit - 22), lit)
                digits = bytes(buf[j + 1:lit]).rstrip(b"+") if j != -1 else b""
                at_start = False
                if not digits.isdigit():
                    self.pos = lit + 1
                    continue
                need = int(digits)
                self.pos = lit + 3
                while True:
                    avail = len(self.buf) - self.pos
                    if avail >= need:
                        self.pos += need
                        break
                    need -= avail
                    self.pos = len(self.buf)
                    self._compact()
                    self._fill(deadline)
                continue
            if c != -1:
                self.pos = c + 2
                at_start = True
                continue
            last = buf.rfind(b"\r\n", pos)
            if last > pos:
                self.pos = last
                at_start = False
            self._fill(deadline)

    def greet(self, timeout):
        deadline = time.monotonic() + timeout
        self.greeting = self.read_response(deadline)
        if not self.greeting.startswith(b"* PREAUTH"):
            raise ServerGone("greeting is not PREAUTH: %r" % self.greeting[:200])

    # -- commands ----------------------------------------------------------------------------
    def command(self, text, literals=(), timeout=60.0, collect=True):
        """Send 'TAG text', where each '{}' in text is a synchronizing literal taken in turn
        from literals. Returns (status, tagged_line, untagged_list, seconds).
        status is 'OK', 'NO', 'BAD', or 'BYE' when the server refused a literal."""
        self.ntag += 1
        tag = b"A%04d" % self.ntag
        parts = text.encode("utf-8") if isinstance(text, str) else text
        chunks = parts.split(b"{}")
        if len(chunks) - 1 != len(literals):
            raise ValueError("literal count mismatch")
        t0 = time.monotonic()
        deadline = t0 + timeout
        untagged = []
        out = tag + b" " + chunks[0]
        for k, lit in enumerate(literals):
            self._send(out + b"{%d}\r\n" % len(lit))
            while True:
                r = self.read_response(deadline)
                if r.startswith(b"+"):
                    break
                if r.startswith(tag + b" "):
                    return (r.split(b" ", 2)[1].decode("ascii", "replace"), r, untagged,
                            time.monotonic() - t0)
                if collect:
                    untagged.append(r)
            out = lit + chunks[k + 1]
        self._send(out + b"\r\n")
        if collect:
            while True:
                r = self.read_response(deadline)
                if r.startswith(tag + b" "):
                    break
                untagged.append(r)
        else:
            r = self.skip_to_tagged(tag, deadline)
        dt = time.monotonic() - t0
        st = r.split(b" ", 2)[1].decode("ascii", "replace") if b" " in r else "?"
        return st, r, untagged, dt

    def memory(self):
        """Peak and private anonymous memory of the server process, in bytes."""
        out = {}
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("VmHWM", "VmRSS", "RssAnon"):
                        out[k] = int(v.split()[0]) * 1024
            with open("/proc/%d/smaps_rollup" % self.p.pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k in ("Anonymous", "Private_Dirty"):
                        out["smaps_" + k] = int(v.split()[0]) * 1024
        except OSError:
            pass
        return out

    def exe(self):
        try:
            return os.readlink("/proc/%d/exe" % self.p.pid)
        except OSError:
            return "?"

    def logout(self, timeout=60.0):
        """LOGOUT and wait for the process to exit; returns seconds or raises."""
        t0 = time.monotonic()
        st, line, _, _ = self.command("LOGOUT", timeout=timeout)
        try:
            self.p.stdin.close()
        except OSError:
            pass
        left = max(0.1, timeout - (time.monotonic() - t0))
        self.p.wait(left)
        return st, time.monotonic() - t0

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.p.kill()
            except OSError:
                pass
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.p.stdin, self.p.stdout):
            try:
                f.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# Response parsing (for comparisons; the benchmark's fast path does not parse)


class Literal(bytes):
    """A string that arrived as a literal (kept apart so comparisons can tell)."""


def parse_response(data):
    """Parse an untagged response into a list of tokens: bytes for atoms, numbers and
    strings (str for quoted, Literal for literals), None for NIL, lists for parentheses.
    Bracketed section specs stay attached to their atom (BODY[1.MIME]<0>)."""
    pos = 0
    n = len(data)
    stack = [[]]
    while pos < n:
        c = data[pos]
        if c == 0x20:
            pos += 1
        elif c == 0x28:  # (
            stack.append([])
            pos += 1
        elif c == 0x29:  # )
            if len(stack) > 1:
                lst = stack.pop()
                stack[-1].append(lst)
            pos += 1
        elif c == 0x22:  # "
            out = bytearray()
            pos += 1
            while pos < n and data[pos] != 0x22:
                if data[pos] == 0x5C and pos + 1 < n:
                    pos += 1
                out.append(data[pos])
                pos += 1
            pos += 1
            stack[-1].append(bytes(out))
        elif c == 0x7B or (c == 0x7E and data[pos + 1:pos + 2] == b"{"):  # { or ~{
            if c == 0x7E:
                pos += 1
            end = data.index(b"}", pos)
            cnt = int(data[pos + 1:end].rstrip(b"+"))
            start = end + 3
            stack[-1].append(Literal(data[start:start + cnt]))
            pos = start + cnt
        else:
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos]
                if ch == 0x5B:
                    depth += 1
                elif ch == 0x5D:
                    depth -= 1
                elif depth == 0 and ch in (0x20, 0x28, 0x29):
                    break
                pos += 1
            atom = bytes(data[start:pos])
            stack[-1].append(None if atom.upper() == b"NIL" else atom)
    while len(stack) > 1:
        lst = stack.pop()
        stack[-1].append(lst)
    return stack[0]


def fetch_items(tokens):
    """For ['*', n, 'FETCH', [k, v, k, v...]] return (n, {KEY: value})."""
    if len(tokens) < 4 or tokens[2].upper() != b"FETCH" or not isinstance(tokens[3], list):
        return None
    lst = tokens[3]
    items = {}
    for k in range(0, len(lst) - 1, 2):
        key = lst[k].decode("latin-1").upper() if isinstance(lst[k], bytes) else str(lst[k])
        items[key] = lst[k + 1]
    return int(tokens[1]), items


def search_result(untagged):
    """The set of numbers in the '* SEARCH' responses of one command."""
    res = set()
    for r in untagged:
        if r.upper().startswith(b"* SEARCH"):
            res.update(int(x) for x in r[8:].split() if x.isdigit())
    return res


def exists_count(untagged):
    n = None
    for r in untagged:
        p = r.split()
        if len(p) >= 3 and p[0] == b"*" and p[2].upper() == b"EXISTS":
            n = int(p[1])
    return n


def mbox_quote(msg):
    """Write one message (bytes) as an mboxo body: From_ lines in the body quoted."""
    if msg.startswith(b"From "):
        msg = b">" + msg
    return msg.replace(b"\nFrom ", b"\n>From ")
