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
- states(): a Poss, what each flag of a UID may be after its operations: the value of the
  last operation touching it, for every operation that can be last given the intervals
  (non-overlapping operations happened in that order), or its earlier value if every
  operation on it may have failed.  Flags are judged one by one: RFC 3501 does not make a
  STORE atomic across flags.
- A UIDVALIDITY change voids every UID: rebase() starts a new generation, in which the
  flags of the messages already there are unknown; sessions of an older generation can
  no longer record anything (Stale).
- Expunges: which UIDs a session was told are gone and whether that was allowed (\\Deleted
  was stored and an EXPUNGE was sent, or the mail reader dropped it).
"""

import threading

INF = float("inf")
SYSTEM = {"\\answered": "\\Answered", "\\flagged": "\\Flagged", "\\deleted": "\\Deleted",
          "\\seen": "\\Seen", "\\draft": "\\Draft"}
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


class Stale(Exception):
    """A session of an earlier UID generation (before a UIDVALIDITY change) tried to
    record something."""


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
        return "%s %s %s%s [%d,%s]%s" % (self.who, self.cmd.split(" ", 1)[0], self.kind,
                                        fmt_flags(self.flags), self.sent, d,
                                        " ambiguous" if self.ambiguous else "")


def touches(op, f):
    """The value op gives flag f, or None if it leaves f alone."""
    k = op.kind
    if k == "+":
        return True if f in op.flags else None
    if k == "-":
        return False if f in op.flags else None
    if k == "=":
        return f in op.flags
    if f.startswith("\\"):
        return f in op.flags
    return None


class Poss:
    """The values each flag of a message may have after a list of operations: those of the
    last operation that touches it, for every operation that can be last (no operation
    that surely happened had to come after it), and the initial value if all may have
    failed.  init None: the initial flags are unknown."""

    def __init__(self, init, ops):
        self.init = init
        self.ops = ops
        self.memo = {}

    def values(self, f):
        v = self.memo.get(f)
        if v is not None:
            return v
        touching = [o for o in self.ops if touches(o, f) is not None]
        out = set()
        for t in touching:
            if all(s is t or s.ambiguous or not (t.done < s.sent) for s in touching):
                out.add(touches(t, f))
        if all(o.ambiguous for o in touching):
            if self.init is None:
                out.update((True, False))
            else:
                out.add(f in self.init)
        v = self.memo[f] = frozenset(out)
        return v

    def universe(self, extra=()):
        u = set(extra)
        if self.init:
            u.update(self.init)
        for o in self.ops:
            u.update(o.flags)
        return u

    def allows(self, flags):
        return all((f in flags) in self.values(f) for f in self.universe(flags))

    def must(self, f):
        return self.values(f) == frozenset([True])

    def describe(self, extra=()):
        sure, maybe = [], []
        for f in sorted(self.universe(extra)):
            v = self.values(f)
            if v == frozenset([True]):
                sure.append(f)
            elif len(v) == 2:
                maybe.append(f)
        return "(" + " ".join(sure) + ")" + (" and maybe " + " ".join(maybe) if maybe else "")


class MsgRec:
    __slots__ = ("key", "content", "origin", "flags", "state", "sent", "done", "uid",
                 "removed", "_fields", "who", "flags_known")

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
        self.flags_known = True         # false for messages older than a UIDVALIDITY change

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
                 "cache", "seen_first", "taint", "contested")

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
        self.taint = None           # tick of a reported flag inconsistency
        self.contested = False      # it showed two messages: expunges of it are not judged


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
        self.link_reported = set()
        self.uids_void = False
        self.uidvalidity_changed_seen = False
        self.generation = 0
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

    def check_gen(self, gen):
        if gen is not None and gen != self.generation:
            raise Stale()

    def rebase(self, v):
        """UIDVALIDITY became v: every UID known is void.  A new generation of UIDs starts;
        the flags of the messages already there are unknown from now on."""
        with self.lock:
            self.generation += 1
            self.uidvalidity = v
            self.uids = {}
            self.expcmds = []
            self.max_uid = 0
            self.unattributed = 0
            for m in self.msgs.values():
                m.uid = None
                m.flags_known = False

    def forget_uids(self):
        """After a UIDVALIDITY change every UID is void: start a new UID namespace (for the
        final check, which then compares messages by Message-ID only)."""
        with self.lock:
            self.uids_void = True
            self.uidvalidity = None
            self.uids = {}
            self.max_uid = 0
            for m in self.msgs.values():
                m.uid = None

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

    def set_uidvalidity(self, v, who, line, gen=None):
        """False (and a violation) when v is not the UIDVALIDITY known: the caller re-bases
        the run."""
        with self.lock:
            self.check_gen(gen)
            if self.uidvalidity is None:
                self.uidvalidity = v
                return True
            if v != self.uidvalidity:
                self.uidvalidity_changed_seen = True
                self.violation("UIDVALIDITY changed", who, "SELECT", line,
                               "was %d, now %d: every UID the clients know is void" %
                               (self.uidvalidity, v))
                return False
            return True

    def link(self, uid, key, who, cmd, line, gen=None):
        """uid shows the message key.  False (and a violation) when that contradicts what
        is known."""
        with self.lock:
            self.check_gen(gen)
            r = self.uidrec(uid)
            m = self.msgs.get(key)
            if m is None:
                self.violation("message nobody put in", who, cmd, line,
                               "UID %d shows Message-ID %s, which the harness never "
                               "appended or delivered" % (uid, key.decode("latin-1")))
                return False
            if r.key is not None and r.key != key:
                r.contested = True
                if ("uid", uid, key) not in self.link_reported:
                    self.link_reported.add(("uid", uid, key))
                    self.violation("UID shows another message", who, cmd, line,
                                   "UID %d showed %s before, now %s" % (
                                       uid, r.key.decode("latin-1"), key.decode("latin-1")))
                return False
            if m.uid is not None and m.uid != uid:
                r.contested = True
                self.uidrec(m.uid).contested = True
                if ("key", key, uid) not in self.link_reported:
                    self.link_reported.add(("key", key, uid))
                    self.violation("message under two UIDs", who, cmd, line,
                                   "%s is UID %d and UID %d (duplicated, or its UID "
                                   "changed)" % (key.decode("latin-1"), m.uid, uid))
                return False
            if r.key is None:
                r.key = key
                m.uid = uid
                if r.init is None and m.flags_known:
                    r.init = m.flags
                    r.version += 1
            return True

    def learn_uid(self, uid, gen=None):
        with self.lock:
            self.check_gen(gen)
            if uid > self.max_uid:
                self.max_uid = uid
            r = self.uidrec(uid)
            if r.seen_first is None:
                r.seen_first = self._tick
            return r

    # -- flag operations ---------------------------------------------------------------------
    def begin_ops(self, uids, kind, flags, who, cmd, gen=None):
        """Registers one operation per UID, sent now.  Returns them (finish_ops() later)."""
        with self.lock:
            self.check_gen(gen)
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
                r = self.uids.get(u)
                if r is not None:       # (gone with a UIDVALIDITY change)
                    r.version += 1
            return t

    def set_init(self, uid, flags, gen=None):
        with self.lock:
            self.check_gen(gen)
            r = self.uidrec(uid)
            if r.init is None:
                r.init = flags
                r.version += 1

    def states(self, uid, upto_op=None, before=None):
        """What uid's flags may be after all its operations (or, with upto_op, after those
        sent no later than it; with before, those sent before that tick): a Poss.  Each flag on its own: RFC 3501 does not make one
        STORE atomic across several flags (Dovecot applies system flags and keywords as two
        updates), so racing operations may interleave flag by flag."""
        with self.lock:
            r = self.uids.get(uid)
            if r is None:
                return None
            whole = upto_op is None and before is None
            if whole and r.cache is not None and r.cache[0] == r.version:
                return r.cache[1]
            ops = r.ops
            if upto_op is not None:
                ops = [o for o in ops if o.sent <= upto_op.sent]
            if before is not None:
                ops = [o for o in ops if o.sent < before]
            init = r.init
            if r.taint is not None:
                # After a reported inconsistency a flag is unknown until an operation that
                # sets it, alone at the end, makes it known again.
                init = None
                ops = [o for o in ops if o.done >= r.taint]
            res = Poss(init, ops)
            if whole:
                r.cache = (r.version, res)
            return res

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

    def taint(self, uid):
        """Stop checking uid's flags against operations before now (one inconsistency is
        reported once, not again by every later check)."""
        with self.lock:
            r = self.uidrec(uid)
            r.taint = self.tick()
            r.version += 1

    def version(self, uid):
        with self.lock:
            r = self.uids.get(uid)
            return None if r is None else r.version

    def overlapping(self, uid, op):
        """Other operations on uid whose intervals meet op's."""
        with self.lock:
            r = self.uids.get(uid)
            if r is None:
                return [None]       # gone with a UIDVALIDITY change: do not judge
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
    def begin_expunge(self, uids, who, gen=None):
        with self.lock:
            self.check_gen(gen)
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

    def maybe_gone_above(self, low):
        """A message the session was told of without learning its UID (it is above low):
        might one of the UIDs above low have left the mailbox?  (The mail reader drops a
        message the moment after a SELECT counted it.)"""
        with self.lock:
            uids = [u for u in self.uids if u > low]
        return any(self.maybe_gone(u) for u in uids)

    def announce_expunge(self, uid, who, cmd, line, gen=None):
        """A session was told uid is gone.  Checks that it could be."""
        with self.lock:
            self.check_gen(gen)
            t = self.tick()
            r = self.uidrec(uid)
            if r.contested:
                # Which of its messages went is unknown; the clash itself was reported.
                self.note("expunges of UIDs that showed two messages (not judged)")
                return
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

    def mutt_dropped(self, uid, t, gen=None):
        """The mail reader is about to drop uid (it holds the locks since before t)."""
        with self.lock:
            self.check_gen(gen)
            r = self.uidrec(uid)
            if r.mutt_drop is None:
                r.mutt_drop = t

    def mutt_drop_done(self, key, t):
        """The file no longer has key since t."""
        with self.lock:
            m = self.msgs.get(key)
            if m is not None and m.removed is None:
                m.removed = ("mutt", t)

    def unattributed_expunge(self, gen=None):
        with self.lock:
            self.check_gen(gen)
            self.unattributed += 1

    def ambiguous_expunges(self):
        with self.lock:
            return any(e.ambiguous for e in self.expcmds)
