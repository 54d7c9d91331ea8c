"""Logging as systemd sets it up (StandardError=journal): imapd notices that stderr is the
journal stream ($JOURNAL_STREAM) and sends structured entries to the journal socket, with
the user, the peer and, at logout, the session's counts.

The journal here is a datagram socket of the test's own at /run/systemd/journal/socket,
inside a private mount namespace (a tmpfs over /run/systemd), so the host's journal, if
any, is never touched.
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import IMAPD, sanitizer_env, user_config

SCRIPT = textwrap.dedent("""
    import json, os, socket, subprocess, sys, time
    imapd, conf, env, user, pw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), \\
        sys.argv[4], sys.argv[5]
    os.makedirs("/run/systemd/journal")
    j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    j.bind("/run/systemd/journal/socket")
    os.chmod("/run/systemd/journal/socket", 0o666)   # the session ends as the user
    r, w = os.pipe()
    st = os.fstat(w)
    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    a, b = socket.socketpair()
    p = subprocess.Popen([imapd, "-c", conf], stdin=b, stdout=b, stderr=w, env=env)
    b.close(); os.close(w)
    f = a.makefile("rb")
    lines = [f.readline()]
    a.sendall(f"a LOGIN {user} {pw}\\r\\n".encode())
    lines.append(f.readline())
    a.sendall(b"b LOGOUT\\r\\n")
    lines += [f.readline(), f.readline()]
    a.close()
    rc = p.wait(20)
    stderr = os.read(r, 65536).decode()
    j.setblocking(False)
    entries = []
    while True:
        try:
            d = j.recv(65536)
        except BlockingIOError:
            break
        e = {}
        for ln in d.decode().split("\\n"):
            if "=" in ln:
                k, v = ln.split("=", 1)
                e[k] = v
        entries.append(e)
    print(json.dumps({"rc": rc, "lines": [x.decode() for x in lines], "entries": entries,
                      "stderr": stderr}))
""")


def test_journal_fields(tmp_path, pam, user):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    pam.add(user.name, user.password)
    conf = tmp_path / "imapd.conf"
    conf.write_text("".join(f"{k} = {v}\n" for k, v in user_config(user).items()))
    script = tmp_path / "journal.py"
    script.write_text(SCRIPT)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update(sanitizer_env())
    env.update(pam.env)
    p = subprocess.run(["unshare", "--mount", "sh", "-c",
                        'mount -t tmpfs tmpfs /run/systemd && exec "$0" "$@"',
                        sys.executable, str(script), IMAPD, str(conf), json.dumps(env),
                        user.name, user.password], capture_output=True, timeout=60)
    if p.returncode != 0 and b"Operation not permitted" in p.stderr:
        pytest.skip("cannot make a mount namespace here")
    assert p.returncode == 0, p.stderr.decode()
    r = json.loads(p.stdout)
    assert r["rc"] == 0
    assert r["lines"][1].startswith("a OK")
    # Nothing went to stderr: it is the journal stream, and entries go to the socket.
    assert r["stderr"] == ""
    entries = [e for e in r["entries"] if e.get("SYSLOG_IDENTIFIER") == "imapd"]
    assert entries, r
    for e in entries:
        assert e["SYSLOG_FACILITY"] == "2"          # mail
        assert e["IMAPD_PEER"] == "local"
        assert user.password not in json.dumps(e)
    login = [e for e in entries if e["MESSAGE"].endswith("login: method=LOGIN")]
    assert login and login[0]["IMAPD_USER"] == user.name
    logout = [e for e in entries if "logout:" in e["MESSAGE"]]
    assert len(logout) == 1
    lo = logout[0]
    assert lo["IMAPD_USER"] == user.name
    assert lo["IMAPD_COMMANDS"] == "2"
    sent = len(f"a LOGIN {user.name} {user.password}\r\nb LOGOUT\r\n")
    assert lo["IMAPD_BYTES_IN"] == str(sent)
    assert int(lo["IMAPD_BYTES_OUT"]) == sum(len(x) for x in r["lines"])
    assert lo["MESSAGE"] == (f"{user.name}@local: logout: commands=2 in={sent} "
                             f"out={lo['IMAPD_BYTES_OUT']}")
