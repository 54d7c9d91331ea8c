#!/usr/bin/python3
"""Concurrent stress test of an IMAP server on one mbox INBOX, with exact checks.

    tests/stress/stress.py [--short] [--clients N] [--seconds S] [--imapd PATH | --dovecot]
                           [--login | --login-clients K] [--no-mda] [--no-mutt]
                           [--kill-storm SECONDS] [--condstore] [--context] [--seed N]
                           [--json FILE]

N clients at once, each in a loop of sessions (connect, SELECT INBOX, random FETCH, UID FETCH,
STORE, UID STORE, EXPUNGE, UID EXPUNGE, APPEND, NOOP, CHECK, LOGOUT), with an MDA delivering
into the spool file and a mail reader rewriting it as mutt does.  Every response is checked
against each session's view and a model shared by all; at the end a fresh session and a parse
of the file on disk must show exactly the messages that should be there, with the right
bytes and flags.  Exit status: 0 no violation, 1 violations, 2 the harness could not run.
Needs root (it makes a throwaway Unix user).  See tests/stress/README.md.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import mboxfile                                 # noqa: E402
import localprogs                               # noqa: E402
from client import Client, Cmd, MSGID_RE        # noqa: E402
from mboxgen import Gen, crlf, initial_mbox     # noqa: E402
from model import Model, fmt_flags              # noqa: E402
from modseq import ModseqModel                  # noqa: E402
from servers import Account, Launcher, DOVECOT_IMAP   # noqa: E402


class Run:
    """What the threads of one run share."""

    def __init__(self, args):
        self.args = args
        self.stop = threading.Event()
        self.fatal = threading.Event()
        self.stats = {}
        self.stats_lock = threading.Lock()
        self.gen = Gen(args.seed)
        self.gen_lock = threading.Lock()
        self.errors = []
        self.probes = 0
        self.model = None
        self.modseq = None
        self.acct = None
        self.launcher = None
        # --context: clients that wait, their workload done, for everyone else to stop
        self.parked = set()
        self.parked_lock = threading.Lock()
        self.quiet = threading.Event()

    def park(self, cid):
        """A --context client has stopped its workload: it waits until the other clients,
        the MDA and the mail reader have stopped too.  False if that never came."""
        with self.parked_lock:
            self.parked.add(cid)
        return self.quiet.wait(2 * self.args.timeout + 60)

    def record(self, kind, dt):
        with self.stats_lock:
            self.stats.setdefault(kind, []).append(dt)

    def gen_message(self, origin):
        with self.gen_lock:
            return self.gen.message(origin, t=int(time.time()))

    def probe(self, uid):
        """What the file says about uid now: ("present", flags), ("absent", None), or None
        when it cannot be told (no lock, too many probes)."""
        with self.stats_lock:
            if self.probes >= 500:
                return None
            self.probes += 1
        try:
            data = mboxfile.read_locked(self.acct.inbox)
            if data is None:
                return None
            msgs = mboxfile.parse(data)
        except (OSError, ValueError):
            return None
        for x in msgs:
            if x.uid == uid and not x.pseudo:
                return ("present", frozenset(x.flags))
        return ("absent", None)

    def rebase(self, v):
        """The server changed UIDVALIDITY to v (reported already): every session's view is
        void.  End them all and go on in a new generation of UIDs."""
        m = self.model
        with m.lock:
            if m.uidvalidity == v:
                return
            m.rebase(v)
            m.note("UIDVALIDITY changes (sessions ended, UIDs re-learned)")
            self.launcher.kill_live()

    def trace_local(self, who, text):
        if self.args.trace:
            with self.stats_lock:
                with open(os.path.join(self.args.trace, who + ".log"), "a") as f:
                    f.write("%d = %s\n" % (self.model._tick, text))

    def harness_error(self, msg):
        with self.stats_lock:
            if len(self.errors) < 100:
                self.errors.append(msg)


def options(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true",
                    help="what make check runs: 10 clients (2 with LOGIN), 20 s, MDA and "
                    "mail reader on")
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=None, help="workload time (default 60, "
                    "--short 20)")
    ap.add_argument("--messages", type=int, default=200, help="messages in the initial INBOX")
    ap.add_argument("--login", action="store_true", help="every client logs in with LOGIN "
                    "(imapd started as root, PAM through pam_wrapper)")
    ap.add_argument("--login-clients", type=int, default=None,
                    help="this many clients use LOGIN, the others preauth")
    ap.add_argument("--mda", dest="mda", action="store_true", default=True)
    ap.add_argument("--no-mda", dest="mda", action="store_false")
    ap.add_argument("--mda-kind", choices=["procmail", "python"], default=None,
                    help="procmail if installed (Python with --dovecot: see README)")
    ap.add_argument("--mda-interval", type=float, default=0.7)
    ap.add_argument("--mutt", dest="mutt", action="store_true", default=True)
    ap.add_argument("--no-mutt", dest="mutt", action="store_false")
    ap.add_argument("--mutt-interval", type=float, default=2.0)
    ap.add_argument("--kill-storm", type=float, default=0.0, metavar="SECONDS",
                    help="SIGKILL a server process mid-command every SECONDS on average")
    ap.add_argument("--condstore", action="store_true",
                    help="RFC 7162: imapd with condstore = yes; sessions ENABLE CONDSTORE "
                    "(some QRESYNC), SELECT (CONDSTORE), and mod-sequences are checked "
                    "(CHANGEDSINCE, UNCHANGEDSINCE, STATUS HIGHESTMODSEQ as well)")
    ap.add_argument("--context", action="store_true",
                    help="RFC 5267 4.3: every third client starts one or two updating "
                    "SEARCH/SORT results after SELECT (RETURN (UPDATE ALL)), keeps a copy "
                    "by every ADDTO, REMOVEFROM and EXPUNGE, and compares it with a fresh "
                    "run once everything has stopped")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--imapd", default=os.path.join(ROOT, "imapd", "imapd"),
                    help="the imapd binary (default: imapd/imapd of this tree)")
    ap.add_argument("--dovecot", action="store_true",
                    help="run against Dovecot's imap (%s), preauthenticated" % DOVECOT_IMAP)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds a command may take")
    ap.add_argument("--json", metavar="FILE", help="write the figures and violations here")
    ap.add_argument("--show", type=int, default=5, help="examples printed per violation kind")
    ap.add_argument("--server-debug", action="store_true", help="run imapd with -d (its log "
                    "lines go to logs/server.stderr in the temporary directory; see --keep)")
    ap.add_argument("--trace", metavar="DIR", help="write each client's transcript to "
                    "DIR/CLIENT.log (model ticks, commands, responses)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory "
                    "(mbox, server logs)")
    a = ap.parse_args(argv)
    if a.short:
        if a.seconds is None:
            a.seconds = 20
        if a.login_clients is None and not a.login:
            a.login_clients = 2
    if a.seconds is None:
        a.seconds = 60
    if a.login:
        a.login_clients = a.clients
    if a.login_clients is None:
        a.login_clients = 0
    if a.dovecot and a.login_clients:
        if a.login:
            ap.error("--dovecot runs preauthenticated only")
        a.login_clients = 0
    if a.mda_kind is None:
        # Debian's Dovecot takes fcntl then the dotlock and holds the first while waiting
        # for the second; procmail takes the dotlock then waits for fcntl: they deadlock
        # until Dovecot's 5-minute lock timeout.  The Python MDA lets go of fcntl while the
        # dotlock is busy (as imapd does), so it can share the file with Dovecot.
        if a.dovecot or not shutil.which("procmail"):
            a.mda_kind = "python"
        else:
            a.mda_kind = "procmail"
    if a.clients < 1 or a.messages < 1 or a.seconds <= 0:
        ap.error("--clients, --messages and --seconds must be positive")
    a.imapd = os.path.abspath(a.imapd)
    if a.trace:
        os.makedirs(a.trace, exist_ok=True)
    return a


def percentile(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


# ---------------------------------------------------------------------------------------------
# The final check

def final_check(run):
    """A fresh session and the file on disk against the model.  Returns a summary dict."""
    m = run.model
    out = {}
    view = []
    shown = {}          # UID -> the Message-ID its BODY[] shows in the final session

    def script(cl):
        if cl.exists:
            cmd = Cmd("FINAL-FETCH", b"FETCH 1:%d (UID FLAGS RFC822.SIZE BODY.PEEK[])" %
                      cl.exists, no_expunge=True)
            cl.execute(cmd)
            cl.check_fetches(cmd)
            for n, uid, r in cmd.fetches:
                body = r.fetch.get(b"BODY[]")
                if uid is not None and isinstance(body, bytes):
                    mm = MSGID_RE.search(body.split(b"\r\n\r\n", 1)[0])
                    if mm:
                        shown[uid] = mm.group(1)
        cl.execute(Cmd("CHECK", b"CHECK"))
        view.extend((e[0], cl.flags.get(e[0])) for e in cl.seq)
        out["exists"] = cl.exists

    void = m.uidvalidity_changed_seen
    # Per message (by Message-ID): was \Deleted ever stored on it, did the mail reader
    # start to drop it.  Kept by key, since the UIDs may have to be forgotten.
    with m.lock:
        deleted_keys = set()
        mutt_keys = set()
        linked_keys = set()
        contested_keys = set()
        for r in m.uids.values():
            if r.key is None:
                continue
            linked_keys.add(r.key)
            if r.contested:
                contested_keys.add(r.key)
            if any(op.sets_deleted() for op in r.ops):
                deleted_keys.add(r.key)
            if r.mutt_drop is not None:
                mutt_keys.add(r.key)
    fc = Client("final", run)
    fc.session(script=script)
    if "exists" not in out:
        m.violation("final session failed", "final", "", "", "the last session could not "
                    "select and fetch the mailbox")
        return out

    def bad(kind, detail):
        m.violation(kind, "final", "final check", "", detail)

    by_key = {}
    for uid, fl in view:
        key = shown.get(uid)
        if key is None:
            r = m.uids.get(uid)
            key = r.key if r is not None else None
        if uid is None or key is None or key not in m.msgs:
            bad("final: message of unknown content", "UID %s: its Message-ID could not be "
                "read" % uid)
            continue
        by_key.setdefault(key, []).append((uid, fl))
    counts = {"initial": 0, "append": 0, "mda": 0}
    anonymous = sum(1 for r in m.uids.values() if r.announced is not None and r.key is None)
    anonymous += m.unattributed
    ambiguous_exp = m.ambiguous_expunges()
    accepted = 0
    for key, rec in m.msgs.items():
        got = by_key.get(key, [])
        if rec.state == "present" and rec.removed is None:
            counts["initial" if rec.origin == "init" else rec.origin] += 1
        if len(got) > 1:
            bad("final: duplicate message", "%s is there %d times (UIDs %s)" % (
                key.decode("latin-1"), len(got), ", ".join(str(u) for u, _ in got)))
        if got:
            if rec.removed is not None and (void or key in contested_keys):
                pass        # told by a UID that showed another message too
            elif rec.removed is not None:
                bad("final: expunged message back", "%s was removed (%s) but is UID %d" % (
                    key.decode("latin-1"), rec.removed[0], got[0][0]))
            elif rec.state == "failed":
                bad("final: failed APPEND is there", "%s got NO but is UID %d" % (
                    key.decode("latin-1"), got[0][0]))
            elif rec.state == "pending":
                bad("final: message of an unfinished delivery", key.decode("latin-1"))
            continue
        if rec.state != "present" or rec.removed is not None:
            continue
        # Missing.  Fine only if it may have been expunged without anyone being told which
        # UID went: by a session killed mid-EXPUNGE, or while a session did not know its
        # UID, or by the mail reader in a rewrite that failed.
        if key in mutt_keys or (key in deleted_keys and (ambiguous_exp or m.unattributed or
                                                          void)):
            accepted += 1
            continue
        if void:
            # A STORE of \Deleted by sequence number may have hit a renumbered message.
            out["missing_not_judged"] = out.get("missing_not_judged", 0) + 1
            continue
        if key not in linked_keys and anonymous > 0:
            anonymous -= 1
            accepted += 1
            continue
        bad("final: message lost", "%s (%s, UID %s) is not in the mailbox and nobody "
            "expunged it; %s" % (key.decode("latin-1"), rec.origin, rec.uid,
                                 m.history(rec.uid) if rec.uid else "never fetched"))
    out["uidvalidity_changed"] = void
    # Flags: one of the values the operations allow.
    for key, got in by_key.items():
        for uid, fl in got:
            r = m.uids.get(uid)
            if r is None or r.key != key or r.contested:
                continue        # its UID changed or clashed: reported when it happened
            st = m.states(uid)
            if fl is None or st is None:
                continue
            if not st.allows(fl):
                bad("final: wrong flags", "UID %d: %s, expected %s; %s" % (
                    uid, fmt_flags(fl), st.describe(fl),
                    m.history(uid)))
    out["messages"] = len(view)
    out["accepted_ambiguous"] = accepted
    out.update(counts)

    # The file itself.
    # The final session opened the mailbox read-write, which finishes any journal a
    # killed session left: none may be left (imapd's state directory).
    state = os.path.join(run.acct.home, ".imapd")
    if not run.args.dovecot and os.path.isdir(state):
        left = sorted(n for n in os.listdir(state) if n.startswith(".imapd-journal-"))
        out["journals_left"] = len(left)
        if left:
            bad("final: journal not recovered", "left in %s: %s" % (state, ", ".join(left)))
    try:
        data = mboxfile.read_file(run.acct.inbox)
        msgs = mboxfile.parse(data)
    except (OSError, ValueError) as e:
        bad("final: mbox unreadable", str(e))
        return out
    real = [x for x in msgs if not x.pseudo]
    out["disk_messages"] = len(real)
    out["disk_bytes"] = len(data)
    if msgs and m.uidvalidity is not None and (msgs[0].imapbase is None or
                                              not msgs[0].imapbase or
                 msgs[0].imapbase[0] != str(m.uidvalidity).encode()):
        bad("final: disk UIDVALIDITY", "the first message's X-IMAPbase is %r, the server "
            "said UIDVALIDITY %s" % (msgs[0].imapbase, m.uidvalidity))
    disk_keys = {}
    for x in real:
        if x.msgid is None or x.msgid not in m.msgs:
            bad("final: disk has an unknown message", "message at offset %d (Message-ID %r)" %
                (x.start, x.msgid))
            continue
        disk_keys.setdefault(x.msgid, []).append(x)
    for key, xs in disk_keys.items():
        rec = m.msgs[key]
        if len(xs) > 1:
            bad("final: disk has a message twice", key.decode("latin-1"))
        x = xs[0]
        if crlf(x.visible()) != rec.content:
            bad("final: disk content differs", "%s at offset %d: what a client would be "
                "shown differs from what was put in" % (key.decode("latin-1"), x.start))
        sess = by_key.get(key)
        if not sess:
            bad("final: disk and session disagree", "%s is in the file (X-UID %s) but not "
                "in the session" % (key.decode("latin-1"), x.uid))
            continue
        uid, fl = sess[0]
        if x.uid != uid:
            bad("final: disk and session disagree", "%s: X-UID %s in the file, UID %d in "
                "the session" % (key.decode("latin-1"), x.uid, uid))
        if fl is not None and frozenset(x.flags) != fl:
            bad("final: disk and session disagree", "%s (UID %d): flags %s in the file, %s "
                "in the session" % (key.decode("latin-1"), uid, fmt_flags(x.flags),
                                    fmt_flags(fl)))
    for key in by_key:
        if key not in disk_keys:
            bad("final: disk and session disagree", "%s is in the session but not in the "
                "file" % key.decode("latin-1"))
    return out


# ---------------------------------------------------------------------------------------------
# Report

def report(run, started, elapsed, final, interrupted):
    a = run.args
    m = run.model
    lines = []
    server = "dovecot (%s)" % DOVECOT_IMAP if a.dovecot else "imapd (%s)" % a.imapd
    lines.append("stress: %s, %d clients (%d with LOGIN), %.0f s, %d messages (%.1f MB), "
                 "seed %d, MDA %s, mail reader %s%s%s%s" % (
                     server, a.clients, a.login_clients, elapsed, a.messages,
                     run.initial_bytes / 1e6, a.seed, a.mda_kind if a.mda else "off",
                     "on" if a.mutt else "off",
                     ", CONDSTORE" if a.condstore else "",
                     ", CONTEXT" if a.context else "",
                     ", kill storm every %.1f s" % a.kill_storm if a.kill_storm else ""))
    lines.append("%-20s %8s %8s %9s %9s" % ("command", "count", "ops/s", "p50 ms", "p99 ms"))
    figures = {}
    with run.stats_lock:
        stats = {k: sorted(v) for k, v in run.stats.items()}
    for kind in sorted(stats):
        v = stats[kind]
        figures[kind] = {"count": len(v), "ops_per_s": len(v) / elapsed if elapsed else 0,
                         "p50_ms": percentile(v, 50) * 1e3, "p99_ms": percentile(v, 99) * 1e3}
        f = figures[kind]
        lines.append("%-20s %8d %8.1f %9.2f %9.2f" % (kind, f["count"], f["ops_per_s"],
                                                      f["p50_ms"], f["p99_ms"]))
    total = sum(len(v) for k, v in stats.items() if not k.startswith(("MDA", "MUTT")))
    lines.append("all IMAP commands: %d, %.1f/s" % (total, total / elapsed if elapsed else 0))
    with m.lock:
        notes = dict(m.notes)
        allowed = dict(m.allowed)
        vcount = dict(m.violation_count)
        vlist = {k: list(v) for k, v in m.violations.items()}
    lines.append("events: " + ", ".join("%s %d" % (k, v) for k, v in sorted(notes.items())))
    lines.append("allowed: NO [INUSE] %d; " % allowed.get("NO [INUSE]", 0) + "; ".join(
        "%s %d" % (k, v) for k, v in sorted(allowed.items()) if k != "NO [INUSE]"))
    if final:
        lines.append("final: %s" % ", ".join("%s %s" % (k, v) for k, v in final.items()))
    if run.errors:
        lines.append("harness errors (not server violations): %d" % len(run.errors))
        for e in run.errors[:10]:
            lines.append("  " + e)
    if interrupted:
        lines.append("interrupted: the final check was skipped")
    n = sum(vcount.values())
    if n == 0:
        lines.append("violations: none")
    else:
        lines.append("violations: %d in %d kinds" % (n, len(vcount)))
        for kind in sorted(vcount, key=lambda k: -vcount[k]):
            lines.append("  [%s] x%d" % (kind, vcount[kind]))
            for v in vlist.get(kind, [])[:a.show]:
                lines.append("    %s: %s" % (v.who, v.cmd))
                if v.line:
                    lines.append("      -> %s" % v.line)
                if v.detail:
                    lines.append("      %s" % v.detail)
    print("\n".join(lines), flush=True)
    if a.json:
        doc = {"server": "dovecot" if a.dovecot else "imapd",
               "binary": DOVECOT_IMAP if a.dovecot else a.imapd,
               "started": started, "seconds": elapsed,
               "options": {k: v for k, v in vars(a).items() if k != "json"},
               "initial_bytes": run.initial_bytes, "commands": figures, "events": notes,
               "allowed": allowed, "final": final, "harness_errors": run.errors,
               "violation_counts": vcount,
               "violations": [v.as_dict() for k in sorted(vlist) for v in vlist[k]],
               "interrupted": interrupted}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1, default=str)
            f.write("\n")
    return n


# ---------------------------------------------------------------------------------------------

def main(argv):
    a = options(argv)
    if os.geteuid() != 0:
        print("stress.py: must run as root (it creates a throwaway Unix user)", file=sys.stderr)
        return 2
    exe = DOVECOT_IMAP if a.dovecot else a.imapd
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        print("stress.py: %s is not an executable (build it, or give --imapd; Dovecot: "
              "tests/deps.sh bench)" % exe, file=sys.stderr)
        return 2
    run = Run(a)
    interrupted = []

    def on_signal(signum, frame):
        if interrupted:
            return
        interrupted.append(signum)
        run.stop.set()
        run.fatal.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    acct = None
    launcher = None
    final = None
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    watchdog_done = threading.Event()
    try:
        acct = Account(keep=a.keep, condstore=a.condstore)
        run.acct = acct
        data, msgs = initial_mbox(run.gen, a.messages)
        run.initial_bytes = len(data)
        acct.write_inbox(data)
        run.model = Model(a.messages)
        if a.condstore:
            run.modseq = ModseqModel(run.model)
        for key, content in msgs:
            rec = run.model.add_message(key, crlf(content), "init", frozenset(), "present",
                                        "init")
            rec.done = 0
        launcher = Launcher(acct, "dovecot" if a.dovecot else "imapd", a.imapd,
                            debug=a.server_debug)
        run.launcher = launcher

        def watchdog():
            # However the servers behave, the run ends: workload, a minute per command for
            # the sessions to finish, and the final check.
            if not watchdog_done.wait(a.seconds + 3 * a.timeout + 120):
                print("stress.py: watchdog: the run did not finish; killing it",
                      file=sys.stderr, flush=True)
                launcher.kill_all()
                acct.cleanup()
                os._exit(3)
        threading.Thread(target=watchdog, daemon=True).start()

        threads = []
        parking = []        # --context: the clients that wait for quiescence
        for i in range(a.clients):
            c = Client("c%d" % (i + 1), run, login=i < a.login_clients,
                       contexts=a.context and i % 3 == 0)
            t = threading.Thread(target=c.loop, name=c.cid, daemon=True)
            threads.append(t)
            if c.ctx_role:
                parking.append(t)
        if a.mda:
            threads.append(threading.Thread(target=localprogs.mda_loop, args=(run,),
                                            name="mda", daemon=True))
        if a.mutt:
            threads.append(threading.Thread(target=localprogs.mutt_loop, args=(run,),
                                            name="mutt", daemon=True))
        if a.kill_storm > 0:
            threads.append(threading.Thread(target=localprogs.storm_loop, args=(run,),
                                            name="storm", daemon=True))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        end = t0 + a.seconds
        while not run.stop.is_set() and time.monotonic() < end:
            run.stop.wait(min(0.5, max(0.0, end - time.monotonic())))
            if run.fatal.is_set():
                break
        run.stop.set()
        if parking:
            # Quiescence for the --context check: the clients with updating results wait
            # (parked) or end; everyone else ends; then they compare.
            for t in threads:
                if t not in parking:
                    t.join(2 * a.timeout + 30)
            limit = time.monotonic() + 2 * a.timeout + 30
            while time.monotonic() < limit and any(
                    t.is_alive() and t.name not in run.parked for t in parking):
                time.sleep(0.1)
            run.quiet.set()
        for t in threads:
            t.join(2 * a.timeout + 30)
        elapsed = time.monotonic() - t0
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            run.harness_error("threads still running after the stop: %s" % ", ".join(stuck))
        left = launcher.live()
        if left:
            run.model.violation("server did not exit", "-", "after the workload", "",
                                "%d server processes still running" % len(left))
            launcher.kill_all()
            launcher.closing = False
        if not interrupted and not stuck:
            final = final_check(run)
        n = report(run, started, elapsed, final, bool(interrupted))
        if a.keep:
            print("kept: %s" % acct.top)
        if interrupted:
            return 130
        if n:
            return 1
        return 2 if run.errors or stuck else 0
    finally:
        watchdog_done.set()
        if launcher is not None:
            launcher.kill_all()
        if acct is not None:
            acct.cleanup()
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
