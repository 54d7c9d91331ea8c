"""imapflow (the npm IMAP client, run by node) against imapd on a loopback TCP port with
CONDSTORE and QRESYNC offered: imapflow records INBOX's UIDVALIDITY and HIGHESTMODSEQ, another
client changes flags and expunges meanwhile, and when imapflow reconnects with what it recorded
(SELECT ... (QRESYNC ...), RFC 7162 3.2.5) it reports exactly the messages whose flags changed,
with their new flags, and exactly the UIDs that vanished, without fetching the mailbox again.

The client lives in tests/integration/imapflow/ (package.json, package-lock.json, resync.mjs);
tests/deps.sh installs its node_modules with `npm ci`. The test is skipped only when node (or
npm, to install imapflow) is not there. IMAPD_CLIENTS_SERVER=dovecot runs the same steps against
Dovecot (see clients_util), a check that what is asserted is RFC 7162's and not imapd's own."""
import json
import os
import re
import select
import shutil
import subprocess
import time

import pytest

from clients_util import TcpServer, build_mbox, imap_connect, simple_message

CLIENT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imapflow")
SCRIPT = os.path.join(CLIENT_DIR, "resync.mjs")

N = 20
# Flags the spool file gives the messages before the first session (UID: metadata header).
INITIAL = {1: "Status: RO", 2: "Status: RO", 3: "Status: RO", 5: "Status: RO",
           6: "X-Status: F", 11: "X-Status: A", 14: "Status: RO\nX-Status: F"}


def initial_flags(uid):
    h = INITIAL.get(uid, "")
    fl = set()
    if "Status: RO" in h:
        fl.add("\\Seen")
    if "X-Status: F" in h:
        fl.add("\\Flagged")
    if "X-Status: A" in h:
        fl.add("\\Answered")
    return fl


def inbox_mbox():
    msgs = []
    for uid in range(1, N + 1):
        m = simple_message("imapflow message %d" % uid, "Body of message %d." % uid)
        if uid in INITIAL:
            head, _, body = m.partition(b"\n\n")
            m = head + b"\n" + INITIAL[uid].encode() + b"\n\n" + body
        msgs.append(m)
    return build_mbox(msgs)


# What the other client does between imapflow's two sessions, as UID commands, and what it must
# leave: flag changes (an added flag, a removed one, a replacement, a keyword), a STORE that
# changes nothing (3.1.11: no new mod-sequence, so not reported), a flag change on a message
# that is expunged afterwards (only its expunge is to be reported), EXPUNGE and UID EXPUNGE.
CHANGES = [
    ("STORE", "3", "-FLAGS", "(\\Seen)"),
    ("STORE", "7", "+FLAGS", "(\\Flagged \\Answered)"),
    ("STORE", "6", "FLAGS", "(\\Draft)"),
    ("STORE", "12", "+FLAGS", "($Label1)"),
    ("STORE", "15", "+FLAGS", "(\\Seen)"),
    ("STORE", "1", "+FLAGS", "(\\Seen)"),          # already set: no change
    ("STORE", "9", "+FLAGS", "(\\Flagged)"),       # expunged below
    ("STORE", "4,9:10", "+FLAGS", "(\\Deleted)"),
]
EXPECT_FLAGS = {3: set(), 7: {"\\Flagged", "\\Answered"}, 6: {"\\Draft"}, 12: {"$Label1"},
                15: {"\\Seen"}}
EXPECT_VANISHED = {4, 9, 10, 20}


def node_client():
    """The command that runs node for the installed client; skips when node cannot be had."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed (tests/deps.sh check installs it)")
    r = subprocess.run([node, "-p", "process.versions.node"], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    major = int(r.stdout.decode().split(".")[0])
    if major < 18:
        pytest.skip("node %s is too old for imapflow" % r.stdout.decode().strip())
    # imapflow asks for node 20 and uses globalThis.crypto, which node 18 (Debian 12's) has
    # only behind this flag; with it, imapflow runs there too.
    cmd = [node] + (["--experimental-global-webcrypto"] if major < 19 else [])
    if not os.path.isdir(os.path.join(CLIENT_DIR, "node_modules", "imapflow")):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so imapflow cannot be (tests/deps.sh check)")
        # What tests/deps.sh does; here for a run of this file alone.
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR,
                           capture_output=True, timeout=300)
        assert r.returncode == 0, "npm ci failed:\n" + r.stderr.decode(errors="replace")
    return cmd


@pytest.fixture
def tcp_cs(pam, user, mailstore, tmp_path):
    """imapd on 127.0.0.1 with condstore = yes; stopped after the test."""
    os.chmod(tmp_path, 0o755)
    srv = TcpServer(pam, user, str(tmp_path), condstore="yes")
    yield srv
    srv.stop()
    print("--- server log (tail) ---\n" + srv.log()[-6000:])


class NodeRun:
    """resync.mjs as a child process: JSON lines out, a go-ahead line in."""

    def __init__(self, node_cmd, tcp):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": CLIENT_DIR,
               "IMAP_HOST": tcp.host, "IMAP_PORT": str(tcp.port), "IMAP_USER": tcp.login,
               "IMAP_PASS": tcp.password}
        self.proc = subprocess.Popen(node_cmd + [SCRIPT], cwd=CLIENT_DIR, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.buf = b""

    def json_line(self, timeout=20):
        deadline = time.time() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("imapflow printed nothing in time" + self.stderr())
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(5)
                    raise AssertionError("imapflow's script ended (exit %s) early"
                                         % self.proc.returncode + self.stderr())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def go(self):
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()

    def stderr(self):
        if self.proc.poll() is None:
            return ""
        return "\n" + self.proc.stderr.read().decode(errors="replace")[-4000:]

    def finish(self, timeout=15):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("imapflow's script did not exit")
        assert rc == 0, "imapflow's script exited %d" % rc + self.stderr()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


def logins_ok(tcp, phase):
    """resync.mjs logs in again after a failed LOGIN; that is allowed only when the server
    log shows the pam_wrapper race (TcpServer.PWRAP_RACE), not a failure of imapd's."""
    if phase["attempts"] != 1:
        assert any(w in tcp.log() for w in TcpServer.PWRAP_RACE), (phase["attempts"], tcp.log())


def sent(log):
    """The commands imapflow sent, tags dropped."""
    return [e["msg"].split(" ", 1)[1] for e in log if e["src"] == "c" and " " in e["msg"]]


def received(log):
    return [e["msg"] for e in log if e["src"] == "s"]


def server_state(tcp):
    """{uid: flags} as a separate imaplib session sees the mailbox, \\Recent aside."""
    c = imap_connect(tcp)
    try:
        typ, _ = c.select("INBOX", readonly=True)
        assert typ == "OK"
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS)")
        assert typ == "OK", data
        out = {}
        for item in data:
            text = item.decode() if isinstance(item, bytes) else item[0].decode()
            m = re.search(r"UID (\d+)", text)
            f = re.search(r"FLAGS \(([^)]*)\)", text)
            assert m and f, text
            out[int(m.group(1))] = set(f.group(1).split()) - {"\\Recent"}
        return out
    finally:
        c.logout()


def test_imapflow_qresync_after_reconnect(tcp_cs, mailstore):
    node_cmd = node_client()
    tcp = tcp_cs
    mailstore.write_inbox(inbox_mbox())
    run = NodeRun(node_cmd, tcp)
    try:
        # Session 1: imapflow opens INBOX and records where it stands.
        rec = run.json_line()
        # Shown by pytest only when the test failed.
        print("--- imapflow, session 1 ---\n" + json.dumps(rec, indent=1))
        logins_ok(tcp, rec)
        assert rec["phase"] == "recorded", rec
        assert "QRESYNC" in rec["enabled"] and "CONDSTORE" in rec["enabled"], rec["enabled"]
        mb = rec["mailbox"]
        uidvalidity = int(re.search(rb"X-IMAPbase: (\d+)", open(mailstore.inbox, "rb").read())
                          .group(1))
        assert mb["uidValidity"] == str(uidvalidity), mb
        h0 = int(mb["highestModseq"])
        assert h0 > 0 and not mb["noModseq"] and mb["exists"] == N, mb
        got = {int(u): set(m["flags"]) - {"\\Recent"} for u, m in rec["messages"].items()}
        assert got == {u: initial_flags(u) for u in range(1, N + 1)}, got
        # imapflow fetched MODSEQ too (CONDSTORE enabled); none above HIGHESTMODSEQ (3.1.2.1)
        assert all(0 < int(m["modseq"]) <= h0 for m in rec["messages"].values()), rec

        # Meanwhile another client (imaplib, without CONDSTORE) changes flags and expunges.
        c = imap_connect(tcp)
        try:
            assert c.select("INBOX")[0] == "OK"
            for cmd in CHANGES:
                typ, data = c.uid(*cmd)
                assert typ == "OK", (cmd, data)
            typ, data = c.expunge()
            assert typ == "OK", data
            typ, data = c.uid("STORE", "20", "+FLAGS", "(\\Deleted)")
            assert typ == "OK", data
            typ, data = c.uid("EXPUNGE", "20")
            assert typ == "OK", data
        finally:
            c.logout()
        truth = server_state(tcp)
        expect = {u: initial_flags(u) for u in range(1, N + 1) if u not in EXPECT_VANISHED}
        expect.update(EXPECT_FLAGS)
        assert truth == expect, truth

        # Session 2: imapflow reconnects and resynchronises from what it recorded.
        run.go()
        res = run.json_line()
        logins_ok(tcp, res)
        run.finish()
    finally:
        run.kill()
    print("--- imapflow, session 2 ---\n" + json.dumps(res, indent=1))
    assert res["phase"] == "resynced", res
    assert "QRESYNC" in res["enabled"], res["enabled"]
    mb2 = res["mailbox"]
    assert mb2["qresync"] is True, mb2           # imapflow accepted the resync as valid
    assert mb2["uidValidity"] == str(uidvalidity), mb2
    h1 = int(mb2["highestModseq"])
    assert h1 > h0 and mb2["exists"] == N - len(EXPECT_VANISHED), mb2

    # The flag changes: exactly those messages, with their new flags and new mod-sequences.
    changed = {}
    for ev in res["flags"]:
        assert ev["uid"] is not None, ev              # 3.2.5.1: the FETCH carries the UID
        assert ev["uid"] not in changed, ("reported twice", res["flags"])
        assert h0 < int(ev["modseq"]) <= h1, (h0, h1, ev)
        changed[ev["uid"]] = set(ev["flags"]) - {"\\Recent"}
    assert changed == EXPECT_FLAGS, res["flags"]

    # The expunges: each vanished UID once, as VANISHED (EARLIER), none by sequence number.
    van = [ev["uid"] for ev in res["expunge"]]
    assert all(ev["vanished"] and ev["earlier"] for ev in res["expunge"]), res["expunge"]
    assert sorted(van) == sorted(EXPECT_VANISHED), res["expunge"]

    # Applying what imapflow reported to what it recorded gives the mailbox as it is.
    view = {int(u): set(m["flags"]) - {"\\Recent"} for u, m in rec["messages"].items()}
    for u in van:
        view.pop(u)
    view.update(changed)
    assert view == truth, (view, truth)

    # How it got there, from imapflow's own protocol log: one SELECT with the QRESYNC
    # parameter carrying what session 1 recorded, and no FETCH, SEARCH or STATUS at all,
    # so the changes came from the server's QRESYNC answer and not from a full fetch.
    cmds = sent(res["log"])
    selects = [c for c in cmds if c.upper().startswith(("SELECT", "EXAMINE"))]
    assert selects == ["SELECT INBOX (QRESYNC (%d %d))" % (uidvalidity, h0)], cmds
    assert not [c for c in cmds if re.match(r"(UID )?(FETCH|SEARCH)|STATUS", c, re.I)], cmds
    lines = received(res["log"])
    vlines = [ln for ln in lines if ln.startswith("* VANISHED")]
    assert vlines and all(ln.startswith("* VANISHED (EARLIER) ") for ln in vlines), lines
    assert any("[HIGHESTMODSEQ %d]" % h1 in ln for ln in lines), lines
    # and the server sent a FETCH for the changed messages only, not for all 16
    fetches = [ln for ln in lines if re.match(r"\* \d+ FETCH ", ln)]
    assert len(fetches) == len(EXPECT_FLAGS), fetches
    # Session 1 was a plain open and fetch: that is what makes session 2's answer the news.
    cmds1 = sent(rec["log"])
    if not tcp.preauth:         # IMAPD_CLIENTS_SERVER=dovecot greets PREAUTH
        assert any(c.startswith("LOGIN ") for c in cmds1), cmds1
    assert [c for c in cmds1 if c.startswith("SELECT")] == ["SELECT INBOX"], cmds1
