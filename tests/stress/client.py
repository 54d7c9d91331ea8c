"""One stress client: sessions one after another (connect, SELECT INBOX, random commands,
LOGOUT), each checking every response against its own view of the mailbox and the shared
model.

The view: the number of messages the session was told (EXISTS, EXPUNGE), the UID at each
sequence number (filled by FETCH UID after every command that announced new messages), the
flags the session was last told per UID, and the flags and keywords the last untagged
FLAGS listed.
"""

import random
import re
import time

import context
from imapconn import Atom, Conn, ServerGone, Str, Timeout, canon_structure, flag_list
from imapconn import parse as parse_tokens
from model import INF, Stale, canon_flags, fmt_flags
from mboxgen import crlf

SYSTEM_FLAGS = ["\\Seen", "\\Answered", "\\Flagged", "\\Draft"]
KEYWORDS = ["$Label1", "$Label2", "$Label3", "$Label4", "$Label5", "$Forwarded", "NonJunk"]
HDR_NAMES = [b"From", b"To", b"Subject", b"Message-ID"]
_MSGID = MSGID_RE = re.compile(rb"(?im)^message-id:[ \t]*(?:\r\n[ \t]+)?(<[^>\s]*>)")
_HF = re.compile(rb"^BODY\[HEADER\.FIELDS \(([^)]*)\)\]$")

WEIGHTS = [("fetch_flags", 10), ("fetch_hdr", 10), ("fetch_bs", 6), ("fetch_size", 6),
           ("fetch_body", 5), ("fetch_text", 4), ("uid_fetch", 8), ("store", 14),
           ("uid_store", 6), ("delete", 5), ("expunge", 3), ("uid_expunge", 2),
           ("append", 6), ("noop", 12), ("check", 2)]
# --condstore adds these (RFC 7162)
CS_WEIGHTS = [("changedsince", 4), ("store_unchanged", 6), ("status", 2)]


class SessionLost(Exception):
    """The session cannot go on (connection closed, server hung, or BYE).  quiet: the cause
    was reported already."""

    def __init__(self, why, quiet=False):
        super().__init__(why)
        self.quiet = quiet


class Cmd:
    """One command in flight and what came back for it."""

    def __init__(self, kind, text, no_expunge=False, literal=None, plus=False):
        self.kind = kind
        self.text = text
        self.no_expunge = no_expunge    # FETCH, STORE, SEARCH: EXPUNGE not allowed (7.4.1)
        self.literal = literal
        self.plus = plus
        self.tag = None
        self.tagged = None
        self.sent = None
        self.untagged = []
        self.fetches = []           # (seq, uid, Response)
        self.targets = ()           # the UIDs the command is about
        self.flag_updates = {}      # uid -> flags (the last FETCH FLAGS for it)
        self.expunged = []          # uids announced
        self.reported = set()       # violation kinds reported for this command
        self.modseqs = {}           # uid -> MODSEQ of its last untagged FETCH (--condstore)
        self.highestmodseq = None   # (value, response) of SELECT's OK [HIGHESTMODSEQ]
        self.nomodseq = False
        self.t0 = 0.0

    def line(self):
        t = self.text.decode("utf-8", "replace")
        return (self.tag.decode() + " " if self.tag else "") + (t if len(t) < 200 else
                                                                 t[:200] + "...")


class Client:
    def __init__(self, cid, run, login=False, final=False, contexts=False):
        self.cid = cid
        self.run = run
        self.model = run.model
        self.login = login
        self.final = final
        self.rng = random.Random("%s-%s" % (run.args.seed, cid))
        self.cs = bool(getattr(run.args, "condstore", False))
        self.ms = getattr(run, "modseq", None)
        self.ctx_role = contexts        # --context: starts updating SEARCH/SORT after SELECT
        self.conn = None
        self.proc = None
        self.sessions = 0
        self.trace = None
        if run.args.trace:
            self.trace = open("%s/%s.log" % (run.args.trace, cid), "a")
        self.reset_view()

    def t(self, direction, text):
        if self.trace is not None:
            self.trace.write("%d %s %s\n" % (self.model._tick, direction, text))

    # -- view --------------------------------------------------------------------------------
    def reset_view(self):
        self.exists = 0
        self.seq = []               # [uid or None, floor]: floor = UIDs must exceed it
        self.flags = {}
        self.known = set()          # lower-cased names from the last FLAGS
        self.max_uid = 0
        self.got_bye = False
        self.logging_out = False
        self.selected = False
        self.select_sent = None
        self.gen = self.model.generation
        # --condstore: the session's RFC 7162 state
        self.cs_on = False          # CONDSTORE enabled: every FETCH with FLAGS has MODSEQ
        self.ms_ok = True           # no NOMODSEQ for the mailbox
        self.qresync = False        # ENABLED QRESYNC: VANISHED instead of EXPUNGE
        self.enabled = set()
        self.ms_seen = {}           # uid -> the largest MODSEQ this session was told
        self.ms_flags = {}          # uid -> (MODSEQ, flags) of the last FETCH with both
        self.last_noop_sent = None
        # --context: the updating results of this session (context.Context)
        self.contexts = []

    def v(self, kind, cmd, resp, detail=""):
        """Reports a violation; one of a kind per command (the rest are counted)."""
        if cmd is not None:
            if kind in cmd.reported:
                self.model.note("repeats in one command: " + kind)
                return
            cmd.reported.add(kind)
        line = resp.short() if resp is not None else ""
        self.model.violation(kind, self.cid, cmd.line() if cmd is not None else "", line,
                             detail)

    def flag_violation(self, kind, cmd, resp, u, got, st, detail):
        """u's flags contradict the model.  The file (read under a lock) tells a lost
        update (the file is wrong too) from a session that was not told (the file is
        right), and a message expunged without telling the session from one left there."""
        m = self.model
        ver = m.version(u)
        probe = self.run.probe(u)
        if probe is not None and m.version(u) == ver:
            where, fl = probe
            if where == "absent":
                if kind == "EXPUNGE left a deleted message" or not m.maybe_gone(u):
                    kind = "EXPUNGE not reported"
                    detail += "; the file no longer has UID %d" % u
            elif st is not None and not st.allows(fl):
                kind = "lost flag update"
                detail += "; the file has %s" % fmt_flags(fl)
            else:
                detail += "; the file has %s" % fmt_flags(fl)
        m.taint(u)
        self.v(kind, cmd, resp, detail)

    # -- running sessions --------------------------------------------------------------------
    def loop(self):
        stop = self.run.stop
        while not stop.is_set():
            try:
                self.session()
            except Exception:
                import traceback
                self.run.harness_error("%s: %s" % (self.cid, traceback.format_exc()))
                break
            if self.run.fatal.is_set():
                break

    def session(self, script=None):
        """One connection.  script, when given, replaces the random commands."""
        run = self.run
        self.reset_view()
        try:
            self.proc = run.launcher.start(login=self.login)
        except RuntimeError:
            return
        self.conn = Conn(self.proc.sock)
        self.t("=", "session %d, pid %d" % (self.sessions + 1, self.proc.pid))
        self.sessions += 1
        self.model.note("sessions")
        cmd = None
        try:
            self.greet()
            if self.login:
                self.do_login()
            if self.cs:
                self.do_enable()
                if self.rng.random() < 0.3:
                    self.do_status()
            if not self.select():
                self.logout()
                return
            if self.ctx_role and not run.stop.is_set():
                self.start_contexts()
            if script is not None:
                script(self)
            else:
                n = self.rng.randint(5, 60)
                for _ in range(n):
                    if run.stop.is_set():
                        break
                    self.fill_uids()
                    self.random_command()
                if self.contexts and run.stop.is_set():
                    self.quiesce()
            self.logout()
        except SessionLost as e:
            self.lost(str(e), e.quiet)
        except Stale:
            self.lost("UIDVALIDITY changed since the session began", True)
        finally:
            self.finish_proc()

    def lost(self, why, quiet=False):
        self.t("=", "lost: %s" % why)
        if self.proc.storm_killed:
            self.model.note("sessions killed by the storm")
            return
        if self.got_bye or quiet or self.proc.harness_killed:
            return
        self.model.violation("connection lost", self.cid, self.last_cmd_line, why,
                             "the server closed the connection or stopped answering "
                             "without BYE")

    def finish_proc(self):
        proc = self.proc
        if proc is None:
            return
        try:
            self.conn.close()
        except Exception:
            pass
        status, hung = self.run.launcher.reap(proc, timeout=10.0)
        self.proc = None
        if proc.storm_killed or proc.harness_killed:
            return
        if hung:
            self.model.violation("server did not exit", self.cid, "after the session",
                                 "", "still running 10 s after its connection ended")
        elif status is not None and status < 0:
            self.model.violation("server crashed", self.cid, self.last_cmd_line, "",
                                 "killed by signal %d" % -status)
        elif status not in (0, None) and self.logging_out:
            self.model.violation("server exit status", self.cid, "LOGOUT", "",
                                 "exit status %d after LOGOUT" % status)
        self.proc = None

    # -- the command engine ------------------------------------------------------------------
    last_cmd_line = ""

    def execute(self, cmd, on_sent=None, on_lost=None):
        """Sends cmd, handles every response up to its tagged one.  on_sent() is called
        right before the bytes go out and returns the tick; on_lost() when the session dies
        with the command in flight (its outcome is then unknown)."""
        conn = self.conn
        cmd.tag = conn.next_tag()
        self.last_cmd_line = cmd.line()
        timeout = self.run.args.timeout
        line = cmd.tag + b" " + cmd.text
        if cmd.literal is not None:
            line += b" {%d%s}" % (len(cmd.literal), b"+" if cmd.plus else b"")
        self.proc.in_command = True
        cmd.t0 = time.monotonic()
        deadline = cmd.t0 + timeout
        try:
            try:
                self.model.check_gen(self.gen)
                cmd.sent = on_sent() if on_sent else self.model.tick()
            except Stale:
                raise SessionLost("UIDVALIDITY changed", quiet=True)
            self.t(">", cmd.line())
            try:
                if cmd.literal is not None and not cmd.plus:
                    conn.send(line + b"\r\n")
                    while True:
                        r = conn.read(deadline)
                        if r.kind == "cont":
                            break
                        if r.kind == "tagged":
                            return self._tagged(cmd, r)
                        self.untagged(r, cmd)
                    conn.send(cmd.literal + b"\r\n")
                elif cmd.literal is not None:
                    conn.send(line + b"\r\n" + cmd.literal + b"\r\n")
                else:
                    conn.send(line + b"\r\n")
                while True:
                    r = conn.read(deadline)
                    if r.kind == "tagged":
                        if r.tag != cmd.tag:
                            self.v("tagged response with a wrong tag", cmd, r)
                            continue
                        res = self._tagged(cmd, r)
                        if self.gen != self.model.generation:
                            raise Stale()
                        return res
                    if r.kind == "cont":
                        self.v("unexpected continuation request", cmd, r)
                        continue
                    self.untagged(r, cmd)
            except Timeout:
                quiet = self.proc.storm_killed
                if not quiet:
                    self.model.violation("no answer", self.cid, cmd.line(), "",
                                         "no tagged response in %d s" % timeout)
                    self.proc.harness_killed = True
                self.run.launcher.kill(self.proc)
                raise SessionLost("timeout", quiet=True)
            except ServerGone as e:
                raise SessionLost(str(e))
            except Stale:
                raise SessionLost("UIDVALIDITY changed", quiet=True)
        except SessionLost:
            if on_lost is not None:
                on_lost()
            raise
        finally:
            self.proc.in_command = False

    def _tagged(self, cmd, r):
        cmd.tagged = r
        self.t("<", r.short())
        dt = time.monotonic() - cmd.t0
        self.run.record(cmd.kind, dt)
        st = r.status
        if st == "OK":
            return r
        if st == "NO" and r.code_name == "INUSE":
            self.model.allow("NO [INUSE]")
            return r
        if st == "NO" and r.code_name == "EXPUNGEISSUED" and cmd.kind != "APPEND":
            # RFC 5530: someone else expunged; only fine if one of them really was.
            if any(self.model.maybe_gone(u) for _, u, _ in cmd.fetches if u) or \
                    any(self.model.maybe_gone(u) for u in cmd.targets if u) or \
                    any(self.model.maybe_gone_above(b) for b in
                        getattr(cmd, "unknown_above", ()) if b is not None):
                self.model.allow("NO [EXPUNGEISSUED]")
                return r
        if st == "NO" and r.code_name == "MODIFIED" and \
                any(self.model.maybe_gone(u) for u in cmd.targets if u):
            # RFC 7162 3.1.3 example 11: NO [MODIFIED] when some messages are gone
            self.model.allow("NO [MODIFIED] (messages gone)")
            return r
        self.v("%s response" % st, cmd, r)
        return r

    # -- untagged responses ------------------------------------------------------------------
    def untagged(self, r, cmd):
        if self.gen != self.model.generation:
            raise Stale()
        cmd.untagged.append(r)
        self.t("<", r.short())
        if self.logging_out and not (r.kind == "status" and r.status == "BYE"):
            self.v("untagged data after LOGOUT", cmd, r,
                   "only BYE may answer LOGOUT")
        if r.kind == "status":
            if r.status == "BYE":
                if not self.logging_out:
                    self.v("unexpected BYE", cmd, r)
                self.got_bye = True
                return
            if r.status == "NO":
                # RFC 3501 7.1.2: an untagged NO is a warning; the command may still succeed.
                self.model.allow("untagged NO (warning)")
                if r.code_name == "NOUPDATE" and self.contexts:
                    self.ctx_refused(r)
            elif r.status == "BAD":
                self.v("untagged BAD", cmd, r)
            if r.code_name == "UIDVALIDITY" and cmd.kind == "SELECT":
                try:
                    v = int(r.code.split()[1])
                except (IndexError, ValueError):
                    self.v("malformed response", cmd, r)
                    return
                if not self.model.set_uidvalidity(v, self.cid, r.short(), self.gen):
                    self.run.rebase(v)
                    raise SessionLost("UIDVALIDITY changed", quiet=True)
            elif r.code_name == "PERMANENTFLAGS":
                pass
            elif r.code_name == "HIGHESTMODSEQ" and self.cs:
                v = parse_modseq_code(r.code)
                if v is None:
                    self.v("malformed response", cmd, r, "bad HIGHESTMODSEQ")
                elif cmd.kind == "SELECT":
                    cmd.highestmodseq = (v, r)
                else:
                    # A session's own view (imapd lowers it while expunges are pending):
                    # not compared with other sessions'
                    self.model.note("condstore: untagged OK [HIGHESTMODSEQ] outside SELECT")
            elif r.code_name == "NOMODSEQ" and self.cs:
                cmd.nomodseq = True
            return
        if r.kind == "data" and self.contexts:
            if r.word == b"ESEARCH":
                self.esearch(r, cmd)
                return
            if r.word in (b"SEARCH", b"SORT"):
                try:
                    cmd.plain = context.parse_plain(r.rest)
                except ValueError as e:
                    self.v("malformed response", cmd, r, str(e))
                return
        if r.kind == "data" and self.cs:
            if r.word == b"ENABLED":
                self.enabled.update(w.upper() for w in r.rest.split())
                return
            if r.word == b"STATUS":
                self.status_data(r, cmd)
                return
            if r.word == b"VANISHED":
                self.vanished(r, cmd)
                return
        if r.kind == "data":
            if r.word == b"FLAGS":
                try:
                    from imapconn import parse
                    toks = parse(r.rest)
                    fl = flag_list(toks[0]) if toks else None
                except ValueError:
                    fl = None
                if fl is None:
                    self.v("malformed response", cmd, r)
                    return
                self.known = set(f.lower() for f in fl)
            return
        if r.kind != "num":
            return
        n = r.number
        if r.word == b"EXISTS":
            if n < self.exists:
                self.v("EXISTS decreased", cmd, r,
                       "told %d before; only EXPUNGE may lower the count (RFC 3501 7.3.1)" %
                       self.exists)
                return
            while len(self.seq) < n:
                self.seq.append([None, self.max_uid])
            self.exists = n
            return
        if r.word == b"RECENT":
            return
        if r.word == b"EXPUNGE":
            if self.qresync:
                self.v("EXPUNGE with QRESYNC enabled", cmd, r,
                       "RFC 7162 3.2.10: VANISHED instead of EXPUNGE once QRESYNC is on")
            if cmd.no_expunge:
                self.v("EXPUNGE during FETCH/STORE", cmd, r,
                       "RFC 3501 7.4.1: not allowed while responding to FETCH, STORE, SEARCH")
            if n < 1 or n > self.exists:
                self.v("EXPUNGE of an unknown number", cmd, r,
                       "the session knows %d messages" % self.exists)
                return
            if self.contexts:
                self.ctx_expunge(n, cmd, r)
            uid = self.seq.pop(n - 1)[0]
            self.exists -= 1
            if uid is None:
                self.model.unattributed_expunge(self.gen)
                return
            self.flags.pop(uid, None)
            cmd.expunged.append(uid)
            self.model.announce_expunge(uid, self.cid, cmd.line(), r.short(), self.gen)
            return
        if r.word == b"FETCH":
            self.fetch_response(r, cmd)

    def fetch_response(self, r, cmd):
        n = r.number
        if n < 1 or n > self.exists:
            self.v("FETCH above EXISTS", cmd, r,
                   "the session was told of %d messages (RFC 3501 7.4.2, 7.3.1)" % self.exists)
            return
        if r.fetch is None:
            self.v("malformed FETCH", cmd, r, r.fetch_error or "")
            return
        items = r.fetch
        ent = self.seq[n - 1]
        uid = ent[0]
        if b"UID" in items:
            v = items[b"UID"]
            if not isinstance(v, Atom) or not v.isdigit() or int(v) == 0:
                self.v("malformed FETCH", cmd, r, "bad UID")
                return
            u = int(v)
            if uid is None:
                if not self._uid_order_ok(n, u, ent[1]):
                    self.v("UIDs not ascending", cmd, r,
                           "UID %d at %d does not fit between its neighbours (or is not "
                           "above UIDs seen before the message appeared)" % (u, n))
                ent[0] = uid = u
                self.max_uid = max(self.max_uid, u)
                self.model.learn_uid(u, self.gen)
            elif uid != u:
                self.v("FETCH UID mismatch", cmd, r,
                       "message %d has UID %d in this session" % (n, uid))
                return
        if b"FLAGS" in items:
            fl = flag_list(items[b"FLAGS"])
            if fl is None:
                self.v("malformed FETCH", cmd, r, "bad FLAGS")
            else:
                for f in fl:
                    if not f.startswith("\\") and f.lower() not in self.known:
                        self.v("keyword before FLAGS", cmd, r,
                               "%s was not in the last untagged FLAGS (RFC 3501 7.2.6)" % f)
                        break
                if uid is not None:
                    c = canon_flags(fl)
                    self.flags[uid] = c
                    cmd.flag_updates[uid] = c
        if self.cs_on and self.ms_ok:
            self.fetch_modseq(r, cmd, uid, items)
        cmd.fetches.append((n, uid, r))

    # -- RFC 7162 (--condstore) --------------------------------------------------------------
    def fetch_modseq(self, r, cmd, uid, items):
        """The MODSEQ of an untagged FETCH: required with FLAGS (RFC 7162 3.1, 3.1.4.2),
        never lower than before for the same UID, higher whenever the flags changed."""
        if b"MODSEQ" not in items:
            if b"FLAGS" not in items:
                return
            t = cmd.text.upper()
            if t.startswith((b"FETCH ", b"UID FETCH ")) and b"MODSEQ" not in t and \
                    b"CHANGEDSINCE" not in t:
                # RFC 7162 3.2.4: the rule "does not affect untagged FETCH responses caused
                # by a FETCH command that doesn't include ... a MODSEQ FETCH data item";
                # such an answer cannot be told from an unsolicited one: counted only.
                self.model.note("condstore: FETCH FLAGS without MODSEQ answering a FETCH "
                                "without MODSEQ (not judged)")
                return
            self.v("FETCH FLAGS without MODSEQ", cmd, r,
                   "RFC 7162 3.1, 3.1.4.2: once CONDSTORE is enabled every untagged FETCH "
                   "(of STORE, NOOP, another session's change, or a FETCH asking MODSEQ) "
                   "carries the mod-sequence")
            return
        val = items[b"MODSEQ"]
        if not (isinstance(val, list) and len(val) == 1 and isinstance(val[0], Atom) and
                val[0].isdigit() and int(val[0]) > 0):
            self.v("malformed FETCH", cmd, r, "bad MODSEQ")
            return
        v = int(val[0])
        cmd.modseqs[uid] = v
        if uid is None:
            return
        flags = None
        if b"FLAGS" in items:
            fl = flag_list(items[b"FLAGS"])
            if fl is not None:
                flags = canon_flags(fl)
        self.model.note("condstore: MODSEQ values seen")
        prev = self.ms_seen.get(uid)
        if prev is not None and v < prev:
            self.v("MODSEQ decreased", cmd, r, "UID %d: MODSEQ %d, this session was told %d "
                   "before (RFC 7162 3.1)" % (uid, v, prev))
        if flags is not None:
            pf = self.ms_flags.get(uid)
            if pf is not None and pf[1] != flags and v <= pf[0]:
                self.v("flag change without MODSEQ change", cmd, r,
                       "UID %d: flags %s with MODSEQ %d; this session was told %s with "
                       "MODSEQ %d before (RFC 7162 3.1)" % (
                           uid, fmt_flags(flags), v, fmt_flags(pf[1]), pf[0]))
            if pf is None or v >= pf[0]:
                self.ms_flags[uid] = (v, flags)
        self.ms_seen[uid] = max(prev or 0, v)
        sync = self.select_sent if self.select_sent is not None else 0
        for kind, detail in self.ms.message(self.gen, uid, v, flags, self.cid,
                                            "%s: %s" % (cmd.line()[:80], r.short(120)),
                                            sync):
            self.v(kind, cmd, r, detail)

    def do_enable(self):
        self.qresync = False
        want = b"QRESYNC" if self.rng.random() < 0.35 else b"CONDSTORE"
        cmd = Cmd("ENABLE", b"ENABLE " + want)
        self.execute(cmd)
        if cmd.tagged.status != "OK":
            return
        if want not in self.enabled:
            self.v("ENABLE not confirmed", cmd, cmd.tagged, "no ENABLED %s (RFC 5161 3.1; "
                   "the server offers it)" % want.decode())
        self.qresync = b"QRESYNC" in self.enabled
        self.cs_on = self.qresync or b"CONDSTORE" in self.enabled
        self.model.note("condstore: sessions with QRESYNC" if self.qresync else
                        "condstore: sessions with CONDSTORE")

    def status_data(self, r, cmd):
        from imapconn import parse
        try:
            toks = parse(r.rest)
        except ValueError:
            toks = None
        if not toks or len(toks) != 2 or not isinstance(toks[1], list) or len(toks[1]) % 2:
            self.v("malformed response", cmd, r, "bad STATUS")
            return
        lst = toks[1]
        items = {}
        for k in range(0, len(lst), 2):
            if isinstance(lst[k], Atom) and isinstance(lst[k + 1], Atom) and \
                    lst[k + 1].isdigit():
                items[bytes(lst[k]).upper()] = int(lst[k + 1])
        cmd.status_items = items
        cmd.status_resp = r

    def do_status(self):
        """STATUS INBOX with HIGHESTMODSEQ (RFC 7162 3.1.7), before SELECT or while it is
        selected."""
        m = self.model
        cmd = Cmd("STATUS", b"STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)")
        cmd.status_items = None
        self.execute(cmd)
        if cmd.tagged.status != "OK":
            return
        it = cmd.status_items
        if it is None or b"HIGHESTMODSEQ" not in it:
            self.v("STATUS without HIGHESTMODSEQ", cmd, cmd.tagged, "RFC 7162 3.1.7")
            return
        v = it[b"HIGHESTMODSEQ"]
        with m.lock:
            same = m.uidvalidity is not None and it.get(b"UIDVALIDITY") == m.uidvalidity
        if v == 0 or not same:
            return      # no mod-sequences, or another UIDVALIDITY (reported at SELECT)
        self.highest(cmd, cmd.status_resp, v)

    def highest(self, cmd, r, v):
        self.model.note("condstore: HIGHESTMODSEQ values judged")
        for kind, detail in self.ms.highest_seen(self.gen, v, cmd.sent, self.cid,
                                                 "%s: %s" % (cmd.line()[:60], r.short(120))):
            self.v(kind, cmd, r, detail)

    def vanished(self, r, cmd):
        """RFC 7162 3.2.10: VANISHED uid-set, EXPUNGE by UID once QRESYNC is enabled."""
        from imapconn import parse
        try:
            toks = parse(r.rest)
        except ValueError:
            toks = None
        if not toks:
            self.v("malformed response", cmd, r, "bad VANISHED")
            return
        if isinstance(toks[0], list):
            self.v("VANISHED (EARLIER) not asked for", cmd, r, "RFC 7162 3.2.10.1: only for "
                   "UID FETCH (VANISHED) and SELECT (QRESYNC), which the harness never sends")
            return
        uids = parse_set(bytes(toks[0]) if isinstance(toks[0], Atom) else b"")
        if not uids:
            self.v("malformed response", cmd, r, "bad VANISHED UID set")
            return
        if not self.qresync:
            self.v("VANISHED without QRESYNC", cmd, r, "RFC 7162 3.2.10: only after ENABLE "
                   "QRESYNC")
        if cmd.no_expunge:
            self.v("EXPUNGE during FETCH/STORE", cmd, r, "RFC 7162 3.2.10: VANISHED, like "
                   "EXPUNGE, not while responding to FETCH, STORE, SEARCH")
        m = self.model
        for u in uids:
            idx = None
            for i, e in enumerate(self.seq):
                if e[0] == u:
                    idx = i
                    break
            known = idx is not None
            if idx is None:
                # a message the session was told of (EXISTS) before learning its UID
                for i, e in enumerate(self.seq):
                    if e[0] is None and e[1] < u and self._fits_between(i, u):
                        idx = i
                        break
            if idx is None:
                self.v("VANISHED of an unknown UID", cmd, r, "UID %d is not among the "
                       "messages of this session (RFC 7162 3.2.10.2)" % u)
                continue
            if self.contexts:
                if known:
                    self.ctx_expunge(idx + 1, cmd, r)
                else:
                    self.ctx_unsure(idx)
            self.seq.pop(idx)
            self.exists -= 1
            if known:
                self.flags.pop(u, None)
                cmd.expunged.append(u)
            with m.lock:
                in_model = u in m.uids
            if known or in_model:
                m.announce_expunge(u, self.cid, cmd.line(), r.short(), self.gen)
            else:
                m.unattributed_expunge(self.gen)

    def _fits_between(self, i, u):
        """Whether UID u may stand at index i of self.seq: above the nearest known UID
        before it and below the nearest known UID after it."""
        for k in range(i - 1, -1, -1):
            p = self.seq[k][0]
            if p is not None:
                if p >= u:
                    return False
                break
        for k in range(i + 1, len(self.seq)):
            p = self.seq[k][0]
            if p is not None:
                if p <= u:
                    return False
                break
        return True

    def do_changedsince(self):
        """NOOP, then UID FETCH 1:* (FLAGS) (CHANGEDSINCE n): every UID of the session
        that is known to have a MODSEQ above n must be in the answer (RFC 7162 3.1.4.1)."""
        m = self.model
        if not self.ms_ok:
            return
        rng = self.rng
        k = rng.random()
        n = None
        if k < 0.5 and self.ms_seen:
            n = rng.choice(list(self.ms_seen.values())) - rng.randint(0, 1)
        elif k < 0.9:
            n = self.ms.pick(rng)
        if n is None or n < 1:
            n = 1
        self.do_noop()
        t = self.last_noop_sent
        before = [e[0] for e in self.seq if e[0] is not None]
        own = {u: self.ms_seen.get(u) for u in before}
        cmd = Cmd("UID-FETCH-changedsince", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % n)
        # 1:* names every message: NO [EXPUNGEISSUED] is fine if any of them may be gone,
        # one the session knows, one whose UID it has not learned, or one new to it
        cmd.targets = list(before)
        cmd.unknown_above = [e[1] for e in self.seq if e[0] is None] + [self.max_uid]
        self.execute(cmd)
        self.check_fetches(cmd)
        if cmd.tagged.status != "OK" or t is None:
            return
        got = set(u for _, u, _ in cmd.fetches if u is not None)
        still = set(e[0] for e in self.seq)
        for u in before:
            if u not in still or m.maybe_gone(u):
                continue
            why = None
            if own[u] is not None and own[u] > n:
                why = "this session was told MODSEQ %d" % own[u]
            else:
                p = self.ms.max_seen_before(self.gen, u, self.select_sent or 0)
                if p is not None and p[0] > n:
                    why = "%s was told MODSEQ %d before this session selected (%s)" % (
                        p[1], p[0], p[2])
                else:
                    with m.lock:
                        p = self.ms.max_seen_before(self.gen, u, t)
                        settled = m.settled_before(u, t)
                    if p is not None and p[0] > n and settled:
                        why = "%s was told MODSEQ %d before the NOOP sent at %d (%s)" % (
                            p[1], p[0], t, p[2])
            if why and u in got:
                m.note("condstore: CHANGEDSINCE UIDs owed and answered")
            elif why:
                self.v("CHANGEDSINCE answer omits a changed message", cmd, cmd.tagged,
                       "UID %d: %s, above %d; %s" % (u, why, n, m.history(u)))

    def do_store_unchanged(self):
        """STORE / UID STORE ... (UNCHANGEDSINCE n): n mostly the MODSEQ this session knows
        of one of the targets."""
        if not self.ms_ok:
            return
        rng = self.rng
        k = rng.random()
        op = "=" if k < 0.6 else "+" if k < 0.8 else "-"
        flags = self.random_flags(0 if op == "=" else 1, 4 if op == "=" else 3)
        self._store("STORE-unchangedsince", rng.random() < 0.6, op, flags, unchanged=True)

    # -- RFC 5267 updating results (--context) ------------------------------------------------
    def start_contexts(self):
        """One or two of context.KINDS, each kept as a copy that every ADDTO, REMOVEFROM
        and (sequence numbers) EXPUNGE changes, whichever command they come with."""
        m = self.model
        for kind in self.rng.sample(context.KINDS, self.rng.randint(1, 2)):
            ctx = context.Context(kind)
            self.contexts.append(ctx)
            # RFC 3501 7.4.1: no EXPUNGE while answering SEARCH (UID SEARCH and UID SORT
            # may have them)
            cmd = Cmd(kind[1].decode().replace(" ", "-") + "-update", ctx.text(),
                      no_expunge=not ctx.uid)

            def sent(ctx=ctx, cmd=cmd):
                ctx.tag = cmd.tag
                return m.tick()

            self.execute(cmd, sent)
            if cmd.tagged.status != "OK":
                ctx.state = "refused"       # reported by _tagged
            elif ctx.state == "pending":
                ctx.state = "refused"
                self.v(context.NO_RESULT, cmd, cmd.tagged, "RFC 4731 3.1, RFC 5267 4.3: "
                       "RETURN (UPDATE ALL) answers with an ESEARCH of its tag")
            if ctx.state == "live":
                m.note("context: started (%s)" % ctx.name)

    def ctx_find(self, tag):
        for ctx in self.contexts:
            if ctx.tag == tag:
                return ctx
        return None

    def ctx_refused(self, r):
        """* NO [NOUPDATE "tag"] (RFC 5267 4.3.1): the result is given, no updates."""
        try:
            toks = parse_tokens(r.code)
            tag = bytes(toks[1]) if len(toks) == 2 else None
        except ValueError:
            tag = None
        ctx = self.ctx_find(tag) if tag is not None else None
        if ctx is not None:
            ctx.state = "refused"
            self.model.note("context: refused with NOUPDATE")

    def esearch(self, r, cmd):
        try:
            tag, uid, items = context.parse_esearch(r.rest)
        except ValueError as e:
            self.v(context.MALFORMED, cmd, r, str(e))
            return
        if tag is None:
            return
        ctx = self.ctx_find(tag)
        if ctx is None:
            self.v(context.NO_CONTEXT, cmd, r, "no command of this session with that tag "
                   "asked for UPDATE")
            return
        if ctx.state in ("void", "refused"):
            self.model.note("context: updates of a void or refused context (not judged)")
            return
        if uid != ctx.uid:
            ctx.state = "void"
            self.v(context.MALFORMED, cmd, r, "%s UID in an update of %s (RFC 5267 4.3.2)" % (
                "with" if uid else "without", ctx.text().decode()))
            return
        upd = any(name in (b"ADDTO", b"REMOVEFROM") for name, _ in items)
        if ctx.state == "pending":
            if upd:
                ctx.state = "void"
                self.v(context.MALFORMED, cmd, r, "an update before the result of %s" %
                       ctx.text().decode())
                return
            found = ctx.start(items, self.exists)
        elif upd:
            found = ctx.update(items, self.exists, r.short(200))
            self.model.note("context: updates applied")
        else:
            self.model.note("context: ESEARCH of a live context without ADDTO or REMOVEFROM")
            return
        for kind, detail in found:
            self.v(kind, cmd, r, detail)

    def ctx_expunge(self, n, cmd, r):
        """* n EXPUNGE (or a VANISHED of the UID at n), before the view forgets n."""
        for ctx in self.contexts:
            if not ctx.uid and ctx.state == "live":
                self.model.note("context: EXPUNGE renumberings applied")
            for kind, detail in ctx.expunge(n):
                self.v(kind, cmd, r, detail)

    def ctx_unsure(self, idx):
        """VANISHED of a UID the session had not learned, put at index idx among the
        messages of unknown UID next to it: any of them may have gone.  A sequence-number
        copy holding one of them cannot be renumbered for sure."""
        lo = hi = idx
        while lo > 0 and self.seq[lo - 1][0] is None:
            lo -= 1
        while hi + 1 < len(self.seq) and self.seq[hi + 1][0] is None:
            hi += 1
        for ctx in self.contexts:
            if ctx.uid or ctx.state != "live":
                continue
            if any(lo + 1 <= x <= hi + 1 for x in ctx.nums):
                ctx.state = "void"
                self.model.note("context: void (VANISHED of a message of unknown UID)")
            else:
                ctx.expunge(idx + 1)

    def quiesce(self):
        """The final check of the copies: once every client, the MDA and the mail reader
        have stopped, a NOOP, then each search again without UPDATE must give the copy."""
        if not any(c.state == "live" for c in self.contexts):
            return
        if not self.run.park(self.cid):
            return
        self.execute(Cmd("NOOP", b"NOOP"))
        for ctx in self.contexts:
            if ctx.state != "live":
                continue
            cmd = Cmd(ctx.verb.decode().replace(" ", "-") + "-fresh", ctx.fresh_text(),
                      no_expunge=not ctx.uid)
            cmd.plain = None
            self.execute(cmd)
            if cmd.tagged.status != "OK" or ctx.state != "live":
                continue
            if cmd.plain is None:
                self.v("malformed response", cmd, cmd.tagged, "no untagged %s" %
                       ctx.verb.split()[-1].decode())
                continue
            self.model.note("context: copies compared at quiescence")
            for kind, detail in ctx.compare(cmd.plain):
                self.v(kind, cmd, None, detail)

    def _uid_order_ok(self, n, u, floor):
        return u > floor and self._fits_between(n - 1, u)

    # -- content checks (after the tagged response) ------------------------------------------
    def check_fetches(self, cmd):
        tolerant = cmd.tagged is not None and (cmd.tagged.status == "NO" or
                                               cmd.tagged.code_name == "EXPUNGEISSUED")
        for n, uid, r in cmd.fetches:
            if uid is None:
                continue
            self.check_items(cmd, uid, r, tolerant)

    def check_items(self, cmd, uid, r, tolerant):
        m = self.model
        items = r.fetch
        content = []
        for name, val in items.items():
            if name in (b"UID", b"FLAGS"):
                continue
            content.append((name, val))
        if not content:
            return
        if tolerant and m.maybe_gone(uid):
            m.allow("data of an expunged message, flagged EXPUNGEISSUED")
            return
        # Which message is it?  Learn it from a Message-ID in what was fetched.
        for name, val in content:
            if isinstance(val, Str) and (name == b"BODY[]" or _HF.match(name)):
                head = val.split(b"\r\n\r\n", 1)[0]
                mm = _MSGID.search(head)
                if mm:
                    m.link(uid, mm.group(1), self.cid, cmd.line(), r.short(), self.gen)
                    break
        with m.lock:
            rec = m.uids.get(uid)
            key = rec.key if rec is not None else None
            msg = m.msgs.get(key) if key is not None else None
        for name, val in content:
            self.check_item(cmd, r, uid, rec, msg, name, val)

    def check_item(self, cmd, r, uid, rec, msg, name, val):
        m = self.model
        gone = m.maybe_gone(uid)
        what = name.decode("latin-1")
        if name == b"RFC822.SIZE":
            if not isinstance(val, Atom) or not val.isdigit():
                self.v("malformed FETCH", cmd, r, "bad RFC822.SIZE")
                return
            got = int(val)
            exp = len(msg.content) if msg is not None else None
            norm = got
        elif name == b"BODYSTRUCTURE":
            if not isinstance(val, list):
                self.v("wrong FETCH data", cmd, r, "UID %d: BODYSTRUCTURE is not a list%s" %
                       (uid, " (the message was being expunged)" if gone else ""))
                return
            norm = canon_structure(val)
            exp = None
            got = norm
        elif name in (b"BODY[]", b"BODY[TEXT]") or _HF.match(name):
            if val is None:
                self.v("wrong FETCH data", cmd, r, "UID %d: %s is NIL%s" % (
                    uid, what, " (the message was being expunged)" if gone else ""))
                return
            if not isinstance(val, Str):
                self.v("malformed FETCH", cmd, r, "%s is not a string" % what)
                return
            got = bytes(val)
            norm = got
            exp = None
            if msg is not None:
                if name == b"BODY[]":
                    exp = msg.content
                elif name == b"BODY[TEXT]":
                    exp = msg.text()
                else:
                    names = _HF.match(name).group(1).split()
                    exp = msg.header_fields(names)
        else:
            return
        if exp is not None and got != exp:
            self.v("wrong FETCH data", cmd, r, "UID %d (%s): %s is %s, expected %s%s" % (
                uid, msg.key.decode("latin-1"), what, describe(got), describe(exp),
                " (the message was being expunged)" if gone else ""))
            return
        with m.lock:
            if rec is None:
                return
            first = rec.values.get(name)
            if first is None:
                rec.values[name] = norm
            elif first != norm:
                self.v("FETCH data changed", cmd, r,
                       "UID %d: %s differs from an earlier FETCH of the same UID%s" % (
                           uid, what, " (the message was being expunged)" if gone else ""))

    def check_missing(self, cmd, want, items, by_uid=False):
        """Every message asked for (want: seq -> uid, or uid -> uid) must have answered
        with the items asked for, unless it may have been expunged."""
        got = {}
        for n, uid, r in cmd.fetches:
            k = uid if by_uid else n
            got.setdefault(k, set()).update(r.fetch.keys())
        for k, uid in want.items():
            have = got.get(k, set())
            missing = [i for i in items if i not in have]
            if not missing:
                continue
            if uid is None or self.model.maybe_gone(uid):
                continue
            self.model.violation("FETCH data missing", self.cid, cmd.line(),
                                 cmd.tagged.short() if cmd.tagged else "",
                                 "%s %d (UID %s): no %s" % (
                                     "UID" if by_uid else "message", k, uid,
                                     ", ".join(i.decode() for i in missing)))

    # -- session steps -----------------------------------------------------------------------
    def greet(self):
        deadline = time.monotonic() + self.run.args.timeout
        try:
            r = self.conn.read(deadline)
        except (Timeout, ServerGone) as e:
            raise SessionLost("no greeting: %s" % e)
        want = "OK" if self.login else "PREAUTH"
        if r.kind != "status" or r.status != want:
            self.model.violation("bad greeting", self.cid, "(connect)", r.short(),
                                 "expected * %s" % want)
            raise SessionLost("bad greeting")

    def do_login(self):
        a = self.run.acct
        cmd = Cmd("LOGIN", b"LOGIN %s \"%s\"" % (a.user.encode(), a.password.encode()))
        self.execute(cmd)
        if cmd.tagged.status != "OK":
            raise SessionLost("LOGIN failed", quiet=True)

    def select(self):
        cmd = Cmd("SELECT", b"SELECT INBOX (CONDSTORE)" if self.cs else b"SELECT INBOX")
        self.execute(cmd)
        self.select_sent = cmd.sent
        if cmd.tagged.status != "OK":
            return False
        if cmd.tagged.code_name == "READ-ONLY":
            self.v("SELECT read-only", cmd, cmd.tagged)
            return False
        self.selected = True
        if self.cs:
            # SELECT (CONDSTORE) is an enabling command (RFC 7162 3.1)
            self.cs_on = True
            if cmd.nomodseq:
                self.ms_ok = False
                self.model.note("condstore: NOMODSEQ")
            elif cmd.highestmodseq is None:
                self.v("SELECT without HIGHESTMODSEQ", cmd, cmd.tagged,
                       "RFC 7162 3.1.2: OK [HIGHESTMODSEQ] or [NOMODSEQ] after CONDSTORE")
            else:
                # judged here, after the UIDVALIDITY of the same response was accepted
                self.highest(cmd, cmd.highestmodseq[1], cmd.highestmodseq[0])
        self.fill_uids(after_select=True)
        return True

    def fill_uids(self, after_select=False):
        missing = [i for i, e in enumerate(self.seq) if e[0] is None]
        if not missing:
            return
        a, b = missing[0] + 1, missing[-1] + 1
        cmd = Cmd("FETCH-uids", b"FETCH %d:%d (UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
                  % (a, b), no_expunge=True)
        # messages whose UID is not known yet: each is above the UID known before it
        cmd.unknown_above = [self.seq[n - 1][1] for n in range(a, min(b, len(self.seq)) + 1)
                             if self.seq[n - 1][0] is None]
        self.execute(cmd)
        self.check_fetches(cmd)
        # Every message of the session has a UID the server knows; the answer must give it
        # (unless the server said some data is gone: EXPUNGEISSUED, or NO).
        if cmd.tagged.status == "OK" and cmd.tagged.code_name != "EXPUNGEISSUED":
            for n in range(a, min(b, len(self.seq)) + 1):
                if self.seq[n - 1][0] is None:
                    self.model.violation("FETCH data missing", self.cid, cmd.line(),
                                         cmd.tagged.short(), "message %d: no UID" % n)
        if after_select:
            self.check_reappeared(cmd)

    def check_reappeared(self, cmd):
        """A message that was surely gone before this SELECT must not be in it.  Judged by
        Message-ID: a UID that shows another message now is reported by link()."""
        m = self.model
        t = self.select_sent
        shown = {}
        for n, uid, r in cmd.fetches:
            for name, val in r.fetch.items():
                if uid is not None and isinstance(val, Str) and _HF.match(name):
                    mm = _MSGID.search(val)
                    if mm:
                        shown[uid] = mm.group(1)
        with m.lock:
            for e in self.seq:
                u = e[0]
                if u is None:
                    continue
                r = m.uids.get(u)
                if r is None or r.key is None or shown.get(u) != r.key or r.contested:
                    continue
                if r.announced is not None and r.announced < t:
                    m.violation("expunged message back", self.cid, cmd.line(), "",
                                "UID %d was announced expunged before this session "
                                "selected the mailbox" % u)
                else:
                    msg = m.msgs.get(r.key)
                    if msg is not None and msg.removed is not None and msg.removed[1] < t:
                        m.violation("expunged message back", self.cid, cmd.line(), "",
                                    "%s was removed (%s) before this session selected" % (
                                        r.key.decode("latin-1"), msg.removed[0]))
                    elif msg is not None and msg.state == "failed" and msg.done < t:
                        m.violation("failed APPEND is in the mailbox", self.cid,
                                    cmd.line(), "", "%s got NO, yet it is there" %
                                    r.key.decode("latin-1"))

    def logout(self):
        cmd = Cmd("LOGOUT", b"LOGOUT")
        self.logging_out = True
        try:
            self.execute(cmd)
        except SessionLost:
            if self.got_bye:
                return
            raise
        if not self.got_bye:
            self.v("LOGOUT without BYE", cmd, cmd.tagged, "RFC 3501 6.1.3: BYE must come "
                   "before the tagged OK")
        if not self.conn.at_eof(10.0):
            self.v("connection open after LOGOUT", cmd, cmd.tagged)
        else:
            rest = self.conn.pending()
            if rest.strip():
                self.v("untagged data after LOGOUT", cmd, cmd.tagged,
                       "after the tagged OK: %r" % rest[:200])

    # -- the workload ------------------------------------------------------------------------
    def random_command(self):
        rng = self.rng
        m = self.model
        present = m.present_count()
        init = m.initial_count
        weights = []
        table = WEIGHTS + CS_WEIGHTS if self.cs else WEIGHTS
        for name, w in table:
            if name == "append" and present >= 2 * init:
                w = 0
            if name in ("delete",) and present <= init * 3 // 4:
                w = 0
            if self.exists == 0 and name not in ("append", "noop", "check"):
                w = 0
            weights.append(w)
        name = rng.choices([n for n, _ in table], weights)[0]
        getattr(self, "do_" + name)()

    def known_seqs(self):
        return [i + 1 for i, e in enumerate(self.seq) if e[0] is not None]

    def pick_seqs(self, max_n=20, allow_star=False):
        """(text, [seq, ...]) of a random set among the messages whose UID is known."""
        rng = self.rng
        known = self.known_seqs()
        if not known:
            return None, []
        k = rng.random()
        if k < 0.4 or len(known) == 1:
            s = rng.choice(known)
            return b"%d" % s, [s]
        if k < 0.8:
            i = rng.randrange(len(known))
            j = min(len(known) - 1, i + rng.randint(1, max_n - 1))
            a, b = known[i], known[j]
            if allow_star and b == len(self.seq) and rng.random() < 0.5:
                return b"%d:*" % a, [s for s in range(a, b + 1)]
            return b"%d:%d" % (a, b), [s for s in range(a, b + 1)]
        pick = sorted(rng.sample(known, min(len(known), rng.randint(2, 6))))
        return b",".join(b"%d" % s for s in pick), pick

    def pick_uids(self, max_n=20):
        rng = self.rng
        known = [e[0] for e in self.seq if e[0] is not None]
        if not known:
            return None, []
        k = rng.random()
        if k < 0.4 or len(known) == 1:
            u = rng.choice(known)
            return b"%d" % u, [u]
        if k < 0.8:
            i = rng.randrange(len(known))
            j = min(len(known) - 1, i + rng.randint(1, max_n - 1))
            sel = known[i:j + 1]
            return b"%d:%d" % (sel[0], sel[-1]), sel
        pick = sorted(rng.sample(known, min(len(known), rng.randint(2, 6))))
        return b",".join(b"%d" % u for u in pick), pick

    def _fetch(self, kind, items_text, item_names, max_n=20, allow_star=True):
        text, seqs = self.pick_seqs(max_n, allow_star)
        if text is None:
            return
        want = {s: self.seq[s - 1][0] for s in seqs if s <= len(self.seq)}
        cmd = Cmd(kind, b"FETCH " + text + b" " + items_text, no_expunge=True)
        cmd.targets = list(want.values())
        cmd.unknown_above = [self.seq[s - 1][1] for s in want if want[s] is None]
        self.execute(cmd)
        self.check_fetches(cmd)
        if cmd.tagged.status == "OK":
            self.check_missing(cmd, want, item_names)

    def do_fetch_flags(self):
        if self.cs and self.ms_ok and self.rng.random() < 0.5:
            # the MODSEQ item (RFC 7162 3.1.4.2): more values for the mod-sequence checks
            self._fetch("FETCH-flags-modseq", b"(FLAGS UID MODSEQ)",
                        [b"FLAGS", b"UID", b"MODSEQ"], 40)
            return
        self._fetch("FETCH-flags", b"(FLAGS UID)", [b"FLAGS", b"UID"], 40)

    def do_fetch_hdr(self):
        self._fetch("FETCH-header", b"(UID BODY.PEEK[HEADER.FIELDS (From To Subject "
                    b"Message-ID)])", [b"UID", b"BODY[HEADER.FIELDS (FROM TO SUBJECT "
                                       b"MESSAGE-ID)]"], 20)

    def do_fetch_bs(self):
        self._fetch("FETCH-bodystructure", b"(UID BODYSTRUCTURE)", [b"UID", b"BODYSTRUCTURE"],
                    10)

    def do_fetch_size(self):
        self._fetch("FETCH-size", b"(UID RFC822.SIZE)", [b"UID", b"RFC822.SIZE"], 40)

    def do_fetch_body(self):
        self._fetch("FETCH-body", b"(UID BODY.PEEK[])", [b"UID", b"BODY[]"], 3, False)

    def do_fetch_text(self):
        self._fetch("FETCH-text", b"(UID BODY.PEEK[TEXT])", [b"UID", b"BODY[TEXT]"], 3, False)

    def do_uid_fetch(self):
        text, uids = self.pick_uids(20)
        if text is None:
            return
        k = self.rng.random()
        if k < 0.5:
            items, names = b"(FLAGS RFC822.SIZE)", [b"UID", b"FLAGS", b"RFC822.SIZE"]
        elif k < 0.8:
            items = b"(FLAGS BODY.PEEK[HEADER.FIELDS (Subject Message-ID)])"
            names = [b"UID", b"FLAGS", b"BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)]"]
        else:
            items, names = b"(BODYSTRUCTURE)", [b"UID", b"BODYSTRUCTURE"]
        cmd = Cmd("UID-FETCH", b"UID FETCH " + text + b" " + items)
        cmd.targets = uids
        self.execute(cmd)
        self.check_fetches(cmd)
        if cmd.tagged.status == "OK":
            # Only the UIDs still in this session's view after the command are owed data.
            still = set(e[0] for e in self.seq)
            self.check_missing(cmd, {u: u for u in uids if u in still}, names, by_uid=True)

    def random_flags(self, lo=1, hi=3):
        pool = SYSTEM_FLAGS + KEYWORDS
        return self.rng.sample(pool, self.rng.randint(lo, hi))

    def _store(self, kind, uid_mode, op, flags, unchanged=False):
        if uid_mode:
            text, targets = self.pick_uids(10)
        else:
            text, seqs = self.pick_seqs(10)
            targets = [self.seq[s - 1][0] for s in seqs]
        if text is None or None in targets:
            return
        fl = b" ".join(f.encode() for f in flags)
        verb = {"+": b"+FLAGS", "-": b"-FLAGS", "=": b"FLAGS"}[op]
        since = None
        mod = b""
        if unchanged:
            # mostly what this session knows of one target: passes unless it changed
            known = [self.ms_seen[u] for u in targets if u in self.ms_seen]
            k = self.rng.random()
            if known and k < 0.7:
                since = self.rng.choice(known)
            elif k < 0.95:
                since = self.ms.pick(self.rng)
            if since is None:
                since = 0
            mod = b"(UNCHANGEDSINCE %d) " % since
        cmd = Cmd(kind, (b"UID STORE " if uid_mode else b"STORE ") + text + b" " + mod +
                  verb + b" (" + fl + b")", no_expunge=not uid_mode)
        cmd.targets = targets
        cf = canon_flags(flags)
        ops = []

        def sent():
            ops.extend(self.model.begin_ops(targets, op, cf, self.cid, cmd.line(),
                                            self.gen))
            return ops[0][1].sent

        def lost():
            self.model.finish_ops(ops, ambiguous=True)

        self.execute(cmd, sent, lost)
        modified = set()
        if unchanged and cmd.tagged.code_name == "MODIFIED":
            nums = parse_set(cmd.tagged.code.split(b" ", 1)[1]
                             if b" " in cmd.tagged.code else b"")
            if nums is None:
                self.v("malformed response", cmd, cmd.tagged, "bad MODIFIED set")
            elif uid_mode:
                modified = set(nums)
            else:
                # sequence numbers: nothing may renumber during STORE (RFC 3501 7.4.1)
                modified = set(self.seq[s - 1][0] for s in nums if 0 < s <= len(self.seq))
        # those that failed the test were not changed: ambiguous says no more than that
        self.model.finish_ops([x for x in ops if x[0] in modified], ambiguous=True)
        self.model.finish_ops([x for x in ops if x[0] not in modified],
                              ambiguous=cmd.tagged.status != "OK")
        self.check_fetches(cmd)
        if cmd.tagged.status != "OK":
            return
        m = self.model
        if unchanged:
            self.check_unchanged(cmd, op, since, targets, modified)
        for u, o in ops:
            got = cmd.flag_updates.get(u)
            if got is None or m.overlapping(u, o) or m.maybe_gone(u):
                continue
            st = m.states(u, upto_op=o)
            if st is not None and not st.allows(got):
                self.flag_violation("STORE answered wrong flags", cmd, None, u, got, st,
                                    "UID %d: got %s, expected %s; %s" % (
                                        u, fmt_flags(got),
                                        st.describe(got),
                                        m.history(u)))

    def check_unchanged(self, cmd, op, since, targets, modified):
        """A target whose MODSEQ was above since before the command was sent must have
        failed the test (RFC 7162 3.1.3).  Only STORE FLAGS is judged: for +FLAGS and
        -FLAGS a server may let it pass when the flags named did not change (3.1.12)."""
        m = self.model
        if op != "=" or cmd.expunged:
            return
        for u in targets:
            if m.maybe_gone(u):
                continue
            p = self.ms.max_seen_before(self.gen, u, cmd.sent)
            if p is None or p[0] <= since:
                m.note("condstore: UNCHANGEDSINCE targets not known to have changed")
            elif u in modified:
                m.note("condstore: UNCHANGEDSINCE targets owed [MODIFIED] and in it")
            else:
                self.v("UNCHANGEDSINCE STORE applied to a changed message", cmd, cmd.tagged,
                       "UID %d: %s was told MODSEQ %d (%s) before this command was sent, "
                       "above %d, yet it is not in [MODIFIED]; %s" % (
                           u, p[1], p[0], p[2], since, m.history(u)))

    def do_store(self):
        k = self.rng.random()
        op = "+" if k < 0.45 else "-" if k < 0.85 else "="
        flags = self.random_flags(0 if op == "=" else 1, 4 if op == "=" else 3)
        self._store("STORE", False, op, flags)

    def do_uid_store(self):
        k = self.rng.random()
        op = "+" if k < 0.5 else "-" if k < 0.9 else "="
        flags = self.random_flags(0 if op == "=" else 1, 4 if op == "=" else 3)
        self._store("UID-STORE", True, op, flags)

    def do_delete(self):
        if self.rng.random() < 0.15:
            self._store("STORE-deleted", False, "-", ["\\Deleted"])
        else:
            self._store("STORE-deleted", self.rng.random() < 0.3, "+", ["\\Deleted"])

    def _expunge(self, uid_mode):
        m = self.model
        if uid_mode:
            text, uids = self.pick_uids(8)
            if text is None:
                return
            cmd = Cmd("UID-EXPUNGE", b"UID EXPUNGE " + text)
            scope = set(uids)
        else:
            cmd = Cmd("EXPUNGE", b"EXPUNGE")
            scope = None
        rec = []

        def sent():
            rec.append(m.begin_expunge(scope, self.cid, self.gen))
            return rec[0].sent

        def lost():
            m.finish_expunge(rec[0], ambiguous=True)

        self.execute(cmd, sent, lost)
        m.finish_expunge(rec[0], ambiguous=cmd.tagged.status != "OK")
        if cmd.tagged.status != "OK":
            return
        e = rec[0]
        # RFC 3501 6.4.3 / RFC 4315 2.1: every message (in the set) that surely had
        # \Deleted when the command was sent is gone once it completes.
        for ent in self.seq:
            u = ent[0]
            if u is None or (scope is not None and u not in scope):
                continue
            with m.lock:        # both at once: no operation may slip in between
                if not m.settled_before(u, e.sent):
                    continue
                st = m.states(u, before=e.sent)
            if st is not None and st.must("\\Deleted"):
                self.flag_violation("EXPUNGE left a deleted message", cmd, cmd.tagged, u,
                                    self.flags.get(u), st, "UID %d had \\Deleted; %s" % (
                                        u, m.history(u)))

    def do_expunge(self):
        self._expunge(False)

    def do_uid_expunge(self):
        self._expunge(True)

    def do_append(self):
        m = self.model
        rng = self.rng
        key, data = self.run.gen_message("app")
        content = crlf(data)
        flags = []
        if rng.random() < 0.3:
            flags = rng.sample(SYSTEM_FLAGS + KEYWORDS, rng.randint(1, 2))
        cf = canon_flags(flags)
        plus = rng.random() < 0.5
        text = b"APPEND INBOX" + (b" (" + b" ".join(f.encode() for f in flags) + b")"
                                  if flags else b"")
        cmd = Cmd("APPEND", text, literal=content, plus=plus)
        self.t("=", "APPEND of %s" % key.decode())
        rec = m.add_message(key, content, "append", cf, "pending", self.cid)
        floor = []

        def sent():
            with m.lock:
                m.check_gen(self.gen)
                t = m.tick()
                rec.sent = t
                floor.append(m.max_uid)
            return t

        def lost():
            with m.lock:
                rec.state = "maybe"
                rec.done = m.tick()

        self.execute(cmd, sent, lost)
        with m.lock:
            rec.done = m.tick()
            rec.state = "present" if cmd.tagged.status == "OK" else "failed"
        if cmd.tagged.status != "OK":
            return
        if cmd.tagged.code_name == "APPENDUID":
            parts = cmd.tagged.code.split()
            try:
                v, u = int(parts[1]), int(parts[2])
            except (IndexError, ValueError):
                self.v("malformed response", cmd, cmd.tagged, "bad APPENDUID")
                return
            if not m.set_uidvalidity(v, self.cid, cmd.tagged.short(), self.gen):
                self.run.rebase(v)
                raise SessionLost("UIDVALIDITY changed", quiet=True)
            if u <= floor[0]:
                self.v("APPENDUID not above existing UIDs", cmd, cmd.tagged,
                       "UID %d was seen before this APPEND was sent (RFC 3501 2.3.1.1)" %
                       floor[0])
            m.set_init(u, cf, self.gen)
            m.learn_uid(u, self.gen)
            m.link(u, key, self.cid, cmd.line(), cmd.tagged.short(), self.gen)

    def do_noop(self):
        m = self.model
        cmd = Cmd("NOOP", b"NOOP")
        self.execute(cmd)
        self.last_noop_sent = cmd.sent
        if cmd.tagged.status != "OK":
            return
        t = cmd.sent
        for ent in self.seq:
            u = ent[0]
            if u is None or u not in self.flags:
                continue
            with m.lock:        # both at once: no operation may slip in between
                if not m.settled_before(u, t) or m.maybe_gone(u):
                    continue
                st = m.states(u, before=t)
            if st is None:
                continue
            got = self.flags[u]
            if not st.allows(got):
                self.flag_violation("flag change not seen at NOOP", cmd, None, u, got, st,
                                    "UID %d: the session has %s, the mailbox must have %s; "
                                    "NOOP sent at %d; %s" % (
                                        u, fmt_flags(got),
                                        st.describe(got), t,
                                        m.history(u)))

    def do_check(self):
        cmd = Cmd("CHECK", b"CHECK")
        self.execute(cmd)


def parse_modseq_code(code):
    """The value of a HIGHESTMODSEQ response code (b"HIGHESTMODSEQ 123"), or None."""
    parts = code.split()
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    return int(parts[1])


def parse_set(text):
    """The numbers of a sequence set without "*" (1,3:5), ascending, or None."""
    out = set()
    try:
        for part in text.split(b","):
            if b":" in part:
                a, b = part.split(b":", 1)
                a, b = int(a), int(b)
                if a > b:
                    a, b = b, a
                if b - a > 100000:
                    return None
                out.update(range(a, b + 1))
            else:
                out.add(int(part))
    except ValueError:
        return None
    if not out or min(out) < 1:
        return None
    return sorted(out)


def describe(b):
    if isinstance(b, int):
        return str(b)
    if not b:
        return "empty"
    s = b[:40].decode("utf-8", "replace").replace("\r\n", "\\r\\n")
    return "%d octets (%r...)" % (len(b), s)
