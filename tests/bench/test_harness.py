#!/usr/bin/python3
"""Self-tests of the benchmark and diff tooling (no root, no servers needed).

    /usr/bin/python3 tests/bench/test_harness.py -v
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import imapharness as H  # noqa: E402


class _Proc:
    pass


def feed(data, step):
    """A Conn whose server output is `data`, delivered `step` bytes at a time."""
    r, w = os.pipe()
    p = _Proc()
    p.stdout = os.fdopen(r, "rb", buffering=0)
    conn = H.Conn(p, "test")

    def writer():
        for i in range(0, len(data), step):
            os.write(w, data[i:i + step])
        os.close(w)
    t = threading.Thread(target=writer)
    t.start()
    return conn, t


# A literal that holds what looks like the tagged response and like other literals.
TRAP = b"hello\r\nA0001 OK fake\r\n}\r\n{3}\r\nxx"
STREAM = (b"* 1 FETCH (BODY[] {%d}\r\n%s BINARY[1] ~{2}\r\nab)\r\n"
          b"* 2 FETCH (FLAGS (\\Seen))\r\nA0001 OK real\r\n* NEXT\r\n" % (len(TRAP), TRAP))


class ReaderTests(unittest.TestCase):
    def test_skip_honours_literals_at_any_split(self):
        for step in (1, 2, 3, 5, 7, 64, len(STREAM)):
            conn, t = feed(STREAM, step)
            line = conn.skip_to_tagged(b"A0001", time.monotonic() + 5)
            nxt = conn.read_response(time.monotonic() + 5)
            t.join()
            conn.p.stdout.close()
            self.assertEqual(line, b"A0001 OK real", step)
            self.assertEqual(nxt, b"* NEXT", step)

    def test_read_response_keeps_literals_whole(self):
        for step in (1, 4, 9, len(STREAM)):
            conn, t = feed(STREAM, step)
            first = conn.read_response(time.monotonic() + 5)
            second = conn.read_response(time.monotonic() + 5)
            tagged = conn.read_response(time.monotonic() + 5)
            t.join()
            conn.p.stdout.close()
            seq, items = H.fetch_items(H.parse_response(first))
            self.assertEqual(seq, 1)
            self.assertEqual(items["BODY[]"], TRAP)
            self.assertEqual(items["BINARY[1]"], b"ab")
            self.assertEqual(H.fetch_items(H.parse_response(second))[1]["FLAGS"], [b"\\Seen"])
            self.assertEqual(tagged, b"A0001 OK real")

    def test_eof_and_timeout(self):
        conn, t = feed(b"* 1 EXISTS\r\n", 100)
        with self.assertRaises(H.ServerGone):
            conn.skip_to_tagged(b"A0001", time.monotonic() + 5)
        t.join()
        conn.p.stdout.close()
        r, w = os.pipe()
        p = _Proc()
        p.stdout = os.fdopen(r, "rb", buffering=0)
        with self.assertRaises(H.StepTimeout):
            H.Conn(p, "test").read_response(time.monotonic() + 0.2)
        os.close(w)
        p.stdout.close()


class ParserTests(unittest.TestCase):
    def test_envelope_tokens(self):
        toks = H.parse_response(b'* 3 FETCH (UID 7 ENVELOPE ("d" NIL (("A \\"q\\"" NIL "a" '
                                b'"x.org")) NIL NIL NIL NIL NIL NIL "<m@x>") '
                                b'BODY[HEADER.FIELDS (FROM)] {5}\r\nFrom:)')
        seq, it = H.fetch_items(toks)
        self.assertEqual(seq, 3)
        self.assertEqual(it["UID"], b"7")
        self.assertEqual(it["ENVELOPE"][2][0][0], b'A "q"')
        self.assertIsNone(it["ENVELOPE"][1])
        self.assertEqual(it["BODY[HEADER.FIELDS (FROM)]"], b"From:")

    def test_search_and_exists(self):
        self.assertEqual(H.search_result([b"* SEARCH 2 5 9", b"* SEARCH 11"]), {2, 5, 9, 11})
        self.assertEqual(H.search_result([b"* SEARCH"]), set())
        self.assertEqual(H.exists_count([b"* 4 EXISTS", b"* 2 RECENT", b"* 5 EXISTS"]), 5)

    def test_mbox_quote(self):
        self.assertEqual(H.mbox_quote(b"From x\nFrom y\n>From z\nnot From\n"),
                         b">From x\n>From y\n>From z\nnot From\n")


class GeneratorTests(unittest.TestCase):
    def gen(self, d, name, n, seed):
        out = os.path.join(d, name)
        subprocess.run([sys.executable, os.path.join(HERE, "gen-mbox.py"), "--messages",
                        str(n), "--seed", str(seed), "--manifest", out + ".json", out],
                       check=True, stderr=subprocess.DEVNULL)
        with open(out, "rb") as f, open(out + ".json") as m:
            return f.read(), json.load(m)

    def test_deterministic_and_manifest_true(self):
        with tempfile.TemporaryDirectory() as d:
            a, man = self.gen(d, "a", 600, 3)
            b, _ = self.gen(d, "b", 600, 3)
            c, _ = self.gen(d, "c", 600, 4)
            self.assertEqual(a, b)
            self.assertNotEqual(a, c)
            msgs = re.split(rb"\n\n(?=From )", a)
            self.assertEqual(len(msgs), 600)
            self.assertEqual(man["bytes"], len(a))
            # Every From_ line starts a message; no unquoted From in bodies.
            self.assertEqual(len(re.findall(rb"(?m)^From ", a)), 600)
            phrase = man["phrase"].encode()
            has = [i + 1 for i, m in enumerate(msgs) if phrase in m]
            self.assertEqual(has, man["phrase_msgs"])
            sender = man["sender"].encode()
            frm = [i + 1 for i, m in enumerate(msgs)
                   if re.search(rb"(?m)^From: [^\n]*" + re.escape(sender), m)]
            self.assertEqual(frm, man["sender_msgs"])
            word = man["subject_word"].encode()
            subj = [i + 1 for i, m in enumerate(msgs)
                    if re.search(rb"(?m)^Subject: " + word, m)]
            self.assertEqual(subj, man["subject_msgs"])
            avg = len(a) / 600
            self.assertTrue(8000 < avg < 20000, avg)


if __name__ == "__main__":
    unittest.main()
