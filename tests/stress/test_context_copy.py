#!/usr/bin/python3
"""Self-test of the --context checks (no server): synthetic ESEARCH and EXPUNGE responses
go through a Client's handlers, and each check must fire exactly when it should.
Run: python3 tests/stress/test_context_copy.py (or with pytest)."""

import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import context                                  # noqa: E402
from client import Client, Cmd                  # noqa: E402
from imapconn import Response                   # noqa: E402
from model import Model                         # noqa: E402


def client(n):
    m = Model(10)
    m.uidvalidity = 7
    run = types.SimpleNamespace(model=m, modseq=None, args=types.SimpleNamespace(
        seed=1, trace=None, condstore=False, timeout=5), probe=lambda u: None)
    c = Client("a", run)
    c.exists = n
    c.seq = [[100 + i, 0] for i in range(n)]
    return m, c


def ctx(c, name, tag, all_=b""):
    kind = next(k for k in context.KINDS if k[0] == name)
    x = context.Context(kind)
    x.tag = tag
    c.contexts.append(x)
    feed(c, b'* ESEARCH (TAG "%s")%s%s' % (tag, b" UID" if x.uid else b"",
                                            b" ALL " + all_ if all_ else b""))
    assert x.state == "live"
    return x


def feed(c, line, cmd=None):
    c.untagged(Response(line), cmd or Cmd("NOOP", b"NOOP"))


def kinds(m):
    """The violations of the checks under test (the synthetic EXPUNGEs trouble the model)."""
    return {k: v for k, v in m.violation_count.items()
            if k != "EXPUNGE of a message never deleted"}


def test_search_seq():
    m, c = client(10)
    x = ctx(c, "SEARCH FLAGGED", b"S1", b"2,4:5")
    feed(c, b'* ESEARCH (TAG "S1") ADDTO (0 7:8)')
    assert x.nums == [2, 4, 5, 7, 8]
    feed(c, b'* ESEARCH (TAG "S1") REMOVEFROM (0 4)')
    feed(c, b"* 4 EXPUNGE")
    assert x.nums == [2, 4, 6, 7] and not kinds(m), (x.nums, kinds(m))
    feed(c, b"* 6 EXPUNGE")
    assert kinds(m) == {context.EXPUNGE_IN: 1} and x.state == "void"


def test_search_bad_updates():
    for line, kind in [(b'* ESEARCH (TAG "S1") ADDTO (0 2)', context.ADD_PRESENT),
                       (b'* ESEARCH (TAG "S1") REMOVEFROM (0 3)', context.REMOVE_ABSENT),
                       (b'* ESEARCH (TAG "S1") ADDTO (0 11)', context.ABOVE_EXISTS),
                       (b'* ESEARCH (TAG "S1") UID ADDTO (0 3)', context.MALFORMED),
                       (b'* ESEARCH (TAG "S9") ADDTO (0 3)', context.NO_CONTEXT)]:
        m, c = client(10)
        x = ctx(c, "SEARCH FLAGGED", b"S1", b"2")
        feed(c, line)
        assert kinds(m) == {kind: 1}, (line, kinds(m))
        assert x.state == ("live" if kind == context.NO_CONTEXT else "void")


def test_sort_positions():
    m, c = client(10)
    x = ctx(c, "SORT REVERSE DATE", b"S2", b"9,3,5:6")
    assert x.nums == [9, 3, 5, 6]
    feed(c, b'* ESEARCH (TAG "S2") REMOVEFROM (2 3) ADDTO (1 10,1)')
    assert x.nums == [10, 1, 9, 5, 6], x.nums
    feed(c, b'* ESEARCH (TAG "S2") ADDTO (6 2)')
    assert x.nums == [10, 1, 9, 5, 6, 2] and not kinds(m), kinds(m)
    feed(c, b"* 3 EXPUNGE")
    assert x.nums == [9, 1, 8, 4, 5, 2]
    feed(c, b'* ESEARCH (TAG "S2") ADDTO (9 3)')
    assert kinds(m) == {context.POSITION: 1}


def test_sort_run_and_downwards():
    m, c = client(10)
    x = ctx(c, "UID SORT SUBJECT", b"S3", b"101,105,103")
    feed(c, b'* ESEARCH (TAG "S3") UID REMOVEFROM (1 105)')
    assert kinds(m) == {context.RUN_MISMATCH: 1} and x.state == "void"
    m, c = client(10)
    x = ctx(c, "UID SORT SUBJECT", b"S3", b"101,105,103")
    feed(c, b'* ESEARCH (TAG "S3") UID ADDTO (4 108:106)')
    assert x.nums == [101, 105, 103, 106, 107, 108] and x.state == "live"
    assert kinds(m) == {context.DOWNWARDS: 1}
    feed(c, b'* ESEARCH (TAG "S3") UID REMOVEFROM (0 101)')
    assert kinds(m)[context.POSITION] == 1


def test_uid_expunge_and_compare():
    m, c = client(5)
    x = ctx(c, "UID SEARCH UNSEEN", b"S4", b"101:103")
    feed(c, b"* 2 EXPUNGE")
    assert x.nums == [101, 102, 103] and not kinds(m)
    assert x.compare([103, 101, 102]) == []
    assert x.compare([101, 103])[0][0] == context.FINAL
    cmd = Cmd("UID-SEARCH-fresh", b"UID SEARCH UNSEEN")
    cmd.plain = None
    feed(c, b"* SEARCH 101 103", cmd)
    assert cmd.plain == [101, 103]


if __name__ == "__main__":
    for name, f in sorted(globals().items()):
        if name.startswith("test_"):
            f()
            print("ok", name)
