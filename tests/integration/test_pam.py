"""What imapd asks of PAM, seen from PAM's side: the service name (and the flag that
changes it), PAM_RHOST set to the peer, a conversation that answers several messages in one
call, the user name PAM ends with (PAM_USER) rather than the one typed, and the supplementary
groups of the user after the privilege drop (initgroups).

PAM is pam_wrapper with pam_matrix for the passwords (conftest.Pam); pam_exec (from
libpam-modules) records the items a module sees, pam_chatty and pam_set_items come with
pam_wrapper."""
import grp
import imaplib
import os
import secrets
import subprocess
import tempfile

import pytest

from conftest import IMAPD, Pam, Raw, free_port, user_config, wait_listening

PAM_DIR = "/usr/lib/x86_64-linux-gnu/pam_wrapper"


def greet(raw):
    line = raw.line()
    assert line.startswith("* OK [CAPABILITY IMAP4rev1 "), line
    return line


def login(raw, tag, name, password):
    raw.send(f"{tag} LOGIN {name} {password}\r\n")
    return raw.until_tagged(tag)[-1]


def set_auth_stack(pam, *lines):
    """Replaces the auth lines of pam's service file by lines (in order)."""
    path = os.path.join(pam.dir, "services", pam.service)
    with open(path) as f:
        rest = [ln for ln in f if not ln.startswith("auth")]
    with open(path, "w") as f:
        f.writelines(ln + "\n" for ln in lines)
        f.writelines(rest)


def matrix(pam):
    return f"auth required {PAM_DIR}/pam_matrix.so passdb={pam.passdb}"


def test_pam_service_flag(server_factory, tmp_path, user):
    """The service is "imap" unless --pam-service names another: pam_matrix accepts the
    password only for the service named beside it in its password file."""
    pam = Pam(str(tmp_path / "pam"), service="imapalt")
    pam.add(user.name, user.password)
    cfg = user_config(user)
    srv = server_factory(env=pam.env, config=cfg)
    raw = Raw(srv.sock)
    greet(raw)
    # "imap" has no service file here: PAM falls back to "other", whose pam_matrix refuses
    # a password that is registered for "imapalt" only.
    assert login(raw, "a", user.name, user.password).startswith("a NO ")
    srv.stop()
    srv = server_factory(args=["--pam-service", "imapalt"], env=pam.env, config=cfg)
    raw = Raw(srv.sock)
    greet(raw)
    assert login(raw, "a", user.name, user.password).startswith("a OK ")
    raw.send("b LOGOUT\r\n")
    raw.until_tagged("b")
    assert srv.wait() == 0


def test_conversation_answers_several_messages_per_call(server_factory, pam, user):
    """pam_chatty sends 32 info and error messages in one conversation call before
    pam_matrix asks for the password: the login still works, and a wrong password still
    fails. ([default=ignore]: pam_chatty has no setcred, which PAM also runs over the auth
    lines, and a missing function fails even an "optional" line.)"""
    pam.add(user.name, user.password)
    set_auth_stack(pam, f"auth [default=ignore] {PAM_DIR}/pam_chatty.so num_lines=16 info error",
                   matrix(pam))
    srv = server_factory(env=pam.env, config=user_config(user, login_delay_ms="0"))
    raw = Raw(srv.sock)
    greet(raw)
    assert login(raw, "a", user.name, "wrong").startswith("a NO [AUTHENTICATIONFAILED]")
    assert login(raw, "b", user.name, user.password).startswith("b OK ")
    raw.send("c LOGOUT\r\n")
    raw.until_tagged("c")
    assert srv.wait() == 0
    assert "wrong" not in srv.log()


def test_final_pam_user_is_served(server_factory, pam, user):
    """A module may change the user name (an alias, a case fold): imapd serves the user PAM
    ends with. pam_set_items sets PAM_USER from the environment before pam_matrix checks
    the password of that user."""
    pam.add(user.name, user.password)
    set_auth_stack(pam, f"auth required {PAM_DIR}/pam_set_items.so", matrix(pam))
    env = dict(pam.env, PAM_USER=user.name)
    srv = server_factory(env=env, config=user_config(user))
    c = srv.imap()
    typ, _ = c.login("alias-" + secrets.token_hex(2), user.password)
    assert typ == "OK"
    with open(f"/proc/{srv.pid}/status") as f:
        uids = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
    assert uids == [str(user.uid)] * 4
    assert c.logout()[0] == "BYE"
    assert srv.wait() == 0
    assert f"{user.name}@local: login: method=LOGIN" in srv.log()


def test_pam_rhost_is_the_peer(pam, user, tmp_path):
    """Over TCP (systemd-socket-activate --inetd, as a socket unit runs it), the modules see
    PAM_RHOST = the client's address, PAM_SERVICE = imap and the user; pam_exec writes what
    it was given."""
    pam.add(user.name, user.password)
    out_dir = tempfile.mkdtemp(prefix="imapd-pam-")
    try:
        os.chmod(out_dir, 0o755)
        record = os.path.join(out_dir, "items")
        script = os.path.join(out_dir, "record.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nprintf '%s|%s|%s|%s\\n' \"$PAM_TYPE\" \"$PAM_SERVICE\" "
                    f"\"$PAM_USER\" \"$PAM_RHOST\" >>{record}\n")
        os.chmod(script, 0o755)
        set_auth_stack(pam, f"auth required pam_exec.so quiet {script}", matrix(pam))
        conf = tmp_path / "imapd.conf"
        conf.write_text("".join(f"{k} = {v}\n" for k, v in user_config(user).items()))
        os.chmod(conf, 0o644)
        port = free_port()
        env = dict(os.environ)
        env.update(pam.env)
        cmd = ["systemd-socket-activate", "--inetd", "-a", "-l", f"127.0.0.1:{port}"]
        for k in pam.env:
            cmd += ["-E", k]
        cmd += [IMAPD, "-d", "-c", str(conf)]
        p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port, p)
            c = imaplib.IMAP4("127.0.0.1", port)
            assert c.login(user.name, user.password)[0] == "OK"
            assert c.logout()[0] == "BYE"
        finally:
            p.terminate()
            p.wait(10)
        with open(record) as f:
            lines = f.read().splitlines()
        assert lines == [f"auth|imap|{user.name}|127.0.0.1"], lines
    finally:
        subprocess.run(["rm", "-rf", out_dir], check=False)


def test_supplementary_groups_after_drop(login_server, user):
    """initgroups: the session has the user's supplementary groups, and only those."""
    gname = "imapdg" + secrets.token_hex(3)
    subprocess.run(["groupadd", gname], check=True)
    try:
        subprocess.run(["usermod", "-a", "-G", gname, user.name], check=True)
        gid = grp.getgrnam(gname).gr_gid
        srv = login_server()
        c = srv.imap()
        assert c.login(user.name, user.password)[0] == "OK"
        with open(f"/proc/{srv.pid}/status") as f:
            st = dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)
        assert sorted(st["Groups"].split()) == sorted([str(user.gid), str(gid)])
        assert st["Gid"].split() == [str(user.gid)] * 4
        c.logout()
        assert srv.wait() == 0
    finally:
        subprocess.run(["gpasswd", "-d", user.name, gname], check=False,
                       capture_output=True)
        subprocess.run(["groupdel", gname], check=False)


@pytest.fixture(autouse=True)
def _root_only():
    if os.geteuid() != 0:
        pytest.skip("needs root (a throwaway user, groups)")
