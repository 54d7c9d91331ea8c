"""Logging as inetd leaves it (stderr is the client's socket, no journal): imapd writes to
syslog, facility mail, and nothing to the socket but IMAP.

The syslog socket is the test's own: /dev/log inside a private mount namespace (a tmpfs
over /dev with the few device nodes a process needs bound into it), so the host's /dev and
logs are never touched.
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
    import json, os, socket, subprocess, sys
    imapd, conf, env, user, pw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), \\
        sys.argv[4], sys.argv[5]
    log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    log.bind("/dev/log")
    os.chmod("/dev/log", 0o666)       # the session ends as the user
    a, b = socket.socketpair()
    # As inetd starts it: the connection on 0, 1 and 2.
    p = subprocess.Popen([imapd, "-c", conf], stdin=b, stdout=b, stderr=b, env=env)
    b.close()
    f = a.makefile("rb")
    lines = [f.readline()]
    a.sendall(f"a LOGIN {user} wrong-{pw}\\r\\n".encode())
    lines.append(f.readline())
    a.sendall(f"b LOGIN {user} {pw}\\r\\n".encode())
    lines.append(f.readline())
    a.sendall(b"c LOGOUT\\r\\n")
    lines += [f.readline(), f.readline()]
    rest = a.recv(65536)
    a.close()
    rc = p.wait(20)
    log.setblocking(False)
    msgs = []
    while True:
        try:
            msgs.append(log.recv(65536).decode("utf-8", "replace"))
        except BlockingIOError:
            break
    print(json.dumps({"rc": rc, "lines": [x.decode() for x in lines],
                      "rest": rest.decode("utf-8", "replace"), "msgs": msgs}))
""")

SETUP = ("set -e; old=$(mktemp -d); mount --rbind /dev \"$old\"; "
         "mount -t tmpfs -o mode=755 tmpfs /dev; "
         "for n in null zero full random urandom; do touch /dev/$n; "
         "mount --bind \"$old/$n\" /dev/$n; done; "
         'exec "$0" "$@"')


def test_syslog_under_inetd(tmp_path, pam, user):
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    pam.add(user.name, user.password)
    conf = tmp_path / "imapd.conf"
    conf.write_text("".join(f"{k} = {v}\n" for k, v in user_config(user).items()))
    script = tmp_path / "syslog.py"
    script.write_text(SCRIPT)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update(sanitizer_env())
    env.update(pam.env)
    p = subprocess.run(["unshare", "--mount", "sh", "-c", SETUP, sys.executable, str(script),
                        IMAPD, str(conf), json.dumps(env), user.name, user.password],
                       capture_output=True, timeout=60)
    if p.returncode != 0 and b"Operation not permitted" in p.stderr:
        pytest.skip("cannot make a mount namespace here")
    assert p.returncode == 0, p.stderr.decode()
    r = json.loads(p.stdout)
    assert r["rc"] == 0
    assert r["lines"][1].startswith("a NO [AUTHENTICATIONFAILED]")
    assert r["lines"][2].startswith("b OK")
    # The client saw IMAP only: no log text on the socket.
    assert r["rest"] == ""
    assert all(ln.startswith(("* ", "a ", "b ", "c ")) for ln in r["lines"]), r["lines"]
    msgs = [m for m in r["msgs"] if "imapd[" in m]
    assert msgs, r
    for m in msgs:
        # <PRI>: facility mail (2), so PRI is 16..23.
        pri = int(m[1:m.index(">")])
        assert pri // 8 == 2, m
        assert user.password not in m
    text = "\n".join(msgs)
    assert f"login failed: user={user.name} method=LOGIN" in text
    assert f"{user.name}@local: login: method=LOGIN" in text
    assert f"{user.name}@local: logout: commands=3" in text
