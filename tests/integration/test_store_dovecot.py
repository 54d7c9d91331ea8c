"""Switching between imapd and Dovecot on the same mbox files keeps UIDVALIDITY, UIDs,
flags and keywords: Dovecot's imap (Debian's dovecot-imapd) reads what imapd wrote, and
imapd reads what Dovecot wrote.  Skipped where Dovecot is not installed."""
import os
import re
import shutil
import subprocess
import tempfile

import pytest

from test_store import mbox, sessions  # noqa: F401  (fixture)

DOVECOT = "/usr/lib/dovecot/imap"


def dovecot(user, mail_dir, script):
    """Runs Dovecot's imap preauthenticated as the user; returns its output lines."""
    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot-imapd is not installed")
    d = tempfile.mkdtemp(prefix="dovecot-", dir=user.home)
    try:
        conf = os.path.join(d, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"mail_location = mbox:{mail_dir}:INBOX={d}/inbox:INDEX={d}/index\n"
                    f"log_path = {d}/log\nssl = no\n")
        open(os.path.join(d, "inbox"), "w").close()
        for p in (d, conf, os.path.join(d, "inbox")):
            os.chown(p, user.uid, user.gid)
        data = "".join(f"x{i} {c}\r\n" for i, c in enumerate(script)) + "z LOGOUT\r\n"
        r = subprocess.run(["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}",
                            "--clear-groups", "env", f"HOME={user.home}", f"USER={user.name}",
                            DOVECOT, "-c", conf], input=data.encode(), capture_output=True,
                           timeout=30)
        return r.stdout.decode().split("\r\n")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fetch_map(lines):
    out = {}
    for ln in lines:
        m = re.match(r"\* \d+ FETCH \(UID (\d+) FLAGS \(([^)]*)\)\)", ln)
        if m:
            out[int(m.group(1))] = set(m.group(2).split()) - {"\\Recent"}
    return out


def test_dovecot_reads_what_imapd_wrote(sessions, user):
    st = sessions.store
    st.write_mailbox("box", mbox(4))
    a = sessions()
    r = a.ok("SELECT box")
    uv = [ln for ln in r if "UIDVALIDITY" in ln][0]
    a.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.ok("STORE 2 +FLAGS.SILENT (\\Seen \\Flagged Work)")
    a.ok("STORE 4 +FLAGS.SILENT (\\Answered)")
    a.ok("EXPUNGE")
    a.ok("CLOSE")
    out = dovecot(user, st.mail_dir, ["SELECT box", "FETCH 1:* (UID FLAGS)"])
    assert uv in out, out
    assert "* OK [UIDNEXT 5] Predicted next UID" in out, out
    assert fetch_map(out) == {2: {"\\Seen", "\\Flagged", "Work"}, 3: set(),
                              4: {"\\Answered"}}, out


def test_imapd_reads_what_dovecot_wrote(sessions, user):
    st = sessions.store
    st.write_mailbox("box", mbox(3))
    out = dovecot(user, st.mail_dir, ["SELECT box", "STORE 1 +FLAGS (\\Deleted)", "EXPUNGE"])
    uv = [ln for ln in out if "UIDVALIDITY" in ln][0]
    data = open(os.path.join(st.mail_dir, "box"), "rb").read()
    assert b"X-IMAPbase: " in data
    a = sessions()
    r = a.ok("SELECT box")
    assert uv in r and "* 2 EXISTS" in r and "* OK [UIDNEXT 4] Predicted next UID" in r
    r = a.ok("UID STORE 2:3 +FLAGS ()")
    assert [re.sub(r"FLAGS \([^)]*\) ", "", ln) for ln in r[:-1]] == \
        ["* 1 FETCH (UID 2)", "* 2 FETCH (UID 3)"]
