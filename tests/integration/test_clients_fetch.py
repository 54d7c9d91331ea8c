"""Mail retrievers against imapd on a loopback TCP port: fetchmail handing each message to an
MDA (kept on the server, then fetched and removed). The tests compare what the retriever
delivered with the mbox file and read the file back afterwards."""
import os
import re
import sys

import clients_util
from clients_util import (CORPUS, build_mbox, crlf_to_lf, fixture, need, read_mbox, run,
                          simple_message, subjects)

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
        r = run(["fetchmail", "-f", rc, "-N", "-v", "--nosyslog",
                 "--idfile", os.path.join(self.tmp, "fetchids"),
                 "--pidfile", os.path.join(self.tmp, "fetchmail.pid")], env=env)
        log = (r.stdout + r.stderr).decode(errors="replace")
        # 0: mail delivered, 1: no mail.
        assert r.returncode == expect, (r.returncode, log[-4000:])
        return log

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
