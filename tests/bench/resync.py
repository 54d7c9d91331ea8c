#!/usr/bin/python3
"""Resynchronising a big INBOX after a few changes: what a reconnecting client pays.

For each server, on a fresh copy of the same generated mbox (tests/bench/gen-mbox.py):
  session 1: ENABLE QRESYNC, SELECT INBOX (CONDSTORE): the client's state (UIDVALIDITY,
             HIGHESTMODSEQ), LOGOUT;
  session 2: 10 STOREs of flags spread over the mailbox, 5 messages \\Deleted and
             EXPUNGEd, LOGOUT: what changed while the client was away;
  session 3, timed from sending the command to its tagged OK, with the bytes received:
    - QRESYNC: ENABLE QRESYNC, SELECT INBOX (QRESYNC (uidvalidity highestmodseq));
    - imapd only, the path without CONDSTORE: SELECT INBOX, then
      UID FETCH 1:* (FLAGS), which is what a client must do to learn the same.
Each answer is checked: the QRESYNC SELECT must name exactly the 10 changed UIDs in its
FETCHes and the 5 expunged ones in VANISHED (EARLIER).

Usage: tests/bench/resync.py [--messages 100000] [--repeat 3] [--markdown FILE]
                             [--imapd imapd/imapd] [--work /var/tmp/imapd-bench]
Needs root (a throwaway user) and Debian's dovecot-imapd.
"""
import argparse
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import imapharness as H  # noqa: E402
from bench import ensure_mbox, log  # noqa: E402

CHANGES = 10
EXPUNGES = 5


def one(kind, account, pristine, n, imapd):
    area = account.area(kind)
    srv = H.Server(kind, account, area, "%s --preauth --config {config}" % imapd
                   if kind == "imapd" else None)
    if kind == "imapd":
        with open(srv.config, "a") as f:
            f.write("condstore = yes\n")
    account.install_inbox(area, pristine)
    os.sync()
    c = srv.start()
    st, _, _, _ = c.command("ENABLE QRESYNC")
    st, tagged, unt, _ = c.command("SELECT INBOX (CONDSTORE)", timeout=600)
    assert st == "OK", tagged
    text = b"\n".join(unt).decode("ascii", "replace")
    uidvalidity = int(re.search(r"\[UIDVALIDITY (\d+)\]", text).group(1))
    highest = int(re.search(r"\[HIGHESTMODSEQ (\d+)\]", text).group(1))
    c.logout()
    c = srv.start()
    st, _, _, _ = c.command("SELECT INBOX", timeout=600)
    step = n // (CHANGES + EXPUNGES + 1)
    changed, gone = [], []
    for k in range(CHANGES):
        seq = 1 + step * (k + 1)
        c.command("STORE %d +FLAGS.SILENT (\\Flagged $Bench%d)" % (seq, k))
    # which UIDs: fetched afterwards by sequence number, so the numbers are the same on
    # both servers
    for k in range(CHANGES):
        seq = 1 + step * (k + 1)
        _, _, unt, _ = c.command("FETCH %d (UID)" % seq)
        changed.append(int(re.search(rb"UID (\d+)", unt[0]).group(1)))
    for k in range(EXPUNGES):
        seq = 2 + step * (CHANGES + k + 1) - k  # numbers shift as each goes
        _, _, unt, _ = c.command("FETCH %d (UID)" % seq)
        gone.append(int(re.search(rb"UID (\d+)", unt[0]).group(1)))
        c.command("STORE %d +FLAGS.SILENT (\\Deleted)" % seq)
        c.command("EXPUNGE")
    c.logout()
    out = {"server": kind}
    # QRESYNC
    c = srv.start()
    c.command("ENABLE QRESYNC")
    before = c.bytes_in
    st, tagged, unt, dt = c.command("SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity, highest),
                                    timeout=600)
    assert st == "OK", tagged
    out["qresync_s"] = dt
    out["qresync_bytes"] = c.bytes_in - before
    got_changed = sorted(int(m.group(1)) for r in unt
                         for m in [re.search(rb"^\* \d+ FETCH .*UID (\d+)", r)] if m)
    vanished = set()
    for r in unt:
        m = re.match(rb"\* VANISHED \(EARLIER\) (\S+)", r)
        if m:
            for part in m.group(1).decode().split(","):
                a, _, b = part.partition(":")
                vanished.update(range(int(a), int(b or a) + 1))
    out["ok"] = got_changed == sorted(changed) and set(gone) <= vanished
    out["detail"] = "changed %s (expected %s), vanished %s (expected %s)" % (
        got_changed, sorted(changed), sorted(vanished)[:20], sorted(gone))
    c.logout()
    if kind == "imapd":
        c = srv.start()
        before = c.bytes_in
        st, _, _, dt1 = c.command("SELECT INBOX", timeout=600)
        st, tagged, unt, dt2 = c.command("UID FETCH 1:* (FLAGS)", timeout=600, collect=False)
        assert st == "OK", tagged
        out["full_s"] = dt1 + dt2
        out["full_bytes"] = c.bytes_in - before
        c.logout()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--imapd", default=os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                    "imapd", "imapd"))
    ap.add_argument("--work", default="/var/tmp/imapd-bench")
    ap.add_argument("--markdown")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    H.remove_stale_accounts()
    pristine, _ = ensure_mbox(a.work, a.messages, a.seed)
    account = H.Account()
    runs = {"dovecot": [], "imapd": []}
    try:
        for r in range(a.repeat):
            for kind in ("dovecot", "imapd"):
                log("run %d: %s" % (r + 1, kind))
                res = one(kind, account, pristine, a.messages, a.imapd)
                log("  %s" % res)
                runs[kind].append(res)
    finally:
        account.cleanup()

    def med(kind, key):
        return statistics.median(x[key] for x in runs[kind])
    rows = [
        ("imapd, SELECT (QRESYNC ...)", med("imapd", "qresync_s"), med("imapd", "qresync_bytes")),
        ("imapd, SELECT + UID FETCH 1:* (FLAGS)", med("imapd", "full_s"),
         med("imapd", "full_bytes")),
        ("Dovecot, SELECT (QRESYNC ...)", med("dovecot", "qresync_s"),
         med("dovecot", "qresync_bytes")),
    ]
    text = ["### Resync of %d messages after %d flag changes and %d expunges, median of %d"
            % (a.messages, CHANGES, EXPUNGES, a.repeat), "",
            "| path | wall time | bytes sent by the server |", "|---|---|---|"]
    for name, t, b in rows:
        text.append("| %s | %.4f s | %d |" % (name, t, b))
    text.append("")
    text.append("imapd's QRESYNC SELECT: %.1fx faster than Dovecot's, %.1fx faster than its own "
                "full flag fetch, which sends %.0fx the bytes" % (
                    rows[2][1] / rows[0][1], rows[1][1] / rows[0][1], rows[1][2] / rows[0][2]))
    bad = [x for k in runs for x in runs[k] if not x["ok"]]
    for x in bad:
        text.append("- %s: wrong answer: %s" % (x["server"], x["detail"]))
    print("\n".join(text))
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(text) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
