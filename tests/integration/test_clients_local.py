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
                          read_mbox, simple_message, subjects)

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


def assert_same_messages(c, originals):
    """Each UID in originals still fetches its message (mutt adds a Lines: header to those
    it rewrote; imapd hides the Content-Length it adds beside it)."""
    for uid, want in originals.items():
        typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
        got = re.sub(rb"(?m)^Lines: \d+\n", b"", crlf_to_lf(data[0][1]), count=1)
        assert got == want, uid


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
        # The same messages under the same UIDs.
        assert_same_messages(c, {u: originals[u] for u in (1, 2, 4, 5)})
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


def collapse_supported(path):
    """Whether the filesystem of path can cut blocks out of a file (what imapd's expunge of
    big messages uses); tmpfs cannot."""
    probe = os.path.join(os.path.dirname(path), ".collapse-probe")
    fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"x" * 65536)
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
        return libc.fallocate(fd, 0x08, 0, 4096) == 0      # FALLOC_FL_COLLAPSE_RANGE
    finally:
        os.close(fd)
        os.unlink(probe)


def test_local_mutt_reads_and_rewrites_after_block_expunge(tcp, user, mailstore):
    """An expunge that cut blocks out of the file leaves the next message's header padded
    (folded X-Keywords white space, DEVIATIONS.md 6): mutt on the file reads every message,
    changes a flag there and rewrites the file, and imapd still serves the same messages
    under the same UIDs."""
    if tcp.kind == "dovecot":
        pytest.skip("imapd's expunge")
    lines = "".join("line %05d of a long body that makes the message span several blocks\n"
                    % i for i in range(400))
    msgs = [simple_message(f"Long message {i}", lines + f"end of message {i}")
            for i in range(1, 5)]
    mailstore.write_inbox(build_mbox(msgs))
    size0 = os.path.getsize(mailstore.inbox)
    c = imap_connect(tcp)
    try:
        assert c.select("INBOX")[1] == [b"4"]
        assert c.store("1", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
        typ, data = c.expunge()
        assert typ == "OK" and data == [b"1"], data
        size1 = os.path.getsize(mailstore.inbox)
        if collapse_supported(mailstore.inbox):
            # about one message less; what is left of the cut blocks is header padding
            assert size0 - size1 >= len(msgs[0]) - 8192, (size0, size1)
            assert re.search(rb"(?m)^X-Keywords:.*\n( +\n)+", open(mailstore.inbox,
                                                                   "rb").read())
        originals = {}
        for uid in (2, 3, 4):
            typ, data = c.uid("FETCH", str(uid), "(BODY.PEEK[])")
            originals[uid] = crlf_to_lf(data[0][1])
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass
    stored = read_mbox(mailstore.inbox)
    assert [m.subject for m in stored] == ["Long message 2", "Long message 3",
                                           "Long message 4"]
    t = local_mutt(user, mailstore.inbox, "Long message 4")
    try:
        t.wait_for("Long message 2")
        t.keys("1", "Enter", "F")
        t.wait_line("Long message 2", "!")
        t.keys("$")
        t.keys("q")
        t.wait_exit()
    finally:
        t.close()
        shutil.rmtree(t.dir, ignore_errors=True)
    c = imap_connect(tcp)
    try:
        c.select("INBOX", readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)")
        assert [int(re.search(rb"UID (\d+)", d).group(1)) for d in data] == [2, 3, 4]
        assert b"\\Flagged" in data[0]
        assert_same_messages(c, originals)
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass
