"""The local programs that share the spool file with the server while the clients work:
an MDA delivering new mail and a mail reader (mutt) rewriting the file.

Both record what they did in the model: a delivery is a message that is in the mailbox once
the MDA has exited 0; a rewrite is, per changed message, an operation setting its system
flags (keywords kept), and per dropped message a removal by another program, each taking
effect while the locks were held.
"""

import os
import random
import time

import mboxfile
from mboxgen import crlf, ctime
from model import Stale, canon_flags

TOGGLE = ["\\Seen", "\\Answered", "\\Flagged"]


def mda_loop(run):
    """Deliver a message every --mda-interval seconds (on average) until run.stop."""
    m = run.model
    a = run.acct
    rng = random.Random("%s-mda" % run.args.seed)
    if run.args.mda_kind == "procmail":
        mboxfile.write_procmailrc(a.procmailrc, a.inbox)
    while not run.stop.wait(rng.uniform(0.3, 1.7) * run.args.mda_interval):
        if m.present_count() >= 2 * m.initial_count:
            continue
        key, data = run.gen_message("mda")
        now = time.time()
        from_line = b"From mda-sender@example.net " + ctime(now).encode() + b"\n"
        rec = m.add_message(key, crlf(data), "mda", frozenset(), "pending", "mda")
        with m.lock:
            rec.sent = m.tick()
        t0 = time.monotonic()
        ok = False
        why = ""
        try:
            if run.args.mda_kind == "procmail":
                rc, err = mboxfile.deliver_procmail(a.procmailrc, from_line, data, a.uid, a.gid,
                                                    a.home, a.user)
                ok = rc == 0
                why = "procmail exit %d: %s" % (rc, err.strip()[:200])
            else:
                mboxfile.deliver_python(a.inbox, from_line, data)
                ok = True
        except Exception as e:      # a lock held for a minute, procmail hanging
            why = "%s: %s" % (type(e).__name__, e)
        run.record("MDA-deliver", time.monotonic() - t0)
        run.trace_local("mda", "delivered %s [%d..] ok=%s %s" % (key.decode(), rec.sent, ok,
                                                                 why if not ok else ""))
        with m.lock:
            rec.done = m.tick()
            rec.state = "present" if ok else "maybe"
        if ok:
            m.note("deliveries")
        else:
            run.harness_error("delivery failed: %s" % why)


def mutt_loop(run):
    """Rewrite the spool as mutt does every --mutt-interval seconds (on average)."""
    m = run.model
    a = run.acct
    rng = random.Random("%s-mutt" % run.args.seed)
    while not run.stop.wait(rng.uniform(0.5, 1.5) * run.args.mutt_interval):
        with m.lock:
            uv = m.uidvalidity
            gen = m.generation
        if uv is None:
            continue
        state = {"ops": [], "drops": []}

        def locked():
            state["t_locked"] = m.tick()

        def choose(msgs):
            if not msgs or msgs[0].imapbase is None or not msgs[0].imapbase or \
                    msgs[0].imapbase[0] != str(uv).encode():
                return None
            with m.lock:
                cands = [i for i, x in enumerate(msgs)
                         if i > 0 and x.uid is not None and not x.pseudo and
                         x.msgid in m.msgs]
            if not cands:
                return None
            change = {}
            for i in rng.sample(cands, min(len(cands), rng.randint(1, 4))):
                fl = msgs[i].system_flags()
                for f in rng.sample(TOGGLE, rng.randint(1, 2)):
                    fl ^= {f}
                change[i] = fl
            drop = set()
            if m.present_count() > m.initial_count * 3 // 4:
                deleted = [i for i in cands if "\\Deleted" in msgs[i].flags]
                if deleted and rng.random() < 0.5:
                    drop.add(rng.choice(deleted))
                elif rng.random() < 0.2:
                    drop.add(rng.choice(cands))
            for i in drop:
                change.pop(i, None)
            for i, fl in change.items():
                state["ops"].extend(m.begin_ops([msgs[i].uid], "sys=", canon_flags(fl),
                                                "mutt", "rewrite Status/X-Status of UID %d" %
                                                msgs[i].uid, gen))
            for i in drop:
                m.mutt_dropped(msgs[i].uid, m.tick(), gen)
                state["drops"].append((msgs[i].uid, msgs[i].msgid))
            return change, drop

        def snap(before, after):
            base = os.path.join(run.args.trace, "mutt-%d" % state["t_locked"])
            for suffix, data in ((".before", before), (".after", after)):
                with open(base + suffix, "wb") as f:
                    f.write(data)

        t0 = time.monotonic()
        ok = True
        try:
            plan, _ = mboxfile.rewrite(a.inbox, choose, on_locked=locked,
                                       snapshot=snap if run.args.trace else None)
        except Stale:
            # UIDVALIDITY changed while choosing: nothing was written.
            plan = None
        except Exception as e:
            ok = False
            plan = None
            run.harness_error("mutt rewrite failed: %s: %s" % (type(e).__name__, e))
        done = m.finish_ops(state["ops"], ambiguous=not ok)
        if ok:
            for uid, key in state["drops"]:
                m.mutt_drop_done(key, done)
        run.record("MUTT-rewrite", time.monotonic() - t0)
        run.trace_local("mutt", "rewrite locked at %s done %d ok=%s flags %s drops %s" % (
            state.get("t_locked"), done, ok,
            ["%d=%s" % (u, sorted(o.flags)) for u, o in state["ops"]],
            [(u, k.decode()) for u, k in state["drops"]]))
        if plan:
            m.note("mutt rewrites")
            m.note("mutt flag changes", len(state["ops"]))
            m.note("mutt drops", len(state["drops"]))


def storm_loop(run):
    """SIGKILL a server process in the middle of a command every --kill-storm seconds (on
    average)."""
    rng = random.Random("%s-storm" % run.args.seed)
    while not run.stop.wait(rng.uniform(0.5, 1.5) * run.args.kill_storm):
        live = [p for p in run.launcher.live() if not p.harness_killed]
        busy = [p for p in live if p.in_command]
        pick = busy or live
        if not pick:
            continue
        p = rng.choice(pick)
        p.storm_killed = True
        run.launcher.kill(p)
        run.model.note("storm kills")
