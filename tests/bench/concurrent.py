#!/usr/bin/python3
"""Many clients on one mailbox, imapd against Dovecot in the same run.

Runs the stress workload of tests/stress (N clients on one INBOX of 200 messages, each in
a loop of SELECT, FETCH, STORE, EXPUNGE, APPEND, NOOP, LOGOUT, with procmail delivering
and a mail reader rewriting the spool; every answer checked) once per configuration and
server, one after the other, and reports ops/s and p50/p99 latency per command type, the
total throughput ratio, NO [INUSE] counts and violations.

Configurations: each --clients value, preauthenticated, and for imapd also with every
client logging in (LOGIN through pam_wrapper and pam_matrix). Dovecot runs only
preauthenticated (its imap process started as the stress harness starts it, as
tests/bench/bench.py does); sessions a second with LOGIN for both servers are measured by
tests/bench/logins.py. Dovecot gets the Python MDA (procmail and Dovecot's lock order
deadlock; see tests/stress/README.md), imapd procmail.

Usage: tests/bench/concurrent.py [--clients 10,30] [--seconds 300] [--servers dovecot,imapd]
                                 [--no-login] [--imapd imapd/imapd] [--markdown FILE]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
STRESS = os.path.join(ROOT, "tests", "stress", "stress.py")


def run(server, clients, seconds, login, imapd, seed):
    fd, js = tempfile.mkstemp(prefix="imapd-conc-", suffix=".json")
    os.close(fd)
    argv = [sys.executable, STRESS, "--clients", str(clients), "--seconds", str(seconds),
            "--seed", str(seed), "--json", js, "--show", "2"]
    if server == "dovecot":
        argv.append("--dovecot")
    else:
        argv += ["--imapd", imapd]
        if login:
            argv.append("--login")
    label = "%s, %d clients%s" % (server, clients, ", LOGIN" if login else "")
    print("== " + label, flush=True)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=seconds * 3 + 600)
    out = p.stdout.decode("utf-8", "replace")
    lines = out.splitlines()
    tail = [l for l in lines if l.startswith(("all IMAP", "allowed", "final"))]
    # the violations, with their examples, in full
    for i, l in enumerate(lines):
        if l.startswith("violations"):
            tail += lines[i:]
            break
    print("\n".join(tail), flush=True)
    try:
        with open(js) as f:
            d = json.load(f)
    finally:
        os.unlink(js)
    d["label"] = label
    d["exit"] = p.returncode
    return d


def total_ops(d):
    n = sum(v["count"] for k, v in d["commands"].items()
            if not k.startswith(("MDA", "MUTT", "FINAL")))
    return n, n / d["seconds"] if d["seconds"] else 0.0


def table(results):
    kinds = sorted({k for d in results for k in d["commands"]
                    if not k.startswith("FINAL")})
    head = "| command | " + " | ".join(d["label"] + " ops/s, p50/p99 ms"
                                       for d in results) + " |"
    lines = [head, "|---|" + "---|" * len(results)]
    for k in kinds:
        row = ["| " + k]
        for d in results:
            v = d["commands"].get(k)
            row.append("%.1f, %.1f/%.0f" % (v["ops_per_s"], v["p50_ms"], v["p99_ms"])
                       if v else "-")
        lines.append(" | ".join(row) + " |")
    row = ["| **all IMAP commands**"]
    for d in results:
        n, r = total_ops(d)
        row.append("**%.1f** (%d)" % (r, n))
    lines.append(" | ".join(row) + " |")
    row = ["| NO [INUSE]"]
    for d in results:
        row.append(str(d["allowed"].get("NO [INUSE]", 0)))
    lines.append(" | ".join(row) + " |")
    row = ["| violations"]
    for d in results:
        row.append(str(sum(d["violation_counts"].values()) if isinstance(
            d["violation_counts"], dict) else d["violation_counts"]))
    lines.append(" | ".join(row) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="10,30")
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--servers", default="dovecot,imapd")
    ap.add_argument("--no-login", action="store_true")
    ap.add_argument("--imapd", default=os.path.join(ROOT, "imapd", "imapd"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--markdown")
    a = ap.parse_args()
    sections = []
    bad = 0
    for c in [int(x) for x in a.clients.split(",")]:
        results = []
        for s in a.servers.split(","):
            results.append(run(s, c, a.seconds, False, a.imapd, a.seed))
            if s == "imapd" and not a.no_login:
                results.append(run(s, c, a.seconds, True, a.imapd, a.seed))
        text = "### %d clients, %d s\n\n%s" % (c, a.seconds, table(results))
        dv = [d for d in results if d["label"].startswith("dovecot")]
        im = [d for d in results if d["label"].startswith("imapd") and "LOGIN" not in
              d["label"]]
        if dv and im and total_ops(dv[0])[1] > 0:
            text += "\n\nimapd %.1fx Dovecot's throughput (all IMAP commands)" % (
                total_ops(im[0])[1] / total_ops(dv[0])[1])
        sections.append(text)
        bad += sum(1 for d in results if d["label"].startswith("imapd") and d["exit"] != 0)
    out = "\n\n".join(sections)
    print(out)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(out + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
