"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 4): SEARCH and SORT with RETURN (UPDATE) kept up
to date with ESEARCH ADDTO/REMOVEFROM while other sessions, the session itself and procmail
change the mailbox. Each test keeps the result the way a client does (applying every update
in order, renumbering on EXPUNGE) and checks it against a fresh SEARCH or SORT after every
change."""
import re
import time

import pytest

from clients_util import need
from test_store import Session, mbox
from test_store_mda import procmail

UPD = re.compile(r'\* ESEARCH \(TAG "([^"]+)"\)( UID)?((?: (?:ADDTO|REMOVEFROM) \([^)]*\))+)$')


def expand(s):
    out = []
    for part in s.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            assert a <= b, s  # RFC 5267 3.2: ranges only upwards
            out.extend(range(a, b + 1))
        else:
            out.append(int(part))
    return out


class Result:
    """A client's copy of an updating result (numbers, in the requested order)."""

    def __init__(self, tag, nums, sorted_):
        self.tag, self.nums, self.sorted = tag, list(nums), sorted_
        self.updates = 0

    def apply(self, lines):
        for ln in lines:
            m = re.match(r"\* (\d+) EXPUNGE$", ln)
            if m and not self.uid:
                n = int(m.group(1))
                # RFC 5267 4.3.4: the REMOVEFROM came first
                assert n not in self.nums, (n, self.nums, lines)
                self.nums = [x - 1 if x > n else x for x in self.nums]
                continue
            m = UPD.match(ln)
            if not m or m.group(1) != self.tag:
                continue
            assert bool(m.group(2)) == self.uid, ln
            self.updates += 1
            for kind, body in re.findall(r"(ADDTO|REMOVEFROM) \(([^)]*)\)", m.group(3)):
                it = body.split()
                assert len(it) % 2 == 0, ln
                for pos, st in zip(it[::2], it[1::2]):
                    pos, vals = int(pos), expand(st)
                    if not self.sorted:
                        assert pos == 0, ln
                    if kind == "ADDTO":
                        assert not set(vals) & set(self.nums), (ln, self.nums)
                        if pos == 0:
                            self.nums = sorted(self.nums + vals)
                        else:
                            assert 1 <= pos <= len(self.nums) + 1, (ln, self.nums)
                            self.nums[pos - 1:pos - 1] = vals
                    else:
                        if pos == 0:
                            assert set(vals) <= set(self.nums), (ln, self.nums)
                            self.nums = [x for x in self.nums if x not in vals]
                        else:
                            assert self.nums[pos - 1:pos - 1 + len(vals)] == vals, \
                                (ln, self.nums)
                            del self.nums[pos - 1:pos - 1 + len(vals)]


def start(s, text, sorted_, uid):
    """Runs an updating command; returns its Result (ALL in the first answer)."""
    tag = "t%d" % (s.n + 1)
    r = s.ok(text)
    nums = []
    for ln in r:
        m = re.match(r'\* ESEARCH \(TAG "%s"\)( UID)?(?: ALL (\S+))?' % tag, ln)
        if m:
            nums = expand(m.group(2)) if m.group(2) else []
    res = Result(tag, nums, sorted_)
    res.uid = uid
    return res


def fresh(s, text):
    r = s.ok(text)
    for ln in r:
        m = re.match(r"\* (?:SEARCH|SORT)((?: \d+)*)$", ln)
        if m:
            return [int(x) for x in m.group(1).split()]
    raise AssertionError(r)


@pytest.fixture
def two(preauth_server, mailstore):
    made = []

    def make(n=12, extra=lambda i: ""):
        mailstore.write_inbox(mbox(n, extra))
        a, b = Session(preauth_server()), Session(preauth_server())
        made.extend([a, b])
        a.ok("SELECT INBOX")
        b.ok("SELECT INBOX")
        return a, b
    make.store = mailstore
    yield make
    for s in made:
        s.close()


def subj(i):
    # subjects out of arrival order, so that SORT positions are not mailbox positions
    return "Date: Sat, %d Jan 2000 00:00:00 +0000\n" % (1 + (i * 7) % 28)


def test_capability(two):
    a, _ = two()
    caps = a.ok("CAPABILITY")[0]
    assert " CONTEXT=SEARCH" in caps and " CONTEXT=SORT" in caps and " ESORT" in caps


def test_search_update_by_another_session(two):
    """SEARCH RETURN (UPDATE) UNSEEN in sequence numbers: \\Seen set and cleared by another
    session, its expunges and its appends, each reported as REMOVEFROM/ADDTO (position 0)
    around the FETCH, EXPUNGE and EXISTS, and the result always equals a fresh SEARCH."""
    a, b = two(12)
    res = start(a, "SEARCH RETURN (UPDATE ALL) UNSEEN", False, False)
    assert res.nums == list(range(1, 13))
    steps = ["STORE 2,4:6 +FLAGS (\\Seen)", "STORE 5 -FLAGS (\\Seen)",
             "STORE 3,8 +FLAGS (\\Deleted)", "EXPUNGE",
             "APPEND INBOX (\\Seen) {%d}\r\n%s" % (len("Subject: x\r\n\r\nx\r\n"),
                                                  "Subject: x\r\n\r\nx\r\n"),
             "APPEND INBOX {%d}\r\n%s" % (len("Subject: y\r\n\r\ny\r\n"),
                                          "Subject: y\r\n\r\ny\r\n"),
             "STORE 1:* -FLAGS (\\Seen)", "STORE 1,2 +FLAGS (\\Seen)"]
    for st in steps:
        if st.startswith("APPEND"):
            head, lit = st.split("\r\n", 1)
            b.n += 1
            tag = "t%d" % b.n
            b.raw.send("%s %s\r\n" % (tag, head))
            assert b.raw.line().startswith("+")
            b.raw.send(lit + "\r\n")
            assert b.raw.until_tagged(tag)[-1].startswith(tag + " OK")
        else:
            b.ok(st)
        res.apply(a.ok("NOOP"))
        assert res.nums == fresh(a, "SEARCH UNSEEN"), st
    assert res.updates >= 6


def test_uid_sort_update(two, user):
    """UID SORT RETURN (UPDATE ALL) (DATE) UNDELETED: the session's own STORE, another
    session's, an expunge and mail from procmail move messages in and out at their sorted
    positions (RFC 5267 4.3.3, 4.3.4)."""
    need("procmail")
    a, b = two(15, subj)
    res = start(a, "UID SORT RETURN (UPDATE ALL) (DATE) UTF-8 UNDELETED", True, True)
    want = fresh(a, "UID SORT (DATE) UTF-8 UNDELETED")
    assert res.nums == want and want != sorted(want)
    for who, st in [(a, "STORE 3,9 +FLAGS (\\Deleted)"), (b, "STORE 4:6 +FLAGS (\\Deleted)"),
                    (b, "STORE 5 -FLAGS (\\Deleted)"), (a, "STORE 3 -FLAGS (\\Deleted)"),
                    (b, "STORE 1,2 +FLAGS (\\Deleted)"), (b, "EXPUNGE"),
                    (None, "procmail"), (None, "procmail"), (b, "STORE 1 +FLAGS (\\Deleted)")]:
        if who is None:
            procmail(user, two.store.inbox, "from the MDA")
            out = []
        else:
            out = who.ok(st)
        if who is a:
            res.apply(out)
        res.apply(a.ok("NOOP"))
        assert res.nums == fresh(a, "UID SORT (DATE) UTF-8 UNDELETED"), st
    assert res.updates >= 7


def test_sort_update_own_expunge(two):
    """SORT RETURN (UPDATE) (REVERSE DATE) in sequence numbers: the session's own EXPUNGE
    sends REMOVEFROM with the numbers held until then, before the EXPUNGE responses."""
    a, _ = two(10, subj)
    res = start(a, "SORT RETURN (UPDATE) (REVERSE DATE) UTF-8 ALL", True, False)
    assert res.nums == fresh(a, "SORT (REVERSE DATE) UTF-8 ALL")
    a.ok("STORE 2,3,7 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("EXPUNGE")
    first_exp = min(i for i, ln in enumerate(r) if ln.endswith(" EXPUNGE"))
    upd = [i for i, ln in enumerate(r) if ln.startswith("* ESEARCH")]
    assert upd and max(upd) < first_exp, r
    res.apply(r)
    assert res.nums == fresh(a, "SORT (REVERSE DATE) UTF-8 ALL")
    assert len(res.nums) == 7


def test_sequence_numbers_taken_at_command(two):
    """RFC 5267 4.3: sequence numbers in the program name the messages they named when the
    command came; new mail does not join a 1:* result's numbers, and "$" stays as it was."""
    a, b = two(6)
    res = start(a, "SEARCH RETURN (UPDATE ALL) 2:4", False, False)
    assert res.nums == [2, 3, 4]
    b.ok("STORE 1 +FLAGS (\\Deleted)")
    b.ok("EXPUNGE")
    res.apply(a.ok("NOOP"))
    # the same three messages, now numbers 1:3; no update was needed
    assert res.nums == [1, 2, 3] and res.updates == 0
    a.ok("SEARCH RETURN (SAVE) 5")
    saved = start(a, "UID SEARCH RETURN (UPDATE ALL) $ UNSEEN", False, True)
    assert len(saved.nums) == 1
    a.ok("SEARCH RETURN (SAVE) 1")          # "$" changes; the context does not
    b.ok("STORE 5 +FLAGS (\\Seen)")
    out = a.ok("NOOP")
    saved.apply(out)
    assert saved.nums == [] and saved.updates == 1, out


def test_idle_gets_updates(two, user):
    """An updating search hears of procmail's delivery during IDLE, after the EXISTS."""
    need("procmail")
    a, _ = two(3)
    res = start(a, "UID SEARCH RETURN (UPDATE) UNSEEN", False, True)
    assert len(res.nums) == 3
    a.raw.send("i1 IDLE\r\n")
    assert a.raw.line().startswith("+")
    procmail(user, two.store.inbox, "idle")
    got = []
    deadline = time.time() + 20
    while time.time() < deadline and not any(ln.startswith("* ESEARCH") for ln in got):
        got.append(a.raw.line(timeout=20))
    exists = [i for i, ln in enumerate(got) if ln.endswith(" EXISTS")]
    upd = [i for i, ln in enumerate(got) if ln.startswith("* ESEARCH")]
    assert exists and upd and exists[0] < upd[0], got
    a.raw.send("DONE\r\n")
    got += a.raw.until_tagged("i1")
    res.apply(got)
    assert res.nums == fresh(a, "UID SEARCH UNSEEN")


def test_tags_limits_and_cancel(two):
    """Tag reuse is BAD (4.3); past 8 contexts NO [NOUPDATE] with the other options still
    honoured (4.3.1); CANCELUPDATE ends updates, and unknown tags are BAD; CONTEXT is a
    hint taken; a new SELECT ends every context."""
    a, b = two(5)
    a.raw.send('same SEARCH RETURN (UPDATE) UNSEEN\r\n')
    assert a.raw.until_tagged("same")[-1].startswith("same OK")
    a.raw.send('same SORT RETURN (UPDATE) (DATE) UTF-8 FLAGGED\r\n')
    r = a.raw.until_tagged("same")
    assert r[-1].startswith("same BAD") and not any("ESEARCH" in ln for ln in r), r
    tags = []
    for i in range(7):
        r = a.ok("SEARCH RETURN (UPDATE CONTEXT COUNT) UNSEEN")
        tags.append("t%d" % a.n)
        assert any("COUNT 5" in ln for ln in r) and not any("NOUPDATE" in ln for ln in r), r
    r = a.ok("UID SORT RETURN (UPDATE COUNT) (DATE) UTF-8 ALL")
    assert any('NO [NOUPDATE "t%d"]' % a.n in ln for ln in r), r
    assert any("COUNT 5" in ln for ln in r), r
    b.ok("STORE 1 +FLAGS (\\Seen)")
    r = a.ok("NOOP")
    assert sum(ln.startswith("* ESEARCH") for ln in r) == 8, r
    assert a.cmd('CANCELUPDATE "nosuch"')[-1].startswith("BAD")
    assert a.cmd("CANCELUPDATE")[-1].startswith("BAD")
    a.ok('CANCELUPDATE "same" "%s"' % tags[0])
    b.ok("STORE 2 +FLAGS (\\Seen)")
    r = a.ok("NOOP")
    told = [re.match(r'\* ESEARCH \(TAG "([^"]+)"\)', ln).group(1) for ln in r
            if ln.startswith("* ESEARCH")]
    assert sorted(told) == sorted(tags[1:]), r
    # the freed tag may start a new context; a ninth is refused no more
    a.raw.send('same UID SEARCH RETURN (UPDATE) SEEN\r\n')
    r = a.raw.until_tagged("same")
    assert r[-1].startswith("same OK") and not any("NOUPDATE" in ln for ln in r), r
    a.ok("SELECT INBOX")
    b.ok("STORE 3 +FLAGS (\\Seen)")
    r = a.ok("NOOP")
    assert not any(ln.startswith("* ESEARCH") for ln in r), r
    assert a.cmd('CANCELUPDATE "same"')[-1].startswith("BAD")


def test_cancelupdate_does_not_echo_a_literal(two):
    """A CANCELUPDATE tag sent as a literal holding CRLF gets BAD, and its bytes do not
    come back as a line of their own (no response is injected)."""
    a, _ = two(2)
    evil = "x\r\n* 1 EXISTS"
    a.n += 1
    tag = "t%d" % a.n
    a.raw.send("%s CANCELUPDATE {%d}\r\n" % (tag, len(evil)))
    assert a.raw.line().startswith("+")
    a.raw.send(evil + "\r\n")
    r = a.raw.until_tagged(tag)
    assert r[-1].startswith(tag + " BAD"), r
    r += a.ok("NOOP")          # an injected line would come before NOOP's answer
    assert not any(ln == "* 1 EXISTS" for ln in r), r


def test_charset_literal_with_nul(two):
    """A charset sent as a literal with a NUL after "UTF-8" names no charset: NO
    [BADCHARSET], not a sort in UTF-8."""
    a, _ = two(2)
    lit = "UTF-8\0x"
    a.n += 1
    tag = "t%d" % a.n
    a.raw.send("%s SORT (DATE) {%d}\r\n" % (tag, len(lit)))
    assert a.raw.line().startswith("+")
    a.raw.send(lit + " ALL\r\n")
    r = a.raw.until_tagged(tag)
    assert r[-1].startswith(tag + " NO [BADCHARSET"), r
