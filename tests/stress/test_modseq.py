#!/usr/bin/python3
"""Self-test of the --condstore checks (no server): synthetic responses go through a
Client's handlers and the shared ModseqModel, and each check must fire exactly when it
should.  Run: python3 tests/stress/test_modseq.py (or with pytest)."""

import os
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from client import Client, Cmd, parse_set       # noqa: E402
from imapconn import Response                   # noqa: E402
from model import Model                         # noqa: E402
from modseq import ModseqModel                  # noqa: E402


def setup():
    m = Model(10)
    m.uidvalidity = 7
    run = types.SimpleNamespace(model=m, modseq=ModseqModel(m), args=types.SimpleNamespace(
        seed=1, trace=None, condstore=True, timeout=5), probe=lambda u: None)
    return m, run


def client(run, name, uids):
    c = Client(name, run)
    c.cs_on = True
    c.exists = len(uids)
    c.seq = [[u, 0] for u in uids]
    c.known = set()
    c.select_sent = run.model.tick()
    return c


def feed(c, cmd, line):
    c.untagged(Response(line), cmd)


def kinds(m):
    return dict(m.violation_count)


def test_modseq_checks():
    m, run = setup()
    a = client(run, "a", [1, 2, 3])
    cmd = Cmd("NOOP", b"NOOP")
    feed(a, cmd, b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (10))")
    feed(a, cmd, b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Answered) MODSEQ (12))")
    assert kinds(m) == {}, kinds(m)
    # flags changed, MODSEQ the same
    feed(a, Cmd("NOOP", b"NOOP"), b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (12))")
    assert m.violation_count.get("flag change without MODSEQ change") == 1
    # decrease within the session
    feed(a, Cmd("NOOP", b"NOOP"), b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (11))")
    assert m.violation_count.get("MODSEQ decreased") == 1
    # FLAGS without MODSEQ: a NOOP's update is judged, a FETCH (FLAGS) answer is not
    feed(a, Cmd("NOOP", b"NOOP"), b"* 2 FETCH (UID 2 FLAGS ())")
    assert m.violation_count.get("FETCH FLAGS without MODSEQ") == 1
    feed(a, Cmd("FETCH-flags", b"FETCH 2 (FLAGS UID)"), b"* 2 FETCH (UID 2 FLAGS ())")
    assert m.violation_count.get("FETCH FLAGS without MODSEQ") == 1
    feed(a, Cmd("FETCH-flags-modseq", b"FETCH 2 (FLAGS UID MODSEQ)"),
         b"* 2 FETCH (UID 2 FLAGS ())")
    assert m.violation_count.get("FETCH FLAGS without MODSEQ") == 2
    # another session that selected after a saw MODSEQ 12 for UID 1
    b = client(run, "b", [1, 2, 3])
    feed(b, Cmd("NOOP", b"NOOP"), b"* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (9))")
    assert m.violation_count.get("MODSEQ decreased") == 2
    # one value, two states across sessions
    feed(b, Cmd("NOOP", b"NOOP"), b"* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (20))")
    feed(a, Cmd("NOOP", b"NOOP"), b"* 3 FETCH (UID 3 FLAGS () MODSEQ (20))")
    assert m.violation_count.get("flag change without MODSEQ change") == 2
    # a session that selected before the other's observation is not judged by it
    c = Client("c", run)
    c.cs_on, c.exists, c.seq, c.select_sent = True, 1, [[5, 0]], m.tick()
    a.seq.append([5, 0])
    a.exists += 1
    feed(a, Cmd("NOOP", b"NOOP"), b"* 4 FETCH (UID 5 FLAGS () MODSEQ (30))")
    assert run.modseq.max_seen_before(m.generation, 5, m.tick())[0] == 30
    feed(c, Cmd("NOOP", b"NOOP"), b"* 1 FETCH (UID 5 FLAGS () MODSEQ (25))")
    assert m.violation_count.get("MODSEQ decreased") == 2, kinds(m)
    assert len(m.violation_count) == 3, kinds(m)


def test_highestmodseq():
    m, run = setup()
    ms = run.modseq
    t0 = m.tick()
    assert ms.highest_seen(m.generation, 100, t0, "a", "x") == []
    t1 = m.tick()
    out = ms.highest_seen(m.generation, 90, t1, "b", "y")
    assert [k for k, _ in out] == ["HIGHESTMODSEQ decreased"], out
    # sent before the 100 was received: not compared
    assert ms.highest_seen(m.generation, 95, t0, "c", "z") == []
    ms.message(m.generation, 4, 150, None, "a", "w", 0)
    out = ms.highest_seen(m.generation, 120, m.tick(), "d", "v")
    assert [k for k, _ in out] == ["HIGHESTMODSEQ below a MODSEQ seen before"], out


def test_vanished_and_sets():
    m, run = setup()
    assert parse_set(b"3:5,9") == [3, 4, 5, 9]
    assert parse_set(b"x") is None
    a = client(run, "a", [1, 2, 3, None])
    a.qresync = True
    for u in (1, 2, 3):
        m.uidrec(u)
        m.begin_ops([u], "+", frozenset(["\\Deleted"]), "a", "STORE")
    m.begin_expunge(None, "a")
    cmd = Cmd("EXPUNGE", b"EXPUNGE")
    feed(a, cmd, b"* VANISHED 2:3")
    assert a.exists == 2 and [e[0] for e in a.seq] == [1, None], a.seq
    assert cmd.expunged == [2, 3]
    feed(a, cmd, b"* VANISHED 77")          # the message whose UID a had not learned yet
    assert a.exists == 1 and [e[0] for e in a.seq] == [1]
    feed(a, cmd, b"* VANISHED 99")
    assert m.violation_count.get("VANISHED of an unknown UID") == 1
    feed(a, cmd, b"* 1 EXPUNGE")
    assert m.violation_count.get("EXPUNGE with QRESYNC enabled") == 1
    assert "EXPUNGE of a message never deleted" not in m.violation_count, kinds(m)


if __name__ == "__main__":
    for name, f in sorted(globals().items()):
        if name.startswith("test_"):
            f()
            print("ok", name)
