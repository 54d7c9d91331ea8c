"""The selected state end to end through the real binary: SELECT/EXAMINE responses,
\\Recent across sessions, STORE, EXPUNGE and UID EXPUNGE, CLOSE and UNSELECT, new mail
and other sessions' changes reported at NOOP, and the metadata left in the mbox file."""
import os
import re

import pytest

from conftest import Raw


class Session:
    def __init__(self, srv):
        self.srv = srv
        self.raw = Raw(srv.sock)
        self.n = 0
        greeting = self.raw.line()
        assert greeting.startswith("* PREAUTH"), greeting

    def cmd(self, text):
        self.n += 1
        tag = f"t{self.n}"
        self.raw.send(f"{tag} {text}\r\n")
        lines = self.raw.until_tagged(tag)
        lines[-1] = lines[-1][len(tag) + 1:]
        return lines

    def ok(self, text):
        r = self.cmd(text)
        assert r[-1].startswith("OK"), (text, r)
        return r

    def close(self):
        try:
            self.srv.sock.close()
        except OSError:
            pass
        self.srv.wait()


MSG = ("From alice@example.org Sat Jan  1 00:{m:02d}:{s:02d} 2000\n"
       "From: alice@example.org\nSubject: {n}\n{extra}\nbody {n}\n\n")


def mbox(n, extra=lambda i: "", start=0):
    return "".join(MSG.format(n=i, m=i // 60, s=i % 60, extra=extra(i))
                   for i in range(start, start + n))


@pytest.fixture
def sessions(preauth_server, mailstore):
    made = []

    def make():
        s = Session(preauth_server())
        made.append(s)
        return s
    make.store = mailstore
    yield make
    for s in made:
        s.close()


def untagged(lines):
    return [ln for ln in lines[:-1]]


def test_select_responses_and_recent(sessions):
    sessions.store.write_inbox(mbox(3, extra=lambda i: "Status: RO\n" if i == 0 else ""))
    a = sessions()
    r = a.ok("SELECT INBOX")
    assert r[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"
    assert r[1] == ("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"
                    " Flags permitted")
    assert "* 3 EXISTS" in r and "* 2 RECENT" in r
    assert "* OK [UNSEEN 2] First unseen" in r
    assert any(re.match(r"\* OK \[UIDVALIDITY \d+\]", ln) for ln in r)
    assert "* OK [UIDNEXT 4] Predicted next UID" in r
    assert r[-1] == "OK [READ-WRITE] SELECT completed"
    # the store wrote its metadata at once: the next session sees nothing recent
    data = open(sessions.store.inbox, "rb").read()
    assert b"X-IMAPbase: " in data and b"X-UID: 3\n" in data
    b = sessions()
    r = b.ok("SELECT INBOX")
    assert "* 0 RECENT" in r and "* 3 EXISTS" in r
    uv = [ln for ln in r if "UIDVALIDITY" in ln]
    assert uv == [ln for ln in a.ok("SELECT INBOX") if "UIDVALIDITY" in ln]


def test_examine_is_read_only(sessions):
    sessions.store.write_inbox(mbox(2))
    before = open(sessions.store.inbox, "rb").read()
    a = sessions()
    r = a.ok("EXAMINE INBOX")
    assert "* OK [PERMANENTFLAGS ()] No permanent flags permitted" in r
    assert "* 2 RECENT" in r
    assert r[-1] == "OK [READ-ONLY] EXAMINE completed"
    assert a.cmd("STORE 1 +FLAGS (\\Seen)")[-1].startswith("NO [READ-ONLY]")
    assert a.cmd("EXPUNGE")[-1].startswith("NO")
    a.ok("CLOSE")
    assert open(sessions.store.inbox, "rb").read() == before
    assert a.cmd("NOOP")[-1].startswith("OK")
    assert a.cmd("STORE 1 +FLAGS (\\Seen)")[-1].startswith("BAD")


def test_store_flags_and_keywords(sessions):
    sessions.store.write_inbox(mbox(3))
    a = sessions()
    a.ok("SELECT INBOX")
    r = a.ok("STORE 1:2 +FLAGS (\\Seen $Label1)")
    # RFC 3501 7.2.6: the new keyword is announced before the FETCH that uses it
    assert r[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)"
    assert r[1].startswith("* OK [PERMANENTFLAGS (") and " $Label1 \\*)]" in r[1]
    assert r[2] == "* 1 FETCH (FLAGS (\\Seen \\Recent $Label1))"
    assert r[3] == "* 2 FETCH (FLAGS (\\Seen \\Recent $Label1))"
    r = a.ok("UID STORE 2 -FLAGS (\\Seen)")
    assert r[-2] == "* 2 FETCH (FLAGS (\\Recent $Label1) UID 2)"
    assert a.ok("STORE 3 FLAGS.SILENT (\\Flagged \\Draft)") == ["OK STORE completed"]
    assert a.cmd("STORE 1 +FLAGS (\\Recent)")[-1].startswith("BAD")
    assert a.cmd("STORE x +FLAGS (\\Seen)")[-1].startswith("BAD")
    assert a.cmd("STORE 1 +BOGUS (\\Seen)")[-1].startswith("BAD")
    data = open(sessions.store.inbox, "rb").read().decode()
    assert "Status: RO\nX-Status:     \nX-Keywords: $Label1" in data
    assert "X-Status:   FT\n" in data
    # a fresh session reads the flags back, and a new keyword shows in FLAGS
    b = sessions()
    r = b.ok("SELECT INBOX")
    assert r[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)"
    r = b.ok("STORE 1:* +FLAGS.SILENT (\\Answered)")
    r = a.ok("NOOP")
    assert "* 1 FETCH (FLAGS (\\Seen \\Answered \\Recent $Label1))" in r
    assert "* 3 FETCH (FLAGS (\\Answered \\Flagged \\Draft \\Recent))" in r


def test_sequence_numbers_above_exists_are_bad(sessions):
    """RFC 3501 9 (seq-number): a message number above EXISTS, or '*' in an empty mailbox,
    gets BAD; a UID set naming UIDs that do not exist is not an error."""
    sessions.store.write_inbox(mbox(3))
    a = sessions()
    a.ok("SELECT INBOX")
    for text in ("FETCH 4 FLAGS", "FETCH 2:9 FLAGS", "STORE 3:4 +FLAGS (\\Seen)",
                 "COPY 7 INBOX", "FETCH 0 FLAGS"):
        assert a.cmd(text)[-1].startswith("BAD"), text
    assert a.ok("FETCH 3:* FLAGS")[0].startswith("* 3 FETCH")
    assert a.ok("UID FETCH 2:9 FLAGS")[-2].startswith("* 3 FETCH")
    assert a.ok("UID FETCH 100 FLAGS") == ["OK FETCH completed"]
    sessions.store.write_mailbox("empty", "")
    a.ok("SELECT empty")
    assert a.cmd("FETCH 1:* FLAGS")[-1].startswith("BAD")
    assert a.ok("UID FETCH 1:* FLAGS") == ["OK FETCH completed"]


def test_expunge_and_uid_expunge(sessions):
    sessions.store.write_inbox(mbox(5))
    a = sessions()
    a.ok("SELECT INBOX")
    a.ok("STORE 1,3,5 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("UID EXPUNGE 3:5")
    # UIDs 3 and 5: sequence 3, then 4 (5 less the one before it)
    assert [ln for ln in r if ln.endswith(" EXPUNGE")] == ["* 3 EXPUNGE", "* 4 EXPUNGE"]
    assert "* 3 RECENT" in r
    r = a.ok("EXPUNGE")
    assert [ln for ln in r if ln.endswith(" EXPUNGE")] == ["* 1 EXPUNGE"]
    r = a.ok("SELECT INBOX")
    assert "* 2 EXISTS" in r
    data = open(sessions.store.inbox, "rb").read().decode()
    assert "body 1\n" in data and "body 3\n" in data
    assert "body 0\n" not in data and "body 2\n" not in data and "body 4\n" not in data
    assert "X-UID: 2\n" in data and "X-UID: 4\n" in data


def test_close_expunges_unselect_does_not(sessions):
    sessions.store.write_inbox(mbox(3))
    a = sessions()
    a.ok("SELECT INBOX")
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    assert a.ok("UNSELECT") == ["OK UNSELECT completed"]
    assert "* 3 EXISTS" in a.ok("SELECT INBOX")
    assert a.ok("CLOSE") == ["OK CLOSE completed"]
    assert "* 2 EXISTS" in a.ok("SELECT INBOX")
    assert a.cmd("SELECT nosuch")[-1].startswith("NO [NONEXISTENT]")
    # a failed SELECT leaves the authenticated state
    assert a.cmd("NOOP")[-1].startswith("OK")
    assert a.cmd("CHECK")[-1].startswith("BAD")


def test_new_mail_and_other_sessions(sessions):
    st = sessions.store
    st.write_inbox(mbox(2))
    a = sessions()
    b = sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    # an MDA appends
    with open(st.inbox, "a") as f:
        f.write(mbox(1, start=2))
    r = a.ok("NOOP")
    # a saw the first two as new and now the third: \Recent is a's (RFC 3501 2.3.2)
    assert "* 3 EXISTS" in r and "* 3 RECENT" in r
    r = b.ok("NOOP")
    assert "* 3 EXISTS" in r and not any(ln.endswith("RECENT") for ln in r)
    # b changes flags and expunges; a hears of it at its next NOOP
    b.ok("STORE 1 +FLAGS.SILENT (\\Flagged \\Deleted)")
    r = a.ok("NOOP")
    assert "* 1 FETCH (FLAGS (\\Flagged \\Deleted \\Recent))" in r
    b.ok("EXPUNGE")
    r = a.ok("NOOP")
    assert "* 1 EXPUNGE" in r
    # no EXPUNGE during STORE (RFC 3501 7.4.1): it waits for the NOOP
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    r = a.ok("STORE 2 +FLAGS (\\Seen)")
    assert not any("EXPUNGE" in ln for ln in r)
    assert "* 2 FETCH (FLAGS (\\Seen \\Recent))" in r
    r = a.ok("NOOP")
    assert "* 1 EXPUNGE" in r
    r = a.ok("SELECT INBOX")
    assert "* 1 EXISTS" in r
    # a local mail reader rewrites the file without the remaining message: EXPUNGE
    st.write_inbox(b"")
    r = a.ok("NOOP")
    assert "* 1 EXPUNGE" in r




def test_other_sessions_expunges_are_numbered_as_the_client_knows(sessions):
    """Several messages another session removed, and mail delivered meanwhile, reach the
    first session at its NOOP as EXPUNGE numbers that each count the ones before them as
    gone (RFC 3501 7.4.1), then EXISTS; nothing about mail it was never told of."""
    st = sessions.store
    st.write_inbox(mbox(8))
    a = sessions()
    b = sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    # b hears of one more message a does not know of yet, then removes it with others
    with open(st.inbox, "a") as f:
        f.write(mbox(1, start=8))
    assert "* 9 EXISTS" in b.ok("NOOP")
    b.ok("STORE 2,4,5,8,9 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    with open(st.inbox, "a") as f:
        f.write(mbox(1, start=9))
    r = a.ok("NOOP")
    assert [ln for ln in r if ln.endswith(" EXPUNGE")] == \
        ["* 2 EXPUNGE", "* 3 EXPUNGE", "* 3 EXPUNGE", "* 5 EXPUNGE"], r
    assert "* 5 EXISTS" in r, r
    r = a.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (Subject)])")
    subjects = re.findall(r"Subject: (\d+)", "\n".join(r))
    assert subjects == ["0", "2", "5", "6", "9"], r

def test_status_on_the_selected_mailbox(sessions):
    """STATUS on the selected mailbox (RFC 9051 6.3.11: servers MUST answer it) is the
    selection's own view, brought up to date first: mail delivered meanwhile is announced
    with EXISTS and RECENT before the STATUS line, the numbers agree with them, and RECENT
    counts what is \\Recent in this session."""
    st = sessions.store
    st.write_inbox(mbox(2, extra=lambda i: "Status: RO\n" if i == 0 else ""))
    a = sessions()
    a.ok("SELECT INBOX")
    r = a.ok("STATUS INBOX (MESSAGES RECENT UNSEEN UIDNEXT)")
    assert r[:-1] == ['* STATUS "INBOX" (MESSAGES 2 RECENT 1 UNSEEN 1 UIDNEXT 3)'], r
    with open(st.inbox, "a") as f:
        f.write(mbox(1, start=2))
    r = a.ok("STATUS INBOX (MESSAGES RECENT UNSEEN UIDNEXT)")
    assert r[:-1] == ["* 3 EXISTS", "* 2 RECENT",
                      '* STATUS "INBOX" (MESSAGES 3 RECENT 2 UNSEEN 2 UIDNEXT 4)'], r
    # another session expunges: EXPUNGE comes first, then the count without it
    b = sessions()
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    r = a.ok("STATUS INBOX (MESSAGES)")
    assert r[:-1] == ["* 1 EXPUNGE", '* STATUS "INBOX" (MESSAGES 2)'], r
    # LIST-STATUS (RFC 5819) answers the selected mailbox the same way
    r = a.ok('LIST "" "INBOX" RETURN (STATUS (MESSAGES RECENT))')
    assert r[-2] == '* STATUS "INBOX" (MESSAGES 2 RECENT 2)', r
    # EXAMINE: the same, and the file is not changed by asking
    a.ok("EXAMINE INBOX")
    before = open(st.inbox, "rb").read()
    r = a.ok("STATUS INBOX (MESSAGES UNSEEN)")
    assert r[:-1] == ['* STATUS "INBOX" (MESSAGES 2 UNSEEN 2)'], r
    assert open(st.inbox, "rb").read() == before

def append(s, prefix, *msgs, plus=False):
    """APPEND with one literal per message ({n} waits for '+', {n+} does not)."""
    s.n += 1
    tag = f"t{s.n}"
    s.raw.send(f"{tag} {prefix} ".encode())
    for i, m in enumerate(msgs):
        flags, data = m if isinstance(m, tuple) else ("", m)
        if i > 0:
            s.raw.send(b" ")
        if flags:
            s.raw.send(flags.encode() + b" ")
        s.raw.send(b"{" + str(len(data)).encode() + (b"+" if plus else b"") + b"}\r\n")
        if not plus:
            cont = s.raw.line()
            assert cont.startswith("+"), cont
        s.raw.send(data)
    s.raw.send(b"\r\n")
    lines = s.raw.until_tagged(tag)
    lines[-1] = lines[-1][len(tag) + 1:]
    return lines


def test_append(sessions):
    st = sessions.store
    st.write_inbox(mbox(2))
    a = sessions()
    a.ok("CREATE box")
    msg = (b"From: bob@example.org\r\nSubject: hello\r\nX-UID: 99\r\nStatus: RO\r\n\r\n"
           b"From here on\r\nthe body\r\n")
    r = append(a, "APPEND box", ('(\\Seen $Work) "01-Feb-2020 10:00:00 +0100"', msg))
    m = re.match(r"OK \[APPENDUID (\d+) 1\] APPEND completed", r[-1])
    assert m, r
    r = append(a, "APPEND box", msg, b"Subject: two\r\n\r\nx\r\n", plus=True)
    assert re.match(r"OK \[APPENDUID %s 2:3\] APPEND completed" % m.group(1), r[-1]), r
    data = open(os.path.join(st.mail_dir, "box"), "rb").read().decode()
    assert "\n>From here on\nthe body\n" in data
    assert "X-Original-X-UID: 99\n" in data and "X-Original-Status: RO\n" in data
    assert data.startswith("From MAILER-DAEMON Sat Feb  1 10:00:00 2020 +0100\n")
    r = a.ok("SELECT box")
    assert "* 3 EXISTS" in r and r[0].endswith("\\Draft $Work)")
    r = a.ok("STORE 1 FLAGS ()")
    assert r[0] == "* 1 FETCH (FLAGS (\\Recent))"
    # into the selected mailbox: the new message is announced
    r = append(a, "APPEND box", b"Subject: four\r\n\r\n4\r\n")
    assert "* 4 EXISTS" in r and r[-1].startswith("OK [APPENDUID")
    # refused before the continuation: the literal is never sent
    r = a.cmd("APPEND nosuch {1}")
    assert r[-1].startswith("NO [TRYCREATE]"), r
    r = a.cmd("APPEND box (\\Bogus) {1}")
    assert r[-1].startswith("BAD"), r
    assert "* 4 EXISTS" in a.ok("SELECT box")


def test_copy_and_move(sessions):
    st = sessions.store
    st.write_inbox(mbox(4))
    a = sessions()
    a.ok("CREATE dest")
    a.ok("SELECT INBOX")
    a.ok("STORE 2 +FLAGS.SILENT (\\Flagged $Work)")
    r = a.ok("COPY 1:2 dest")
    m = re.match(r"OK \[COPYUID (\d+) 1:2 1:2\] COPY completed", r[-1])
    assert m, r
    r = a.ok("UID COPY 4 dest")
    assert r[-1] == f"OK [COPYUID {m.group(1)} 4 3] COPY completed"
    assert a.cmd("COPY 1 nosuch")[-1].startswith("NO [TRYCREATE]")
    r = a.ok("MOVE 2:3 dest")
    assert r[0] == f"* OK [COPYUID {m.group(1)} 2:3 4:5] Moved"
    assert [ln for ln in r if ln.endswith(" EXPUNGE")] == ["* 2 EXPUNGE", "* 2 EXPUNGE"]
    r = a.ok("UID MOVE 4 dest")
    assert "* 2 EXPUNGE" in r
    r = a.ok("SELECT dest")
    assert "* 6 EXISTS" in r
    # the mailbox INBOX was closed first: [CLOSED] ends its responses (RFC 7162 3.2.11)
    assert r[0] == "* OK [CLOSED] Previous mailbox closed", r
    assert "$Work" in r[1], r
    r = a.ok("STORE 2 +FLAGS (\\Seen)")
    assert r[0].startswith("* 2 FETCH (FLAGS (\\Seen \\Flagged \\Recent $Work))"), r
    r = a.ok("SELECT INBOX")
    assert "* 1 EXISTS" in r
    data = open(st.inbox, "rb").read().decode()
    assert "body 0\n" in data and "body 1\n" not in data
    dest = open(os.path.join(st.mail_dir, "dest"), "rb").read().decode()
    for i in (0, 1, 3, 1, 2, 3):
        assert f"body {i}\n" in dest


def test_idle_reports_delivery_and_expunge(sessions):
    import time
    st = sessions.store
    st.write_inbox(mbox(2))
    a = sessions()
    b = sessions()
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.raw.send("i1 IDLE\r\n")
    assert a.raw.line().startswith("+ ")
    t0 = time.monotonic()
    with open(st.inbox, "a") as f:
        f.write(mbox(1, start=2))
    assert a.raw.line(timeout=5) == "* 3 EXISTS"
    assert time.monotonic() - t0 < 2.5
    assert a.raw.line(timeout=5) == "* 3 RECENT"
    # another session expunges: reported during IDLE
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert a.raw.line(timeout=5) == "* 1 FETCH (FLAGS (\\Deleted \\Recent))"
    b.ok("EXPUNGE")
    assert a.raw.line(timeout=5) == "* 1 EXPUNGE"
    a.raw.send("DONE\r\n")
    r = a.raw.until_tagged("i1")
    assert r[-1].startswith("i1 OK"), r
    assert "* 2 EXISTS" in a.ok("SELECT INBOX")


FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mbox")


@pytest.mark.parametrize("name,uidvalidity,uids,flags,kws", [
    ("uw-pseudo.mbox", 1420419723, [10, 12],
     ["\\Seen \\Answered Work", "\\Flagged $Forwarded"], "$Forwarded Work"),
    ("dovecot.mbox", 1420000000, [30, 31],
     ["\\Seen NonJunk", "\\Answered \\Deleted Junk"], "Junk NonJunk"),
])
def test_uw_and_dovecot_mailboxes(sessions, name, uidvalidity, uids, flags, kws):
    st = sessions.store
    data = open(os.path.join(FIXTURES, name), "rb").read()
    st.write_mailbox("imported", data)
    a = sessions()
    r = a.ok("SELECT imported")
    assert r[0] == f"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft {kws})"
    assert "* 2 EXISTS" in r and "* 0 RECENT" in r
    assert f"* OK [UIDVALIDITY {uidvalidity}] UIDs valid" in r
    assert f"* OK [UIDNEXT {uids[-1] + 1}] Predicted next UID" in r
    # nothing to write: the file is as the other server left it
    assert open(os.path.join(st.mail_dir, "imported"), "rb").read() == data
    # STORE with no change answers the flags as read from the file
    r = a.ok("UID STORE %d,%d +FLAGS ()" % tuple(uids))
    assert r[0] == f"* 1 FETCH (FLAGS ({flags[0]}) UID {uids[0]})"
    assert r[1] == f"* 2 FETCH (FLAGS ({flags[1]}) UID {uids[1]})"
    # a change is written in the other server's headers, UIDs kept
    a.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
    b = sessions()
    r = b.ok("SELECT imported")
    assert f"* OK [UIDVALIDITY {uidvalidity}] UIDs valid" in r
    r = b.ok("UID STORE %d +FLAGS ()" % uids[1])
    assert "\\Seen" in r[0] and f"UID {uids[1]}" in r[0]
