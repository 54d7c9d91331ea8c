#!/usr/bin/python3
"""Benchmark imapd against Dovecot's imap on copies of the same generated mbox, in one run.

    tests/bench/run [--messages 10000,100000] [--servers dovecot,imapd]
                    [--imapd-cmd 'imapd/imapd --preauth --config {config}']
                    [--markdown FILE] [--json FILE] [--work DIR] [--step-timeout SECONDS]

Run as root from the repository root: each server runs preauthenticated on stdin/stdout as a
throwaway Unix user (created and removed here), its INBOX a fresh copy of the pristine mbox in
a spool directory under a temporary directory. The imapd command line is a template; {config}
is a file with `spool_dir = ...` and `mail_dir = ...` lines, and {spool_dir}, {mail_dir},
{home}, {inbox} and {user} are also filled in.

Session 1 (fresh copy, no state from earlier sessions): SELECT, LOGOUT.
Session 2 (a new process): SELECT, UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE),
FETCH 1:* (ENVELOPE BODYSTRUCTURE), FETCH 1:* (BODY.PEEK[HEADER.FIELDS (...)]),
500 BODY.PEEK[] in one FETCH, SEARCH SUBJECT / FROM / BODY (known answers from the generator's
manifest), STORE 1:* +FLAGS.SILENT (\\Seen) + CHECK, STORE 1 +FLAGS.SILENT (\\Deleted) + EXPUNGE,
APPEND of 200 messages of 10 KB, memory of the server process, LOGOUT (until the process exits).

Each step is timed on the wall clock from sending the command to its tagged response, which
must be OK; a step that fails or times out is reported as n/a with the reason, and the run goes
on. Results that must agree between the servers (EXISTS, SEARCH sets) are checked.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import imapharness as H  # noqa: E402

HDR_FIELDS = "BODY.PEEK[HEADER.FIELDS (From To Subject Date Message-ID)]"

STEPS = [
    ("select1", "first SELECT (fresh copy)"),
    ("logout1", "LOGOUT after first SELECT"),
    ("select2", "second SELECT (new process)"),
    ("uidfetch", "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)"),
    ("envbs", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)"),
    ("hdrfields", "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (5 fields)])"),
    ("body500", "FETCH of 500 BODY.PEEK[] in one command"),
    ("ssubject", "SEARCH SUBJECT"),
    ("sfrom", "SEARCH FROM"),
    ("sbody", "SEARCH BODY (phrase in ~1%)"),
    ("store", "STORE 1:* +FLAGS.SILENT (\\Seen) + CHECK"),
    ("expunge", "EXPUNGE of the first message"),
    ("append", "APPEND of 200 messages of 10 KB"),
    ("logout2", "LOGOUT (until the process exits)"),
]
MEMORY = [
    ("hwm1", "peak memory (VmHWM), session 1"),
    ("hwm2", "peak memory (VmHWM), session 2"),
    ("anon2", "private anonymous memory (RssAnon), end of session 2"),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def append_messages(count=200, size=10240):
    """Deterministic plain-text messages of exactly `size` bytes with CRLF line ends."""
    msgs = []
    for i in range(count):
        head = ("Date: Mon, 2 Mar 2026 10:%02d:%02d +0100\r\n"
                "From: Appender <append@bench.example.org>\r\n"
                "To: Robin Example <robin@home.example.net>\r\n"
                "Subject: appended message %d\r\n"
                "Message-ID: <append.%d@bench.example.org>\r\n"
                "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                % (i // 60, i % 60, i, i)).encode()
        line = b"Appended body text, line of filler for the benchmark, number %05d.\r\n"
        body = bytearray()
        k = 0
        while len(head) + len(body) < size:
            body += line % k
            k += 1
        msg = (head + bytes(body))[:size - 2] + b"\r\n"
        msgs.append(msg)
    return msgs


class Result:
    def __init__(self, server):
        self.server = server
        self.times = {}       # step -> seconds
        self.fail = {}        # step -> reason
        self.mem = {}
        self.facts = {}       # things to compare: exists, search sets
        self.exe = None

    def ok(self, step, dt):
        self.times[step] = dt

    def bad(self, step, why):
        self.fail[step] = why


def run_step(res, conn, step, text, literals=(), timeout=60.0, collect=False):
    """Run one timed step; on failure record why. Returns (ok, untagged)."""
    st, line, untagged, dt = conn.command(text, literals, timeout=timeout, collect=collect)
    if st != "OK":
        res.bad(step, "%s %s" % (st, line.decode("utf-8", "replace")[:80]))
        return False, untagged
    res.ok(step, dt)
    return True, untagged


def session_steps(res, n, manifest, timeout, appends):
    """Session 2's steps after SELECT, as (step, function(conn)) in order."""
    steps = []

    def simple(step, text):
        return (step, lambda c: run_step(res, c, step, text, timeout=timeout))

    steps.append(simple("uidfetch", "UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)"))
    steps.append(simple("envbs", "FETCH 1:* (ENVELOPE BODYSTRUCTURE)"))
    steps.append(simple("hdrfields", "FETCH 1:* (%s)" % HDR_FIELDS))
    k = min(500, n)
    seqs = sorted({1 + (i * n) // k for i in range(k)})
    steps.append(simple("body500", "FETCH %s (BODY.PEEK[])" % ",".join(map(str, seqs))))

    def search(step, crit, key):
        def f(c):
            ok, u = run_step(res, c, step, "SEARCH " + crit, timeout=timeout, collect=True)
            if not ok:
                return
            got = H.search_result(u)
            res.facts[step] = sorted(got)
            want = set(manifest[key])
            if got != want:
                res.facts[step + "_vs_manifest"] = "got %d, generator placed %d (missing " \
                    "%s, extra %s)" % (len(got), len(want), sorted(want - got)[:5],
                                       sorted(got - want)[:5])
        return (step, f)

    steps.append(search("ssubject", "SUBJECT %s" % manifest["subject_word"], "subject_msgs"))
    steps.append(search("sfrom", "FROM %s" % manifest["sender"], "sender_msgs"))
    steps.append(search("sbody", "BODY \"%s\"" % manifest["phrase"], "phrase_msgs"))

    def pair(step, first, second):
        # Two commands timed together; the step counts only if both are OK.
        def f(c):
            t0 = time.monotonic()
            ok, _ = run_step(res, c, step, first, timeout=timeout)
            ok = ok and run_step(res, c, step, second, timeout=timeout, collect=True)[0]
            if ok:
                res.times[step] = time.monotonic() - t0
            else:
                res.times.pop(step, None)
        return (step, f)

    steps.append(pair("store", "STORE 1:* +FLAGS.SILENT (\\Seen)", "CHECK"))
    steps.append(pair("expunge", "STORE 1 +FLAGS.SILENT (\\Deleted)", "EXPUNGE"))

    def append(c):
        t0 = time.monotonic()
        for m in appends:
            ok, _ = run_step(res, c, "append", "APPEND INBOX {}", [m], timeout=timeout)
            if not ok:
                res.times.pop("append", None)
                return
        res.times["append"] = time.monotonic() - t0
        try:
            st, _, u, _ = c.command("STATUS INBOX (MESSAGES)", timeout=timeout)
        except (H.StepTimeout, H.ServerGone) as e:
            res.facts["status_after_append"] = "STATUS failed: %s" % describe(e, timeout)
            return
        for r in u:
            p = H.parse_response(r)
            if len(p) >= 4 and isinstance(p[-1], list) and len(p[-1]) >= 2:
                res.facts["messages_after_append"] = int(p[-1][1])
    steps.append(("append", append))
    return steps


def run_server(kind, account, pristine, n, manifest, args, appends):
    res = Result(kind)
    area = account.area(kind)
    srv = H.Server(kind, account, area, args.imapd_cmd)
    res.cmd = " ".join(srv.argv)
    if not srv.available():
        for s, _ in STEPS:
            res.bad(s, "not built (%s)" % srv.argv[0])
        return res
    log("  %s: copying the pristine mbox" % kind)
    account.install_inbox(area, pristine)
    # Write the copy back to disk now, so that a server that syncs the mailbox (imapd
    # does before it answers a write) does not pay for the copy's writeback.
    os.sync()
    conn = None
    to = args.step_timeout
    try:
        # Session 1: the first SELECT on a fresh copy.
        try:
            conn = srv.start(timeout=15)
        except (H.ServerGone, H.StepTimeout) as e:
            for s, _ in STEPS:
                res.bad(s, "did not start (%s)" % e)
            return res
        res.exe = conn.exe()
        log("  %s: session 1 (%s)" % (kind, res.exe))
        try:
            ok, u = run_step(res, conn, "select1", "SELECT INBOX", timeout=to, collect=True)
            if ok:
                res.facts["exists1"] = H.exists_count(u)
                res.mem["hwm1"] = conn.memory().get("VmHWM")
            st, dt = conn.logout(to)
            if st == "OK":
                res.ok("logout1", dt)
            else:
                res.bad("logout1", st)
        except (H.StepTimeout, H.ServerGone, subprocess.TimeoutExpired) as e:
            res.bad("logout1" if "select1" in res.times else "select1", describe(e, to))
        conn.kill()
        conn = None

        # Session 2: a new process; every later step in it. A step that kills or hangs the
        # server is reported and the next step runs in a restarted process (memory figures
        # are then marked as such).
        restarted = False
        try:
            conn = srv.start(timeout=15)
            log("  %s: session 2" % kind)
            ok, u = run_step(res, conn, "select2", "SELECT INBOX", timeout=to, collect=True)
            if ok:
                res.facts["exists2"] = H.exists_count(u)
        except (H.StepTimeout, H.ServerGone) as e:
            res.bad("select2", describe(e, to))
            if conn:
                conn.kill()
            conn = None
        for step, fn in session_steps(res, n, manifest, to, appends):
            if conn is None:
                try:
                    conn = srv.start(timeout=15)
                    restarted = True
                    st, _, _, _ = conn.command("SELECT INBOX", timeout=to)
                    if st != "OK":
                        raise H.ServerGone("SELECT answered %s" % st)
                except (H.StepTimeout, H.ServerGone) as e:
                    res.bad(step, "no session (%s)" % describe(e, to))
                    if conn:
                        conn.kill()
                    conn = None
                    continue
            try:
                fn(conn)
            except (H.StepTimeout, H.ServerGone) as e:
                res.times.pop(step, None)
                res.fail[step] = describe(e, to)
                conn.kill()
                conn = None
        if conn is not None:
            if "select2" in res.times:
                m = conn.memory()
                res.mem["hwm2"] = m.get("VmHWM")
                res.mem["anon2"] = m.get("RssAnon")
                res.mem["smaps_anon2"] = m.get("smaps_Anonymous")
            if restarted:
                res.facts["memory_note"] = "session 2 memory is from a restarted process"
            try:
                st, dt = conn.logout(to)
                if st == "OK":
                    res.ok("logout2", dt)
                else:
                    res.bad("logout2", st)
            except (H.StepTimeout, H.ServerGone, subprocess.TimeoutExpired) as e:
                res.bad("logout2", describe(e, to))
        else:
            res.bad("logout2", "no session")
    finally:
        if conn is not None:
            conn.kill()
        if kind == "dovecot":
            check_dovecot_worked(res, area)
        shutil.rmtree(area["base"], ignore_errors=True)
    return res


def describe(e, timeout):
    if isinstance(e, H.StepTimeout):
        return "timeout after %.0f s" % timeout
    if isinstance(e, subprocess.TimeoutExpired):
        return "did not exit after LOGOUT"
    return "server exited (%s)" % (e or "EOF")


def combine(runs):
    """One Result from repeated runs: the median of each figure over the runs that did the
    step; failures only where no run did it."""
    if len(runs) == 1:
        return runs[0]
    out = Result(runs[0].server)
    out.exe, out.facts = runs[0].exe, dict(runs[0].facts)
    out.cmd = getattr(runs[0], "cmd", "")
    out.spread = {}
    for step, _ in STEPS:
        got = sorted(r.times[step] for r in runs if step in r.times)
        if got:
            out.times[step] = statistics.median(got)
            out.spread[step] = (got[0], got[-1], len(got))
        else:
            out.fail[step] = runs[0].fail.get(step, "not run")
    for key in set().union(*(r.mem.keys() for r in runs)):
        got = sorted(r.mem[key] for r in runs if r.mem.get(key) is not None)
        if got:
            out.mem[key] = statistics.median(got)
    for r in runs[1:]:
        for k in ("ssubject", "sfrom", "sbody", "exists1", "exists2"):
            if k in r.facts and k in out.facts and r.facts[k] != out.facts[k]:
                out.facts[k + "_unstable"] = "differs between runs"
    return out


def check_dovecot_worked(res, area):
    """Evidence that Dovecot itself did the work: its index directory and its headers."""
    idx = os.path.join(area["mail_dir"], ".imap", "INBOX")
    head = b""
    try:
        with open(area["inbox"], "rb") as f:
            head = f.read(8192)
    except OSError:
        pass
    res.facts["dovecot_evidence"] = "index dir %s; X-IMAPbase in mbox: %s" % (
        "present" if os.path.isdir(idx) else "MISSING", b"\nX-IMAPbase: " in head)


def fmt_t(res, step):
    if step in res.times:
        return "%.3f s" % res.times[step]
    return "n/a"


def fmt_mem(v, n=None):
    if v is None:
        return "n/a"
    s = "%.1f MB" % (v / 1e6)
    if n:
        s += " (%d B/msg)" % (v / n)
    return s


def table(n, nbytes, results, repeat=1):
    names = [r.server for r in results]
    lines = []
    lines.append("### %d messages (%.0f MB)%s\n" % (
        n, nbytes / 1e6, "" if repeat == 1 else ", median of %d runs" % repeat))
    hdr = "| step | " + " | ".join(names)
    if len(results) == 2:
        hdr += " | ratio %s ÷ %s |" % (names[0], names[1])
    else:
        hdr += " |"
    lines.append(hdr)
    lines.append("|" + "---|" * (len(results) + 1 + (1 if len(results) == 2 else 0)))
    for step, label in STEPS:
        row = "| %s | " % label + " | ".join(fmt_t(r, step) for r in results)
        if len(results) == 2:
            a, b = results
            if step in a.times and step in b.times and b.times[step] > 0:
                row += " | %.2f |" % (a.times[step] / b.times[step])
            else:
                row += " | n/a |"
        else:
            row += " |"
        lines.append(row)
    for key, label in MEMORY:
        row = "| %s | " % label + " | ".join(
            fmt_mem(r.mem.get(key), n if key == "anon2" else None) for r in results)
        if len(results) == 2:
            a, b = results
            va, vb = a.mem.get(key), b.mem.get(key)
            row += " | %s |" % ("%.2f" % (va / vb) if va and vb else "n/a")
        else:
            row += " |"
        lines.append(row)
    notes = []
    for r in results:
        failed = [(label, r.fail[step]) for step, label in STEPS if step in r.fail]
        if len(failed) == len(STEPS) and len({why for _, why in failed}) == 1:
            notes.append("- %s, every step: %s" % (r.server, failed[0][1]))
            continue
        for label, why in failed:
            notes.append("- %s, %s: %s" % (r.server, label, why))
    for r in results:
        if "memory_note" in r.facts:
            notes.append("- %s: %s" % (r.server, r.facts["memory_note"]))
    if notes:
        lines.append("\nNot measured:\n" + "\n".join(notes))
    return "\n".join(lines) + "\n"


def agreement(results):
    """Facts both servers must agree on; returns a list of disagreement strings."""
    out = []
    done = [r for r in results if r.times]
    for r in done:
        for k, v in r.facts.items():
            if k.endswith("_vs_manifest"):
                out.append("%s: %s %s" % (r.server, k[:-12], v))
            elif k.endswith("_unstable"):
                out.append("%s: %s %s" % (r.server, k[:-9], v))
    if len(done) < 2:
        return out
    a, b = done[0], done[1]
    for k in ("exists1", "exists2", "ssubject", "sfrom", "sbody", "messages_after_append",
              "expunged"):
        if k in a.facts and k in b.facts and a.facts[k] != b.facts[k]:
            va, vb = a.facts[k], b.facts[k]
            if isinstance(va, list) and isinstance(vb, list) and len(va) > 6:
                sa, sb = set(va), set(vb)
                out.append("%s differs: %s has %d, %s has %d; only %s: %s; only %s: %s" % (
                    k, a.server, len(va), b.server, len(vb), a.server,
                    sorted(sa - sb)[:8], b.server, sorted(sb - sa)[:8]))
            else:
                out.append("%s differs: %s=%s %s=%s" % (k, a.server, va, b.server, vb))
    return out


def ensure_mbox(work, n, seed):
    path = os.path.join(work, "bench-%d-s%d.mbox" % (n, seed))
    man = path + ".json"
    if not (os.path.exists(path) and os.path.exists(man)):
        log("generating %s" % path)
        subprocess.run([sys.executable, os.path.join(HERE, "gen-mbox.py"), "--messages",
                        str(n), "--seed", str(seed), "--manifest", man, path + ".tmp"],
                       check=True)
        os.rename(path + ".tmp", path)
    with open(man) as f:
        return path, json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", default="10000",
                    help="comma-separated mailbox sizes (e.g. 200 for a smoke run)")
    ap.add_argument("--servers", default="dovecot,imapd")
    ap.add_argument("--imapd-cmd", default="imapd/imapd --preauth --config {config}",
                    help="imapd command line template (see the top of this file)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="/var/tmp/imapd-bench",
                    help="where generated pristine mboxes are kept between runs")
    ap.add_argument("--step-timeout", type=float, default=300.0)
    ap.add_argument("--repeat", type=int, default=1,
                    help="run each server this many times (interleaved); report medians")
    ap.add_argument("--markdown", help="also write the tables here")
    ap.add_argument("--json", help="also write raw figures here")
    args = ap.parse_args()

    os.makedirs(args.work, exist_ok=True)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in ("dovecot", "imapd"):
            ap.error("unknown server %r" % s)
    appends = append_messages()

    # Leave nothing behind on SIGTERM/SIGINT: turn them into exceptions that reach finally.
    def stop(sig, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, stop)

    H.remove_stale_accounts()
    account = H.Account()
    out_md = ["## imapd benchmark\n",
              "Command: `tests/bench/run %s`  " % " ".join(sys.argv[1:]),
              "Date: %s; host: %s, %d CPUs\n" % (
                  time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.uname().nodename,
                  os.cpu_count())]
    raw = []
    bad = False
    try:
        for n in [int(x) for x in args.messages.split(",")]:
            pristine, manifest = ensure_mbox(args.work, n, args.seed)
            log("== %d messages, %s" % (n, pristine))
            runs = {s: [] for s in servers}
            for rep in range(args.repeat):
                # Interleaved, so that noise from the rest of the machine falls on both.
                for s in servers:
                    if args.repeat > 1:
                        log("  %s: run %d of %d" % (s, rep + 1, args.repeat))
                    runs[s].append(run_server(s, account, pristine, n, manifest, args,
                                              appends))
            results = [combine(runs[s]) for s in servers]
            t = table(n, manifest["bytes"], results, args.repeat)
            dis = agreement(results)
            if dis:
                bad = True
                t += "\nDisagreements:\n" + "\n".join("- " + d for d in dis) + "\n"
            ev = [r.facts.get("dovecot_evidence") for r in results if r.server == "dovecot"]
            if ev and ev[0]:
                t += "\nDovecot ran as %s: %s\n" % (
                    [r.exe for r in results if r.server == "dovecot"][0], ev[0])
            print(t, flush=True)
            out_md.append(t)
            raw.append({"messages": n, "bytes": manifest["bytes"], "results": [
                {"server": r.server, "times": r.times, "fail": r.fail, "memory": r.mem,
                 "spread": getattr(r, "spread", {}),
                 "facts": {k: v for k, v in r.facts.items()
                           if not isinstance(v, list) or len(v) < 50}}
                for r in results]})
    finally:
        account.cleanup()
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(out_md))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
