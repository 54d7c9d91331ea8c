"""A mail reader on the host and IMAP clients on the same spool file at the same time, as on a
shell-account host: mutt, run as the user on /var/mail/USER directly (its own locking), sees
what IMAP clients did to the flags, and an IMAP session that stays open sees what mutt did
(EXPUNGE, FLAGS) with UIDs and UIDVALIDITY kept."""
import os
import re
import shutil
import tempfile

import pytest

import clients_util
from clients_util import (CORPUS, Tmux, build_mbox, crlf_to_lf, fixture, imap_connect, need,
                          read_mbox, subjects)

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port


def local_mutt(user, spool, ready):
    """mutt as the user on the mbox file itself (no IMAP), in a detached tmux."""
    need("mutt")
    d = tempfile.mkdtemp(prefix="mutt-local-", dir=user.base)
    os.chmod(d, 0o755)
    rc = os.path.join(d, "muttrc")
    with open(rc, "w") as f:
        f.write(f"""set folder="{os.path.dirname(spool)}"
set spoolfile="{spool}"
set mbox_type=mbox
set sort=mailbox-order
set index_format="%4C [%Z] %s"
set delete=yes
set move=no
set quit=yes
set mark_old=no
set wait_key=no
set header_cache=""
set charset="utf-8"
set sleep_time=0
""")
    os.chmod(rc, 0o644)
    cmd = (f"setpriv --reuid={user.uid} --regid={user.gid} --clear-groups "
           f"env HOME={user.home} USER={user.name} LOGNAME={user.name} "
           f"mutt -n -F {rc} -f {spool}")
    env = {"TERM": "screen", "LANG": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    t = Tmux(d, cmd, env)
    t.dir = d
    try:
        t.wait_for(ready)
    except AssertionError:
        t.close()
        shutil.rmtree(d, ignore_errors=True)
        raise
    return t


def test_local_mutt_and_imap_on_one_spool(tcp, user, mailstore):
    if tcp.kind == "dovecot":
        pytest.skip("Dovecot writes flags into the mbox lazily")
    inbox = [fixture(n) for n in CORPUS]
    mailstore.write_inbox(build_mbox(inbox))
    c = imap_connect(tcp)
    try:
        typ, data = c.select("INBOX")
        assert data == [b"5"]
        uidvalidity = c.untagged_responses["UIDVALIDITY"][-1]
        typ, data = c.store("2", "+FLAGS.SILENT", "(\\Flagged \\Seen)")
        assert typ == "OK", data
        originals = {n + 1: m.visible() for n, m in enumerate(read_mbox(mailstore.inbox))}

        # mutt on the file sees the IMAP client's flags; it deletes 3, flags 4 and syncs.
        t = local_mutt(user, mailstore.inbox, "Scans of the signed forms")
        try:
            t.wait_line("Agenda for the server migration", "!")
            t.keys("3", "Enter", "d")
            t.wait_line("Grüße aus Köln", "D")
            t.keys("4", "Enter", "F")
            t.wait_line("body lines that begin with From", "!")
            t.keys("$")
            t.wait_gone("Grüße aus Köln")
            t.keys("q")
            t.wait_exit()
        finally:
            t.close()
            shutil.rmtree(t.dir, ignore_errors=True)
        stored = read_mbox(mailstore.inbox)
        assert [m.subject for m in stored] == subjects(inbox[:2] + inbox[3:])

        # The open IMAP session learns of both at its next command (RFC 3501 7.4.1).
        typ, data = c.noop()
        assert c.untagged_responses.pop("EXPUNGE", None) == [b"3"]
        # mutt's flag on (what is now) message 3 comes as an unsolicited FETCH.
        fetched = c.untagged_responses.pop("FETCH", [])
        assert any(re.match(rb"3 \(.*FLAGS \([^)]*\\Flagged", f) for f in fetched), fetched
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)")
        assert typ == "OK", data
        flags = {}
        for d in data:
            m = re.search(rb"UID (\d+)", d)
            f = re.search(rb"FLAGS \(([^)]*)\)", d)
            flags[int(m.group(1))] = set(f.group(1).decode().split())
        assert sorted(flags) == [1, 2, 4, 5], data
        assert "\\Flagged" in flags[2] and "\\Seen" in flags[2]
        assert "\\Flagged" in flags[4] and "\\Flagged" not in flags[5], flags
        # The same messages under the same UIDs (mutt adds a Lines: header to those it
        # rewrote; imapd hides the Content-Length it adds beside it).
        for uid in (1, 2, 4, 5):
            typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
            got = re.sub(rb"(?m)^Lines: \d+\n", b"", crlf_to_lf(data[0][1]), count=1)
            assert got == originals[uid], uid
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass
    # A new session: UIDVALIDITY has not changed.
    c = imap_connect(tcp)
    c.select("INBOX", readonly=True)
    assert c.untagged_responses["UIDVALIDITY"][-1] == uidvalidity
    c.logout()
