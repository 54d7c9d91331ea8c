#!/usr/bin/python3
"""CONDSTORE/QRESYNC differential test: imapd against Dovecot's imap on the same mbox.

    tests/diff/condstore.py [-v] [--a dovecot] [--b imapd] [--imapd-cmd '...']
                            [--fixtures DIR] [--generated N] [--known tests/diff/known.txt]

Run as root (it changes to the repository root). Both servers run preauthenticated as a
throwaway user (tests/bench/imapharness.py), each on its own copy of one mbox: the fixture
messages and N generated ones (as tests/diff/diff.py builds it), with the metadata headers
UW-IMAP and Dovecot write (X-IMAPbase with a keyword, X-UID on every message; Status,
X-Status and X-Keywords giving some messages flags and a keyword to start with). imapd's
config gets `condstore = yes`. Both servers go through the same RFC 7162 scenario, two sessions:

  1. ENABLE QRESYNC; SELECT INBOX (CONDSTORE), which gives that server's HIGHESTMODSEQ (h0)
     and UIDVALIDITY; STOREs (+FLAGS, -FLAGS, FLAGS, keywords, by UID and by number); UID
     FETCH 1:* (FLAGS) (CHANGEDSINCE h) after each batch; STOREs that change nothing (3.1.11);
     a FETCH that sets \\Seen; \\Deleted and EXPUNGE, then UID EXPUNGE (both must answer with
     VANISHED, never EXPUNGE, and HIGHESTMODSEQ on the tagged OK, 3.2.7, 3.2.9, 3.2.10.2);
     conditional STOREs (UNCHANGEDSINCE of an old value on messages changed since, and 0:
     [MODIFIED], 3.1.3); SEARCH MODSEQ, UID SEARCH MODSEQ; LOGOUT.
  2. ENABLE QRESYNC; SELECT INBOX (QRESYNC (uidvalidity h ...)) from three points of the
     first session, with and without known UIDs, and with a wrong UIDVALIDITY; UID FETCH 1:*
     (FLAGS) (CHANGEDSINCE h VANISHED).

The mod-sequence values differ between servers and are never compared: each command uses the
values that server gave, and what is compared is which messages (UIDs, or message numbers
where the command is about numbers) and which flags (\\Recent left out, names without
regard to case). Each answer is judged against what the scenario makes the RFC require (the
script keeps a model of the mailbox), and the two servers' answers against each other.
VANISHED (EARLIER) may name UIDs that are not in the mailbox (3.2.5.1, 3.2.10.1): extra UIDs
that are not in the mailbox are a note, never a failure; the UIDs really expunged since the
mod-sequence must be there.

Output: WRONG lines (a server's answer is not what the RFC asks for), known lines (explained
by a CONDSTORE:<check> rule in known.txt for that server), NOTE lines (allowed differences),
and a summary. Exit status 0 when every wrong answer is explained, 1 otherwise, 2 when a server
could not be started.
"""

import argparse
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import diff as D  # noqa: E402  (diff.py: build_mbox, known.txt rules; it imports the harness)

H = D.H
ROOT = D.ROOT

# Flags the mbox starts with, by UID (= position), written as the metadata headers UW-IMAP
# and Dovecot write and both servers read: X-IMAPbase (UIDVALIDITY, UIDNEXT, the keywords)
# in the first message, then in each message Status (R: \Seen), X-Status (A F T D),
# X-Keywords and X-UID, right after the From_ line and without padding (as written by hand:
# the first new keyword makes a server grow X-IMAPbase).
INITIAL = {
    1: ("\\Seen",), 2: ("\\Seen",), 3: ("\\Seen", "\\Answered"), 5: ("\\Seen", "\\Flagged"),
    8: ("\\Seen", "\\Answered"), 13: ("\\Seen", "\\Flagged"), 21: ("\\Seen", "$Label2"),
    22: ("$Label2",), 34: ("\\Seen",), 40: ("\\Seen", "\\Draft"),
}
MIN_MESSAGES = 45
UIDVALIDITY = 1772440000

# The scenario. Each step is a tuple (kind, name, ...); a name (None for none) is the check
# reported and matched against known.txt as CONDSTORE:<name>. Checkpoints (h0...) are each
# server's own mod-sequence at that point. UIDs only: a STORE "by" seq sends the message
# numbers those UIDs have at that point.
SCENARIO = [
    ("session",),
    ("enable", "enable"),
    ("select", "select", "h0"),
    ("flags", "initial-flags", None),
    # batch A
    ("store", None, "seq", [4, 6, 7], "+", ["\\Flagged"], False, None),
    ("store", None, "uid", [2, 3], "-", ["\\Seen"], False, None),
    ("store", None, "uid", [9], "+", ["$Label1", "$Forwarded"], True, None),
    ("store", None, "uid", [21], "-", ["$Label2"], False, None),
    ("store", None, "uid", [23], "", ["\\Answered", "$Label2"], False, None),
    ("mark", "h1"),
    ("changed", "changedsince-h0-after-a", "h0"),
    # changes nothing: SHOULD NOT change the mod-sequence (3.1, 3.1.11)
    ("store", None, "uid", [5], "+", ["\\Flagged"], False, None),
    ("store", None, "uid", [24], "-", ["\\Seen"], False, None),
    ("store", None, "uid", [22], "+", ["$Label2"], True, None),
    ("changed", "noop-store-keeps-modseq", "h1"),
    # batch B (4 goes back to the flags it had at h0: still changed since h0)
    ("store", None, "uid", [5], "-", ["\\Seen"], False, None),
    ("store", None, "uid", [24], "+", ["\\Seen", "\\Draft"], False, None),
    ("store", None, "uid", [22], "-", ["$Label2"], True, None),
    ("store", None, "uid", [4], "-", ["\\Flagged"], False, None),
    ("seen", None, 25),
    ("changed", "changedsince-h1", "h1"),
    ("changed", "changedsince-h0", "h0"),
    # expunges (6 was changed in batch A)
    ("store", None, "uid", [6, 12, 15, 30], "+", ["\\Deleted"], True, None),
    ("expunge", "expunge", "h2"),
    ("store", None, "uid", [16, 17], "+", ["\\Deleted"], True, None),
    ("uidexpunge", "uid-expunge", [16], "h3"),
    # conditional stores. FLAGS (replace): no 3.1.12 shortcut, so [MODIFIED] is required
    ("store", "unchangedsince-flags", "uid", [2, 7, 14, 20], "", ["\\Seen", "\\Answered"],
     False, "h0"),
    # +FLAGS of a keyword 9 already has: a server may skip [MODIFIED] for 9 (3.1.12); the
    # result is the same either way
    ("store", "unchangedsince-plus-flags", "uid", [9, 18], "+", ["$Label1"], True, "h0"),
    ("store", "unchangedsince-seq", "seq", [3, 19], "", ["\\Draft"], False, "h0"),
    ("store", "unchangedsince-0", "uid", [26], "+", ["\\Flagged"], True, "0"),
    ("flags", "flags-after-conditional", [2, 3, 7, 9, 14, 18, 19, 20, 26]),
    ("search", "search-modseq-h0", "h0", False, False),
    ("search", "uid-search-modseq-h1", "h1", True, False),
    ("search", "search-modseq-h0-inclusive", "h0", False, True),
    ("changed", "changedsince-h3", "h3"),
    ("logout",),
    ("session",),
    ("enable", "enable-2"),
    ("qresync", "qresync-h0", "h0", False, False),
    ("qresync", "qresync-h1-known-uids", "h1", True, False),
    ("qresync", "qresync-h3", "h3", False, False),
    ("qresync", "qresync-other-uidvalidity", "h0", False, True),
    ("vfetch", "vanished-fetch-h0", "h0"),
    ("vfetch", "vanished-fetch-h2", "h2"),
    ("flags", "final-flags", None),
    ("logout",),
]


def norm_flag(f):
    return f.upper()


def uidset(uids):
    return D.seqset_of(sorted(uids))


def expand_set(text):
    out = set()
    for piece in text.split(","):
        a, _, b = piece.partition(":")
        a, b = int(a), int(b or a)
        out.update(range(min(a, b), max(a, b) + 1))
    return out


# -- the model: what the RFC makes each answer be -----------------------------------------


class Model:
    """The mailbox as the scenario leaves it, with change counts in place of mod-sequences."""

    def __init__(self, n):
        self.flags = {u: {norm_flag(f) for f in INITIAL.get(u, ())} for u in range(1, n + 1)}
        self.changed = {u: 0 for u in self.flags}    # event of the last change
        self.gone = {}                                # uid -> event of its expunge
        self.event = 0
        self.marks = {}
        self.all_uids = set(self.flags)

    def uids(self):
        return sorted(self.flags)

    def seq(self, uid):
        return self.uids().index(uid) + 1

    def mark(self, cp):
        self.marks[cp] = self.event

    def changed_since(self, cp):
        t = self.marks[cp]
        return {u: frozenset(self.flags[u]) for u in self.flags if self.changed[u] > t}

    def gone_since(self, cp):
        t = self.marks[cp]
        return {u for u, e in self.gone.items() if e > t}

    def store(self, uids, mode, flags, cond):
        """One STORE; returns ([MODIFIED] UIDs, those of them a server may store instead
        (3.1.12), the UIDs whose flags change)."""
        flags = {norm_flag(f) for f in flags}
        self.event += 1
        must, may, changed = set(), set(), set()
        for u in uids:
            if u not in self.flags:
                continue
            cur = self.flags[u]
            new = cur | flags if mode == "+" else cur - flags if mode == "-" else set(flags)
            if cond is not None and (cond == "0" or self.changed[u] > self.marks[cond]):
                if mode and new == cur and cond != "0":
                    # 3.1.3 says [MODIFIED]; 3.1.12 lets a server store it instead, as the
                    # flags asked for are as the client knows them (no change either way)
                    must.add(u)
                    may.add(u)
                    continue
                assert not mode or cond == "0", "scenario: an ambiguous conditional STORE"
                must.add(u)
                continue
            if new != cur:
                self.flags[u] = new
                self.changed[u] = self.event
                changed.add(u)
        return must, may, changed

    def expunge(self, only=None):
        self.event += 1
        out = set()
        for u in list(self.flags):
            if "\\DELETED" in self.flags[u] and (only is None or u in only):
                del self.flags[u]
                self.gone[u] = self.event
                out.add(u)
        return out


# -- one server ----------------------------------------------------------------------------


class Side:
    def __init__(self, name, kind, account, mbox, imapd_cmd, timeout):
        self.name = name
        self.kind = kind
        self.area = account.area(name)
        account.install_inbox(self.area, mbox)
        self.srv = H.Server(kind, account, self.area, imapd_cmd)
        if kind == "imapd":
            with open(self.srv.config, "a") as f:
                f.write("condstore = yes\n")
        if not self.srv.available():
            raise SystemExit("%s: not available (%s)" % (name, self.srv.argv[0]))
        self.timeout = timeout
        self.conn = None
        self.cps = {}          # checkpoint -> this server's mod-sequence
        self.uidvalidity = None
        self.obs = {}          # check -> observed value
        self.raw = {}          # check -> [(command, [response lines])]
        self.expunge_lines = []
        self.fetch_without_uid_modseq = []
        self.modseq_not_above = []
        self.seen_modseq = 0
        self.transcript = []
        self.broken = None     # why the scenario stopped for this server

    def send(self, text, check=None):
        st, line, u, _ = self.conn.command(text, timeout=self.timeout)
        lines = u + [line]
        self.transcript.append((text, lines))
        if check:
            self.raw.setdefault(check, []).append((text, lines))
        for r in u:
            p = r.split(None, 3)
            if len(p) >= 3 and p[0] == b"*" and p[2].upper() == b"EXPUNGE":
                self.expunge_lines.append((text, r))
        return st, line, u

    def stop(self):
        if self.conn:
            try:
                self.conn.logout(10)
            except Exception:
                pass
            self.conn.kill()
            self.conn = None


class Failed(Exception):
    """A command of the scenario did not succeed; the value recorded for its check."""


def fetches(untagged):
    """[(seq, {ITEM: value})] of the untagged FETCH responses, those for one message merged
    (a server may send a message's items in several responses, RFC 3501 7.4.2)."""
    out = {}
    for r in untagged:
        if b" FETCH " not in r[:30].upper():
            continue
        fi = H.fetch_items(H.parse_response(r))
        if fi:
            out.setdefault(fi[0], {}).update(fi[1])
    return list(out.items())


def flags_of(items):
    fl = items.get("FLAGS")
    if not isinstance(fl, list):
        return None
    return frozenset(norm_flag(f.decode("latin-1")) for f in fl
                     if isinstance(f, bytes) and f.upper() != b"\\RECENT")


def uid_flags(untagged):
    """{uid: flags} from untagged FETCH responses; an answer without UID is kept by number
    under a negative key, so that it shows as a difference."""
    out = {}
    for seq, items in fetches(untagged):
        u = items.get("UID")
        key = int(u) if isinstance(u, bytes) and u.isdigit() else -seq
        out[key] = flags_of(items)
    return out


def vanished(untagged, earlier):
    """The UIDs of the VANISHED responses with (earlier=True) or without the EARLIER tag, and
    whether any came after a FETCH response."""
    out = set()
    after_fetch = False
    seen_fetch = False
    for r in untagged:
        up = r.upper()
        if up.startswith(b"* VANISHED "):
            rest = r[11:].strip()
            is_earlier = rest.upper().startswith(b"(EARLIER)")
            if is_earlier:
                rest = rest[9:].strip()
            if is_earlier == earlier:
                out |= expand_set(rest.decode("ascii"))
                if seen_fetch:
                    after_fetch = True
        elif b" FETCH " in up[:30]:
            seen_fetch = True
    return out, after_fetch


def code_value(lines, name):
    rx = re.compile(rb"\[" + name.encode() + rb" ([^\]]*)\]", re.I)
    for ln in lines:
        m = rx.search(ln)
        if m:
            return m.group(1).decode("ascii", "replace")
    return None


def modseq_of(items):
    v = items.get("MODSEQ")
    if isinstance(v, list) and v and isinstance(v[0], bytes) and v[0].isdigit():
        return int(v[0])
    return None


def run(side, model_n):
    """Run the scenario on one server; fills side.obs."""
    m = Model(model_n)
    for i, step in enumerate(SCENARIO):
        kind = step[0]
        name = step[1] if len(step) > 1 else None
        try:
            run_step(side, m, step)
        except Failed as e:
            key = name or "%s-step%d" % (kind, i + 1)
            side.obs[key] = D.Err(str(e))
            side.expect.setdefault(key, None)
            side.raw.setdefault(key, side.transcript[-1:])
        except (H.ServerGone, H.StepTimeout) as e:
            if i == 0:
                raise                  # it never started: main() says so, exit status 2
            side.broken = "%s at %s: %s" % (type(e).__name__, name or kind, e)
            return
    side.obs["vanished-not-expunge"] = [r.decode("latin-1") for _, r in side.expunge_lines]
    side.obs["fetch-has-uid-modseq"] = side.fetch_without_uid_modseq
    side.obs["store-modseq-grows"] = side.modseq_not_above


def check_modseqs(side, text, untagged, changed):
    """FETCH responses of a STORE (or of a FETCH that set \\Seen) carry UID and MODSEQ
    (3.2.4); a message whose flags changed gets a mod-sequence above every one this session
    was given before (3.1: each STORE's is greater than the previous one's)."""
    floor = max([side.seen_modseq] + [v for v in side.cps.values() if v is not None])
    top = floor
    for seq, items in fetches(untagged):
        ms = modseq_of(items)
        u = items.get("UID")
        if not isinstance(u, bytes) or ms is None:
            side.fetch_without_uid_modseq.append("%s -> * %d FETCH without UID or MODSEQ" %
                                                 (text, seq))
            continue
        if int(u) in changed and ms <= floor:
            side.modseq_not_above.append("%s: UID %s changed, MODSEQ (%d) is not above %d"
                                         % (text, u.decode(), ms, floor))
        top = max(top, ms)
    side.seen_modseq = top


def need_cp(side, cp):
    if cp == "0":
        return "0"
    v = side.cps.get(cp)
    if v is None:
        raise Failed("no mod-sequence for %s (an earlier step failed)" % cp)
    return str(v)


def ok_or_fail(st, line):
    if st != "OK":
        raise Failed("%s: %s" % (st, line.decode("utf-8", "replace")[:120]))


def run_step(side, m, step):
    kind = step[0]
    if kind == "session":
        side.stop()
        side.conn = side.srv.start(timeout=15)
        return
    if kind == "logout":
        side.stop()
        return
    name = step[1]
    if kind == "enable":
        st, line, u = side.send("ENABLE QRESYNC", name)
        ok_or_fail(st, line)
        side.obs[name] = any(r.upper().startswith(b"* ENABLED") and b"QRESYNC" in r.upper()
                             for r in u)
        side.expect[name] = True
    elif kind == "select":
        st, line, u = side.send("SELECT INBOX (CONDSTORE)", name)
        ok_or_fail(st, line)
        hm = code_value(u, "HIGHESTMODSEQ")
        uv = code_value(u, "UIDVALIDITY")
        side.uidvalidity = int(uv) if uv and uv.isdigit() else None
        side.cps[step[2]] = int(hm) if hm and hm.isdigit() else None
        m.mark(step[2])
        side.obs[name] = (H.exists_count(u), hm is not None, side.uidvalidity is not None,
                          any(b"[NOMODSEQ]" in r.upper() for r in u))
        side.expect[name] = (len(m.flags), True, True, False)
    elif kind == "flags":
        uids = step[2]
        st, line, u = side.send("UID FETCH %s (FLAGS)" % (uidset(uids) if uids else "1:*"),
                                name)
        ok_or_fail(st, line)
        side.obs[name] = uid_flags(u)
        side.expect[name] = {x: frozenset(m.flags[x]) for x in (uids or m.uids())
                             if x in m.flags}
    elif kind == "store":
        _, name, by, uids, mode, flags, silent, cond = step
        if by == "seq":
            target = uidset([m.seq(x) for x in uids if x in m.flags])
            cmd = "STORE"
        else:
            target = uidset(uids)
            cmd = "UID STORE"
        mod = ""
        if cond is not None:
            mod = " (UNCHANGEDSINCE %s)" % need_cp(side, cond)
        text = "%s %s%s %sFLAGS%s (%s)" % (cmd, target, mod, mode,
                                           ".SILENT" if silent else "", " ".join(flags))
        seqs_before = {x: m.seq(x) for x in m.flags}
        must, may, changed = m.store(uids, mode, flags, cond)
        st, line, u = side.send(text, name)
        check_modseqs(side, text, u, changed)
        if name:
            if st not in ("OK", "NO") or (st == "NO" and "MODIFIED" not in line.decode(
                    "latin-1").upper()):
                raise Failed("%s: %s" % (st, line.decode("utf-8", "replace")[:120]))
            got = code_value([line], "MODIFIED")
            side.obs[name] = expand_set(got) if got else set()
            if by == "seq":
                must = {seqs_before[x] for x in must}
                may = {seqs_before[x] for x in may}
            side.expect[name] = (must, may)
        else:
            ok_or_fail(st, line)
    elif kind == "mark":
        # before any expunge, the highest MODSEQ of the messages is HIGHESTMODSEQ
        st, line, u = side.send("UID FETCH 1:* (MODSEQ)")
        ok_or_fail(st, line)
        vals = [modseq_of(items) for _, items in fetches(u)]
        side.cps[name] = max(v for v in vals if v is not None) if any(vals) else None
        m.mark(name)
    elif kind == "changed":
        h = need_cp(side, step[2])
        st, line, u = side.send("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %s)" % h, name)
        ok_or_fail(st, line)
        side.obs[name] = uid_flags(u)
        side.expect[name] = m.changed_since(step[2])
    elif kind == "seen":
        uid = step[2]
        # by number: 3.2.4's exception for a UID FETCH without MODSEQ does not apply
        text = "FETCH %d (BODY[HEADER.FIELDS (SUBJECT)])" % m.seq(uid)
        st, line, u = side.send(text)
        ok_or_fail(st, line)
        m.event += 1
        if "\\SEEN" not in m.flags[uid]:
            m.flags[uid].add("\\SEEN")
            m.changed[uid] = m.event
            # the FETCH that set \Seen tells the new FLAGS, with UID and MODSEQ (3.2.4)
            fl = [items for _, items in fetches(u) if "FLAGS" in items]
            if not fl or "UID" not in fl[0] or modseq_of(fl[0]) is None:
                side.fetch_without_uid_modseq.append("%s: FLAGS without UID and MODSEQ" % text)
                return
            check_modseqs(side, text, u, {uid})
    elif kind in ("expunge", "uidexpunge"):
        if kind == "expunge":
            text, cp, gone = "EXPUNGE", step[2], m.expunge()
        else:
            text, cp, gone = "UID EXPUNGE %s" % uidset(step[2]), step[3], m.expunge(
                set(step[2]))
        st, line, u = side.send(text, name)
        ok_or_fail(st, line)
        hm = code_value([line], "HIGHESTMODSEQ")
        if hm and hm.isdigit():
            side.cps[cp] = int(hm)
        else:
            # fall back to the highest mod-sequence of the messages left, to go on
            st2, line2, u2 = side.send("UID FETCH 1:* (MODSEQ)")
            vals = [modseq_of(items) for _, items in fetches(u2)] if st2 == "OK" else []
            side.cps[cp] = max(v for v in vals if v is not None) if any(vals) else None
        m.mark(cp)
        side.obs[name] = vanished(u, False)[0]
        side.expect[name] = gone
        side.obs[name + "-highestmodseq"] = hm is not None
        side.expect[name + "-highestmodseq"] = True
        side.raw[name + "-highestmodseq"] = side.raw[name]
    elif kind == "search":
        _, name, cp, by_uid, inclusive = step
        h = int(need_cp(side, cp)) + (0 if inclusive else 1)
        st, line, u = side.send("%sSEARCH MODSEQ %d" % ("UID " if by_uid else "", h), name)
        ok_or_fail(st, line)
        res = H.search_result(u)
        has_modseq = any(re.search(rb"\(MODSEQ \d+\)\s*$", r) for r in u
                         if r.upper().startswith(b"* SEARCH"))
        side.obs[name] = (res, has_modseq or not res)
        changed = m.changed_since(cp)
        conv = (lambda x: x) if by_uid else m.seq
        exp = {conv(x) for x in changed}
        if inclusive:
            # MODSEQ h matches >= h: the changed messages, and any whose value is h itself
            side.expect[name] = ("superset", exp, {conv(x) for x in m.flags})
        else:
            side.expect[name] = (exp, True)
    elif kind in ("qresync", "vfetch"):
        h = need_cp(side, step[2])
        if side.uidvalidity is None:
            raise Failed("no UIDVALIDITY from the first SELECT")
        if kind == "qresync":
            _, name, cp, known, other_uv = step
            uv = side.uidvalidity + (1 if other_uv else 0)
            extra = " %s" % uidset(m.all_uids) if known else ""
            text = "SELECT INBOX (QRESYNC (%d %s%s))" % (uv, h, extra)
        else:
            cp, other_uv = step[2], False
            text = "UID FETCH 1:* (FLAGS) (CHANGEDSINCE %s VANISHED)" % h
        st, line, u = side.send(text, name)
        ok_or_fail(st, line)
        v, after = vanished(u, True)
        side.obs[name + ":fetch"] = uid_flags(u)
        side.obs[name + ":vanished"] = v
        side.obs[name + ":vanished-before-fetch"] = not after
        side.expect[name + ":vanished-before-fetch"] = True
        if other_uv:
            side.expect[name + ":fetch"] = {}
            side.expect[name + ":vanished"] = ("vanished", set(), set(), True)
        else:
            side.expect[name + ":fetch"] = m.changed_since(cp)
            side.expect[name + ":vanished"] = ("vanished", m.gone_since(cp), set(m.flags),
                                               False)
    else:
        raise AssertionError(kind)


# -- judging -------------------------------------------------------------------------------


def show_set(s):
    return uidset(s) if s else "(none)"


def show_flags(d):
    if isinstance(d, D.Err):
        return repr(d)
    return ", ".join("%d %s" % (u, "(" + " ".join(sorted(f)) + ")" if f is not None
                                else "no FLAGS")
                     for u, f in sorted(d.items())) or "(none)"


def judge(exp, got):
    """(verdict, text): 'ok', 'note' (allowed, but not what was expected) or 'bad'."""
    if isinstance(got, D.Err):
        return "bad", "command failed: %s" % got
    if got is None:
        return "bad", "not run"
    if isinstance(exp, dict):
        missing = sorted(set(exp) - set(got))
        extra = sorted(set(got) - set(exp))
        wrong = sorted(u for u in set(exp) & set(got) if exp[u] != got[u])
        if not (missing or extra or wrong):
            return "ok", ""
        parts = []
        if missing:
            parts.append("missing UIDs %s" % show_set(missing))
        if extra:
            parts.append("extra UIDs %s" % ", ".join(
                ("%d" % u if u > 0 else "seq %d without UID" % -u) for u in extra))
        for u in wrong:
            parts.append("UID %d flags %s, expected %s" % (
                u, "(" + " ".join(sorted(got[u])) + ")" if got[u] is not None else "none",
                "(" + " ".join(sorted(exp[u])) + ")"))
        return "bad", "; ".join(parts)
    if isinstance(exp, tuple) and exp and exp[0] == "vanished":
        _, must, present, none_at_all = exp
        missing = must - got
        extra = got - must
        if none_at_all and got:
            return "bad", "VANISHED (EARLIER) %s with a UIDVALIDITY that does not match " \
                "(3.2.5: as if nothing changed)" % show_set(got)
        if missing:
            return "bad", "VANISHED (EARLIER) %s lacks %s, expunged since then" % (
                show_set(got), show_set(missing))
        bad = extra & present
        if bad:
            return "bad", "VANISHED (EARLIER) names %s, which are in the mailbox" % (
                show_set(bad))
        if extra:
            return "note", "VANISHED (EARLIER) also names %s, not in the mailbox " \
                "(allowed, 3.2.5.1/3.2.10.1)" % show_set(extra)
        return "ok", ""
    if isinstance(exp, tuple) and exp and exp[0] == "superset":
        _, sub, universe = exp
        res, has_modseq = got
        if not has_modseq:
            return "bad", "non-empty SEARCH result without (MODSEQ n) (3.1.5)"
        if not sub <= res:
            return "bad", "lacks %s (changed since)" % show_set(sub - res)
        if not res <= universe:
            return "bad", "names %s, not in the mailbox" % show_set(res - universe)
        return "ok", ""
    if isinstance(exp, tuple) and len(exp) == 2 and isinstance(exp[0], set) and \
            isinstance(exp[1], set):      # [MODIFIED]: must, may
        must, may = exp
        if got == must:
            return "ok", ""
        if must - may <= got <= must:
            return "note", "[MODIFIED %s]: %s stored instead, allowed by 3.1.12 (the flags " \
                "asked for are as the client knows them)" % (show_set(got),
                                                             show_set(must - got))
        return "bad", "[MODIFIED %s], expected [MODIFIED %s]%s" % (
            show_set(got), show_set(must),
            " (%s may be left out, 3.1.12)" % show_set(may) if may else "")
    if isinstance(exp, tuple) and len(exp) == 2 and isinstance(exp[0], set):  # search
        res, has_modseq = got
        if not has_modseq:
            return "bad", "non-empty SEARCH result without (MODSEQ n) (3.1.5)"
        if res != exp[0]:
            return "bad", "%s, expected %s (missing %s, extra %s)" % (
                show_set(res), show_set(exp[0]), show_set(exp[0] - res), show_set(res - exp[0]))
        return "ok", ""
    if isinstance(exp, set):
        if got == exp:
            return "ok", ""
        return "bad", "%s, expected %s" % (show_set(got), show_set(exp))
    if isinstance(exp, list):
        return ("ok", "") if got == exp else ("bad", "; ".join(str(x) for x in got[:5]) +
                                              ("; ..." if len(got) > 5 else ""))
    return ("ok", "") if got == exp else ("bad", "%r, expected %r" % (got, exp))


def brief(v):
    if isinstance(v, dict):
        return show_flags(v)
    if isinstance(v, set):
        return show_set(v)
    if isinstance(v, tuple) and v and isinstance(v[0], set):
        return show_set(v[0])
    return repr(v)


RFC = {
    "enable": "5161, 7162 3.2.3", "select": "7162 3.1.2.1, 3.1.8",
    "changedsince": "7162 3.1.4.1", "noop-store-keeps-modseq": "7162 3.1, 3.1.11 (SHOULD)",
    "expunge": "7162 3.2.7, 3.2.10.2", "uid-expunge": "7162 3.2.9, 3.2.10.2",
    "unchangedsince": "7162 3.1.3", "search": "7162 3.1.5", "uid-search": "7162 3.1.5",
    "qresync": "7162 3.2.5, 3.2.5.1", "vanished-fetch": "7162 3.2.6",
    "vanished-not-expunge": "7162 3.2.10.2", "fetch-has-uid-modseq": "7162 3.2.4",
    "flags": "3501 6.4.6, 7.4.2", "store-modseq-grows": "7162 3.1",
    "initial-flags": "3501 2.3.2 (flags read from the mbox)",
    "final-flags": "3501 2.3.2",
}


def rfc_of(check):
    best = ""
    for k, v in RFC.items():
        if check.startswith(k) and len(k) > len(best):
            best = k
    return RFC.get(best, "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", default="dovecot", choices=["dovecot", "imapd"])
    ap.add_argument("--b", default="imapd", choices=["dovecot", "imapd"])
    ap.add_argument("--imapd-cmd", default="imapd/imapd --preauth --config {config}")
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "tests", "fixtures", "messages"))
    ap.add_argument("--generated", type=int, default=20)
    ap.add_argument("--known", default=os.path.join(HERE, "known.txt"))
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    t0 = time.monotonic()

    rules = [r for r in D.load_known(args.known) if r["item"].startswith("CONDSTORE:")]
    H.remove_stale_accounts()
    account = H.Account()
    sides = []
    try:
        mbox = os.path.join(account.top, "condstore.mbox")
        n = build_mbox(mbox, args.fixtures, args.generated)
        if n < MIN_MESSAGES:
            raise SystemExit("the mbox has %d messages; the scenario needs %d" % (
                n, MIN_MESSAGES))
        names = [args.a + ("-a" if args.a == args.b else ""),
                 args.b + ("-b" if args.a == args.b else "")]
        for name, kind in zip(names, (args.a, args.b)):
            sides.append(Side(name, kind, account, mbox, args.imapd_cmd, args.timeout))
        for s in sides:
            s.expect = {}
            try:
                run(s, n)
            except (H.ServerGone, H.StepTimeout) as e:
                print("%s: cannot start: %s" % (s.name, e))
                return 2
            finally:
                s.stop()
            if s.broken:
                print("ERROR %s: the scenario stopped: %s" % (s.name, s.broken))
        A, B = sides
        print("CONDSTORE/QRESYNC scenario on %d messages: %s vs %s" % (n, A.name, B.name))
        if args.verbose:
            for s in sides:
                print("-- %s: checkpoints %s, UIDVALIDITY %s" % (
                    s.name, " ".join("%s=%s" % kv for kv in sorted(s.cps.items())),
                    s.uidvalidity))
        # every check either server has an expectation or an answer for (an answer without
        # an expectation is judged wrong, so that no step goes unchecked)
        checks = []
        for c in list(A.expect) + list(B.expect) + list(A.obs) + list(B.obs):
            if c not in checks:
                checks.append(c)
        extra = ["vanished-not-expunge", "fetch-has-uid-modseq", "store-modseq-grows"]
        checks = [c for c in checks if c not in extra] + extra
        for s in sides:
            for c in extra:
                s.expect[c] = []
        wrong = known = notes = 0
        for c in checks:
            verdicts = {}
            for s in sides:
                exp = s.expect.get(c, A.expect.get(c, B.expect.get(c)))
                if c in s.obs and c not in s.expect and not isinstance(s.obs[c], D.Err):
                    verdicts[s.name] = ("bad", "no expectation for this answer (script bug)")
                    continue
                verdicts[s.name] = judge(exp, s.obs.get(c))
            for s in sides:
                v, text = verdicts[s.name]
                if v == "ok":
                    continue
                if v == "note":
                    notes += 1
                    print("NOTE %s %s: %s" % (c, s.name, text))
                    continue
                r = D.explained(rules, "CONDSTORE:" + c.split(":")[0], s.kind) or \
                    D.explained(rules, "CONDSTORE:" + c, s.kind)
                if r:
                    known += 1
                    print("known (known.txt:%d) %s %s: %s" % (r["line"], c, s.name, text))
                    if not args.verbose:
                        continue
                else:
                    wrong += 1
                    print("WRONG %s %s (RFC %s): %s" % (c, s.name, rfc_of(c), text))
                for cmd, lines in s.raw.get(c.split(":")[0], [])[-2:]:
                    print("    C: %s" % cmd)
                    for ln in lines[-12:]:
                        print("    S: %s" % ln.decode("utf-8", "replace")[:200])
            ga, gb = A.obs.get(c), B.obs.get(c)
            if ga != gb and all(verdicts[s.name][0] != "bad" for s in sides):
                notes += 1
                print("NOTE %s: the servers differ, both allowed: %s: %s; %s: %s" % (
                    c, A.name, brief(ga), B.name, brief(gb)))
            elif ga == gb and all(verdicts[s.name][0] == "bad" for s in sides):
                print("    (both servers give the same answer: check the scenario's model)")
            if args.verbose:
                print("%-40s %s: %-4s %s: %-4s  %s" % (
                    c, A.name, verdicts[A.name][0], B.name, verdicts[B.name][0],
                    brief(ga)[:80]))
        for s in sides:
            if s.broken:
                wrong += 1
        print("\nsummary: %d checks on each of 2 servers; %d wrong, %d known, %d notes; "
              "%.1f s" % (len(checks), wrong, known, notes, time.monotonic() - t0))
        for r in rules:
            if r["used"]:
                print("  known.txt:%d explains %d: %s %s" % (r["line"], r["used"], r["item"],
                                                          r["msg"]))
        if args.verbose:
            for s in sides:
                print("\n-- transcript of %s" % s.name)
                for cmd, lines in s.transcript:
                    print("C: %s" % cmd)
                    for ln in lines:
                        print("S: %s" % ln.decode("utf-8", "replace")[:200])
        return 0 if wrong == 0 else 1
    finally:
        for s in sides:
            s.stop()
        if os.environ.get("DIFF_KEEP_LOGS"):
            for s in sides:
                try:
                    shutil.copy(s.srv.log + ".stderr", "/tmp/condstore-%s.stderr" % s.name)
                except OSError:
                    pass
        account.cleanup()


def build_mbox(path, fixtures, generated):
    """diff.py's mbox with INITIAL's flags in each message's header; returns the count."""
    plain = path + ".plain"
    D.build_mbox(plain, fixtures, generated, [])
    with open(plain, "rb") as f:
        data = f.read()
    os.unlink(plain)
    starts = [0] + [m.start() + 2 for m in re.finditer(rb"\n\nFrom ", data)]
    msgs = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data)])]
    out = []
    for k, msg in enumerate(msgs, 1):
        fl = INITIAL.get(k, ())
        hdr = b""
        if "\\Seen" in fl:
            hdr += b"Status: RO\n"
        xs = "".join(c for f, c in (("\\Answered", "A"), ("\\Flagged", "F"), ("\\Draft", "T"),
                                    ("\\Deleted", "D")) if f in fl)
        if xs:
            hdr += b"X-Status: %s\n" % xs.encode()
        kw = [f for f in fl if not f.startswith("\\")]
        if kw:
            hdr += b"X-Keywords: %s\n" % " ".join(kw).encode()
        if k == 1:
            # the keywords list: Dovecot takes X-Keywords only for keywords listed here
            words = sorted({f for v in INITIAL.values() for f in v if not f.startswith("\\")})
            hdr = b"X-IMAPbase: %d %010d %s\n" % (UIDVALIDITY, len(msgs) + 1,
                                                  " ".join(words).encode()) + hdr
        hdr += b"X-UID: %d\n" % k
        nl = msg.index(b"\n") + 1
        out.append(msg[:nl] + hdr + msg[nl:])
    with open(path, "wb") as f:
        f.write(b"".join(out))
    return len(msgs)


if __name__ == "__main__":
    sys.exit(main())
