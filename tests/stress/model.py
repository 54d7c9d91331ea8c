"""What the harness knows about the mailbox, shared by every client, the MDA and the mail
reader, and the checks that need more than one session's view.

Time is a counter (tick()) taken under one lock: "A.done < B.sent" means the harness had
A's tagged response before it sent B, so A took effect before B began.

- Messages (MsgRec) are known by Message-ID: their exact bytes (as a client must see them,
  CRLF), how they got in (init, append, mda), their flags when they got in, and whether they
  got in for sure (present), maybe (the APPEND's session was killed), or not (NO).
- UIDs (UidRec): the message each shows, the first value seen of every fetched item, and
  every flag operation aimed at it: STOREs (+, -, =) and the mail reader's rewrites (sys=:
  the system flags set to a value, keywords kept), each with the interval [sent, done] in
  which it took effect, ambiguous when its outcome is unknown (its session was killed, or
  it got NO).
- states(): the set of flag values a UID can have after its operations.  Operations whose
  intervals do not overlap happened in that order; overlapping ones in any order consistent
  with the intervals; ambiguous ones may be missing.  None when unknown (too many racing,
  or the initial flags are not known).
- Expunges: which UIDs a session was told are gone and whether that was allowed (\\Deleted
  was stored and an EXPUNGE was sent, or the mail reader dropped it).
"""

import threading

INF = float("inf")
SYSTEM = {"\\answered": "\\Answered", "\\flagged": "\\Flagged", "\\deleted": "\\Deleted",
          "\\seen": "\\Seen", "\\draft": "\\Draft"}
MAX_GROUP = 7          # racing operations on one UID enumerated exactly; more -> unknown
MAX_KEPT = 400         # violations kept per kind (all are counted)


def canon_flags(names):
    """frozenset of flags: system flags in their canonical spelling, \\Recent left out."""
    out = set()
    for f in names:
        lf = f.lower()
        if lf == "\\recent":
            continue
        out.add(SYSTEM.get(lf, f))
    return frozenset(out)


def fmt_flags(s):
    return "(" + " ".join(sorted(s)) + ")"


class Op:
    __slots__ = ("kind", "flags", "sent", "done", "ambiguous", "who", "cmd")

    def __init__(self, kind, flags, sent, who, cmd):
        self.kind = kind
        self.flags = flags
        self.sent = sent
        self.done = INF
        self.ambiguous = False
        self.who = who
        self.cmd = cmd

    def apply(self, s):
        k = self.kind
        if k == "+":
            return s | self.flags
        if k == "-":
            return s - self.flags
        if k == "=":
            return self.flags
        return frozenset(f for f in s if not f.startswith("\\")) | self.flags

    def sets_deleted(self):
        return self.kind in ("+", "=", "sys=") and "\\Deleted" in self.flags

    def describe(self):
        d = "INF" if self.done == INF else str(self.done)
        return "%s %s%s [%d,%s]%s" % (self.who, self.kind, fmt_flags(self.flags), self.sent, d,
                                     " ambiguous" if self.ambiguous else "")


class MsgRec:
    __slots__ = ("key", "content", "origin", "flags", "state", "sent", "done", "uid",
                 "removed", "_fields", "who")

    def __init__(self, key, content, origin, flags, state, who):
        self.key = key
        self.content = content          # CRLF, as a client must see BODY[]
        self.origin = origin
        self.flags = flags
        self.state = state              # present, pending, maybe, failed
        self.sent = 0
        self.done = 0
        self.uid = None
        self.removed = None             # (how, tick) once gone for sure
        self._fields = None
        self.who = who

    def fields(self):
        if self._fields is None:
            head = self.content.split(b"\r\n\r\n", 1)[0] + b"\r\n"
            out = []
            for ln in head.split(b"\r\n")[:-1]:
                if ln[:1] in (b" ", b"\t") and out:
                    out[-1][1] += ln + b"\r\n"
                else:
                    out.append([ln.split(b":", 1)[0].strip().lower(), ln + b"\r\n"])
            self._fields = out
        return self._fields

    def header_fields(self, names):
        want = set(n.lower() for n in names)
        return b"".join(raw for n, raw in self.fields() if n in want) + b"\r\n"

    def text(self):
        i = self.content.find(b"\r\n\r\n")
        return self.content[i + 4:] if i >= 0 else b""


class UidRec:
    __slots__ = ("uid", "key", "ops", "init", "values", "announced", "mutt_drop", "version",
                 "cache", "seen_first")

    def __init__(self, uid):
        self.uid = uid
        self.key = None
        self.ops = []
        self.init = None
        self.values = {}
        self.announced = None       # tick of the first EXPUNGE a session got for it
        self.mutt_drop = None       # tick at which the mail reader held the locks to drop it
        self.version = 0
        self.cache = None
        self.seen_first = None


class ExpCmd:
    __slots__ = ("sent", "done", "uids", "ambiguous", "who")

    def __init__(self, sent, uids, who):
        self.sent = sent
        self.done = INF
        self.uids = uids
        self.ambiguous = False
        self.who = who


class Violation:
    __slots__ = ("kind", "who", "cmd", "line", "detail", "tick")

    def as_dict(self):
        return {"kind": self.kind, "client": self.who, "command": self.cmd,
                "response": self.line, "detail": self.detail, "tick": self.tick}


class Model:
    def __init__(self, initial_count):
        self.lock = threading.RLock()
        self._tick = 0
        self.initial_count = initial_count
        self.uidvalidity = None
        self.msgs = {}
        self.uids = {}
        self.expcmds = []
        self.max_uid = 0
        self.unattributed = 0
        self.violations = {}
        self.violation_count = {}
        self.allowed = {}
        self.notes = {}

    # -- basics ------------------------------------------------------------------------------
    def tick(self):
        with self.lock:
            self._tick += 1
            return self._tick

    def violation(self, kind, who, cmd, line, detail=""):
        with self.lock:
            self.violation_count[kind] = self.violation_count.get(kind, 0) + 1
            lst = self.violations.setdefault(kind, [])
            if len(lst) < MAX_KEPT:
                v = Violation()
                v.kind, v.who, v.cmd, v.line, v.detail = kind, who, cmd, line, detail
                v.tick = self._tick
                lst.append(v)

    def allow(self, what):
        with self.lock:
            self.allowed[what] = self.allowed.get(what, 0) + 1

    def note(self, what, n=1):
        with self.lock:
            self.notes[what] = self.notes.get(what, 0) + n

    def total_violations(self):
        with self.lock:
            return sum(self.violation_count.values())

    def uidrec(self, uid):
        r = self.uids.get(uid)
        if r is None:
            r = self.uids[uid] = UidRec(uid)
        return r

    def present_count(self):
        """Messages in the mailbox as far as the harness knows (for the caps)."""
        with self.lock:
            return sum(1 for m in self.msgs.values()
                       if m.state in ("present", "pending", "maybe") and m.removed is None)

    # -- messages ----------------------------------------------------------------------------
    def add_message(self, key, content, origin, flags, state, who):
        with self.lock:
            assert key not in self.msgs, key
            m = MsgRec(key, content, origin, flags, state, who)
            m.sent = self._tick
            self.msgs[key] = m
            return m

    def set_uidvalidity(self, v, who, line):
        with self.lock:
            if self.uidvalidity is None:
                self.uidvalidity = v
                return True
            if v != self.uidvalidity:
                self.violation("UIDVALIDITY changed", who, "SELECT", line,
                               "was %d, now %d: every UID the clients know is void" %
                               (self.uidvalidity, v))
                return False
            return True

    def link(self, uid, key, who, cmd, line):
        """uid shows the message key.  False (and a violation) when that contradicts what
        is known."""
        with self.lock:
            r = self.uidrec(uid)
            m = self.msgs.get(key)
            if m is None:
                self.violation("message nobody put in", who, cmd, line,
                               "UID %d shows Message-ID %s, which the harness never "
                               "appended or delivered" % (uid, key.decode("latin-1")))
                return False
            if r.key is not None and r.key != key:
                self.violation("UID shows another message", who, cmd, line,
                               "UID %d showed %s before, now %s" % (
                                   uid, r.key.decode("latin-1"), key.decode("latin-1")))
                return False
            if m.uid is not None and m.uid != uid:
                self.violation("message under two UIDs", who, cmd, line,
                               "%s is UID %d and UID %d (duplicated, or its UID changed)" % (
                                   key.decode("latin-1"), m.uid, uid))
                return False
            if r.key is None:
                r.key = key
                m.uid = uid
                if r.init is None:
                    r.init = m.flags
                    r.version += 1
            return True

    def learn_uid(self, uid):
        with self.lock:
            if uid > self.max_uid:
                self.max_uid = uid
            r = self.uidrec(uid)
            if r.seen_first is None:
                r.seen_first = self._tick
            return r

    # -- flag operations ---------------------------------------------------------------------
    def begin_ops(self, uids, kind, flags, who, cmd):
        """Registers one operation per UID, sent now.  Returns them (finish_ops() later)."""
        with self.lock:
            t = self.tick()
            ops = []
            for u in uids:
                op = Op(kind, flags, t, who, cmd)
                r = self.uidrec(u)
                r.ops.append(op)
                r.version += 1
                ops.append((u, op))
            return ops

    def finish_ops(self, ops, ambiguous=False):
        with self.lock:
            t = self.tick()
            for u, op in ops:
                op.done = t
                op.ambiguous = ambiguous
                self.uids[u].version += 1
            return t

    def set_init(self, uid, flags):
        with self.lock:
            r = self.uidrec(uid)
            if r.init is None:
                r.init = flags
                r.version += 1

    def states(self, uid, upto_op=None):
        """Possible flag values of uid after all its operations (or, with upto_op, after
        those sent no later than it).  None if unknown."""
        with self.lock:
            r = self.uids.get(uid)
            if r is None:
                return None
            if upto_op is None and r.cache is not None and r.cache[0] == r.version:
                return r.cache[1]
            ops = sorted(r.ops, key=lambda o: o.sent)
            if upto_op is not None:
                ops = [o for o in ops if o.sent <= upto_op.sent]
            res = self._compute(r.init, ops)
            if upto_op is None:
                r.cache = (r.version, res)
            return res

    @staticmethod
    def _compute(init, ops):
        states = None if init is None else frozenset([init])
        group = []
        end = -INF
        for op in ops:
            if group and op.sent > end:
                states = Model._fold(states, group)
                group = []
                end = -INF
            group.append(op)
            end = max(end, op.done)
        if group:
            states = Model._fold(states, group)
        return states

    @staticmethod
    def _fold(states, group):
        if len(group) == 1 and group[0].kind == "=" and not group[0].ambiguous:
            return frozenset([group[0].flags])
        if states is None or len(group) > MAX_GROUP:
            return None
        n = len(group)
        pred = []
        for j in range(n):
            m = 0
            for i in range(n):
                if i != j and group[i].done < group[j].sent:
                    m |= 1 << i
            pred.append(m)
        full = (1 << n) - 1
        seen = set()
        stack = [(0, s) for s in states]
        out = set()
        while stack:
            mask, s = stack.pop()
            if (mask, s) in seen:
                continue
            seen.add((mask, s))
            if mask == full:
                out.add(s)
                continue
            for j in range(n):
                if mask & (1 << j) or (pred[j] & mask) != pred[j]:
                    continue
                stack.append((mask | (1 << j), group[j].apply(s)))
                if group[j].ambiguous:
                    stack.append((mask | (1 << j), s))
        return frozenset(out)

    def settled_before(self, uid, t):
        """True when every operation on uid took effect before tick t (none in flight, none
        since), and the last group of racing operations has none of the mail reader's (a
        server may notice a rewrite of the file only when it next locks it)."""
        with self.lock:
            r = self.uids.get(uid)
            if r is None or not r.ops:
                return True
            ops = sorted(r.ops, key=lambda o: o.sent)
            group = []
            end = -INF
            for op in ops:
                if op.done >= t:
                    return False
                if group and op.sent > end:
                    group = []
                    end = -INF
                group.append(op)
                end = max(end, op.done)
            return not any(op.kind == "sys=" for op in group)

    def overlapping(self, uid, op):
        """Other operations on uid whose intervals meet op's."""
        with self.lock:
            r = self.uids.get(uid)
            return [o for o in r.ops if o is not op and not (o.done < op.sent or
                                                           o.sent > op.done)]

    def history(self, uid, limit=6):
        with self.lock:
            r = self.uids.get(uid)
            if r is None:
                return "no operations"
            ops = sorted(r.ops, key=lambda o: o.sent)
            head = "init %s; " % (fmt_flags(r.init) if r.init is not None else "?")
            parts = [o.describe() for o in ops[-limit:]]
            if len(ops) > limit:
                parts.insert(0, "... %d earlier" % (len(ops) - limit))
            return head + "; ".join(parts)

    # -- expunges ----------------------------------------------------------------------------
    def begin_expunge(self, uids, who):
        with self.lock:
            e = ExpCmd(self.tick(), uids, who)
            self.expcmds.append(e)
            return e

    def finish_expunge(self, e, ambiguous=False):
        with self.lock:
            e.done = self.tick()
            e.ambiguous = ambiguous

    def _deleted_before(self, r, t):
        return any(op.sets_deleted() and op.sent < t for op in r.ops)

    def _expunge_sent_before(self, uid, t):
        for e in self.expcmds:
            if e.sent < t and (e.uids is None or uid in e.uids):
                return True
        return False

    def maybe_gone(self, uid, t=None):
        """Might uid have left the mailbox by tick t (default: now)?"""
        with self.lock:
            if t is None:
                t = self._tick + 1
            r = self.uids.get(uid)
            if r is None:
                return False
            if r.announced is not None and r.announced < t:
                return True
            if r.mutt_drop is not None and r.mutt_drop < t:
                return True
            if r.key is not None:
                m = self.msgs.get(r.key)
                if m is not None and m.removed is not None:
                    return True
            return self._deleted_before(r, t) and self._expunge_sent_before(uid, t)

    def announce_expunge(self, uid, who, cmd, line):
        """A session was told uid is gone.  Checks that it could be."""
        with self.lock:
            t = self.tick()
            r = self.uidrec(uid)
            ok = (r.mutt_drop is not None and r.mutt_drop < t) or \
                (self._deleted_before(r, t) and self._expunge_sent_before(uid, t)) or \
                r.announced is not None
            if not ok:
                self.violation("EXPUNGE of a message never deleted", who, cmd, line,
                               "UID %d: no STORE of \\Deleted (or no EXPUNGE) was sent for "
                               "it and no local program removed it; %s" % (
                                   uid, self.history(uid)))
            if r.announced is None:
                r.announced = t
                if r.key is not None:
                    m = self.msgs.get(r.key)
                    if m is not None and m.removed is None:
                        m.removed = ("expunge", t)

    def mutt_dropped(self, uid, t):
        """The mail reader is about to drop uid (it holds the locks since before t)."""
        with self.lock:
            r = self.uidrec(uid)
            if r.mutt_drop is None:
                r.mutt_drop = t

    def mutt_drop_done(self, key, t):
        """The file no longer has key since t."""
        with self.lock:
            m = self.msgs.get(key)
            if m is not None and m.removed is None:
                m.removed = ("mutt", t)

    def unattributed_expunge(self):
        with self.lock:
            self.unattributed += 1

    def ambiguous_expunges(self):
        with self.lock:
            return any(e.ambiguous for e in self.expcmds)
