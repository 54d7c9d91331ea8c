"""`make demo` end to end: tests/demo.sh run (what `make demo` runs after building) on a
free port with its own directory, a login with the user and password it prints, INBOX
listed and read with curl and imaplib, Ctrl-C (SIGINT) stopping it, and tests/demo.sh clean
(`make demo-clean`) removing everything it said it created."""
import imaplib
import os
import pathlib
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, free_port, wait_listening

DEMO = os.path.join(ROOT, "tests", "demo.sh")
DEMO_USER = "imapdemo"


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def default_sigint():
    # A demo started from a shell in the background inherits SIGINT ignored; Ctrl-C in a
    # terminal reaches a process whose SIGINT is the default. Test that case.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_banner(proc, timeout=30):
    """Lines the demo prints up to the one that says how to stop it."""
    lines = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        ln = proc.stdout.readline()
        if not ln:
            break
        lines.append(ln.rstrip("\n"))
        if "Ctrl-C stops the demo" in ln:
            return lines
    raise AssertionError("no banner from the demo: %r" % lines)


def field(lines, name):
    for ln in lines:
        m = re.match(r"\s+%s\s+(\S+)" % name, ln)
        if m:
            return m.group(1)
    raise AssertionError(f"the demo did not print its {name}: {lines!r}")


def retry(fn, attempts=4):
    """pam_wrapper's per-process directories race between processes starting at once
    (see test_activation.pwrap_retry); a failed login from that is tried again."""
    for i in range(attempts):
        try:
            return fn()
        except (imaplib.IMAP4.error, imaplib.IMAP4.abort, AssertionError):
            if i == attempts - 1:
                raise
            time.sleep(0.3)


@pytest.fixture
def demo_dir():
    """A directory the demo user can reach (pytest's own are private to root)."""
    base = tempfile.mkdtemp(prefix="imapd-demo-test-")
    os.chmod(base, 0o755)
    d = pathlib.Path(base) / "demo"
    yield d
    if d.exists():
        # The test failed before make demo-clean: clean up the same way.
        subprocess.run(["sh", DEMO, "clean"], cwd=ROOT, env=dict(os.environ, DEMO_DIR=str(d)),
                       capture_output=True, timeout=30)
    shutil.rmtree(base, ignore_errors=True)


def test_demo_runs_serves_stops_and_cleans(demo_dir):
    if not os.path.exists(os.path.join(ROOT, "imapd", "imapd")):
        pytest.skip("imapd/imapd is not built (the demo runs that binary)")
    for tool in ("systemd-socket-activate", "curl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing")
    port = free_port()
    env = dict(os.environ, DEMO_DIR=str(demo_dir), DEMO_PORT=str(port))
    env.pop("LD_PRELOAD", None)
    root = os.geteuid() == 0
    had_user = user_exists(DEMO_USER)
    proc = subprocess.Popen(["sh", DEMO, "run"], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, preexec_fn=default_sigint)
    try:
        banner = read_banner(proc)
        text = "\n".join(banner)
        assert field(banner, "host") == "127.0.0.1"
        assert field(banner, "port") == str(port)
        user, password = field(banner, "user"), field(banner, "password")
        # It says what it created on the host.
        assert f"it created the directory {demo_dir}" in text, text
        if root:
            assert user == DEMO_USER
            assert user_exists(DEMO_USER)
            created = not had_user
            assert (f"created Unix user {DEMO_USER}" in text) == created, text
            assert (f"and the Unix user {DEMO_USER}" in text) == created, text
        else:
            assert user == pwd.getpwuid(os.getuid()).pw_name
        wait_listening(port, proc)

        def curl_list():
            p = subprocess.run(["curl", "-sS", "--max-time", "20", "-u",
                                f"{user}:{password}", f"imap://127.0.0.1:{port}/"],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            assert re.search(r'^\* LIST \([^)]*\) "/" "?INBOX"?\r?$', p.stdout, re.M), p.stdout
            p = subprocess.run(["curl", "-sS", "--max-time", "20", "-u",
                                f"{user}:{password}",
                                f"imap://127.0.0.1:{port}/INBOX;UID=1"],
                               capture_output=True, text=True, timeout=30)
            assert p.returncode == 0, p.stderr
            assert "Subject: Welcome to imapd" in p.stdout, p.stdout

        retry(curl_list)

        def imaplib_session():
            c = imaplib.IMAP4("127.0.0.1", port)
            assert c.login(user, password)[0] == "OK"
            assert c.select("INBOX") == ("OK", [b"3"])
            typ, data = c.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert typ == "OK" and b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=" in data[0][1]
            assert c.logout()[0] == "BYE"

        retry(imaplib_session)
        # A wrong password is refused (the demo's PAM checks it).
        c = imaplib.IMAP4("127.0.0.1", port)
        with pytest.raises(imaplib.IMAP4.error):
            c.login(user, password + "x")
        c.shutdown()
        # make demo-clean refuses while the demo runs.
        p = subprocess.run(["sh", DEMO, "clean"], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0 and "still runs" in p.stderr, p
        assert demo_dir.exists()
        # Ctrl-C stops it.
        proc.send_signal(signal.SIGINT)
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        rest = proc.stdout.read()
    # The sessions logged in and out (their log lines reach the terminal).
    assert f"{user}@127.0.0.1: login: method=" in rest, rest
    with open("/proc/net/tcp") as f:
        listening = [ln.split() for ln in f]
    assert not [f for f in listening if len(f) > 3 and f[1] == "0100007F:%04X" % port and
                f[3] == "0A"], "something still listens on the demo's port"
    # make demo-clean removes what it created, and says so.
    p = subprocess.run(["sh", DEMO, "clean"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert f"removed {demo_dir}" in p.stdout
    assert not demo_dir.exists()
    if root and not had_user:
        assert f"removed Unix user {DEMO_USER}" in p.stdout
        assert not user_exists(DEMO_USER)
    elif root:
        assert user_exists(DEMO_USER)     # not the demo's to remove
