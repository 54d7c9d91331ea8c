"""The spool file as local programs see it: locking, parsing, delivering, rewriting.

- SpoolLock: an fcntl write lock on the file, then the dotlock PATH.lock made with O_EXCL,
  as Debian's MDAs and mail readers take them; while the dotlock is busy the fcntl lock is
  let go between tries (procmail and Dovecot take the two in the other order).  fcntl locks
  belong to the process, and closing any descriptor of the file drops them, so every access
  to the spool from this (threaded) process goes through one threading lock, GUARD.
- parse(): the messages of an mbox file with their metadata headers and visible content.
- deliver_python(): what an MDA does (lock, append From_ line + message + empty line,
  fsync, unlock); deliver_procmail(): the real thing, run as the mailbox's owner.
- rewrite(): what mutt does when it syncs a mailbox: under both locks, rewrite the Status:
  and X-Status: lines of some messages and drop some, writing from the first changed
  message to the end in place and truncating.
"""

import errno
import fcntl
import os
import re
import subprocess
import threading
import time

GUARD = threading.Lock()

HIDDEN = {b"x-uid", b"status", b"x-status", b"x-keywords", b"x-imapbase", b"x-imap",
          b"content-length"}
SYS_FROM_XSTATUS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}


class LockTimeout(Exception):
    pass


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class SpoolLock:
    """Both locks on path, held between acquire() and release(); fd is the open file."""

    def __init__(self, path):
        self.path = path
        self.dot = path + ".lock"
        self.fd = -1
        self.have_dot = False
        self.waited = 0.0

    def acquire(self, timeout=60.0):
        t0 = time.monotonic()
        deadline = t0 + timeout
        self.fd = os.open(self.path, os.O_RDWR)
        pause = 0.002
        try:
            while True:
                try:
                    fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                else:
                    if self._try_dot():
                        self.waited = time.monotonic() - t0
                        return
                    fcntl.lockf(self.fd, fcntl.LOCK_UN)
                if time.monotonic() > deadline:
                    raise LockTimeout("could not lock %s in %.0f s" % (self.path, timeout))
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        except BaseException:
            os.close(self.fd)
            self.fd = -1
            raise

    def _try_dot(self):
        try:
            fd = os.open(self.dot, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            self._break_stale()
            return False
        try:
            os.write(fd, b"%d\n" % os.getpid())
        finally:
            os.close(fd)
        self.have_dot = True
        return True

    def _break_stale(self):
        """A dotlock naming a dead process, or empty and older than a minute (procmail's
        are empty), is left over from a killed holder."""
        try:
            st = os.stat(self.dot)
            with open(self.dot, "rb") as f:
                content = f.read(64)
        except OSError:
            return
        m = re.match(rb"\s*(\d+)", content)
        stale = False
        if m:
            stale = not _pid_alive(int(m.group(1)))
        elif time.time() - st.st_mtime > 60:
            stale = True
        if stale:
            try:
                st2 = os.stat(self.dot)
                if st2.st_ino == st.st_ino:
                    os.unlink(self.dot)
            except OSError:
                pass

    def release(self):
        if self.have_dot:
            try:
                os.unlink(self.dot)
            except OSError:
                pass
            self.have_dot = False
        if self.fd >= 0:
            try:
                fcntl.lockf(self.fd, fcntl.LOCK_UN)
            finally:
                os.close(self.fd)
                self.fd = -1


# ---------------------------------------------------------------------------------------------
# Parsing

_FROM = re.compile(rb"From [^\n]*\n")


class Msg:
    """One message of the file: start/end offsets (From_ line to the next From_ line),
    header fields [(lower name, raw bytes with continuation lines)], and the metadata."""

    __slots__ = ("start", "end", "from_line", "fields", "body", "sep", "uid", "flags",
                 "keywords", "msgid", "imapbase", "pseudo")

    def visible(self):
        """What a client is shown: the header without the hidden fields, the empty line,
        the body; with LF line ends as in the file."""
        return b"".join(raw for name, raw in self.fields if name not in HIDDEN) + b"\n" + \
            self.body

    def system_flags(self):
        return set(f for f in self.flags if f.startswith("\\"))

    def raw(self):
        return self.from_line + b"".join(raw for _, raw in self.fields) + b"\n" + \
            self.body + self.sep


def parse(data):
    """The messages of data (an mbox).  A From_ line begins the file or follows an empty
    line.  Raises ValueError if the file does not begin with one."""
    if not data:
        return []
    if not data.startswith(b"From "):
        raise ValueError("the file does not begin with a From_ line")
    starts = [0]
    pos = 0
    while True:
        i = data.find(b"\n\nFrom ", pos)
        if i < 0:
            break
        starts.append(i + 2)
        pos = i + 2
    starts.append(len(data))
    out = []
    for k in range(len(starts) - 1):
        out.append(_parse_one(data, starts[k], starts[k + 1]))
    return out


def _parse_one(data, start, end):
    m = Msg()
    m.start, m.end = start, end
    nl = data.index(b"\n", start)
    m.from_line = data[start:nl + 1]
    pos = nl + 1
    fields = []
    while pos < end:
        e = data.find(b"\n", pos, end)
        e = end if e < 0 else e + 1
        ln = data[pos:e]
        if ln in (b"\n", b"\r\n"):
            pos = e
            break
        if ln[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += ln
        else:
            fields.append([ln.split(b":", 1)[0].strip().lower(), ln])
        pos = e
    else:
        pos = end
    m.fields = [(n, bytes(r)) for n, r in fields]
    rest = data[pos:end]
    # The empty line before the next From_ line belongs to the file, not to the message.
    if end < len(data) or rest.endswith(b"\n\n"):
        if rest.endswith(b"\n"):
            m.body, m.sep = rest[:-1], b"\n"
        else:
            m.body, m.sep = rest, b""
    else:
        m.body, m.sep = rest, b""
    m.uid = None
    m.flags = set()
    m.keywords = []
    m.msgid = None
    m.imapbase = None
    m.pseudo = False
    for name, raw in m.fields:
        val = raw.split(b":", 1)[1] if b":" in raw else b""
        if name == b"x-uid":
            v = val.strip()
            if v.isdigit():
                m.uid = int(v)
        elif name == b"status":
            if b"R" in val:
                m.flags.add("\\Seen")
        elif name == b"x-status":
            for ch, fl in SYS_FROM_XSTATUS.items():
                if ch.encode() in val:
                    m.flags.add(fl)
        elif name == b"x-keywords":
            for kw in val.split():
                m.flags.add(kw.decode("latin-1"))
        elif name == b"x-imapbase":
            m.imapbase = val.split()
        elif name == b"x-imap":
            m.imapbase = val.split()
            m.pseudo = True
        elif name == b"message-id" and m.msgid is None:
            mm = re.search(rb"<[^>\s]*>", val)
            if mm:
                m.msgid = mm.group(0)
    return m


def read_file(path):
    with GUARD:
        with open(path, "rb") as f:
            return f.read()


def read_locked(path, timeout=30.0):
    """The file's bytes under an fcntl read lock (which every writer's write lock
    excludes), or None if the lock could not be had in time."""
    deadline = time.monotonic() + timeout
    with GUARD:
        fd = os.open(path, os.O_RDONLY)
        try:
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.005)
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0)
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return data
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# Delivery

def deliver_python(path, from_line, msg, lock_timeout=60.0):
    """Appends one message as Debian's MDAs do.  Returns the seconds spent waiting for the
    locks."""
    with GUARD:
        lk = SpoolLock(path)
        lk.acquire(lock_timeout)
        try:
            os.lseek(lk.fd, 0, os.SEEK_END)
            data = from_line + msg + b"\n"
            off = 0
            while off < len(data):
                off += os.write(lk.fd, data[off:])
            os.fsync(lk.fd)
        finally:
            lk.release()
        return lk.waited


def write_procmailrc(path, spool):
    with open(path, "w") as f:
        # LOCKSLEEP: procmail waits 8 s after finding the dotlock taken, by default; busy
        # servers take it many times a second.
        f.write("DEFAULT=%s\nLOCKTIMEOUT=60\nLOCKSLEEP=1\nLOGFILE=%s.log\n:0:\n%s\n" % (
            spool, path, spool))
    os.chmod(path, 0o644)


def deliver_procmail(rcfile, from_line, msg, uid, gid, home, user, timeout=120):
    """procmail as the mailbox's owner, with its own dotlock and fcntl lock.  Returns
    (exit code, stderr)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "LOGNAME": user, "USER": user}
    r = subprocess.run(["procmail", "-m", rcfile], input=from_line + msg, user=uid,
                       group=gid, extra_groups=[], env=env, capture_output=True,
                       timeout=timeout, cwd=home)
    return r.returncode, r.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# The mail reader

def status_lines(flags, old_status):
    """Status: and X-Status: lines for the system flags in flags, as mutt writes them
    (no padding); "O" is kept as it was."""
    st = b"Status: " + (b"R" if "\\Seen" in flags else b"") + \
        (b"O" if b"O" in old_status else b"")
    xs = b"X-Status: " + b"".join(ch.encode() for ch, fl in SYS_FROM_XSTATUS.items()
                                  if fl in flags)
    return st.rstrip() + b"\n", xs.rstrip() + b"\n"


def with_status(m, flags):
    """The raw bytes of message m with its Status:/X-Status: lines replaced for flags."""
    old_status = b""
    for name, raw in m.fields:
        if name == b"status":
            old_status = raw.split(b":", 1)[1]
            break
    st, xs = status_lines(flags, old_status)
    fields = []
    done_st = done_xs = False
    for name, raw in m.fields:
        if name == b"status":
            if not done_st:
                fields.append(st)
                done_st = True
            continue
        if name == b"x-status":
            if not done_xs:
                fields.append(xs)
                done_xs = True
            continue
        fields.append(raw)
    if not done_st:
        fields.append(st)
    if not done_xs:
        fields.append(xs)
    return m.from_line + b"".join(fields) + b"\n" + m.body + m.sep


def rewrite(path, choose, lock_timeout=60.0, on_locked=None, snapshot=None):
    """One mutt sync.  Under both locks: parse the file, call choose(messages) which returns
    ({index: new system flag set}, {indices to drop}) (or None to do nothing), then write
    the changed tail in place and truncate.  on_locked() is called once the locks are held
    (before anything is written); snapshot(before, after), if given, gets the file's bytes
    (for --trace).  Returns what choose returned plus the parsed messages."""
    with GUARD:
        lk = SpoolLock(path)
        lk.acquire(lock_timeout)
        try:
            if on_locked is not None:
                on_locked()
            size = os.fstat(lk.fd).st_size
            data = os.pread(lk.fd, size, 0)
            msgs = parse(data)
            plan = choose(msgs)
            if not plan:
                return None, msgs
            change, drop = plan
            touched = sorted(set(change) | set(drop))
            if not touched:
                return None, msgs
            first = touched[0]
            out = []
            for i in range(first, len(msgs)):
                if i in drop:
                    continue
                if i in change:
                    out.append(with_status(msgs[i], change[i]))
                else:
                    out.append(data[msgs[i].start:msgs[i].end])
            tail = b"".join(out)
            off = msgs[first].start
            if off == 0 and not tail:
                raise ValueError("refusing to empty the mailbox")
            pos = 0
            while pos < len(tail):
                pos += os.pwrite(lk.fd, tail[pos:], off + pos)
            os.ftruncate(lk.fd, off + len(tail))
            os.fsync(lk.fd)
            if snapshot is not None:
                snapshot(data, data[:off] + tail)
            return plan, msgs
        finally:
            lk.release()
