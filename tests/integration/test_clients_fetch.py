"""Mail retrievers against imapd on a loopback TCP port: fetchmail handing each message to an
MDA (kept on the server, then fetched and removed) and getmail6 into a Maildir. The tests
compare what the retriever delivered with the mbox file and read the file back afterwards."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

import clients_util
from clients_util import (CORPUS, as_user, build_mbox, crlf_to_lf, fixture, need, procmail,
                          read_mbox, run, simple_message, subjects)

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port

# An MDA that stores each message it is handed as the next numbered file in a directory.
NUMBERED_MDA = """import os, sys
d = sys.argv[1]
n = len(os.listdir(d)) + 1
with open(os.path.join(d, "%03d" % n), "wb") as f:
    f.write(sys.stdin.buffer.read())
"""


def delivered(d):
    return [open(os.path.join(d, n), "rb").read() for n in sorted(os.listdir(d))]


def drop_added_header(msg, name, marker):
    """Removes one header field that a retriever adds (folded lines too)."""
    pat = rb"(?mi)^" + re.escape(name) + rb":[^\n]*" + re.escape(marker) + rb"[^\n]*\n" \
        + rb"(?:[ \t][^\n]*\n)*"
    out, n = re.subn(pat, b"", msg, count=1)
    if n == 0:
        pat = rb"(?mi)^" + re.escape(name) + rb":[^\n]*\n(?:[ \t][^\n]*" + re.escape(marker) \
            + rb"[^\n]*\n)(?:[ \t][^\n]*\n)*"
        out = re.sub(pat, b"", msg, count=1)
    return out


class Fetchmail:
    def __init__(self, tcp, tmp):
        need("fetchmail")
        self.tcp = tcp
        self.tmp = tmp
        self.out = os.path.join(tmp, "delivered")
        os.makedirs(self.out)
        self.mda = os.path.join(tmp, "mda.py")
        with open(self.mda, "w") as f:
            f.write(NUMBERED_MDA)

    def run(self, keep, fetchall=True, expect=0):
        rc = os.path.join(self.tmp, "fetchmailrc")
        auth = "" if self.tcp.preauth else "auth password"
        with open(rc, "w") as f:
            f.write(f"""set no syslog
poll {self.tcp.host} protocol IMAP port {self.tcp.port} {auth}
  user "{self.tcp.login}" there with password "{self.tcp.password}" is "root" here
  folder INBOX
  sslproto ''
  {"keep" if keep else "nokeep"} {"fetchall" if fetchall else ""}
  mda "{sys.executable} {self.mda} {self.out}"
""")
        os.chmod(rc, 0o600)
        env = {"HOME": self.tmp, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}

        def step():
            r = run(["fetchmail", "-f", rc, "-N", "-v", "--nosyslog",
                     "--idfile", os.path.join(self.tmp, "fetchids"),
                     "--pidfile", os.path.join(self.tmp, "fetchmail.pid")], env=env)
            log = (r.stdout + r.stderr).decode(errors="replace")
            # 0: mail delivered, 1: no mail.
            assert r.returncode == expect, (r.returncode, log[-4000:])
            return log
        return self.tcp.pam_retry(step)

    def messages(self):
        # fetchmail puts its own Received line at the top of what it hands the MDA.
        return [crlf_to_lf(drop_added_header(m, b"Received", b"fetchmail"))
                for m in delivered(self.out)]


def test_fetchmail_keep_then_fetch_and_remove(tcp, mailstore, tmp_path):
    inbox = [fixture(n) for n in CORPUS]
    mailstore.write_inbox(build_mbox(inbox))
    fm = Fetchmail(tcp, str(tmp_path))
    fm.run(keep=True)
    stored = read_mbox(mailstore.inbox)
    assert fm.messages() == [m.visible() for m in stored]
    # Kept on the server, now seen.
    assert subjects(inbox) == [m.subject for m in stored]
    assert [m.flags for m in stored] == [{"\\Seen"}] * 5

    # Without fetchall only unseen mail is fetched: a new message and nothing else.
    with open(mailstore.inbox, "ab") as f:
        f.write(build_mbox([simple_message("second batch", "One more.")], t0=1772500000))
    fm.run(keep=True, fetchall=False)
    got = fm.messages()
    assert len(got) == 6 and b"Subject: second batch\n" in got[5]

    # Not kept: everything fetched again, then deleted and expunged on the server.
    fm.run(keep=False)
    got = fm.messages()
    assert len(got) == 12
    assert got[6:] == got[:6]
    assert read_mbox(mailstore.inbox) == []


# --- getmail6 --------------------------------------------------------------------------------

def unfold(msg):
    """getmail re-writes headers through Python's email package, which may re-fold them."""
    hdr, sep, body = msg.partition(b"\n\n")
    return re.sub(rb"\n[ \t]+", b" ", hdr) + sep + body


def getmail_maildir(d):
    out = []
    for sub in ("new", "cur"):
        for n in sorted(os.listdir(os.path.join(d, sub))):
            m = open(os.path.join(d, sub, n), "rb").read()
            # getmail's Maildir delivery puts the envelope sender on top.
            assert m.startswith(b"Return-Path: <"), m[:200]
            out.append(m.split(b"\n", 1)[1])
    return out


def test_getmail_into_maildir(tcp, user, mailstore):
    need("getmail")
    if tcp.preauth:
        pytest.skip("getmail cannot use a PREAUTH greeting")
    inbox = [fixture(n) for n in CORPUS]
    mailstore.write_inbox(build_mbox(inbox))
    work = mailstore.write_mailbox("Work", build_mbox([fixture("qp-latin1.eml")]))
    # getmail refuses to deliver as root: it runs as the mail's owner, in that user's home.
    top = tempfile.mkdtemp(prefix="getmail-", dir=user.home)
    try:
        md = os.path.join(top, "Maildir")
        gdir = os.path.join(top, "getmail")
        for d in [os.path.join(md, s) for s in ("new", "cur", "tmp")] + [gdir]:
            os.makedirs(d)
        rc = os.path.join(gdir, "getmailrc")
        for root, dirs, _ in os.walk(top):
            os.chown(root, user.uid, user.gid)
        getmail_runs(tcp, user, mailstore, work, md, gdir, rc)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def getmail_runs(tcp, user, mailstore, work, md, gdir, rc):
    def write_rc(delete):
        with open(rc, "w") as f:
            f.write(f"""[retriever]
type = SimpleIMAPRetriever
server = {tcp.host}
port = {tcp.port}
username = {tcp.login}
password = {tcp.password}
mailboxes = ("INBOX", "Work")
record_mailbox = false

[destination]
type = Maildir
path = {md}/

[options]
read_all = false
delete = {"true" if delete else "false"}
delivered_to = false
received = false
verbose = 0
""")
        os.chmod(rc, 0o644)

    def getmail_once():
        r = run(["getmail", f"--rcfile={rc}", f"--getmaildir={gdir}"], preexec_fn=as_user(user),
                env={"HOME": user.home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")[-3000:]

    def getmail():
        tcp.pam_retry(getmail_once)

    write_rc(delete=False)
    getmail()
    want = [m.visible() for m in read_mbox(mailstore.inbox) + read_mbox(work)]
    got = [crlf_to_lf(m) for m in getmail_maildir(md)]
    assert sorted(map(unfold, got)) == sorted(map(unfold, want))
    assert len(read_mbox(mailstore.inbox)) == 5

    # A second run fetches only what arrived since (getmail keeps the UIDs it has seen).
    with open(mailstore.inbox, "ab") as f:
        f.write(build_mbox([simple_message("for getmail", "Later mail.")], t0=1772500000))
    getmail()
    got = [crlf_to_lf(m) for m in getmail_maildir(md)]
    assert len(got) == 7
    assert sum(b"Subject: for getmail\n" in m for m in got) == 1

    # delete = true: the next run removes what it retrieved from the server.
    with open(mailstore.inbox, "ab") as f:
        f.write(build_mbox([simple_message("last one", "Bye.")], t0=1772600000))
    write_rc(delete=True)
    # A clock tick between sessions: the mailbox's UIDVALIDITY must not follow the clock
    # (RFC 3501 2.3.1.1), or getmail would fetch every message a second time.
    time.sleep(1.1)
    getmail()
    got = [crlf_to_lf(m) for m in getmail_maildir(md)]
    assert len(got) == 8 and sum(b"Subject: last one\n" in m for m in got) == 1
    assert read_mbox(mailstore.inbox) == [] and read_mbox(work) == []


def test_getmail_idle_picks_up_delivery(tcp, user, mailstore):
    """getmail --idle: it fetches what is there, waits in IDLE (RFC 2177), and fetches the
    message procmail delivers while it waits."""
    need("getmail")
    if tcp.preauth:
        pytest.skip("getmail cannot use a PREAUTH greeting")
    mailstore.write_inbox(build_mbox([fixture(n) for n in CORPUS[:2]]))
    top = tempfile.mkdtemp(prefix="getmail-", dir=user.home)
    proc = None
    try:
        md = os.path.join(top, "Maildir")
        gdir = os.path.join(top, "getmail")
        for d in [os.path.join(md, s) for s in ("new", "cur", "tmp")] + [gdir]:
            os.makedirs(d)
        rc = os.path.join(gdir, "getmailrc")
        with open(rc, "w") as f:
            f.write(f"""[retriever]
type = SimpleIMAPRetriever
server = {tcp.host}
port = {tcp.port}
username = {tcp.login}
password = {tcp.password}
mailboxes = ("INBOX",)
record_mailbox = false

[destination]
type = Maildir
path = {md}/

[options]
read_all = false
delete = false
delivered_to = false
received = false
verbose = 0
""")
        for root, dirs, files in os.walk(top):
            for n in [root] + [os.path.join(root, x) for x in files]:
                os.chown(n, user.uid, user.gid)

        def wait_count(n, timeout=15):
            deadline = time.time() + timeout
            while time.time() < deadline:
                if len(getmail_maildir(md)) >= n:
                    return getmail_maildir(md)
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
            raise AssertionError("getmail has %d messages, not %d" % (
                len(getmail_maildir(md)), n))

        def start():
            nonlocal proc
            proc = subprocess.Popen(
                ["getmail", f"--rcfile={rc}", f"--getmaildir={gdir}", "--idle=INBOX"],
                preexec_fn=as_user(user), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env={"HOME": user.home, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
            try:
                return wait_count(2)
            except AssertionError:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                raise
        tcp.pam_retry(start)
        time.sleep(1)       # let it settle into IDLE
        procmail(user, simple_message("for getmail in IDLE", "Straight through."))
        got = wait_count(3)
        stored = read_mbox(mailstore.inbox)
        assert sorted(unfold(crlf_to_lf(m)) for m in got) == sorted(
            unfold(m.visible()) for m in stored)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(top, ignore_errors=True)
