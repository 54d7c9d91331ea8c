"""neomutt with imap_condstore, imap_qresync and a header cache against imapd (condstore = yes)
on a loopback TCP port, run in a pty with its keys pushed (-e push) and its IMAP exchange
read from its debug log:

1. it opens a 10,000-message INBOX with an empty header cache (every header fetched), quits;
2. another session flags one message;
3. it opens INBOX again: ENABLE QRESYNC, SELECT (CONDSTORE), then only UID FETCH 1:N (FLAGS)
   (CHANGEDSINCE <the HIGHESTMODSEQ it cached> VANISHED) (RFC 7162 3.1.4.1, 3.2.6), which
   reports just that message; no header is fetched again, and neomutt itself pipes the
   messages it sees as flagged (~F) into a file: exactly that one;
4. another session expunges a message; the third open gets VANISHED (EARLIER) for it
   (3.2.10.1) and neomutt no longer shows it.

neomutt 20220429 (Debian 12) never sends SELECT ... (QRESYNC (...)): with QRESYNC enabled it
takes the UID list from its header cache and asks for changes with CHANGEDSINCE ... VANISHED.
IMAPD_CLIENTS_SERVER=dovecot runs the same against Dovecot's imap (see clients_util).
"""
import fcntl
import os
import pty
import re
import select
import signal
import struct
import termios
import time

import pytest

import clients_util
from clients_util import TcpServer, imap_connect, need

N = 10000          # messages in INBOX
CHANGED = 4321     # the message (sequence number) another session flags in between
GONE = 7000        # the one it expunges before the third open


@pytest.fixture
def tcp_cs(pam, user, mailstore, tmp_path):
    """imapd with CONDSTORE/QRESYNC offered, on 127.0.0.1 behind systemd-socket-activate;
    stopped (every connection's process waited for) after the test. (With
    IMAPD_CLIENTS_SERVER=dovecot, Dovecot's imap, which offers both anyway.)"""
    os.chmod(tmp_path, 0o755)
    srv = TcpServer(pam, user, str(tmp_path), condstore="yes")
    yield srv
    srv.stop()
    print("--- server log (tail) ---\n" + srv.log()[-6000:])


def big_mbox(n):
    """n small messages as an MDA appends them, one second apart."""
    t0 = 1772438400
    out = []
    for i in range(1, n + 1):
        out.append(
            "From sender@example.org %s\n"
            "Date: Tue, 3 Mar 2026 10:00:00 +0100\n"
            "From: Sam Sender <sender@example.org>\n"
            "To: Robin <robin@example.net>\n"
            "Subject: Message %05d\n"
            "Message-ID: <m%05d@example.org>\n"
            "\n"
            "Body of message %d.\n"
            "\n" % (clients_util.ctime(t0 + i), i, i, i))
    return "".join(out)


MUTTRC = """\
set imap_user="{login}"
set imap_pass="{password}"
set folder="imap://{host}:{port}/"
set spoolfile="+INBOX"
set ssl_starttls=no
set ssl_force_tls=no
set imap_passive=yes
set imap_condstore=yes
set imap_qresync=yes
set imap_peek=yes
set header_cache="{hcache}/"
set header_cache_backend="tokyocabinet"
set message_cachedir=""
set sort=mailbox-order
set mark_old=no
set move=no
set quit=yes
set delete=no
set wait_key=no
set pipe_decode=no
set pipe_split=no
set sleep_time=0
set beep=no
set charset="utf-8"
set mailcap_path=""
"""


def run_neomutt(home, rc, url, push, log_base, timeout=40):
    """neomutt on url in a pty (80x24), with the keys push; returns (seconds, screen bytes).
    Its debug log goes to log_base + "0": level 5, the least that has what the server
    sent."""
    need("neomutt")
    env = {"HOME": str(home), "TERM": "xterm", "LANG": "C.UTF-8",
           "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    argv = ["neomutt", "-n", "-F", str(rc), "-d", "5", "-l", str(log_base),
            "-e", "push '%s'" % push, "-f", url]
    start = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    screen = b""
    deadline = start + timeout
    status = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:       # EIO: the child closed the pty
                    chunk = b""
                if not chunk:
                    break
                screen += chunk
        # The pty is closed; wait for the exit itself (bounded by the same deadline).
        while time.monotonic() < deadline:
            p, st = os.waitpid(pid, os.WNOHANG)
            if p:
                status = st
                break
            time.sleep(0.02)
    finally:
        os.close(fd)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    took = time.monotonic() - start
    tail = screen[-3000:].decode("utf-8", "replace")
    assert status is not None, f"neomutt did not exit within {timeout} s; screen:\n{tail}"
    assert os.waitstatus_to_exitcode(status) == 0, f"neomutt exit {status}; screen:\n{tail}"
    return took, screen


def imap_lines(log_path):
    """(direction, text) of every IMAP line in neomutt's debug log: '>' sent, '<' received.
    Commands neomutt queued go out in one write, logged as one entry over several lines."""
    out = []
    in_sent = False
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for ln in f:
            ln = ln.rstrip("\n")
            if ln.startswith("["):
                m = re.match(r"\[[^]]*\]<\d> \S+\(\) \d+([<>]) (.*)$", ln)
                in_sent = bool(m) and m.group(1) == ">"
                if m:
                    text = re.sub(r"^(a\d+ (?:AUTHENTICATE PLAIN|LOGIN) ).*", r"\1...",
                                  m.group(2))
                    out.append((m.group(1), text))
            elif in_sent and ln:
                out.append((">", ln))
    return out


def response_to(lines, command_re):
    """The command matching command_re, and the lines the server sent up to its tagged
    completion."""
    for i, (d, text) in enumerate(lines):
        if d == ">" and re.search(command_re, text):
            tag = text.split()[0]
            got = []
            for d2, t2 in lines[i + 1:]:
                if d2 == "<":
                    got.append(t2)
                    if t2.startswith(tag + " "):
                        return text, got
            raise AssertionError(f"no completion for {text!r}")
    raise AssertionError(f"no command like {command_re!r} in neomutt's log")


def sent(lines):
    return [t for d, t in lines if d == ">"]


def fetch_lines(lines):
    return [t for d, t in lines if d == "<" and re.match(r"\* \d+ FETCH \(", t)]


def highestmodseq(received):
    for t in received:
        m = re.search(r"\[HIGHESTMODSEQ (\d+)\]", t)
        if m:
            return int(m.group(1))
    return None


def other_session(tcp, msn, *store):
    """Another client: UID STORE store on message msn; returns its UID. With expunge,
    EXPUNGE after."""
    c = imap_connect(tcp)
    try:
        typ, _ = c.select("INBOX")
        assert typ == "OK"
        typ, data = c.fetch(str(msn), "(UID FLAGS)")
        assert typ == "OK", data
        uid = int(re.search(rb"UID (\d+)", data[0]).group(1))
        assert b"\\Flagged" not in data[0] and b"\\Deleted" not in data[0], data
        typ, data = c.uid("STORE", str(uid), *store)
        assert typ == "OK", data
        if "\\Deleted" in store[-1]:
            typ, data = c.expunge()
            assert typ == "OK", data
        c.logout()
    finally:
        try:
            c.shutdown()
        except OSError:
            pass
    return uid


def piped_subjects(path):
    assert path.exists(), "neomutt piped nothing"
    return [s.decode() for s in re.findall(rb"(?m)^Subject: (.*)$", path.read_bytes())]


def test_neomutt_reopens_10000_messages_with_qresync(tcp_cs, mailstore, tmp_path, capsys):
    tcp = tcp_cs
    t = time.monotonic()
    mailstore.write_inbox(big_mbox(N))
    written = time.monotonic() - t
    assert written < 3, f"writing the mailbox took {written:.2f} s"

    home = tmp_path / "neomutthome"
    hcache = tmp_path / "hcache"
    home.mkdir()
    hcache.mkdir()
    flagged_out = tmp_path / "flagged.txt"
    rc = home / "neomuttrc"
    rc.write_text(MUTTRC.format(login=tcp.login, password=tcp.password, host=tcp.host,
                                port=tcp.port, hcache=hcache))
    url = f"imap://{tcp.login}@{tcp.host}:{tcp.port}/INBOX"

    def show(log):
        if os.path.exists(log):
            with open(log, errors="replace") as f:
                print(f"--- {log} (tail) ---\n" + f.read()[-6000:])

    # 1. First open: an empty header cache, so every header is fetched; then quit.
    log1 = str(tmp_path / "neomutt1.log")
    try:
        t1, _ = tcp.pam_retry(lambda: run_neomutt(home, rc, url, "<quit>", log1))
    except AssertionError:
        show(log1 + "0")
        raise
    first = imap_lines(log1 + "0")
    assert any(re.fullmatch(r"a\d+ ENABLE QRESYNC", c) for c in sent(first)), sent(first)
    sel1, got1 = response_to(first, r"^a\d+ SELECT \"?INBOX\"? \(CONDSTORE\)$")
    h1 = highestmodseq(got1)
    assert h1 is not None, got1
    assert any(re.match(r"\* ENABLED .*QRESYNC", t) for d, t in first if d == "<"), first[:20]
    assert not any("CHANGEDSINCE" in c for c in sent(first)), sent(first)
    assert len(fetch_lines(first)) >= N, len(fetch_lines(first))
    assert os.listdir(hcache), "neomutt wrote no header cache"

    # 2. Another session flags one message (and learns its UID).
    uid = other_session(tcp, CHANGED, "+FLAGS", "(\\Flagged)")

    # 3. Second open with the same header cache: neomutt pipes every message it sees as
    # flagged (tagged by ~F, one pipe for all of them) into a file, then quits.
    log2 = str(tmp_path / "neomutt2.log")
    push = ("<tag-pattern>~F<enter><tag-prefix><pipe-message>cat > %s<enter><quit>"
            % flagged_out)
    try:
        t2, _ = tcp.pam_retry(lambda: run_neomutt(home, rc, url, push, log2))
    except AssertionError:
        show(log2 + "0")
        raise
    second = imap_lines(log2 + "0")
    try:
        assert any(re.fullmatch(r"a\d+ ENABLE QRESYNC", c) for c in sent(second))
        sel2, got2 = response_to(second, r"^a\d+ SELECT \"?INBOX\"? \(CONDSTORE\)$")
        h2 = highestmodseq(got2)
        assert h2 is not None and h2 > h1, (h1, got2)
        # The resync: only what changed since the mod-sequence of the first open.
        cmd, got = response_to(second, r"^a\d+ UID FETCH 1:\d+ \(FLAGS\) \(CHANGEDSINCE")
        assert re.fullmatch(r"a\d+ UID FETCH 1:%d \(FLAGS\) \(CHANGEDSINCE %d VANISHED\)"
                            % (N, h1), cmd), cmd
        assert got[-1].split()[1] == "OK", got
        changed = [ln for ln in got if re.match(r"\* \d+ FETCH", ln)]
        assert len(changed) == 1, got
        assert re.match(r"\* %d FETCH \(" % CHANGED, changed[0]), changed
        assert re.search(r"\bUID %d\b" % uid, changed[0]), changed
        assert re.search(r"FLAGS \([^)]*\\Flagged", changed[0]), changed
        assert not any(ln.startswith("* VANISHED") for ln in got), got
        # No header was fetched again: no HEADER.FIELDS, no per-message UID/FLAGS listing.
        assert not any("HEADER.FIELDS" in c for c in sent(second)), sent(second)
        assert not any(re.search(r"UID FETCH 1:\d+ \(UID", c) for c in sent(second)), \
            sent(second)
        assert len(fetch_lines(second)) < 10, len(fetch_lines(second))
    except AssertionError:
        show(log2 + "0")
        raise
    # neomutt knew the flag: exactly the changed message matched ~F.
    assert piped_subjects(flagged_out) == ["Message %05d" % CHANGED]

    # 4. Another session expunges a message; the third open learns it through VANISHED
    # (EARLIER) (3.2.6, 3.2.10.1): neomutt no longer has it, and did not fetch all headers.
    gone = other_session(tcp, GONE, "+FLAGS.SILENT", "(\\Deleted)")
    log3 = str(tmp_path / "neomutt3.log")
    around = tmp_path / "around.txt"
    push = ('<tag-pattern>~s "Message 0(%d|%d|%d)"<enter><tag-prefix><pipe-message>'
            'cat > %s<enter><quit>' % (GONE - 1, GONE, GONE + 1, around))
    try:
        t3, _ = tcp.pam_retry(lambda: run_neomutt(home, rc, url, push, log3))
    except AssertionError:
        show(log3 + "0")
        raise
    third = imap_lines(log3 + "0")
    try:
        sel3, got3 = response_to(third, r"^a\d+ SELECT \"?INBOX\"? \(CONDSTORE\)$")
        assert "* %d EXISTS" % (N - 1) in got3, got3
        assert highestmodseq(got3) > h2, (h2, got3)
        cmd, got = response_to(third, r"^a\d+ UID FETCH 1:\d+ \(FLAGS\) \(CHANGEDSINCE")
        assert re.fullmatch(r"a\d+ UID FETCH 1:%d \(FLAGS\) \(CHANGEDSINCE %d VANISHED\)"
                            % (N, h2), cmd), cmd
        assert got == ["* VANISHED (EARLIER) %d" % gone, got[-1]], got
        assert got[-1].split()[1] == "OK", got
        # neomutt 20220429 leaves the MSN of a VANISHED (EARLIER) UID empty instead of
        # closing the gap, fetches the header at that MSN (the next message's), finds its
        # MSN map inconsistent ("QRESYNC failed.  Reopening mailbox.") and lists UIDs and
        # FLAGS again (UID FETCH 1:N (UID FLAGS)), with Dovecot as with imapd. It still
        # takes every header but that one from its cache.
        headers = [ln for ln in fetch_lines(third) if "BODY[HEADER.FIELDS" in ln]
        assert len(headers) <= 1, headers[:5]
    except AssertionError:
        show(log3 + "0")
        raise
    assert piped_subjects(around) == ["Message %05d" % (GONE - 1), "Message %05d" % (GONE + 1)]

    with capsys.disabled():
        print(f"\nneomutt, {N} messages: first open {t1:.2f} s (all headers), "
              f"second open {t2:.2f} s (flag change), third {t3:.2f} s (an expunge), "
              f"mbox written in {written:.2f} s")
