"""Updating SEARCH and SORT results as a client keeps them (stress.py --context, RFC 5267 4.3).

A Context is one session's copy of the result of `[UID] SEARCH|SORT RETURN (UPDATE ALL) ...`:
the numbers (UIDs or sequence numbers) in the requested order, mailbox order for SEARCH and
the sorted order for SORT.  The session feeds it the first ESEARCH of its tag (the result),
then every ESEARCH ADDTO/REMOVEFROM of that tag and, for a sequence-number context, every
EXPUNGE, whatever command they came with.  Each step returns the violations it found as
(kind, detail); after one the copy is no longer known and the context is void (not judged
again, nor at quiescence).

Standard library only; nothing here talks to a server (test_context_copy.py feeds it by hand).
"""

import collections

from imapconn import Atom, Str, parse

# name, verb, search key(s) (and sort criteria), UID numbers, sorted positions
KINDS = [
    ("UID SEARCH UNSEEN", b"UID SEARCH", b"UNSEEN", True, False),
    ("SEARCH FLAGGED", b"SEARCH", b"FLAGGED", False, False),
    ("UID SORT SUBJECT", b"UID SORT", b"(SUBJECT) UTF-8 UNDELETED", True, True),
    ("SORT REVERSE DATE", b"SORT", b"(REVERSE DATE) UTF-8 ALL", False, True),
]

# Violation kinds (README.md, "--context")
ADD_PRESENT = "ADDTO of a number in the result"
REMOVE_ABSENT = "REMOVEFROM of a number not in the result"
POSITION = "context position out of range"
RUN_MISMATCH = "REMOVEFROM run does not match the result"
ABOVE_EXISTS = "context number above EXISTS"
EXPUNGE_IN = "EXPUNGE of a number still in a context"
DOWNWARDS = "range written downwards"
MALFORMED = "malformed ESEARCH"
NO_RESULT = "no ESEARCH for RETURN (UPDATE)"
NO_CONTEXT = "ESEARCH update of an unknown tag"
FINAL = "final: context differs from a fresh run"


class Context:
    def __init__(self, kind):
        self.name, self.verb, self.criteria, self.uid, self.sorted = kind
        self.tag = None             # bytes, once the command has one
        self.state = "pending"      # pending (no result yet), live, void, refused
        self.nums = []
        self.updates = 0            # ESEARCH updates applied
        self.recent = collections.deque(maxlen=6)   # the last changes, for the reports

    def text(self):
        """The command that starts it."""
        return self.verb + b" RETURN (UPDATE ALL) " + self.criteria

    def fresh_text(self):
        """The same search without UPDATE, answered by * SEARCH or * SORT."""
        return self.verb + b" " + self.criteria

    def describe(self):
        return "context %s (%s), copy of %d%s" % (
            self.tag.decode() if self.tag else "?", self.text().decode(), len(self.nums),
            "; last changes: " + " | ".join(self.recent) if self.recent else "")

    def _void(self, found):
        if found:
            self.state = "void"
        return found

    # -- the result ----------------------------------------------------------------------
    def start(self, items, exists):
        """The first ESEARCH of the tag: ALL (or nothing, when no message matches)."""
        found = []
        soft = []           # reported, but the copy is still known
        nums = []
        for name, val in items:
            if name != b"ALL":
                continue
            got = expand(val)
            if got is None:
                return self._void([(MALFORMED, "ALL %r is not a set of numbers" % (val,))])
            nums, down = got
            if down and self.sorted:
                soft.append((DOWNWARDS, "ALL %s (RFC 5267 3.2)" % bytes(val).decode()))
        if len(set(nums)) != len(nums):
            found.append((MALFORMED, "ALL names a number twice"))
        if not self.uid and nums and max(nums) > exists:
            found.append((ABOVE_EXISTS, "ALL has %d, the session knows %d messages" % (
                max(nums), exists)))
        self.nums = nums if self.sorted else sorted(nums)
        self.state = "live"
        self.recent.append("ALL of %d" % len(nums))
        return soft + self._void(found)

    # -- ADDTO, REMOVEFROM ---------------------------------------------------------------
    def update(self, items, exists, line):
        """One ESEARCH update, its items in order (RFC 5267 4.3.2)."""
        found = []
        soft = []
        self.updates += 1
        for name, val in items:
            if name not in (b"ADDTO", b"REMOVEFROM"):
                continue
            if not isinstance(val, list) or not val or len(val) % 2:
                return self._void([(MALFORMED, "%s needs (position set ...)" %
                                    name.decode())])
            for k in range(0, len(val), 2):
                pos, st = val[k], val[k + 1]
                if not isinstance(pos, Atom) or not pos.isdigit():
                    return self._void([(MALFORMED, "%s position %r" % (name.decode(), pos))])
                got = expand(st)
                if got is None:
                    return self._void([(MALFORMED, "%s set %r" % (name.decode(), st))])
                vals, down = got
                pos = int(pos)
                what = "%s (%d %s)" % (name.decode(), pos, bytes(st).decode())
                if down and self.sorted:
                    soft.append((DOWNWARDS, "%s in %s (RFC 5267 3.2)" % (what, line)))
                if name == b"ADDTO":
                    found += self._add(pos, vals, exists, what)
                else:
                    found += self._remove(pos, vals, exists, what)
                if found:
                    return soft + self._void([(k_, "%s in %s; %s" % (d, line, self.describe()))
                                              for k_, d in found])
                self.recent.append(what)
        return soft

    def _check_numbers(self, vals, exists, what):
        if len(set(vals)) != len(vals):
            return [(MALFORMED, "%s names a number twice" % what)]
        if not self.uid and max(vals) > exists:
            return [(ABOVE_EXISTS, "%s: %d, the session knows %d messages (RFC 5267 4.3.3: "
                     "ADDTO after EXISTS; 4.3.4: REMOVEFROM before EXPUNGE)" % (
                         what, max(vals), exists))]
        return []

    def _add(self, pos, vals, exists, what):
        bad = self._check_numbers(vals, exists, what)
        if bad:
            return bad
        there = sorted(set(vals) & set(self.nums))
        if there:
            return [(ADD_PRESENT, "%s: %s already in the result" % (
                what, ",".join(str(x) for x in there[:10])))]
        if pos == 0:
            if self.sorted:
                return [(POSITION, "%s: position 0 is for SEARCH only (RFC 5267 4.3.3)" %
                         what)]
            self.nums = sorted(self.nums + vals)
            return []
        if pos > len(self.nums) + 1:
            return [(POSITION, "%s: the result has %d entries" % (what, len(self.nums)))]
        self.nums[pos - 1:pos - 1] = vals
        if not self.sorted and self.nums != sorted(self.nums):
            return [(POSITION, "%s: breaks the mailbox order of a SEARCH (RFC 5267 4.1)" %
                     what)]
        return []

    def _remove(self, pos, vals, exists, what):
        bad = self._check_numbers(vals, exists, what)
        if bad:
            return bad
        if pos == 0:
            if self.sorted:
                return [(POSITION, "%s: position 0 is for SEARCH only (RFC 5267 4.3.4)" %
                         what)]
            absent = sorted(set(vals) - set(self.nums))
            if absent:
                return [(REMOVE_ABSENT, "%s: %s not in the result" % (
                    what, ",".join(str(x) for x in absent[:10])))]
            gone = set(vals)
            self.nums = [x for x in self.nums if x not in gone]
            return []
        if pos + len(vals) - 1 > len(self.nums):
            absent = sorted(set(vals) - set(self.nums))
            if absent:
                return [(REMOVE_ABSENT, "%s: %s not in the result" % (
                    what, ",".join(str(x) for x in absent[:10])))]
            return [(POSITION, "%s: the result has %d entries" % (what, len(self.nums)))]
        have = self.nums[pos - 1:pos - 1 + len(vals)]
        if have != vals:
            absent = sorted(set(vals) - set(self.nums))
            if absent:
                return [(REMOVE_ABSENT, "%s: %s not in the result" % (
                    what, ",".join(str(x) for x in absent[:10])))]
            return [(RUN_MISMATCH, "%s: positions %d-%d hold %s" % (
                what, pos, pos + len(vals) - 1, ",".join(str(x) for x in have)))]
        del self.nums[pos - 1:pos - 1 + len(vals)]
        return []

    # -- EXPUNGE -------------------------------------------------------------------------
    def expunge(self, n):
        """* n EXPUNGE: a sequence-number result loses no member here (REMOVEFROM comes
        first, RFC 5267 4.3.4), and the numbers above n go down by one."""
        if self.uid or self.state != "live":
            return []
        if n in self.nums:
            return self._void([(EXPUNGE_IN, "message %d is still in the result: no "
                                "REMOVEFROM before the EXPUNGE (RFC 5267 4.3.4); %s" % (
                                    n, self.describe()))])
        self.nums = [x - 1 if x > n else x for x in self.nums]
        return []

    def compare(self, fresh):
        """At quiescence: the copy against a fresh run (a list in the requested order)."""
        if not self.sorted:
            fresh = sorted(fresh)
        if fresh == self.nums:
            return []
        extra = sorted(set(self.nums) - set(fresh))
        missing = sorted(set(fresh) - set(self.nums))
        if not extra and not missing:
            i = next(k for k in range(len(fresh)) if fresh[k] != self.nums[k])
            diff = "same numbers in another order, from position %d: copy %s, fresh %s" % (
                i + 1, self.nums[i:i + 5], fresh[i:i + 5])
        else:
            diff = "only in the copy: %s; only in the fresh run: %s" % (
                fmt_nums(extra), fmt_nums(missing))
        return [(FINAL, "%s: %d in the copy, %d in a fresh %s; %s; %d updates applied; %s" % (
            self.tag.decode(), len(self.nums), len(fresh), self.fresh_text().decode(), diff,
            self.updates, self.describe()))]


def fmt_nums(v):
    return ",".join(str(x) for x in v[:12]) + (",..." if len(v) > 12 else "") if v else "-"


def expand(val):
    """The numbers of a sequence set as written (a,b:c; no *), in that order with each
    range ascending, and whether a range was written downwards; None if malformed."""
    if not isinstance(val, Atom) or not val:
        return None
    out = []
    down = False
    for part in bytes(val).split(b","):
        a, sep, b = part.partition(b":")
        if not a.isdigit() or (sep and not b.isdigit()):
            return None
        a = int(a)
        b = int(b) if sep else a
        if a < 1 or b < 1 or abs(b - a) > 1000000:
            return None
        if a > b:
            down = True
            a, b = b, a
        out.extend(range(a, b + 1))
    return out, down


def parse_esearch(rest):
    """(tag, uid, [(NAME, value), ...]) of an ESEARCH response after "* ESEARCH ", tag
    None without a correlator.  Raises ValueError when malformed."""
    toks = parse(rest)
    tag = None
    if toks and isinstance(toks[0], list):
        c = toks.pop(0)
        if len(c) != 2 or not isinstance(c[0], Atom) or bytes(c[0]).upper() != b"TAG" or \
                not isinstance(c[1], (Str, Atom)):
            raise ValueError("bad search correlator")
        tag = bytes(c[1])
    uid = False
    if toks and isinstance(toks[0], Atom) and bytes(toks[0]).upper() == b"UID":
        toks.pop(0)
        uid = True
    if len(toks) % 2:
        raise ValueError("return data is not name/value pairs")
    items = []
    for k in range(0, len(toks), 2):
        if not isinstance(toks[k], Atom):
            raise ValueError("return data name is not an atom")
        items.append((bytes(toks[k]).upper(), toks[k + 1]))
    return tag, uid, items


def parse_plain(rest):
    """The numbers of * SEARCH or * SORT (after the word)."""
    out = []
    for w in rest.split():
        if not w.isdigit():
            if w.startswith(b"("):      # (MODSEQ n) at the end, RFC 7162 3.1.5
                break
            raise ValueError("not a number: %r" % w)
        out.append(int(w))
    return out
