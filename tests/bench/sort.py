#!/usr/bin/python3
"""SORT and THREAD on a big INBOX: imapd against Dovecot, each on its own copy of one mbox.

    tests/bench/sort.py [--messages 100000] [--repeat 3] [--imapd imapd/imapd]
                        [--markdown FILE] [--json FILE] [--work /var/tmp/imapd-bench]

Run as root (a throwaway user, tests/bench/imapharness.py); needs Debian's dovecot-imapd.
The mbox is tests/bench/gen-mbox.py's (seed 1, kept in --work as bench.py keeps it). The
imapd binary is copied first and the copy is what runs, so a rebuild meanwhile changes nothing.

For each server, on its own fresh copy:
  warmup 1: one process: SELECT (the first: Dovecot builds its index, both write their
            metadata), then every command once, LOGOUT;
  warmup 2: the same again in a new process: every cache the first one left is now there.
            Its times are printed next to the first's, to show the second run is cached;
            Dovecot's cache fields and their decisions are dumped (doveadm dump), imapd's
            sort cache file is named with its size;
  then, --repeat times, interleaved (Dovecot, imapd, command by command): for each command a
  new process, SELECT, the command alone timed on the client's wall clock (from sending it to
  its tagged OK, the whole answer read), the process's VmHWM and Private_Dirty (from
  /proc/PID/status and smaps_rollup) just before LOGOUT; whether the session wrote the
  server's file of sort data (imapd's sort.*, Dovecot's dovecot.index.cache).
  imapd's first SORT ever: its sort.* file removed from the state directory (~/.imapd of
  the throwaway user), a new process, SELECT, SORT (DATE) UTF-8 ALL timed; --repeat times.

Both servers' answers are compared for each command (the same numbers in the same order; THREAD
as strings); any disagreement is printed and makes the exit status 1. A measurement waits
while a compiler runs (pgrep -f cc1) and says so. The machine has 2 cores: each measurement
runs alone.
"""

import argparse
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import imapharness as H  # noqa: E402
from bench import ensure_mbox, log  # noqa: E402

COMMANDS = [
    "SORT (DATE) UTF-8 ALL",
    "SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL",
    "SORT RETURN (PARTIAL 1:50) (REVERSE DATE) UTF-8 ALL",
]
FIRST_PAGE = COMMANDS[-1]
# What Dovecot runs instead when it answers BAD to a command (nearest equivalent first).
FALLBACK = {FIRST_PAGE: ["SORT RETURN (ALL) (REVERSE DATE) UTF-8 ALL",
                         "SORT (REVERSE DATE) UTF-8 ALL"]}
FIRST_EVER = "SORT (DATE) UTF-8 ALL"


def expand_set(text):
    out = []
    for piece in text.split(","):
        a, _, b = piece.partition(":")
        a, b = int(a), int(b or a)
        out.extend(range(a, b + 1) if a <= b else range(a, b - 1, -1))
    return out


def answer(untagged):
    """('list', [numbers]) for SORT and ESORT, ('thread', text) for THREAD."""
    for r in untagged:
        up = r[:10].upper()
        if up.startswith(b"* SORT"):
            return ("list", [int(x) for x in r[6:].split()])
        if up.startswith(b"* THREAD"):
            return ("thread", b" ".join(r[8:].split()).decode("ascii", "replace")
                    .replace(") (", ")("))
        if up.startswith(b"* ESEARCH"):
            m = re.search(rb"PARTIAL \((\d+):(\d+) ([\d:,]+|NIL)\)", r)
            if m:
                return ("list", [] if m.group(3) == b"NIL" else
                        expand_set(m.group(3).decode()))
            m = re.search(rb" ALL ([\d:,]+)", r)
            return ("list", expand_set(m.group(1).decode()) if m else [])
    return ("list", [])


def top_threads(text):
    """The top-level thread-lists of a THREAD answer, as strings."""
    out, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c == "(":
            if depth == 0:
                start = i
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                out.append(text[start:i + 1])
    return out


def compare(cmd, a, b, dcmd):
    """Where imapd's answer (a) and Dovecot's (b, to dcmd) disagree, or None."""
    if a[0] != b[0]:
        return "%s: different kinds of answer" % cmd
    if a[0] == "thread":
        if a[1] == b[1]:
            return None
        ta, tb = top_threads(a[1]), top_threads(b[1])
        sb, sa = set(tb), set(ta)
        oa = [t for t in ta if t not in sb]
        ob = [t for t in tb if t not in sa]
        return ("%s: %d and %d threads, %d only imapd's (first %s), %d only Dovecot's "
                "(first %s)" % (cmd, len(ta), len(tb), len(oa), oa[:1], len(ob), ob[:1]))
    la, lb = a[1], b[1]
    if dcmd != cmd and cmd == FIRST_PAGE:
        lb = lb[:50]            # Dovecot's nearest equivalent: its first 50
    if la == lb:
        return None
    i = next((k for k in range(min(len(la), len(lb))) if la[k] != lb[k]),
             min(len(la), len(lb)))
    return ("%s: %d and %d numbers, first differ at position %d (imapd %s, Dovecot %s)" % (
        cmd, len(la), len(lb), i + 1, la[i:i + 5], lb[i:i + 5]))


def compiler_running():
    r = subprocess.run(["pgrep", "-f", "cc1"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return [p for p in r.stdout.split() if p.isdigit() and int(p) != os.getpid()]


class Bench:
    def __init__(self, args, account, pristine, imapd):
        self.args = args
        self.account = account
        self.pristine = pristine
        self.imapd = imapd
        self.srv = {}
        self.waited = 0.0
        self.dcmd = {c: c for c in COMMANDS}   # what Dovecot runs for each command
        self.notes = []

    def quiet(self):
        """Wait (up to 15 minutes) while a compiler runs."""
        t0 = time.monotonic()
        while compiler_running() and time.monotonic() - t0 < 900:
            time.sleep(5)
        dt = time.monotonic() - t0
        if dt > 1:
            self.waited += dt
            log("  waited %.0f s for a compilation to end" % dt)

    def setup(self, kind):
        area = self.account.area(kind)
        srv = H.Server(kind, self.account, area, "%s --preauth --config {config}" % self.imapd
                       if kind == "imapd" else None)
        if not srv.available():
            raise SystemExit("%s: not available (%s)" % (kind, srv.argv[0]))
        log("%s: copying the mbox" % kind)
        self.account.install_inbox(area, self.pristine)
        os.sync()
        self.srv[kind] = srv

    def session(self, kind, cmds, timeout=3600):
        """A new process: SELECT, then cmds; [(cmd, status, seconds, answer)], select time,
        memory just before LOGOUT."""
        srv = self.srv[kind]
        c = srv.start(timeout=60)
        try:
            st, line, u, dt_sel = c.command("SELECT INBOX", timeout=timeout)
            if st != "OK":
                raise SystemExit("%s: SELECT: %s" % (kind, line))
            out = []
            for cmd in cmds:
                st, line, u, dt = c.command(cmd, timeout=timeout)
                out.append((cmd, st, dt, answer(u) if st == "OK" else
                            line.decode("utf-8", "replace")))
            mem = c.memory()
            exe = c.exe()
            c.logout(timeout=120)
        finally:
            c.kill()
        return out, dt_sel, mem, exe

    def warmup(self, kind):
        res = []
        for k in (1, 2):
            self.quiet()
            cmds = [self.dcmd[c] if kind == "dovecot" else c for c in COMMANDS]
            out, dt_sel, _, exe = self.session(kind, cmds)
            if kind == "dovecot" and k == 1:
                # Dovecot answering BAD: its nearest equivalent instead, from now on
                for i, (cmd, st, dt, ans) in enumerate(out):
                    if st == "BAD" and cmd in FALLBACK:
                        for alt in FALLBACK[cmd]:
                            o2, _, _, _ = self.session(kind, [alt])
                            if o2[0][1] == "OK":
                                self.dcmd[cmd] = alt
                                self.notes.append("Dovecot answered BAD to `%s` (%s); it runs "
                                                  "`%s` instead" % (cmd, ans, alt))
                                out[i] = o2[0]
                                break
            log("%s warmup %d (%s): SELECT %.3f s; %s" % (
                kind, k, exe, dt_sel, "; ".join("%s %s %.3f s" % (cmd, st, dt)
                                                 for cmd, st, dt, _ in out)))
            bad = [(cmd, ans) for cmd, st, dt, ans in out if st != "OK"]
            if bad:
                raise SystemExit("%s: %s" % (kind, bad))
            res.append({"select": dt_sel, "times": [dt for _, _, dt, _ in out],
                        "answers": [ans for _, _, _, ans in out], "exe": exe})
        return res

    def dovecot_cache(self):
        """Dovecot's cache fields and decisions (doveadm dump of its index)."""
        area = self.srv["dovecot"].area
        idx = os.path.join(area["mail_dir"], ".imap", "INBOX", "dovecot.index")
        r = subprocess.run(["doveadm", "-c", self.srv["dovecot"].config, "dump", idx],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fields, exts = [], []
        in_fields = False
        for line in r.stdout.splitlines():
            if line.startswith("-- Cache fields --"):
                in_fields = True
                continue
            if in_fields:
                m = re.match(r"\s*\d+: (\S+)\s+\S+\s+\S+\s+(\S+)", line)
                if m:
                    fields.append("%s (%s)" % (m.group(1), m.group(2)))
                elif line.startswith("--") or not line.strip():
                    in_fields = False
            m = re.match(r"name \.+ = (\S+)", line)
            if m:
                exts.append(m.group(1))
        return fields, exts

    def state_stamp(self, kind):
        """(inode, mtime) of the file that keeps this server's sort data: imapd's sort.*,
        Dovecot's dovecot.index.cache."""
        if kind == "imapd":
            files = self.imapd_sort_files()
        else:
            files = [os.path.join(self.srv[kind].area["mail_dir"], ".imap", "INBOX",
                                  "dovecot.index.cache")]
        out = []
        for f in files:
            try:
                st = os.stat(f)
                out.append((f, st.st_ino, st.st_mtime_ns, st.st_size))
            except OSError:
                pass
        return out

    def imapd_sort_files(self):
        home = self.srv["imapd"].area["home"]
        return sorted(glob.glob(os.path.join(home, ".imapd", "sort.*")))

    def first_ever(self):
        files = self.imapd_sort_files()
        if not files:
            raise SystemExit("imapd: no sort.* file in %s/.imapd after the warmups" %
                             self.srv["imapd"].area["home"])
        for f in files:
            os.unlink(f)
        self.quiet()
        out, dt_sel, mem, _ = self.session("imapd", [FIRST_EVER])
        if not self.imapd_sort_files():
            self.notes.append("imapd wrote no sort.* file again after its first SORT")
        return out[0][2], out[0][3]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--imapd", default=os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                    "imapd", "imapd"))
    ap.add_argument("--work", default="/var/tmp/imapd-bench")
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)

    def stop(sig, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, stop)

    t_start = time.monotonic()
    H.remove_stale_accounts()
    pristine, _ = ensure_mbox(a.work, a.messages, a.seed)
    account = H.Account()
    try:
        # the binary under test: a copy, so that a rebuild during the run changes nothing
        imapd = os.path.join(account.top, "imapd-under-test")
        shutil.copy(a.imapd, imapd)
        os.chmod(imapd, 0o755)
        with open(imapd, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        log("imapd: %s (copied from %s, sha256 %s...)" % (imapd, a.imapd, digest))
        b = Bench(a, account, pristine, imapd)
        warm = {}
        for kind in ("dovecot", "imapd"):
            b.setup(kind)
            warm[kind] = b.warmup(kind)
        cache_fields, cache_exts = b.dovecot_cache()
        sort_files = ["%s (%d bytes)" % (os.path.basename(f), os.path.getsize(f))
                      for f in b.imapd_sort_files()]
        log("Dovecot cache fields: %s; index extensions: %s" % (", ".join(cache_fields),
                                                                  ", ".join(cache_exts)))
        log("imapd sort cache: %s" % ", ".join(sort_files))

        runs = {k: {c: [] for c in COMMANDS} for k in ("dovecot", "imapd")}
        rewrites = {"dovecot": 0, "imapd": 0}
        disagree = []
        for r in range(a.repeat):
            for cmd in COMMANDS:
                for kind in ("dovecot", "imapd"):
                    b.quiet()
                    run = b.dcmd[cmd] if kind == "dovecot" else cmd
                    before = b.state_stamp(kind)
                    out, dt_sel, mem, _ = b.session(kind, [run])
                    if b.state_stamp(kind) != before:
                        rewrites[kind] += 1
                    _, st, dt, ans = out[0]
                    if st != "OK":
                        raise SystemExit("%s: %s: %s" % (kind, run, ans))
                    runs[kind][cmd].append({"t": dt, "select": dt_sel, "ans": ans,
                                            "hwm": mem.get("VmHWM", 0),
                                            "pd": mem.get("smaps_Private_Dirty", 0)})
                    log("run %d %s %s: %.4f s (SELECT %.3f s, VmHWM %.1f MB, Private_Dirty "
                        "%.1f MB)" % (r + 1, kind, run, dt, dt_sel, mem.get("VmHWM", 0) / 1e6,
                                      mem.get("smaps_Private_Dirty", 0) / 1e6))
                d = compare(cmd, runs["imapd"][cmd][-1]["ans"], runs["dovecot"][cmd][-1]["ans"],
                            b.dcmd[cmd])
                if d and d not in disagree:
                    disagree.append(d)
        first = []
        for r in range(a.repeat):
            dt, ans = b.first_ever()
            first.append(dt)
            log("imapd first SORT ever (no sort cache) %d: %.4f s" % (r + 1, dt))
            d = compare(FIRST_EVER, ans, runs["dovecot"][FIRST_EVER][-1]["ans"], FIRST_EVER)
            if d and d not in disagree:
                disagree.append("(first SORT ever) " + d)
    finally:
        account.cleanup()

    n = a.messages
    lines = ["### SORT and THREAD, %d messages, median of %d (%s)" % (
        n, a.repeat, time.strftime("%Y-%m-%d", time.gmtime())), "",
        "    tests/bench/sort.py %s" % " ".join(sys.argv[1:]), "",
        "| command | imapd | Dovecot | ratio Dovecot ÷ imapd | imapd runs | Dovecot runs | "
        "warmup 1 / 2, imapd | warmup 1 / 2, Dovecot |", "|---|---|---|---|---|---|---|---|"]
    ratios = {}
    for i, cmd in enumerate(COMMANDS):
        ti = [x["t"] for x in runs["imapd"][cmd]]
        td = [x["t"] for x in runs["dovecot"][cmd]]
        ratios[cmd] = med(td) / med(ti)
        lines.append("| `%s`%s | %.4f s | %.4f s | %.2f | %s | %s | %.3f / %.3f s | %.3f / "
                     "%.3f s |" % (
                         cmd, "" if b.dcmd[cmd] == cmd else " (Dovecot: `%s`)" % b.dcmd[cmd],
                         med(ti), med(td), ratios[cmd], ", ".join("%.4f" % x for x in ti),
                         ", ".join("%.4f" % x for x in td),
                         warm["imapd"][0]["times"][i], warm["imapd"][1]["times"][i],
                         warm["dovecot"][0]["times"][i], warm["dovecot"][1]["times"][i]))
    lines.append("")
    lines.append("imapd's first SORT ever (`%s`, sort cache removed, new process): %.4f s "
                 "median (%s)" % (FIRST_EVER, med(first), ", ".join("%.4f" % x for x in first)))
    fp = med([x["t"] for x in runs["imapd"][FIRST_PAGE]])
    lines.append("First page (`%s`), imapd: %.1f ms" % (FIRST_PAGE, fp * 1000))
    lines.append("")
    lines.append("| memory just before LOGOUT, median | imapd VmHWM | imapd Private_Dirty | "
                 "Dovecot VmHWM | Dovecot Private_Dirty |")
    lines.append("|---|---|---|---|---|")
    for cmd in COMMANDS:
        def mm(kind, key):
            v = med([x[key] for x in runs[kind][cmd]])
            return "%.1f MB (%.0f B/msg)" % (v / 1e6, v / n)
        lines.append("| `%s` | %s | %s | %s | %s |" % (cmd, mm("imapd", "hwm"),
                                                      mm("imapd", "pd"), mm("dovecot", "hwm"),
                                                      mm("dovecot", "pd")))
    lines.append("")
    lines.append("SELECT before each command (new process), median: imapd %.4f s, Dovecot %.4f s"
                 % (med([x["select"] for c in COMMANDS for x in runs["imapd"][c]]),
                    med([x["select"] for c in COMMANDS for x in runs["dovecot"][c]])))
    lines.append("Dovecot's cache fields after the warmups (decision): %s; index extensions: "
                 "%s" % (", ".join(cache_fields) or "none found", ", ".join(cache_exts)))
    lines.append("imapd's sort cache after the warmups: %s" % (", ".join(sort_files) or "none"))
    lines.append("Measured sessions that wrote the file of sort data (imapd: sort.*, Dovecot: "
                 "dovecot.index.cache), of %d each: imapd %d, Dovecot %d" % (
                     a.repeat * len(COMMANDS), rewrites["imapd"], rewrites["dovecot"]))
    lines.append("imapd binary: sha256 %s... (a copy of %s); Dovecot: %s" % (
        digest, a.imapd, warm["dovecot"][0]["exe"]))
    if b.waited:
        lines.append("Waited %.0f s in all for compilations to end before measuring." % b.waited)
    lines.append("")
    slow = [c for c in COMMANDS if ratios[c] < 2]
    lines.append("Targets: imapd at least 2x faster than Dovecot on each command: %s; first "
                 "page under 50 ms: %s (%.1f ms)." % (
                     "met" if not slow else "not met for " + ", ".join("`%s` (%.2fx)" % (
                         c, ratios[c]) for c in slow), "met" if fp < 0.05 else "not met",
                     fp * 1000))
    for note in b.notes:
        lines.append("- " + note)
    if disagree:
        lines.append("")
        lines.append("The answers disagree:")
        lines.extend("- " + d for d in disagree)
    else:
        lines.append("Both servers' answers agree on every command.")
    lines.append("")
    lines.append("Run time %.0f s." % (time.monotonic() - t_start))
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"messages": n, "runs": {k: {c: [{x: y for x, y in r.items()
                                                         if x != "ans"} for r in v]
                                                    for c, v in d.items()}
                                                for k, d in runs.items()},
                       "first_ever": first, "rewrites": rewrites,
                       "warmup": {k: [{x: y for x, y in w.items() if x != "answers"}
                                      for w in v] for k, v in warm.items()},
                       "dovecot_commands": b.dcmd}, f, indent=1)
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
