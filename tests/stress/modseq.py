"""RFC 7162 mod-sequences as every session has seen them (stress.py --condstore).

Shared by all clients, under the model's lock, with the model's ticks: an observation is
recorded with the tick at which its response had been read in full, so "received before
tick s" means the harness had it before it sent the command that took tick s.

- Per UID: every MODSEQ seen in an untagged FETCH (tick, value, session), the largest one
  seen up to each tick, and the flags seen together with each value (one value, one state
  of the flags, whichever session saw it).
- HIGHESTMODSEQ from SELECT and STATUS (not the untagged OK [HIGHESTMODSEQ] of other
  commands, which a server may lower on purpose while expunges are pending: imapd does).
- A pool of the values seen, for the CHANGEDSINCE and UNCHANGEDSINCE arguments.

A UIDVALIDITY change (a new model generation) voids everything.
"""

import bisect


class Series:
    """Values with the tick at which each was received; the largest received before t."""

    __slots__ = ("ticks", "maxes", "whos")

    def __init__(self):
        self.ticks = []
        self.maxes = []         # prefix maxima: (value, who, line)
        self.whos = []

    def add(self, tick, value, who, line):
        top = self.maxes[-1] if self.maxes else None
        if top is None or value > top[0]:
            top = (value, who, line)
        self.ticks.append(tick)
        self.maxes.append(top)

    def max_before(self, t):
        """(value, who, line) of the largest value received before tick t, or None."""
        i = bisect.bisect_left(self.ticks, t)
        return self.maxes[i - 1] if i > 0 else None


class UidMs:
    __slots__ = ("series", "by_value")

    def __init__(self):
        self.series = Series()
        self.by_value = {}      # modseq -> (flags, who, line): the flags seen with it


class ModseqModel:
    def __init__(self, model):
        self.model = model
        self.gen = model.generation
        self._reset()

    def _reset(self):
        self.uids = {}
        self.highest = Series()     # HIGHESTMODSEQ from SELECT and STATUS
        self.any_msg = Series()     # any message's MODSEQ
        self.pool = []              # values seen, for command arguments

    def _sync(self, gen):
        """False when gen is not the model's generation (the caller records nothing)."""
        m = self.model
        if m.generation != self.gen:
            self.gen = m.generation
            self._reset()
        return gen == self.gen

    def _pool_add(self, v):
        if len(self.pool) < 2000:
            self.pool.append(v)
        else:
            self.pool[v % 2000] = v

    def pick(self, rng):
        with self.model.lock:
            return rng.choice(self.pool) if self.pool else None

    # -- messages ----------------------------------------------------------------------------
    def message(self, gen, uid, value, flags, who, line, session_sync):
        """Session who was told (in an untagged FETCH just read) that uid has mod-sequence
        value and, if flags is not None, those flags.  session_sync: the tick at which that
        session sent its SELECT (its view began there).  Returns a list of (kind, detail)
        for the cross-session checks that fail; records the observation."""
        m = self.model
        out = []
        with m.lock:
            if not self._sync(gen):
                return out
            r = self.uids.get(uid)
            if r is None:
                r = self.uids[uid] = UidMs()
            # Anything another session was told before this session selected is in this
            # session's view: its mod-sequence cannot be lower (RFC 7162 3.1: it only
            # grows).  What was told after that may not have reached this view yet.
            prior = r.series.max_before(session_sync)
            if prior is not None and value < prior[0]:
                out.append(("MODSEQ decreased", "UID %d: MODSEQ %d, but %s was told %d "
                            "(%s) before this session selected the mailbox" % (
                                uid, value, prior[1], prior[0], prior[2])))
            if flags is not None:
                seen = r.by_value.get(value)
                if seen is None:
                    r.by_value[value] = (flags, who, line)
                elif seen[0] != flags:
                    out.append(("flag change without MODSEQ change",
                                "UID %d: MODSEQ %d with flags %s, but %s was told MODSEQ %d "
                                "with flags %s (%s): one mod-sequence, two states" % (
                                    uid, value, fmt(flags), seen[1], value, fmt(seen[0]),
                                    seen[2])))
            t = m.tick()
            r.series.add(t, value, who, line)
            self.any_msg.add(t, value, who, line)
            self._pool_add(value)
        return out

    def max_seen_before(self, gen, uid, t):
        """(value, who, line): the largest MODSEQ of uid any session had received before
        tick t, or None."""
        with self.model.lock:
            if not self._sync(gen):
                return None
            r = self.uids.get(uid)
            return r.series.max_before(t) if r is not None else None

    # -- HIGHESTMODSEQ -----------------------------------------------------------------------
    def highest_seen(self, gen, value, sent, who, line):
        """HIGHESTMODSEQ value from a SELECT or STATUS sent at tick sent.  It may not be
        below any HIGHESTMODSEQ or message MODSEQ received before that command was sent.
        Returns the failing checks as (kind, detail); records the value."""
        m = self.model
        out = []
        with m.lock:
            if not self._sync(gen):
                return out
            prior = self.highest.max_before(sent)
            if prior is not None and value < prior[0]:
                out.append(("HIGHESTMODSEQ decreased", "HIGHESTMODSEQ %d, but %s was told "
                            "%d (%s) before this command was sent" % (
                                value, prior[1], prior[0], prior[2])))
            pm = self.any_msg.max_before(sent)
            if pm is not None and value < pm[0]:
                out.append(("HIGHESTMODSEQ below a MODSEQ seen before",
                            "HIGHESTMODSEQ %d, but %s was told a message MODSEQ %d (%s) "
                            "before this command was sent (RFC 7162 3.1.2.1: the highest "
                            "of all messages)" % (value, pm[1], pm[0], pm[2])))
            self.highest.add(m.tick(), value, who, line)
            self._pool_add(value)
        return out


def fmt(flags):
    return "(" + " ".join(sorted(flags)) + ")"
