"""Several sessions on one mailbox, each answer checked: STORE applies +FLAGS/-FLAGS to the
flags in the file (no lost update), a FETCH never serves bytes another session is moving
(one another session expunged is read from the copy it kept, one another program removed
is left out with NO [EXPUNGEISSUED], never sent empty), a
client that does not read holds no lock, new keywords are announced with FLAGS before
they are used, and nothing but BYE follows LOGOUT."""
import hashlib
import re
import socket
import time

from test_store import mbox, sessions  # noqa: F401 (the fixture)


def flags_of(lines, seq):
    for l in lines:
        m = re.match(r"\* %d FETCH \(.*FLAGS \(([^)]*)\)" % seq, l)
        if m:
            return set(m.group(1).split())
    return None


def test_store_applies_to_the_flags_in_the_file(sessions):
    """A: +FLAGS (\\Answered); B, which has not seen that, -FLAGS (\\Seen): both hold."""
    sessions.store.write_inbox(mbox(2))
    a, b = sessions(), sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    b.ok("NOOP")
    a.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
    r = b.ok("STORE 1 -FLAGS (\\Seen)")
    assert flags_of(r, 1) == {"\\Answered", "\\Recent"} or \
        flags_of(r, 1) == {"\\Answered"}, r
    a.ok("CHECK")
    b.ok("CHECK")
    c = sessions()
    c.ok("EXAMINE INBOX")
    r = c.ok("FETCH 1 FLAGS")
    assert "\\Answered" in flags_of(r, 1) and "\\Seen" not in flags_of(r, 1), r
    data = open(sessions.store.inbox, "rb").read().decode()
    first = data.split("\n\nFrom ")[0]
    assert "X-Status: A" in first and "Status: O" in first, first


def test_fetch_of_what_another_session_expunged(sessions):
    """RFC 2180 4.1.1: a message another session expunged stays available to the sessions
    that still number it, until they are told: the expunging session kept a copy."""
    sessions.store.write_inbox(mbox(6))
    a, b = sessions(), sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    r = a.ok("FETCH 1:6 (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    for seq in range(1, 7):
        i = r.index(next(l for l in r if l.startswith("* %d FETCH" % seq)))
        assert r[i + 1] == "Subject: %d" % (seq - 1), r[i:i + 6]
        assert "body %d" % (seq - 1) in r[i + 3:i + 6], r[i:i + 6]
    assert "UID 2 RFC822.SIZE" in "".join(r)
    r = a.ok('SEARCH SUBJECT "2"')
    assert "* SEARCH 3" in r, r
    # the next command that may is told of the expunge, and numbers move on
    r = a.ok("NOOP")
    assert r[:2] == ["* 2 EXPUNGE", "* 2 EXPUNGE"], r
    r = a.ok("FETCH 2 BODY.PEEK[TEXT]")
    assert any("body 3" in l for l in r), r


def rewrite_without(path, n):
    """What a local mail reader does: under the fcntl lock and the dotlock, write the file
    again without message n (0-based)."""
    import fcntl
    import os
    dot = path + ".lock"
    fd = os.open(dot, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        with open(path, "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            data = f.read()
            parts = re.split(rb"(?m)^(?=From )", data)
            parts = [p for p in parts if p]
            del parts[n]
            f.seek(0)
            f.write(b"".join(parts))
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
    finally:
        os.unlink(dot)


def test_fetch_leaves_out_what_another_program_removed(sessions):
    """RFC 2180 4.1.2: a message a mail reader removed has no copy: it is left out (never
    sent as an empty header or body), the others are sent whole, and the tagged NO says
    so."""
    sessions.store.write_inbox(mbox(6))
    a = sessions()
    a.ok("SELECT INBOX")
    rewrite_without(sessions.store.inbox, 1)
    r = a.cmd("FETCH 1:6 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    assert r[-1].startswith("NO [EXPUNGEISSUED]"), r
    assert not any(l.startswith("* 2 FETCH") for l in r), r
    for seq, n in ((1, 0), (3, 2), (6, 5)):
        i = r.index(next(l for l in r if l.startswith("* %d FETCH" % seq)))
        assert r[i + 1] == "Subject: %d" % n, r[i:i + 6]
        assert "body %d" % n in r[i + 3:i + 6], r[i:i + 6]
    r = a.ok("NOOP")
    assert "* 2 EXPUNGE" in r
    r = a.ok("FETCH 2 BODY.PEEK[TEXT]")
    assert any("body 2" in l for l in r), r


def test_a_client_that_does_not_read_holds_no_lock(sessions, preauth_server):
    """A FETCH of a big message to a client that reads nothing: the output is held by the
    server, not the mailbox lock, so another session's EXPUNGE (which moves every byte
    after the expunged message) completes at once; the first client then gets its
    message byte for byte."""
    big = "".join("line %06d of the big one, padded to make it long\n" % i
                  for i in range(120000))
    text = ("From alice@example.org Sat Jan  1 00:00:00 2000\nSubject: small\n\nsmall\n\n"
            "From alice@example.org Sat Jan  1 00:00:01 2000\nSubject: big\n\n" + big + "\n")
    sessions.store.write_inbox(text)
    a, b = sessions(), sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.srv.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    a.raw.send("f1 FETCH 2 BODY.PEEK[TEXT]\r\n")
    time.sleep(0.5)             # the server has filled the socket and holds the rest
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    t0 = time.time()
    b.ok("EXPUNGE")
    assert time.time() - t0 < 5
    r = a.raw.until_tagged("f1")
    assert r[-1].startswith("f1 OK"), r[-1]
    body = "\n".join(r[1:-2]) + "\n"
    assert hashlib.sha1(body.encode()).hexdigest() == hashlib.sha1(big.encode()).hexdigest()


def test_new_keywords_are_announced_before_use(sessions):
    """RFC 3501 7.2.6: a FLAGS response listing a new keyword comes before any FETCH that
    uses it, in the session that made it and in the others (NOOP, FETCH alike)."""
    sessions.store.write_inbox(mbox(3))
    a, b = sessions(), sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    r = a.ok("STORE 1 +FLAGS ($Label1)")
    i = next(k for k, l in enumerate(r) if l.startswith("* FLAGS"))
    j = next(k for k, l in enumerate(r) if l.startswith("* 1 FETCH"))
    assert i < j and "$Label1" in r[i], r
    r = b.ok("FETCH 1 FLAGS")
    i = next(k for k, l in enumerate(r) if l.startswith("* FLAGS"))
    j = next(k for k, l in enumerate(r) if l.startswith("* 1 FETCH"))
    assert i < j and "$Label1" in r[i] and "$Label1" in r[j], r
    a.ok("STORE 2 +FLAGS.SILENT ($hello)")
    r = b.ok("NOOP")
    i = next(k for k, l in enumerate(r) if l.startswith("* FLAGS"))
    j = next(k for k, l in enumerate(r) if l.startswith("* 2 FETCH"))
    assert i < j and "$hello" in r[i], r


def test_nothing_but_bye_after_logout(sessions):
    sessions.store.write_inbox(mbox(3))
    a, b = sessions(), sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted \\Flagged)")
    b.ok("EXPUNGE")
    b.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    r = a.cmd("LOGOUT")
    assert r == ["* BYE Logging out", "OK LOGOUT completed"], r
