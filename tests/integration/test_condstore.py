"""CONDSTORE and QRESYNC (RFC 7162) end to end, adapted from the RFC's examples in sections
3.1 and 3.2: mod-sequences that every change gets, whoever makes it (another session, a
mail reader rewriting the spool, an MDA), that survive the loss of ~/.imapd without a false
"nothing changed", and VANISHED that is right with or without a record of the expunge."""
import fcntl
import os
import re
import shutil

import pytest

from clients_util import need
from test_store import Session, mbox
from test_store_mda import procmail


@pytest.fixture
def cs(preauth_server, mailstore):
    """Sessions of imapd --preauth with CONDSTORE and QRESYNC offered."""
    made = []

    def make():
        s = Session(preauth_server(condstore="yes"))
        made.append(s)
        return s
    make.store = mailstore
    yield make
    for s in made:
        s.close()


def modseqs(lines):
    """{uid: modseq} from untagged FETCH responses that carry both."""
    out = {}
    for ln in lines:
        m = re.match(r"\* \d+ FETCH \((.*)\)$", ln)
        if not m:
            continue
        u = re.search(r"\bUID (\d+)", m.group(1))
        ms = re.search(r"MODSEQ \((\d+)\)", m.group(1))
        if u and ms:
            out[int(u.group(1))] = int(ms.group(1))
    return out


def highest(lines):
    for ln in lines:
        m = re.search(r"\[HIGHESTMODSEQ (\d+)\]", ln)
        if m:
            return int(m.group(1))
    return None


def fetched_uids(lines):
    return sorted(int(re.search(r"\bUID (\d+)", ln).group(1))
                  for ln in lines
                  if re.match(r"\* \d+ FETCH \(", ln) and re.search(r"\bUID \d", ln))


def vanished_earlier(lines):
    """The UIDs of every VANISHED (EARLIER) response, expanded."""
    out = set()
    for ln in lines:
        m = re.match(r"\* VANISHED \(EARLIER\) (\S+)$", ln)
        if m:
            for part in m.group(1).split(","):
                a, _, b = part.partition(":")
                out.update(range(int(a), int(b or a) + 1))
    return out


def mutt_rewrite(path, change):
    """What mutt does when it syncs the spool: under the fcntl lock and the dotlock, the
    file written again by change(text) -> text."""
    dot = path + ".lock"
    fd = os.open(dot, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    try:
        with open(path, "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            data = change(f.read().decode())
            f.seek(0)
            f.write(data.encode())
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
            fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        os.unlink(dot)


def deliver(path, text):
    """An MDA's delivery: appended under the fcntl lock."""
    with open(path, "ab") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        f.write(text.encode())
        f.flush()
        fcntl.lockf(f, fcntl.LOCK_UN)


def messages_of(text):
    return re.split(r"\n(?=From )", text)


def test_capability_and_enable(cs, preauth_server):
    a = cs()
    cap = a.ok("CAPABILITY")[0]
    assert " CONDSTORE" in cap and " QRESYNC" in cap, cap
    r = a.ok("ENABLE QRESYNC")
    assert r[0] == "* ENABLED QRESYNC", r
    r = a.ok("ENABLE CONDSTORE QRESYNC")
    assert r[0] == "* ENABLED", r     # nothing new (QRESYNC enabled CONDSTORE, 3.2.3)
    c = cs()
    assert c.ok("ENABLE CONDSTORE QRESYNC")[0] == "* ENABLED CONDSTORE QRESYNC"
    # offered by default
    d = Session(preauth_server())
    try:
        cap = d.ok("CAPABILITY")[0]
        assert " CONDSTORE" in cap and " QRESYNC" in cap, cap
    finally:
        d.close()
    # with condstore = no, neither is offered nor enabled
    b = Session(preauth_server(condstore="no"))
    try:
        cap = b.ok("CAPABILITY")[0]
        assert "CONDSTORE" not in cap and "QRESYNC" not in cap, cap
        assert b.ok("ENABLE QRESYNC")[0] == "* ENABLED"
        b.ok("SELECT INBOX")
        assert b.cmd("FETCH 1 (FLAGS) (CHANGEDSINCE 1)")[-1].startswith("BAD")
    finally:
        b.close()


def test_select_condstore_fetch_modseq_changedsince(cs):
    """Examples 1, 12, 13, 18: HIGHESTMODSEQ, MODSEQ per message, CHANGEDSINCE."""
    cs.store.write_inbox(mbox(5))
    a = cs()
    r = a.ok("SELECT INBOX (CONDSTORE)")
    h0 = highest(r)
    assert h0 is not None and h0 > 0, r
    r = a.ok("FETCH 1:* (UID MODSEQ)")
    ms = modseqs(r)
    assert sorted(ms) == [1, 2, 3, 4, 5] and max(ms.values()) <= h0, r
    r = a.ok("STORE 2 +FLAGS (\\Flagged)")
    m2 = modseqs(r)[2]
    assert m2 > h0, r
    r = a.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h0)
    assert fetched_uids(r) == [2], r
    assert modseqs(r) == {2: m2}, r
    # a flag already set: no change, no new mod-sequence (3.1.11)
    r = a.ok("STORE 2 +FLAGS (\\Flagged)")
    assert modseqs(r) == {2: m2}, r
    # each STORE gets a greater one (3.1)
    r = a.ok("STORE 3 +FLAGS.SILENT (\\Seen)")
    m3 = modseqs(r)[3]
    assert m3 > m2, r
    r = a.ok("SELECT INBOX (CONDSTORE)")
    assert r[0] == "* OK [CLOSED] Previous mailbox closed", r
    assert highest(r) == m3, r


def test_unchangedsince(cs):
    """Examples 3, 6, 8: UNCHANGEDSINCE passes, fails with [MODIFIED], 0 always fails."""
    cs.store.write_inbox(mbox(9))
    a = cs()
    h = highest(a.ok("SELECT INBOX (CONDSTORE)"))
    r = a.ok("UID STORE 6,4,8 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Deleted)" % h)
    got = modseqs(r)
    assert sorted(got) == [4, 6, 8] and all(v > h for v in got.values()), r
    assert "MODIFIED" not in r[-1], r
    # 7 and 9 changed since h (5 did not): [MODIFIED 7,9], 5 stored
    a.ok("STORE 7,9 +FLAGS.SILENT ($Label1)")
    r = a.ok("STORE 7,5,9 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Answered)" % h)
    assert r[-1].startswith("OK [MODIFIED 7,9]"), r
    fl = {int(re.match(r"\* (\d+)", ln).group(1)): ln for ln in r[:-1]}
    assert "FLAGS" in fl[7] and "\\Answered" not in fl[7], r
    assert "\\Answered" not in fl.get(5, "") and 5 in fl, r
    r = a.ok("FETCH 5,7,9 FLAGS")
    assert "\\Answered" in [ln for ln in r if ln.startswith("* 5 ")][0], r
    assert "\\Answered" not in "".join(ln for ln in r if ln.startswith("* 7 ")), r
    r = a.ok("STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)")
    assert r[-1].startswith("OK [MODIFIED 1]"), r
    assert a.cmd("STORE 1 (UNCHANGEDSINCE x) +FLAGS (\\Seen)")[-1].startswith("BAD")
    assert a.cmd("STORE 1 (FOO 1) +FLAGS (\\Seen)")[-1].startswith("BAD")


def test_two_sessions(cs):
    """A stores; B is told with MODSEQ and UID at its NOOP (example 14), and B's
    UNCHANGEDSINCE from before A's change fails with [MODIFIED]."""
    cs.store.write_inbox(mbox(8))
    a, b = cs(), cs()
    a.ok("SELECT INBOX")
    hb = highest(b.ok("SELECT INBOX (CONDSTORE)"))
    r = a.ok("STORE 7 +FLAGS (\\Deleted)")
    r = b.ok("NOOP")
    line = [ln for ln in r if ln.startswith("* 7 FETCH")]
    assert line, r
    assert "\\Deleted" in line[0] and "UID 7" in line[0] and "MODSEQ (" in line[0], r
    m7 = modseqs(r)[7]
    assert m7 > hb, r
    r = b.ok("STORE 7 (UNCHANGEDSINCE %d) -FLAGS.SILENT (\\Deleted)" % hb)
    assert r[-1].startswith("OK [MODIFIED 7]"), r
    r = b.ok("STORE 7 (UNCHANGEDSINCE %d) -FLAGS.SILENT (\\Deleted)" % m7)
    assert "MODIFIED" not in r[-1] and modseqs(r)[7] > m7, r
    # A (FETCH MODSEQ enables CONDSTORE) sees the value B was told
    mb = modseqs(b.ok("FETCH 7 (UID MODSEQ)"))[7]
    r = a.ok("FETCH 7 (MODSEQ FLAGS)")
    assert "MODSEQ (%d)" % mb in "".join(r), r


def test_mutt_sets_a_flag(cs):
    """A mail reader on the spool sets a flag: the next CHANGEDSINCE reports exactly that
    message, with a mod-sequence above the last one the client had."""
    cs.store.write_inbox(mbox(6))
    a = cs()
    a.ok("SELECT INBOX")
    a.ok("LOGOUT")
    b = cs()
    h = highest(b.ok("SELECT INBOX (CONDSTORE)"))
    b.ok("UNSELECT")

    def flag_fourth(text):
        msgs = messages_of(text)
        msgs[3] = re.sub(r"\nStatus: O *\n", "\nStatus: RO\n", msgs[3], count=1)
        assert "Status: RO" in msgs[3]
        return "\n".join(msgs)
    mutt_rewrite(cs.store.inbox, flag_fourth)
    r = b.ok("SELECT INBOX (CONDSTORE)")
    assert highest(r) > h, r
    r = b.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % h)
    assert fetched_uids(r) == [4], r
    assert "\\Seen" in r[0], r


def test_delivery_during_a_session(cs, user):
    """procmail delivers while the client has the mailbox selected: the new message gets
    a mod-sequence above every earlier one, and CHANGEDSINCE finds it; so does one another
    MDA appended under the fcntl lock alone."""
    need("procmail")
    cs.store.write_inbox(mbox(3))
    a = cs()
    h = highest(a.ok("SELECT INBOX (CONDSTORE)"))
    procmail(user, cs.store.inbox, "delivered")
    r = a.ok("NOOP")
    assert "* 4 EXISTS" in r, r
    r = a.ok("UID FETCH 1:* (UID) (CHANGEDSINCE %d)" % h)
    ms = modseqs(r)
    assert sorted(ms) == [4] and ms[4] > h, r
    r = a.ok("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
    assert "HIGHESTMODSEQ %d" % ms[4] in r[0] and "MESSAGES 4" in r[0], r
    deliver(cs.store.inbox, mbox(1, start=4))
    assert "* 5 EXISTS" in a.ok("NOOP")
    r = a.ok("UID FETCH 1:* (UID) (CHANGEDSINCE %d)" % ms[4])
    m5 = modseqs(r)
    assert sorted(m5) == [5] and m5[5] > ms[4], r


def test_state_removed(cs, user):
    """~/.imapd removed between sessions: every message counts as changed since any
    mod-sequence the client holds, and every UID it knew that is gone is VANISHED."""
    cs.store.write_inbox(mbox(5))
    a = cs()
    a.ok("ENABLE QRESYNC")
    a.ok("SELECT INBOX")
    r = a.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    held = modseqs(r)[2]
    a.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    a.ok("LOGOUT")
    shutil.rmtree(os.path.join(user.home, ".imapd"))
    b = cs()
    b.ok("ENABLE QRESYNC")
    r = b.ok("SELECT INBOX (QRESYNC (%s %d 1:5))" % (uidvalidity(cs), held))
    assert highest(r) > held, r
    assert fetched_uids(r) == [1, 2, 4, 5], "\n".join(r)
    assert vanished_earlier(r) == {3}, r
    r = b.ok("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % held)
    assert fetched_uids(r) == [1, 2, 4, 5] and vanished_earlier(r) == {3}, r


def uidvalidity(cs):
    data = open(cs.store.inbox).read()
    return int(re.search(r"X-IMAPbase: (\d+)", data).group(1))


def test_qresync_select_after_expunges(cs):
    """Section 3.2.5: another session expunged 2 and 3, mutt dropped 5 and set \\Seen on
    6: VANISHED (EARLIER) says exactly those, and only 6 is fetched."""
    cs.store.write_inbox(mbox(8))
    a = cs()
    a.ok("ENABLE QRESYNC")
    r = a.ok("SELECT INBOX")
    h = highest(r)
    v = uidvalidity(cs)
    a.ok("LOGOUT")
    b = cs()
    b.ok("SELECT INBOX")
    b.ok("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    b.ok("LOGOUT")

    def drop_and_seen(text):
        msgs = messages_of(text)
        # after the expunge of 2 and 3: index 2 is UID 5, 3 is UID 6
        assert "X-UID: 5\n" in msgs[2] and "X-UID: 6\n" in msgs[3]
        msgs[3] = re.sub(r"\nStatus: O *\n", "\nStatus: RO\n", msgs[3], count=1)
        del msgs[2]
        return "\n".join(msgs)
    mutt_rewrite(cs.store.inbox, drop_and_seen)
    c = cs()
    assert c.cmd("SELECT INBOX (QRESYNC (%d %d))" % (v, h))[-1].startswith("BAD")
    c.ok("ENABLE QRESYNC")
    r = c.ok("SELECT INBOX (QRESYNC (%d %d 1:8))" % (v, h))
    assert vanished_earlier(r) == {2, 3, 5}, r
    assert fetched_uids(r) == [6] and "\\Seen" in [ln for ln in r if "UID 6" in ln][0], r
    # everything FETCH says comes after VANISHED (EARLIER) (3.2.6)
    iv = [i for i, ln in enumerate(r) if ln.startswith("* VANISHED")]
    ifx = [i for i, ln in enumerate(r) if " FETCH " in ln]
    assert max(iv) < min(ifx), r
    # no known UIDs given: 1:<maxuid> (3.2.5.1)
    r = c.ok("SELECT INBOX (QRESYNC (%d %d))" % (v, h))
    assert r[0] == "* OK [CLOSED] Previous mailbox closed", r
    assert vanished_earlier(r) == {2, 3, 5} and fetched_uids(r) == [6], r
    # seq-match-data: the client knows message 3 is UID 6, so nothing up to 6 is told
    r = c.ok("SELECT INBOX (QRESYNC (%d %d 1:8 (1,3 1,6)))" % (v, h))
    assert vanished_earlier(r) == set(), r
    # another UIDVALIDITY: as if nothing changed (3.2.5)
    r = c.ok("SELECT INBOX (QRESYNC (%d %d 1:8))" % (v + 1, h))
    assert vanished_earlier(r) == set() and fetched_uids(r) == [], r
    # a bad parameter: BAD, checked before anything is opened or closed (3.2.5): a
    # command that is BAD is not carried out, so the selection stays as it was
    assert c.cmd("SELECT INBOX (QRESYNC (%d 0))" % v)[-1].startswith("BAD")
    assert c.cmd("SELECT INBOX (QRESYNC (%d))" % v)[-1].startswith("BAD")
    assert c.cmd("SELECT INBOX (QRESYNC (%d %d 1:x))" % (v, h))[-1].startswith("BAD")
    assert c.cmd("SELECT INBOX (FOO)")[-1].startswith("BAD")
    c.ok("FETCH 1 FLAGS")


def test_vanished_instead_of_expunge(cs):
    """Once QRESYNC is enabled, expunges are told as VANISHED (3.2.10.2), ours with the
    new HIGHESTMODSEQ on the tagged OK (3.2.7), others' at the next NOOP."""
    cs.store.write_inbox(mbox(11))
    a, b = cs(), cs()
    a.ok("ENABLE QRESYNC")
    a.ok("SELECT INBOX")
    b.ok("SELECT INBOX")
    a.ok("UID STORE 3,4,7,11 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("EXPUNGE")
    assert r[0] == "* VANISHED 3:4,7,11", r
    assert re.match(r"OK \[HIGHESTMODSEQ \d+\]", r[-1]), r
    h = highest(r[-1:])
    b.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    b.ok("EXPUNGE")
    r = a.ok("NOOP")
    assert "* VANISHED 1" in r, r
    assert not any(ln.endswith(" EXPUNGE") for ln in r), r
    # UID FETCH ... VANISHED: the expunge since h, within the set
    r = a.ok("UID FETCH 1:20 (FLAGS) (CHANGEDSINCE %d VANISHED)" % h)
    assert vanished_earlier(r) == {1}, r
    # the errors the RFC names (3.2.6)
    assert a.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % h)[-1].startswith("BAD")
    assert a.cmd("UID FETCH 1:* (FLAGS) (VANISHED)")[-1].startswith("BAD")
    assert b.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].startswith("BAD")


def test_search_modseq(cs):
    """Examples 15, 16, 19: SEARCH MODSEQ, with and without an entry, and ESEARCH."""
    cs.store.write_inbox(mbox(6))
    a = cs()
    h = highest(a.ok("SELECT INBOX (CONDSTORE)"))
    m = modseqs(a.ok("STORE 2,5 +FLAGS (\\Draft)"))
    r = a.ok("SEARCH MODSEQ %d" % (h + 1))
    assert r[0] == "* SEARCH 2 5 (MODSEQ %d)" % max(m.values()), r
    r = a.ok('SEARCH MODSEQ "/flags/\\\\draft" all %d' % (h + 1))
    assert r[0] == "* SEARCH 2 5 (MODSEQ %d)" % max(m.values()), r
    r = a.ok("SEARCH OR NOT MODSEQ %d LARGER 50000" % (h + 1))
    assert re.match(r"\* SEARCH 1 3 4 6 \(MODSEQ \d+\)$", r[0]), r
    assert int(r[0].split()[-1][:-1]) <= h, r
    r = a.ok("SEARCH MODSEQ %d" % (max(m.values()) + 1))
    assert r[0] == "* SEARCH", r
    r = a.ok("SEARCH RETURN (ALL) MODSEQ %d" % (h + 1))
    assert r[0].endswith(" ALL 2,5 MODSEQ %d" % max(m.values())), r


def test_modseqs_never_go_back(cs):
    """Across sessions and reopens the highest mod-sequence only grows, and each session
    sees the same value for the same change."""
    cs.store.write_inbox(mbox(4))
    seen = []
    for k in range(4):
        a = cs()
        seen.append(highest(a.ok("SELECT INBOX (CONDSTORE)")))
        r = a.ok("STORE %d +FLAGS (\\Answered)" % (k + 1))
        seen.append(modseqs(r)[k + 1])
        a.ok("LOGOUT")
    assert seen == sorted(seen) and len(set(seen[1::2])) == 4, seen
    b = cs()
    r = b.ok("SELECT INBOX (CONDSTORE)")
    assert highest(r) == seen[-1], (r, seen)
    r = b.ok("FETCH 1:4 (UID MODSEQ)")
    assert sorted(modseqs(r).values()) == seen[1::2], (r, seen)


def test_expunge_pending_during_fetch(cs):
    """RFC 7162 3.2: while an expunge another session made cannot be told yet (FETCH may
    not report it), MODSEQ values above its mod-sequence go out with a HIGHESTMODSEQ
    below it, so a client that loses the connection then still learns of the expunge."""
    cs.store.write_inbox(mbox(4))
    a, b = cs(), cs()
    a.ok("ENABLE QRESYNC")
    a.ok("SELECT INBOX")
    b.ok("ENABLE QRESYNC")
    b.ok("SELECT INBOX")
    b.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    r = b.ok("EXPUNGE")
    expunged_at = highest(r[-1:])
    b.ok("STORE 3 +FLAGS.SILENT (\\Flagged)")      # a change after the expunge
    r = a.ok("FETCH 1:4 (UID MODSEQ)")
    ms = modseqs(r)
    assert max(ms.values()) > expunged_at, r
    told = highest(r)
    assert told is not None and told < expunged_at, r
    assert not any("VANISHED" in ln or "EXPUNGE" in ln for ln in r[:-1]), r
    # the next command that may tells it
    r = a.ok("NOOP")
    assert "* VANISHED 2" in r, r
