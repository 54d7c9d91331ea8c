"""The protocol core end to end: the real binary on a socketpair (as inetd runs it) and
over TCP through systemd-socket-activate, driven by imaplib and by raw transcripts."""
import base64
import imaplib
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import IMAPD, Raw, free_port, sanitizer_env, user_config, wait_listening


def greet(raw):
    line = raw.line()
    assert line.startswith("* OK [CAPABILITY IMAP4rev1 "), line
    return line


def test_greeting_capability_noop_logout(server_factory):
    srv = server_factory()
    raw = Raw(srv.sock)
    g = greet(raw)
    # Over a pipe the peer is local, so plaintext login is allowed by default.
    assert "AUTH=PLAIN" in g and "SASL-IR" in g and "LITERAL+" in g
    assert "LOGINDISABLED" not in g
    raw.send("a1 CAPABILITY\r\n")
    lines = raw.until_tagged("a1")
    assert lines[0].startswith("* CAPABILITY IMAP4rev1 ")
    assert lines[-1] == "a1 OK CAPABILITY completed"
    raw.send("a2 NOOP\r\n")
    assert raw.until_tagged("a2") == ["a2 OK NOOP completed"]
    raw.send("a3 LOGOUT\r\n")
    assert raw.until_tagged("a3") == ["* BYE Logging out", "a3 OK LOGOUT completed"]
    assert raw.closed()
    assert srv.wait() == 0


def test_plaintext_never_disables_login(server_factory):
    srv = server_factory(config={"plaintext_auth": "never"})
    raw = Raw(srv.sock)
    g = raw.line()
    assert "LOGINDISABLED" in g and "AUTH=PLAIN" not in g
    raw.send("a LOGIN fred secret\r\n")
    assert raw.until_tagged("a") == ["a NO [PRIVACYREQUIRED] Use STARTTLS first"]
    raw.send("b AUTHENTICATE PLAIN AGZyZWQAc2VjcmV0\r\n")
    assert raw.until_tagged("b")[-1].startswith("b NO [PRIVACYREQUIRED]")
    raw.send("c LOGOUT\r\n")
    raw.until_tagged("c")
    assert srv.wait() == 0
    assert "secret" not in srv.log()


def test_id(server_factory):
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    raw.send('a ID ("name" "test\\"client" "version" NIL)\r\n')
    lines = raw.until_tagged("a")
    assert lines[0].startswith('* ID ("name" "imapd" "version" ')
    assert lines[-1] == "a OK ID completed"
    raw.send("b ID NIL\r\n")
    assert raw.until_tagged("b")[-1] == "b OK ID completed"
    raw.send('c ID ("name")\r\n')
    assert raw.until_tagged("c")[-1].startswith("c BAD")
    raw.send('d ID ("' + "x" * 31 + '" "v")\r\n')
    assert raw.until_tagged("d")[-1].startswith("d BAD")
    srv.stop()
    assert 'client id: name=test\\x22client' in srv.log()


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def test_login_drops_privileges(login_server, user):
    srv = login_server()
    c = srv.imap()
    assert "AUTH=PLAIN" in c.capabilities
    typ, data = c.login(user.name, user.password)
    assert typ == "OK"
    assert b"[CAPABILITY IMAP4rev1" in data[0]
    st = proc_status(srv.pid)
    assert st["Uid"].split() == [str(user.uid)] * 4
    assert st["Gid"].split() == [str(user.gid)] * 4
    assert st["Groups"].split() == [str(user.gid)]
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(st[cap], 16) == 0, cap
    # No core dumps or ptrace of a process that held root and a password.
    with open(f"/proc/{srv.pid}/stat") as f:
        pass
    assert os.stat(f"/proc/{srv.pid}/mem").st_uid == 0
    # The working directory is the user's home.
    assert os.readlink(f"/proc/{srv.pid}/cwd") == user.home
    c.logout()
    assert srv.wait() == 0
    log = srv.log()
    assert f"{user.name}@local: login: method=LOGIN" in log
    assert user.password not in log
    assert re.search(r"logout: commands=\d+ in=\d+ out=\d+", log)


def test_login_failures_are_delayed_and_limited(server_factory, pam, user):
    pam.add(user.name, user.password)
    srv = server_factory(env=pam.env, config=user_config(user, login_delay_ms="400"))
    raw = Raw(srv.sock)
    greet(raw)
    for i in range(3):
        t0 = time.monotonic()
        raw.send(f"a{i} LOGIN {user.name} wrong{i}\r\n")
        lines = raw.until_tagged(f"a{i}")
        assert time.monotonic() - t0 >= 0.4
        assert lines[-1] == f"a{i} NO [AUTHENTICATIONFAILED] Authentication failed"
    assert raw.line() == "* BYE Too many failed login attempts"
    assert raw.closed()
    assert srv.wait() == 0
    log = srv.log()
    assert log.count("login failed: user=" + user.name) == 3
    assert "wrong0" not in log and "wrong1" not in log


def test_authenticate_plain(login_server, user):
    srv = login_server()
    raw = Raw(srv.sock)
    greet(raw)
    # Continuation form, cancelled with "*".
    raw.send("a AUTHENTICATE PLAIN\r\n")
    assert raw.line() == "+ "
    raw.send("*\r\n")
    assert raw.until_tagged("a") == ["a BAD AUTHENTICATE cancelled"]
    # Bad base64.
    raw.send("b AUTHENTICATE PLAIN\r\n")
    assert raw.line() == "+ "
    raw.send("!!!!\r\n")
    assert raw.until_tagged("b")[-1] == "b BAD Invalid base64 in response"
    # Another user's authorization identity is refused.
    msg = base64.b64encode(f"root\0{user.name}\0{user.password}".encode()).decode()
    raw.send(f"c AUTHENTICATE PLAIN {msg}\r\n")
    assert raw.until_tagged("c")[-1].startswith("c NO [AUTHORIZATIONFAILED]")
    # Unsupported mechanism.
    raw.send("d AUTHENTICATE CRAM-MD5\r\n")
    assert raw.until_tagged("d")[-1].startswith("d NO [CANNOT]")
    # Initial response (SASL-IR) with the right password.
    msg = base64.b64encode(f"\0{user.name}\0{user.password}".encode()).decode()
    raw.send(f"e AUTHENTICATE PLAIN {msg}\r\n")
    assert raw.until_tagged("e")[-1].startswith("e OK [CAPABILITY IMAP4rev1")
    raw.send("f LOGOUT\r\n")
    raw.until_tagged("f")
    assert srv.wait() == 0
    log = srv.log()
    assert "login: method=PLAIN" in log
    # Neither the AUTHENTICATE data nor the password inside it is logged.
    assert msg not in log and user.password not in log


def test_authenticate_continuation_imaplib(login_server, user):
    srv = login_server()
    c = srv.imap()
    typ, _ = c.authenticate("PLAIN", lambda _: f"\0{user.name}\0{user.password}".encode())
    assert typ == "OK"
    c.logout()
    assert srv.wait() == 0


def test_login_with_literals_like_a_proxy(login_server, user):
    """nginx's mail proxy sends LOGIN with synchronising literals."""
    srv = login_server()
    raw = Raw(srv.sock)
    greet(raw)
    raw.send("a LOGIN {%d}\r\n" % len(user.name))
    assert raw.line() == "+ Ready for literal data"
    raw.send("%s {%d}\r\n" % (user.name, len(user.password)))
    assert raw.line() == "+ Ready for literal data"
    raw.send(user.password + "\r\n")
    assert raw.until_tagged("a")[-1].startswith("a OK")
    raw.send("b LOGOUT\r\n")
    raw.until_tagged("b")
    assert srv.wait() == 0


def test_wrong_state_and_unknown_commands(login_server, user):
    srv = login_server()
    raw = Raw(srv.sock)
    greet(raw)
    raw.send("a ENABLE X\r\n")
    assert raw.until_tagged("a") == ["a BAD Log in first"]
    raw.send("b FROB\r\n")
    assert raw.until_tagged("b") == ["b BAD Unknown command FROB"]
    raw.send("c UID FROB 1\r\n")
    assert raw.until_tagged("c") == ["c BAD Unknown command UID FROB"]
    raw.send(f"d LOGIN {user.name} {user.password}\r\n")
    assert raw.until_tagged("d")[-1].startswith("d OK")
    raw.send(f"e LOGIN {user.name} {user.password}\r\n")
    assert raw.until_tagged("e") == ["e BAD Already logged in"]
    raw.send("f AUTHENTICATE PLAIN\r\n")
    assert raw.until_tagged("f") == ["f BAD Already logged in"]
    raw.send("g1 ENABLE FOO BAR\r\n")
    assert raw.until_tagged("g1") == ["* ENABLED", "g1 OK ENABLE completed"]
    raw.send("g LOGOUT\r\n")
    raw.until_tagged("g")
    assert srv.wait() == 0


def test_overlong_line_before_login(server_factory):
    """A line over the limit gets BAD and is skipped; the session goes on. Only a line
    that goes on past what may be dropped before login (64 KiB) ends it."""
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    raw.send("a LOGIN " + "x" * 50000 + "\r\n")
    assert raw.until_tagged("a") == ["a BAD Command line too long"]
    raw.send("b NOOP\r\n")
    assert raw.until_tagged("b") == ["b OK NOOP completed"]
    # a long line announcing a non-synchronising literal: both are dropped
    raw.send("c LOGIN " + "y" * 45000 + " {6+}\r\nsecret\r\nd NOOP\r\n")
    assert raw.until_tagged("c") == ["c BAD Command line too long"]
    assert raw.until_tagged("d") == ["d OK NOOP completed"]
    raw.send("e LOGIN " + "x" * 200000 + "\r\n")
    assert raw.line() == "* BYE Command line too long"
    assert raw.closed()
    assert srv.wait() == 0


def test_id_at_rfc2971_maxima(server_factory):
    """RFC 2971 3.3: 30 field/value pairs of 30 and 1024 octets (about 32 KB on one line)
    are answered, before login as well."""
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    pairs = " ".join('"%s" "%s"' % (("f%02d" % i).ljust(30, "x"), "v" * 1024)
                     for i in range(30))
    raw.send("a ID (" + pairs + ")\r\n")
    r = raw.until_tagged("a")
    assert r[-1] == "a OK ID completed"
    assert r[0].startswith('* ID ("name" "imapd"')
    # one pair more is refused with BAD, and the session goes on
    raw.send("b ID (" + pairs + ' "extra" "x")\r\n')
    assert raw.until_tagged("b") == ["b BAD Invalid ID field-value pairs"]
    raw.send("c LOGOUT\r\n")
    raw.until_tagged("c")
    assert srv.wait() == 0


def test_huge_literal_announced(server_factory):
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    # A synchronising 4 GB literal is refused before "+": nothing more is expected of us.
    raw.send("a LOGIN {4294967296}\r\n")
    assert raw.until_tagged("a") == ["a BAD Literal too large"]
    raw.send("b NOOP\r\n")
    assert raw.until_tagged("b") == ["b OK NOOP completed"]
    # A non-synchronising one is too big to read and drop before login: BYE [TOOBIG].
    raw.send("c LOGIN {4294967296+}\r\nxxxx")
    assert raw.line() == "* BYE [TOOBIG] Literal too large"
    assert raw.closed()
    assert srv.wait() == 0


def test_refused_nonsync_literal_is_never_run(server_factory):
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    payload = "z LOGOUT\r\n" * 100
    raw.send("a LOGIN {%d+}\r\n%s fred\r\nb NOOP\r\n" % (len(payload) + 1000, payload + "x" * 1000))
    assert raw.until_tagged("a") == ["a BAD Literal too large"]
    assert raw.until_tagged("b") == ["b OK NOOP completed"]
    srv.stop()


def test_many_bad_commands_end_the_session(server_factory):
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    raw.send("".join(f"x{i} BOGUS\r\n" for i in range(1000)))
    lines = []
    while True:
        try:
            lines.append(raw.line())
        except EOFError:
            break
    bads = [l for l in lines if " BAD " in l]
    assert 1 <= len(bads) <= 25
    assert lines[-1].startswith("* BYE")
    assert srv.wait() == 0


def test_bad_command_limit_exactly(server_factory):
    """IMAPD_BAD_MAX (20) BAD answers in a row end the session; a good command between
    them starts the count again."""
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    raw.send("".join(f"x{i} BOGUS\r\n" for i in range(19)) + "n NOOP\r\n")
    for i in range(19):
        assert raw.until_tagged(f"x{i}") == [f"x{i} BAD Unknown command BOGUS"]
    assert raw.until_tagged("n") == ["n OK NOOP completed"]
    # Parse errors count too: 19 of them and one unknown command make 20.
    raw.send("".join(f"y{i} NOOP (\r\n" for i in range(19)) + "z BOGUS\r\n")
    for i in range(19):
        assert raw.until_tagged(f"y{i}")[-1].startswith(f"y{i} BAD ")
    assert raw.until_tagged("z") == ["z BAD Unknown command BOGUS"]
    assert raw.line() == "* BYE Too many invalid commands"
    assert raw.closed()
    assert srv.wait() == 0


def test_disconnect_mid_literal(server_factory):
    srv = server_factory()
    raw = Raw(srv.sock)
    greet(raw)
    raw.send("a LOGIN {10}\r\n")
    assert raw.line() == "+ Ready for literal data"
    raw.send("abc")
    srv.sock.shutdown(socket.SHUT_WR)
    assert srv.wait() == 0
    assert "connection closed by client" in srv.log()


def test_preauth_timeout(server_factory):
    srv = server_factory(config={"timeout_preauth": "5"})
    raw = Raw(srv.sock)
    greet(raw)
    t0 = time.monotonic()
    assert raw.line(timeout=20) == "* BYE Autologout; idle for too long"
    assert 4 <= time.monotonic() - t0 < 15
    assert srv.wait() == 0


def test_preauth_session(preauth_server, user):
    srv = preauth_server()
    raw = Raw(srv.sock)
    g = raw.line()
    assert g.startswith("* PREAUTH [CAPABILITY IMAP4rev1")
    assert g.endswith("logged in as " + user.name)
    raw.send(f"a LOGIN {user.name} x\r\n")
    assert raw.until_tagged("a") == ["a BAD Already logged in"]
    raw.send("b LOGOUT\r\n")
    raw.until_tagged("b")
    assert srv.wait() == 0


def test_preauth_refused_as_root(server_factory):
    if os.geteuid() != 0:
        pytest.skip("runs as root")
    srv = server_factory(args=["--preauth"])
    assert srv.wait() == 1
    assert "never root" in srv.log()


def test_root_login_refused(server_factory, pam, user):
    pam.add("root", "rootpw")
    srv = server_factory(env=pam.env, config=user_config(user))
    raw = Raw(srv.sock)
    greet(raw)
    raw.send("a LOGIN root rootpw\r\n")
    assert raw.until_tagged("a") == ["a NO [AUTHENTICATIONFAILED] Authentication failed"]
    srv.stop()
    assert "login refused for root" in srv.log()


def test_account_check_failure(server_factory, pam, user):
    """pam_acct_mgmt refusing the account gives NO and a distinct log line."""
    pam.add(user.name, user.password)
    with open(os.path.join(pam.dir, "services", "imap")) as f:
        lines = f.readlines()
    with open(os.path.join(pam.dir, "services", "imap"), "w") as f:
        for l in lines:
            f.write("account required pam_deny.so\n" if l.startswith("account") else l)
    srv = server_factory(env=pam.env, config=user_config(user))
    raw = Raw(srv.sock)
    greet(raw)
    raw.send(f"a LOGIN {user.name} {user.password}\r\n")
    assert raw.until_tagged("a") == ["a NO [AUTHORIZATIONFAILED] Access denied"]
    srv.stop()
    assert "login refused, account locked or denied: user=" + user.name in srv.log()


def test_expired_account(server_factory, pam, tmp_path):
    """A real expired account (shadow expiry checked by pam_unix's account module)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = "imapdx" + os.urandom(3).hex()
    subprocess.run(["useradd", "--no-create-home", "--home-dir", str(tmp_path),
                    "--shell", "/usr/sbin/nologin", "--expiredate", "1970-01-02", name],
                   check=True)
    try:
        pam.add(name, "pw")
        svc = os.path.join(pam.dir, "services", "imap")
        with open(svc) as f:
            lines = f.readlines()
        with open(svc, "w") as f:
            for l in lines:
                f.write("account required pam_unix.so\n" if l.startswith("account") else l)
        srv = server_factory(env=pam.env, config={"login_delay_ms": "0"})
        raw = Raw(srv.sock)
        greet(raw)
        raw.send(f"a LOGIN {name} pw\r\n")
        assert raw.until_tagged("a") == ["a NO [EXPIRED] Account or password expired"]
        srv.stop()
        assert "login refused, account expired: user=" + name in srv.log()
    finally:
        subprocess.run(["userdel", name], check=False)


def activate(pam, user, tmp_path, inetd=True):
    port = free_port()
    conf = tmp_path / "imapd.conf"
    conf.write_text("".join(f"{k} = {v}\n" for k, v in user_config(user).items()))
    env = dict(os.environ)
    env.update(pam.env)
    cmd = ["systemd-socket-activate", "-a", "-l", f"127.0.0.1:{port}"]
    if inetd:
        cmd.append("--inetd")
    for k in pam.env:
        cmd += ["-E", k]
    cmd += [IMAPD, "-d", "-c", str(conf)]
    log = open(tmp_path / "activate.log", "wb")
    p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_listening(port, p)
    return p, port


@pytest.mark.parametrize("inetd", [True, False], ids=["inetd", "listen_fds"])
def test_tcp_through_systemd_socket_activate(pam, user, tmp_path, inetd):
    pam.add(user.name, user.password)
    p, port = activate(pam, user, tmp_path, inetd)
    try:
        # Two clients at once: one process per connection. The second connects after the
        # first has logged in: pam_wrapper, the test PAM library, races when two processes
        # start at the same instant (its per-process directories).
        c1 = imaplib.IMAP4("127.0.0.1", port)
        assert c1.login(user.name, user.password)[0] == "OK"
        c2 = imaplib.IMAP4("127.0.0.1", port)
        assert c2.login(user.name, user.password)[0] == "OK"
        assert c1.noop()[0] == "OK"
        assert c1.logout()[0] == "BYE"
        assert c2.logout()[0] == "BYE"
    finally:
        p.terminate()
        p.wait(10)
    log = (tmp_path / "activate.log").read_text(errors="replace")
    assert log.count(f"{user.name}@127.0.0.1: login: method=LOGIN") == 2, log
