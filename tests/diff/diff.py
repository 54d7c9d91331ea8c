#!/usr/bin/python3
"""Differential test: imapd against Dovecot's imap on the same mbox, message by message.

    tests/diff/diff.py [--a dovecot] [--b imapd] [--imapd-cmd '...'] [--fixtures DIR]
                       [--generated N] [--mbox FILE ...] [--known tests/diff/known.txt]

Run as root from the repository root. Both servers run preauthenticated on stdin/stdout as a
throwaway Unix user (tests/bench/imapharness.py), each on its own copy of one mbox built from
the fixture messages (tests/fixtures/messages/*.eml, in name order), N generated messages
(tests/bench/gen-mbox.py, seed 7) and any --mbox files. Compared per message: RFC822.SIZE,
INTERNALDATE, ENVELOPE, BODYSTRUCTURE, BODY[], BODY[HEADER], BODY[TEXT], BODY[1], BODY[1.MIME],
BODY[2], BODY[1.1] and BODY[2.1] where the part exists, BINARY.SIZE[1]; then a set of SEARCH
commands. Each difference is printed on one line; differences that tests/diff/known.txt
explains are shown as known. Exit status: 0 when every difference is explained, 1 otherwise,
2 when a server could not be run.

--b dovecot compares Dovecot with itself, which checks this script's own parsing.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import imapharness as H  # noqa: E402

# Searches: (criteria text with {} for UTF-8 literals, literal strings).
SEARCHES = [
    ("SUBJECT printer", []),
    ("SUBJECT Quokkafest", []),
    ("CHARSET UTF-8 SUBJECT {}", ["Grüße"]),
    ("CHARSET UTF-8 SUBJECT {}", ["résumé"]),
    ("SUBJECT \"second subject\"", []),
    ("FROM example.org", []),
    ("FROM ottilie", []),
    ("CHARSET UTF-8 FROM {}", ["Jürgen"]),
    ("TO robin", []),
    ("TO undisclosed-recipients", []),
    ("CC uni.example.edu", []),
    ("BCC group", []),
    ("BODY \"crimson teapot\"", []),
    ("CHARSET UTF-8 BODY {}", ["réunion"]),
    ("BODY \"periwinkle harbour ledger\"", []),
    ("BODY \"Backups first\"", []),
    ("BODY \"From the minutes\"", []),
    ("TEXT \"floor 2\"", []),
    ("TEXT Committee", []),
    ("TEXT \"Quota warning\"", []),
    ("HEADER Message-ID dup.2", []),
    ("HEADER X-Comment \"\"", []),
    ("HEADER Content-Type multipart", []),
    ("HEADER Content-Type alternative", []),
    ("SINCE 1-Jan-2024", []),
    ("BEFORE 1-Jan-2022", []),
    ("ON 2-Mar-2026", []),
    ("SENTSINCE 10-Mar-2026", []),
    ("SENTBEFORE 1-Jan-2022", []),
    ("SENTON 11-Mar-2026", []),
    ("LARGER 20000", []),
    ("SMALLER 1000", []),
    ("OR SUBJECT printer FROM nadia", []),
    ("NOT FROM example.org", []),
    ("NOT (LARGER 5000 SMALLER 50000)", []),
    ("OR (SUBJECT Re) (BODY lunch)", []),
    ("UNSEEN", []),
    ("ALL", []),
]

# (request item, response key, which messages: 'all' or a part path that must exist)
ITEMS = [
    ("RFC822.SIZE", "RFC822.SIZE", "all"),
    ("INTERNALDATE", "INTERNALDATE", "all"),
    ("ENVELOPE", "ENVELOPE", "all"),
    ("BODYSTRUCTURE", "BODYSTRUCTURE", "all"),
    ("BODY.PEEK[]", "BODY[]", "all"),
    ("BODY.PEEK[HEADER]", "BODY[HEADER]", "all"),
    ("BODY.PEEK[TEXT]", "BODY[TEXT]", "all"),
    ("BODY.PEEK[1]", "BODY[1]", (1,)),
    ("BODY.PEEK[1.MIME]", "BODY[1.MIME]", (1,)),
    ("BODY.PEEK[2]", "BODY[2]", (2,)),
    ("BODY.PEEK[1.1]", "BODY[1.1]", (1, 1)),
    ("BODY.PEEK[2.1]", "BODY[2.1]", (2, 1)),
    ("BINARY.SIZE[1]", "BINARY.SIZE[1]", (1,)),
    ("BINARY.PEEK[1]", "BINARY[1]", (1,)),
]


def ctime(t):
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t))


def build_mbox(path, fixtures_dir, generated, extra):
    """Write the test mbox; return labels, one per message in order."""
    labels = []
    t = 1772440000  # 2026-03-02, fixtures get increasing internal dates from here
    with open(path, "wb") as out:
        for i, f in enumerate(sorted(glob.glob(os.path.join(fixtures_dir, "*.eml")))):
            with open(f, "rb") as fh:
                msg = fh.read()
            if not msg.endswith(b"\n"):
                msg += b"\n"
            out.write(b"From fixture@imapd.test %s\n" % ctime(t + i * 86400 // 2).encode())
            out.write(H.mbox_quote(msg))
            out.write(b"\n")
            labels.append(os.path.basename(f))
        for m in extra:
            with open(m, "rb") as fh:
                data = fh.read()
            n = data.count(b"\n\nFrom ") + (1 if data.startswith(b"From ") else 0)
            out.write(data if data.endswith(b"\n") else data + b"\n")
            labels.extend("%s#%d" % (os.path.basename(m), k + 1) for k in range(n))
        if generated:
            tmp = path + ".gen"
            subprocess.run([sys.executable, os.path.join(ROOT, "tests", "bench", "gen-mbox.py"),
                            "--seed", "7", "--messages", str(generated), tmp], check=True,
                           stderr=subprocess.DEVNULL)
            with open(tmp, "rb") as fh:
                out.write(fh.read())
            os.unlink(tmp)
            labels.extend("gen#%d" % (k + 1) for k in range(generated))
    return labels


# -- BODYSTRUCTURE helpers -----------------------------------------------------------------


def is_multipart(bs):
    return isinstance(bs, list) and bs and isinstance(bs[0], list)


def part_of(bs, path):
    """The body structure of part `path` (tuple of ints), or None if it does not exist.
    Part 1 of a non-multipart body is the body itself (RFC 3501 6.4.5)."""
    cur = bs
    for n in path:
        if cur is None:
            return None
        # A message/rfc822 part: its sub-parts are those of the encapsulated body.
        if (not is_multipart(cur) and isinstance(cur, list) and len(cur) > 8 and
                isinstance(cur[0], bytes) and cur[0].upper() == b"MESSAGE" and
                isinstance(cur[1], bytes) and cur[1].upper() == b"RFC822"):
            cur = cur[8]
        if is_multipart(cur):
            kids = [x for x in cur if isinstance(x, list)]
            cur = kids[n - 1] if 0 < n <= len(kids) else None
        else:
            cur = cur if n == 1 else None
    return cur


def norm_bs(bs, top=True):
    """Fold the case of what RFC 2045 makes case-insensitive: type, subtype, parameter
    names, the charset value, encoding, disposition type."""
    if not isinstance(bs, list):
        return bs

    def up(x):
        return x.upper() if isinstance(x, bytes) else x

    def params(p):
        if not isinstance(p, list):
            return p
        out = []
        for k in range(0, len(p) - 1, 2):
            name = up(p[k])
            val = up(p[k + 1]) if name == b"CHARSET" else p[k + 1]
            out += [name, val]
        return out

    out = list(bs)
    if is_multipart(bs):
        kids = 0
        while kids < len(out) and isinstance(out[kids], list):
            out[kids] = norm_bs(out[kids], False)
            kids += 1
        if kids < len(out):
            out[kids] = up(out[kids])
        if kids + 1 < len(out):
            out[kids + 1] = params(out[kids + 1])
        if kids + 2 < len(out) and isinstance(out[kids + 2], list) and out[kids + 2]:
            out[kids + 2] = [up(out[kids + 2][0])] + [params(x) for x in out[kids + 2][1:]]
        return out
    if len(out) >= 7:
        out[0], out[1] = up(out[0]), up(out[1])
        out[2] = params(out[2])
        out[5] = up(out[5])
        if (out[0] == b"MESSAGE" and out[1] == b"RFC822" and len(out) > 8):
            out[8] = norm_bs(out[8], False)
            disp = 11
        elif out[0] == b"TEXT":
            disp = 9
        else:
            disp = 8
        if disp < len(out) and isinstance(out[disp], list) and out[disp]:
            out[disp] = [up(out[disp][0])] + [params(x) for x in out[disp][1:]]
    return out


# -- running one server -------------------------------------------------------------------


class Err(str):
    """A command that failed for this message (tagged NO/BAD, or the server died)."""

    def __repr__(self):
        return "<%s>" % str(self)


class Side:
    def __init__(self, name, kind, account, mbox, imapd_cmd, timeout):
        self.name = name
        self.area = account.area(name)
        account.install_inbox(self.area, mbox)
        self.srv = H.Server(kind, account, self.area, imapd_cmd)
        self.timeout = timeout
        self.conn = None
        self.failures = 0
        if not self.srv.available():
            raise SystemExit("%s: not available (%s)" % (name, self.srv.argv[0]))

    def start(self):
        self.conn = self.srv.start(timeout=15)
        st, line, u, _ = self.conn.command("EXAMINE INBOX", timeout=self.timeout)
        if st != "OK":
            # Each server has its own copy, so a read-write SELECT changes nothing compared.
            st, line, u, _ = self.conn.command("SELECT INBOX", timeout=self.timeout)
        if st != "OK":
            raise H.ServerGone("EXAMINE/SELECT INBOX: %s" % line.decode("utf-8", "replace"))
        return H.exists_count(u)

    def fetch(self, seqset, item, key):
        """{seq: value} for item; on a failed command, per message; status strings for
        messages that could not be fetched."""
        out = {}
        try:
            st, line, u, _ = self.conn.command("FETCH %s (%s)" % (seqset, item),
                                               timeout=self.timeout)
        except (H.ServerGone, H.StepTimeout) as e:
            self.note_failure("FETCH %s (%s)" % (seqset[:40], item), e)
            self.restart()
            st, line, u = "GONE", str(e).encode(), []
        if st == "OK":
            for r in u:
                fi = H.fetch_items(H.parse_response(r))
                if fi and key in fi[1]:
                    out[fi[0]] = fi[1][key]
            return out
        if "," in seqset or ":" in seqset:
            for s in expand(seqset, self.count):
                out.update(self.fetch(str(s), item, key))
            return out
        out[int(seqset)] = Err("%s %s" % (st, line.decode("utf-8", "replace")[:60]))
        return out

    def search(self, crit, lits):
        try:
            st, line, u, _ = self.conn.command("SEARCH " + crit, lits, timeout=self.timeout)
        except (H.ServerGone, H.StepTimeout) as e:
            self.note_failure("SEARCH " + crit, e)
            self.restart()
            return Err(type(e).__name__)
        if st != "OK":
            return Err("%s %s" % (st, line.decode("utf-8", "replace")[:60]))
        return sorted(H.search_result(u))

    def note_failure(self, what, e):
        tail = ""
        try:
            with open(self.srv.log + ".stderr", "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 400))
                tail = f.read().decode("utf-8", "replace").strip().splitlines()[-1:]
        except OSError:
            pass
        self.failures += 1
        if self.failures > 10:
            return
        print("ERROR %s: %s died or hung on %s (%s)%s" % (
            self.name, self.srv.kind, what, type(e).__name__,
            ("; log: " + tail[0][:300]) if tail else ""))

    def restart(self):
        if self.conn:
            self.conn.kill()
        self.start()

    def stop(self):
        if self.conn:
            try:
                self.conn.logout(10)
            except Exception:
                pass
            self.conn.kill()


def expand(seqset, count):
    out = []
    for piece in seqset.split(","):
        if ":" in piece:
            a, b = piece.split(":")
            a = count if a == "*" else int(a)
            b = count if b == "*" else int(b)
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(piece))
    return out


def seqset_of(nums):
    nums = sorted(nums)
    out = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else "%d:%d" % (nums[i], nums[j]))
        i = j + 1
    return ",".join(out)


# -- reporting -----------------------------------------------------------------------------


def show(v, other=None):
    """A compact rendering of a value; for long byte strings, around the first difference."""
    if isinstance(v, Err):
        return repr(v)
    if isinstance(v, (bytes, bytearray)):
        b = bytes(v)
        if len(b) <= 70:
            return repr(b)[1:]
        off = 0
        if isinstance(other, (bytes, bytearray)):
            o = bytes(other)
            while off < min(len(b), len(o)) and b[off] == o[off]:
                off += 1
        lo = max(0, off - 20)
        return "len %d, at %d: %s" % (len(b), off, repr(b[lo:lo + 50])[1:])
    if isinstance(v, list):
        s = "(" + " ".join(show(x) for x in v) + ")"
        return s if len(s) <= 200 else s[:197] + "..."
    if v is None:
        return "NIL"
    return str(v)


def first_diff_path(a, b, path=""):
    """Where two parsed values first differ, as an index path like [3][0]."""
    if isinstance(a, list) and isinstance(b, list):
        for i in range(min(len(a), len(b))):
            if a[i] != b[i]:
                return first_diff_path(a[i], b[i], "%s[%d]" % (path, i))
        return "%s (lengths %d, %d)" % (path, len(a), len(b))
    return path or "value"


def load_known(path):
    rules = []
    if not path or not os.path.exists(path):
        return rules
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                raise SystemExit("%s:%d: want ITEM MESSAGE REASON" % (path, ln))
            rules.append({"item": parts[0], "msg": parts[1], "why": parts[2], "used": 0,
                          "line": ln})
    return rules


def glob_match(pattern, text):
    """Shell-style match where only * and ? are special (item names contain brackets)."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, text, re.S) is not None


def explained(rules, item, label, a_fails_self=None):
    """The first rule matching item and message label. A rule whose reason starts with
    'if-self:CHECK ' applies only where A fails that self-check and B passes it."""
    for r in rules:
        if not (glob_match(r["item"], item) and glob_match(r["msg"], label)):
            continue
        if r["why"].startswith("if-self:"):
            chk = r["why"].split(None, 1)[0][len("if-self:"):]
            if a_fails_self is None or not a_fails_self(chk):
                continue
        r["used"] += 1
        return r
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", default="dovecot", choices=["dovecot", "imapd"])
    ap.add_argument("--b", default="imapd", choices=["dovecot", "imapd"])
    ap.add_argument("--imapd-cmd", default="imapd/imapd --preauth --config {config}")
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "tests", "fixtures", "messages"))
    ap.add_argument("--generated", type=int, default=300)
    ap.add_argument("--mbox", action="append", default=[])
    ap.add_argument("--known", default=os.path.join(HERE, "known.txt"))
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)

    rules = load_known(args.known)
    H.remove_stale_accounts()
    account = H.Account()
    sides = []
    unexplained = known = 0
    try:
        mbox = os.path.join(account.top, "diff.mbox")
        labels = build_mbox(mbox, args.fixtures, args.generated, args.mbox)
        names = [args.a + ("-a" if args.a == args.b else ""),
                 args.b + ("-b" if args.a == args.b else "")]
        for name, kind in zip(names, (args.a, args.b)):
            sides.append(Side(name, kind, account, mbox, args.imapd_cmd, args.timeout))
        counts = []
        for s in sides:
            try:
                counts.append(s.start())
            except (H.ServerGone, H.StepTimeout) as e:
                print("%s: cannot start or select: %s" % (s.name, e))
                return 2
            s.count = counts[-1]
        A, B = sides

        def report(seq, item, va, vb, selfres):
            nonlocal unexplained, known
            label = labels[seq - 1] if 0 < seq <= len(labels) else "?"
            r = None
            if not isinstance(va, Err) and not isinstance(vb, Err):
                r = explained(rules, item, label, lambda chk: selfres.get((0, seq, chk)) is False
                              and selfres.get((1, seq, chk)) is True)
            where = ""
            if isinstance(va, list) and isinstance(vb, list):
                where = " at " + first_diff_path(va, vb)
            tag = "known (known.txt:%d)" % r["line"] if r else "DIFF"
            if r:
                known += 1
                if not args.verbose:
                    return
            else:
                unexplained += 1
            print("%s #%d %s %s%s\n    %s: %s\n    %s: %s" % (
                tag, seq, label, item, where, A.name, show(va, vb), B.name, show(vb, va)))

        if counts[0] != counts[1] or counts[0] != len(labels):
            print("DIFF EXISTS: %s=%s %s=%s (mbox has %d messages)" % (
                A.name, counts[0], B.name, counts[1], len(labels)))
            unexplained += 1
        n = min(counts)
        print("comparing %d messages: %s vs %s" % (n, A.name, B.name))

        # SEARCH before any FETCH: Dovecot 2.3.19 panics in SEARCH BODY/TEXT
        # (istream-header-filter.c:666) once the body structure of a message that is only a
        # header (tests/fixtures/messages/header-only.eml) is in its cache.
        searches_done = 0
        for crit, lits in SEARCHES:
            ra = A.search(crit, [x.encode() for x in lits])
            rb = B.search(crit, [x.encode() for x in lits])
            text = "SEARCH " + crit.replace("{}", "%s") % tuple(lits) if lits else \
                "SEARCH " + crit
            if args.verbose:
                print("%s -> %s" % (text, ra if not isinstance(ra, list) or len(ra) < 20
                                    else "%d messages" % len(ra)))
            searches_done += 1
            if ra == rb:
                continue
            label = "*"
            r = None
            if not isinstance(ra, Err) and not isinstance(rb, Err):
                r = explained(rules, text, label)
            tag = "known (known.txt:%d)" % r["line"] if r else "DIFF"
            if r:
                known += 1
            else:
                unexplained += 1
            if isinstance(ra, list) and isinstance(rb, list):
                sa, sb = set(ra), set(rb)
                print("%s %s\n    only %s: %s\n    only %s: %s" % (
                    tag, text, A.name,
                    ", ".join("#%d %s" % (x, labels[x - 1] if x <= len(labels) else "?")
                              for x in sorted(sa - sb)[:10]),
                    B.name, ", ".join("#%d %s" % (x, labels[x - 1] if x <= len(labels)
                                                  else "?") for x in sorted(sb - sa)[:10])))
            else:
                print("%s %s\n    %s: %s\n    %s: %s" % (tag, text, A.name, show(ra), B.name,
                                                       show(rb)))
        # BODYSTRUCTURE first: it decides which part fetches make sense.
        bs_a = A.fetch("1:*", "BODYSTRUCTURE", "BODYSTRUCTURE")
        bs_b = B.fetch("1:*", "BODYSTRUCTURE", "BODYSTRUCTURE")
        items_done = 0
        vals = {}
        pending = []
        for item, key, which in ITEMS:
            if which == "all":
                seqs = list(range(1, n + 1))
            else:
                seqs = [s for s in range(1, n + 1)
                        if part_of(bs_a.get(s), which) is not None or
                        part_of(bs_b.get(s), which) is not None]
            if not seqs:
                continue
            ss = seqset_of(seqs) if len(seqs) < n else "1:*"
            if key == "BODYSTRUCTURE":
                va_all, vb_all = bs_a, bs_b
            else:
                va_all, vb_all = A.fetch(ss, item, key), B.fetch(ss, item, key)
            for s in seqs:
                va, vb = va_all.get(s), vb_all.get(s)
                if key == "BODYSTRUCTURE":
                    same = norm_bs(va) == norm_bs(vb)
                else:
                    same = va == vb
                if not same:
                    pending.append((s, key, va, vb))
                items_done += 1
            vals[key] = (va_all, vb_all)

        # Each server against itself: sizes it announces must match what it sends.
        self_checks = 0
        selfres = {}
        for side, k in ((A, 0), (B, 1)):
            def get(key, seq):
                return vals.get(key, ({}, {}))[k].get(seq)
            for seq in range(1, n + 1):
                label = labels[seq - 1] if seq <= len(labels) else "?"
                checks = []
                size, whole = get("RFC822.SIZE", seq), get("BODY[]", seq)
                if isinstance(size, bytes) and isinstance(whole, bytes) and size.isdigit():
                    checks.append(("RFC822.SIZE=len(BODY[])", int(size), len(whole)))
                hdr, txt = get("BODY[HEADER]", seq), get("BODY[TEXT]", seq)
                if all(isinstance(x, bytes) for x in (hdr, txt, whole)):
                    checks.append(("BODY[HEADER]+BODY[TEXT]=BODY[]", len(hdr) + len(txt),
                                   len(whole)))
                bsize, bin1 = get("BINARY.SIZE[1]", seq), get("BINARY[1]", seq)
                if isinstance(bsize, bytes) and bsize.isdigit() and isinstance(bin1, bytes) \
                        and not isinstance(bin1, Err):
                    checks.append(("BINARY.SIZE[1]=len(BINARY[1])", int(bsize), len(bin1)))
                p1 = part_of(vals["BODYSTRUCTURE"][k].get(seq), (1,))
                b1 = get("BODY[1]", seq)
                if p1 is not None and not is_multipart(p1) and len(p1) > 6 and \
                        isinstance(p1[6], bytes) and p1[6].isdigit() and isinstance(b1, bytes):
                    checks.append(("BODYSTRUCTURE size of 1=len(BODY[1])", int(p1[6]), len(b1)))
                for what, x, y in checks:
                    self_checks += 1
                    selfres[(k, seq, what)] = x == y
                    if x == y:
                        continue
                    item = "SELF-%s:%s" % (side.srv.kind, what)
                    r = explained(rules, item, label)
                    if r:
                        known += 1
                        if not args.verbose:
                            continue
                    else:
                        unexplained += 1
                    print("%s #%d %s %s: %d != %d" % (
                        "known (known.txt:%d)" % r["line"] if r else "INCONSISTENT", seq,
                        label, "%s %s" % (side.name, what), x, y))
        # An item that one server failed on every message is one line, not hundreds.
        by_key = {}
        for p in pending:
            by_key.setdefault(p[1], []).append(p)
        for key, plist in by_key.items():
            for side_i, side in ((2, A), (3, B)):
                errs = {str(p[side_i]) for p in plist if isinstance(p[side_i], Err)}
                if len(plist) > 3 and len(errs) == 1 and \
                        all(isinstance(p[side_i], Err) for p in plist):
                    print("DIFF %s: %s failed on all %d messages compared: %s" % (
                        key, side.name, len(plist), errs.pop()))
                    unexplained += len(plist)
                    by_key[key] = []
                    break
        for key, plist in by_key.items():
            for seq, key, va, vb in plist:
                report(seq, key, va, vb, selfres)
        print("\nsummary: %d messages, %d item comparisons, %d searches, %d self-checks; %d "
              "unexplained difference(s), %d known" % (n, items_done, searches_done,
                                                      self_checks, unexplained, known))
        for s in sides:
            if s.failures:
                print("  %s died or hung %d time(s); see the ERROR lines" % (s.name, s.failures))
                unexplained += 1
        for r in rules:
            if r["used"]:
                print("  known.txt:%d explains %d: %s %s" % (r["line"], r["used"], r["item"],
                                                          r["msg"]))
            elif args.verbose:
                print("  known.txt:%d matched nothing (%s %s)" % (r["line"], r["item"],
                                                               r["msg"]))
    finally:
        for s in sides:
            s.stop()
        if os.environ.get("DIFF_KEEP_LOGS"):
            for s in sides:
                shutil.copy(s.srv.log + ".stderr", "/tmp/diff-%s.stderr" % s.name)
        account.cleanup()
    return 0 if unexplained == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
