"""TLS end to end: STARTTLS (RFC 3501 6.2.1) and implicit TLS (RFC 8314) with real clients
(Python's ssl/imaplib, openssl s_client, curl, fetchmail), a certificate made for each run,
the plaintext-injection rule, the capability changes, a missing certificate, and what the
logged-in process looks like to the user it runs as.

Servers listen on 127.0.0.1 (or, for the non-loopback peer test, on a private address inside
a network namespace of the test's own); every one is stopped and waited for.
"""
import imaplib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

from conftest import IMAPD, sanitizer_env, user_config

OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def cert():
    """A self-signed certificate for localhost/127.0.0.1, key readable by root only."""
    if OPENSSL is None:
        pytest.skip("openssl CLI missing")
    d = tempfile.mkdtemp(prefix="imapd-tls-")
    os.chmod(d, 0o755)
    c = type("Cert", (), {})()
    c.dir = d
    c.cert = os.path.join(d, "cert.pem")
    c.key = os.path.join(d, "key.pem")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", c.key, "-out", c.cert], check=True, capture_output=True)
    os.chmod(c.key, 0o600)
    os.chmod(c.cert, 0o644)
    yield c
    shutil.rmtree(d, ignore_errors=True)


def client_context(cert):
    ctx = ssl.create_default_context(cafile=cert.cert)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def tls_config(user, cert, **extra):
    cfg = user_config(user, tls_cert=cert.cert, tls_key=cert.key)
    cfg.update(extra)
    return cfg


class TcpServer:
    """An inetd in miniature on 127.0.0.1: each accepted connection becomes an imapd process
    with the socket on fd 0/1. Logs of every process are kept for the assertions."""

    def __init__(self, tmp, env, config, args=(), host="127.0.0.1"):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((host, 0))
        self.listener.listen(16)
        self.host, self.port = self.listener.getsockname()
        path = os.path.join(tmp, "imapd-tcp.conf")
        with open(path, "w") as f:
            for k, v in config.items():
                f.write(f"{k} = {v}\n")
        os.chmod(path, 0o644)
        self.cmd = [IMAPD, "-d", "-c", path] + list(args)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        self.env.update(sanitizer_env())
        self.env.update(env or {})
        self.procs = []
        self.logs = []
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.stopping:
                conn.close()
                return
            log = tempfile.TemporaryFile()
            p = subprocess.Popen(self.cmd, stdin=conn, stdout=conn, stderr=log, env=self.env,
                                 close_fds=True)
            conn.close()
            self.procs.append(p)
            self.logs.append(log)

    def log(self):
        out = ""
        for f in list(self.logs):
            f.seek(0)
            out += f.read().decode("utf-8", "replace")
        return out

    def wait_all(self, timeout=20):
        """Waits for every imapd started so far; returns their exit codes."""
        codes = []
        deadline = time.time() + timeout
        for p in list(self.procs):
            try:
                codes.append(p.wait(max(0.1, deadline - time.time())))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise AssertionError("imapd did not exit; log:\n" + self.log())
        return codes

    def stop(self):
        self.stopping = True
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.thread.join(5)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def tcp_server(tmp_path, pam, user):
    pam.add(user.name, user.password)
    servers = []

    def make(config, args=()):
        s = TcpServer(str(tmp_path), pam.env, config, args)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def bad(c, *args):
    """Sends a command that must get BAD (imaplib raises on BAD); returns the text."""
    with pytest.raises(imaplib.IMAP4.error, match="BAD") as e:
        c._simple_command(*args)
    return str(e.value)


def typ_ok(r):
    return r[0] == "OK"


def caps(c):
    typ, data = c.capability()
    assert typ == "OK"
    return data[0].decode().split()


# --- STARTTLS with imaplib over a socketpair ---------------------------------------------

def test_starttls_changes_capabilities_and_allows_login(login_server, user, cert):
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key, plaintext_auth="never")
    c = srv.imap()
    before = caps(c)
    assert "STARTTLS" in before and "LOGINDISABLED" in before
    assert "AUTH=PLAIN" not in before
    typ, _ = c.starttls(client_context(cert))
    assert typ == "OK"
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    after = caps(c)
    assert "STARTTLS" not in after and "LOGINDISABLED" not in after
    assert "AUTH=PLAIN" in after and "IMAP4rev1" in after
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    c.logout()
    assert srv.wait() == 0
    log = srv.log()
    assert "STARTTLS: TLSv1." in log
    assert "login: method=LOGIN tls" in log
    assert user.password not in log


def test_login_refused_before_starttls(login_server, user, cert):
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key, plaintext_auth="never")
    c = srv.imap()
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        c.login(user.name, user.password)
    # AUTHENTICATE PLAIN is refused the same way, before any credentials are checked.
    raw = c._simple_command("AUTHENTICATE", "PLAIN", "AGZvbwBiYXI=")
    assert raw[0] == "NO"
    c.logout()
    assert srv.wait() == 0
    assert "login failed" not in srv.log()


def test_authenticate_plain_after_starttls(login_server, user, cert):
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key, plaintext_auth="never")
    c = srv.imap()
    c.starttls(client_context(cert))
    typ, _ = c.authenticate("PLAIN", lambda _: f"\0{user.name}\0{user.password}".encode())
    assert typ == "OK"
    assert c.state == "AUTH"
    c.logout()
    assert srv.wait() == 0


def test_starttls_twice_and_with_arguments_are_bad(login_server, cert):
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key)
    c = srv.imap()
    assert "takes no arguments" in bad(c, "STARTTLS", "now")
    c.starttls(client_context(cert))
    # imaplib refuses a second STARTTLS itself; send it by hand.
    tag = c._new_tag()
    c.send(tag + b" STARTTLS\r\n")
    line = c._get_line()
    assert line.startswith(tag + b" BAD")
    c.logout()
    assert srv.wait() == 0


def test_starttls_after_login_is_refused(login_server, user, cert):
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key, plaintext_auth="loopback")
    c = srv.imap()
    c.login(user.name, user.password)
    assert "STARTTLS" not in caps(c)
    # imaplib will not send STARTTLS when logged in; send it by hand.
    tag = c._new_tag()
    c.send(tag + b" STARTTLS\r\n")
    assert c._get_line().startswith(tag + b" BAD")
    c.logout()
    assert srv.wait() == 0


# --- the injection rule -------------------------------------------------------------------

def read_line(sock, buf):
    while b"\r\n" not in buf[0]:
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError(repr(buf[0]))
        buf[0] += chunk
    line, buf[0] = buf[0].split(b"\r\n", 1)
    return line


@pytest.mark.parametrize("injected", [
    b"b CAPABILITY\r\n",
    b"b LOGOUT\r\n",
    b"b CAPABILITY\r\nc NOOP\r\nd LOGOUT\r\n",
])
def test_commands_pipelined_after_starttls_are_not_executed(login_server, cert, injected):
    """CVE-2011-0411 class: plaintext after STARTTLS in the same packet is thrown away."""
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key)
    sock = srv.sock
    buf = [b""]
    assert read_line(sock, buf).startswith(b"* OK")
    sock.sendall(b"a STARTTLS\r\n" + injected)
    assert read_line(sock, buf).startswith(b"a OK")
    # What imapd sent in the clear ends with the tagged OK: nothing answers the injection.
    assert buf[0] == b""
    tls = client_context(cert).wrap_socket(sock, server_hostname="localhost")
    tls.settimeout(10)
    tbuf = [b""]
    tls.sendall(b"z NOOP\r\n")
    # The first thing through TLS is the answer to z, not to anything injected.
    assert read_line(tls, tbuf) == b"z OK NOOP completed"
    tls.sendall(b"y LOGOUT\r\n")
    assert read_line(tls, tbuf).startswith(b"* BYE")
    assert read_line(tls, tbuf).startswith(b"y OK")
    tls.close()
    assert srv.wait() == 0
    assert f"dropped {len(injected)} bytes sent before the TLS handshake" in srv.log()


def test_plaintext_instead_of_handshake_ends_session(login_server, cert):
    """A client that keeps talking plaintext after STARTTLS gets no command run."""
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key, timeout_preauth="5")
    sock = srv.sock
    buf = [b""]
    read_line(sock, buf)
    sock.sendall(b"a STARTTLS\r\n")
    assert read_line(sock, buf).startswith(b"a OK")
    sock.sendall(b"b LOGOUT\r\n")
    sock.settimeout(10)
    rest = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
    except ConnectionResetError:
        pass
    assert b"BYE" not in rest and b"b OK" not in rest
    srv.wait()
    assert "TLS handshake failed" in srv.log()
    assert "logout: commands=1 " in srv.log()



def libssl_mapped(pid):
    with open(f"/proc/{pid}/maps") as f:
        return any("/libssl.so" in ln or "/libcrypto.so" in ln for ln in f)


def test_openssl_is_loaded_only_for_tls(login_server, preauth_server, user, cert):
    """imapd loads OpenSSL when a TLS context is made, not at start: a session that cannot
    speak TLS (--preauth, no tls_cert) does without its half megabyte of relocated tables."""
    srv = preauth_server()
    c = srv.imap()
    assert typ_ok(c.noop())
    assert not libssl_mapped(srv.pid)
    c.logout()
    assert srv.wait() == 0
    srv = login_server()
    c = srv.imap()
    assert "STARTTLS" not in caps(c)
    assert not libssl_mapped(srv.pid)
    c.logout()
    assert srv.wait() == 0
    # with a certificate it is loaded (as root, before any login) and TLS works
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key)
    c = srv.imap()
    assert "STARTTLS" in caps(c)
    assert libssl_mapped(srv.pid)
    typ, _ = c.starttls(client_context(cert))
    assert typ == "OK"
    typ, _ = c.login(user.name, user.password)
    assert typ == "OK"
    c.logout()
    assert srv.wait() == 0

# --- certificates that cannot be used ------------------------------------------------------

def test_missing_certificate_means_no_starttls(login_server, user, cert, tmp_path):
    missing = str(tmp_path / "nope.pem")
    srv = login_server(tls_cert=missing, tls_key=cert.key)
    c = srv.imap()
    assert "STARTTLS" not in caps(c)
    bad(c, "STARTTLS")
    c.logout()
    assert srv.wait() == 0
    log = srv.log()
    assert "STARTTLS not offered" in log and missing in log
    assert "No such file or directory" in log


def test_key_not_matching_certificate_means_no_starttls(login_server, cert, tmp_path):
    other = str(tmp_path / "other.key")
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-out", other], check=True,
                   capture_output=True)
    srv = login_server(tls_cert=cert.cert, tls_key=other)
    c = srv.imap()
    assert "STARTTLS" not in caps(c)
    c.logout()
    assert srv.wait() == 0
    assert "STARTTLS not offered: tls_key" in srv.log() and "mismatch" in srv.log()


def test_garbage_certificate_means_no_starttls(login_server, cert, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    srv = login_server(tls_cert=str(bad), tls_key=cert.key)
    c = srv.imap()
    assert "STARTTLS" not in caps(c)
    c.logout()
    assert srv.wait() == 0
    assert "STARTTLS not offered: tls_cert" in srv.log()


def test_combined_pem_without_tls_key(login_server, user, cert, tmp_path):
    both = tmp_path / "both.pem"
    both.write_bytes(open(cert.cert, "rb").read() + open(cert.key, "rb").read())
    os.chmod(both, 0o600)
    srv = login_server(tls_cert=str(both))
    c = srv.imap()
    assert "STARTTLS" in caps(c)
    c.starttls(client_context(cert))
    c.login(user.name, user.password)
    c.logout()
    assert srv.wait() == 0


def test_implicit_tls_without_certificate_refuses(tcp_server, user, tmp_path):
    srv = tcp_server(user_config(user, tls_cert=str(tmp_path / "nope.pem"),
                                 implicit_tls="yes"))
    s = socket.create_connection((srv.host, srv.port), timeout=10)
    assert s.recv(100) == b""       # closed without a byte: no plaintext fallback
    s.close()
    assert srv.wait_all() == [1]
    assert "implicit TLS unavailable, refusing the connection" in srv.log()


# --- implicit TLS (RFC 8314) over TCP -----------------------------------------------------

@pytest.mark.parametrize("how", ["flag", "config"])
def test_implicit_tls_imaplib(tcp_server, user, cert, how):
    cfg = tls_config(user, cert, plaintext_auth="never")
    args = []
    if how == "flag":
        args = ["--tls"]
    else:
        cfg["implicit_tls"] = "yes"
    srv = tcp_server(cfg, args)
    c = imaplib.IMAP4_SSL("localhost", srv.port, ssl_context=client_context(cert))
    cs = caps(c)
    assert "STARTTLS" not in cs and "LOGINDISABLED" not in cs and "AUTH=PLAIN" in cs
    assert c.login(user.name, user.password)[0] == "OK"
    c.logout()
    assert srv.wait_all() == [0]
    assert "TLS: TLSv1." in srv.log()


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_implicit_tls_refuses_old_versions(tcp_server, user, cert, version):
    """TLS 1.0 and 1.1 are refused by imapd itself (the client offers them at security
    level 0, so the refusal is the server's): RFC 8996."""
    srv = tcp_server(tls_config(user, cert, implicit_tls="yes"))
    p = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{srv.port}", version,
                        "-cipher", "DEFAULT@SECLEVEL=0"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"alert protocol version" in p.stdout + p.stderr
    assert srv.wait_all() == [1]
    assert "TLS handshake failed: " in srv.log() and "unsupported protocol" in srv.log()


def test_openssl_s_client_starttls(tcp_server, user, cert):
    srv = tcp_server(tls_config(user, cert, plaintext_auth="never"))
    # s_client -crlf turns each LF into CRLF.
    script = f"a CAPABILITY\nb LOGIN {user.name} {user.password}\nc LOGOUT\n"
    p = subprocess.run([OPENSSL, "s_client", "-starttls", "imap", "-connect",
                        f"127.0.0.1:{srv.port}", "-servername", "localhost", "-CAfile",
                        cert.cert, "-verify_return_error", "-quiet", "-crlf"],
                       input=script.encode(), capture_output=True, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, p.stderr.decode()
    cap = [ln for ln in out.splitlines() if ln.startswith("* CAPABILITY")]
    assert cap and "STARTTLS" not in cap[0] and "AUTH=PLAIN" in cap[0]
    assert "b OK" in out and "c OK" in out
    assert srv.wait_all() == [0]


def test_openssl_s_client_implicit(tcp_server, user, cert):
    srv = tcp_server(tls_config(user, cert), ["--tls"])
    p = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{srv.port}",
                        "-servername", "localhost", "-CAfile", cert.cert,
                        "-verify_return_error", "-quiet", "-crlf"],
                       input=b"a LOGOUT\n", capture_output=True, timeout=30)
    out = p.stdout.decode()
    assert out.startswith("* OK [CAPABILITY IMAP4rev1"), out
    assert "a OK" in out
    assert srv.wait_all() == [0]


# --- curl ---------------------------------------------------------------------------------

def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "30"] + list(args),
                          capture_output=True, timeout=60)


def test_curl_imap_ssl_reqd_uses_starttls(tcp_server, user, cert):
    if shutil.which("curl") is None:
        pytest.skip("curl missing")
    srv = tcp_server(tls_config(user, cert, plaintext_auth="never"))
    p = curl("--ssl-reqd", "--cacert", cert.cert, "-u", f"{user.name}:{user.password}",
             "-X", "CAPABILITY", f"imap://localhost:{srv.port}/")
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode()
    assert "IMAP4rev1" in out and "STARTTLS" not in out
    srv.wait_all()
    assert "STARTTLS: TLSv1." in srv.log()
    assert "login: method=" in srv.log() and " tls" in srv.log()


def test_curl_ssl_reqd_fails_without_tls(tcp_server, user):
    if shutil.which("curl") is None:
        pytest.skip("curl missing")
    srv = tcp_server(user_config(user))
    p = curl("--ssl-reqd", "-u", f"{user.name}:{user.password}", "-X", "CAPABILITY",
             f"imap://localhost:{srv.port}/")
    assert p.returncode != 0
    srv.wait_all()
    assert "login:" not in srv.log()


def test_curl_imaps(tcp_server, user, cert):
    if shutil.which("curl") is None:
        pytest.skip("curl missing")
    srv = tcp_server(tls_config(user, cert, plaintext_auth="never"), ["--tls"])
    p = curl("--cacert", cert.cert, "-u", f"{user.name}:{user.password}", "-X",
             "CAPABILITY", f"imaps://localhost:{srv.port}/")
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().startswith("* CAPABILITY IMAP4rev1")
    # A wrong password is refused through TLS as well.
    p = curl("--cacert", cert.cert, "-u", f"{user.name}:wrong", "-X", "CAPABILITY",
             f"imaps://localhost:{srv.port}/")
    assert p.returncode != 0
    srv.wait_all()
    assert srv.log().count("login: method=") == 1
    assert "login failed" in srv.log()


# --- fetchmail ----------------------------------------------------------------------------

def test_fetchmail_starttls_and_imaps(tcp_server, user, cert, mailstore, tmp_path):
    """fetchmail logs in through TLS, checking the certificate: STARTTLS (sslproto) on the
    IMAP port and implicit TLS (ssl) on the imaps one. Where the server answers its
    SELECT/EXAMINE it must also find the one waiting message (--check exits 0)."""
    fm = shutil.which("fetchmail")
    if fm is None:
        pytest.skip("fetchmail missing")
    home = tmp_path / "fmhome"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    for how, tls_opts, args in (("starttls", "sslproto 'TLS1.2+'", []),
                                ("imaps", "ssl", ["--tls"])):
        # A fresh, unseen message for each round.
        mailstore.write_inbox("From a@example.org Mon Jan  1 00:00:00 2024\n"
                              "From: a@example.org\nSubject: hi\n\nbody\n\n")
        srv = tcp_server(tls_config(user, cert, plaintext_auth="never"), args)
        rc_file = home / f"fetchmailrc-{how}"
        rc_file.write_text(
            f"poll localhost service {srv.port} protocol IMAP auth password\n"
            f"  user '{user.name}' password '{user.password}'\n"
            f"  {tls_opts} sslcertck sslcertfile '{cert.cert}'\n")
        os.chmod(rc_file, 0o600)
        p = subprocess.run([fm, "-f", str(rc_file), "--check", "-v", "--nosyslog",
                            "--timeout", "30"], env=env, capture_output=True, timeout=90)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        srv.wait_all()
        log = srv.log()
        assert "login: method=LOGIN tls" in log, f"{how}\n{out}\n{log}"
        assert user.password not in log
        if how == "starttls":
            assert "STARTTLS: TLSv1." in log
            # Nothing but CAPABILITY and STARTTLS went over plaintext.
            plain = out.split("STARTTLS")[0]
            assert "LOGIN" not in plain.split("IMAP>")[-1]
        selected = [ln for ln in out.splitlines()
                    if "IMAP< " in ln and ("[READ-ONLY]" in ln or "[READ-WRITE]" in ln)]
        if selected:
            assert p.returncode == 0, out
            # And fetch it for real, through TLS, into an MDA of our own.
            got = home / f"fetched-{how}"
            with open(rc_file, "a") as f:
                f.write(f"  keep mda \"/bin/sh -c 'cat >> {got}'\"\n")
            srv2 = tcp_server(tls_config(user, cert, plaintext_auth="never"), args)
            text = rc_file.read_text().replace(f"service {srv.port} ",
                                               f"service {srv2.port} ")
            rc_file.write_text(text)
            p = subprocess.run([fm, "-f", str(rc_file), "-v", "--nosyslog", "--timeout",
                                "30"], env=env, capture_output=True, timeout=90)
            out = (p.stdout + p.stderr).decode("utf-8", "replace")
            srv2.wait_all()
            assert p.returncode == 0, out
            body = got.read_text()
            assert "Subject: hi" in body and "body" in body, out
            srv2.stop()
        else:
            # The mailbox commands are not in this build: the TLS login is what is tested.
            assert re.search(r"IMAP< A\d+ OK .*Logged in", out), out
        srv.stop()


# --- LOGINDISABLED for a peer that is not on loopback -------------------------------------

NETNS_CLIENT = textwrap.dedent("""
    import json, socket, subprocess, sys
    imapd, conf, env = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    l = socket.socket(); l.bind(("10.213.77.1", 0)); l.listen(1)
    c = socket.create_connection(l.getsockname(), timeout=20)
    a, peer = l.accept()
    p = subprocess.Popen([imapd, "-d", "-c", conf], stdin=a, stdout=a,
                         stderr=subprocess.PIPE, env=env)
    a.close(); l.close()
    f = c.makefile("rb")
    out = [f.readline().decode().rstrip()]
    c.sendall(b"a LOGIN someone secret\\r\\n")
    out.append(f.readline().decode().rstrip())
    c.sendall(b"b LOGOUT\\r\\n")
    out.append(f.readline().decode().rstrip())
    out.append(f.readline().decode().rstrip())
    c.close()
    err = p.stderr.read().decode()
    print(json.dumps({"peer": peer[0], "lines": out, "rc": p.wait(), "log": err}))
""")


@pytest.mark.parametrize("policy", ["loopback", "always"])
def test_logindisabled_for_non_loopback_peer(tmp_path, cert, pam, policy):
    """A TCP peer at 10.213.77.1 (an address of a private network namespace, on its lo) is
    not loopback: by default it sees LOGINDISABLED and LOGIN gets NO [PRIVACYREQUIRED]."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    conf = tmp_path / "ns.conf"
    conf.write_text(f"tls_cert = {cert.cert}\ntls_key = {cert.key}\n"
                    f"plaintext_auth = {policy}\nlogin_delay_ms = 0\n")
    script = tmp_path / "nsclient.py"
    script.write_text(NETNS_CLIENT)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update(sanitizer_env())
    env.update(pam.env)
    p = subprocess.run(["unshare", "--net", "sh", "-c",
                        "ip link set lo up && ip addr add 10.213.77.1/32 dev lo && "
                        'exec "$0" "$@"', sys.executable, str(script), IMAPD, str(conf),
                        json.dumps(env)], capture_output=True, timeout=60)
    if p.returncode != 0 and b"Operation not permitted" in p.stderr:
        pytest.skip("cannot create a network namespace here")
    assert p.returncode == 0, p.stderr.decode()
    r = json.loads(p.stdout)
    assert r["peer"] == "10.213.77.1"
    greeting, login = r["lines"][0], r["lines"][1]
    assert "STARTTLS" in greeting
    if policy == "loopback":
        assert "LOGINDISABLED" in greeting and "AUTH=PLAIN" not in greeting
        assert login.startswith("a NO [PRIVACYREQUIRED]")
    else:
        assert "LOGINDISABLED" not in greeting and "AUTH=PLAIN" in greeting
        assert login.startswith("a NO [AUTHENTICATIONFAILED]")
    assert r["rc"] == 0
    assert "10.213.77.1" in r["log"]


# --- the logged-in process and the key ----------------------------------------------------

PTRACE_ATTACH = 16


def test_session_not_dumpable_nor_traceable_by_user(login_server, user, cert):
    """After login the process runs as the user, yet the user can neither ptrace it nor read
    its memory (it held root, a password and the TLS key); nor read the key file."""
    srv = login_server(tls_cert=cert.cert, tls_key=cert.key)
    c = srv.imap()
    c.starttls(client_context(cert))
    c.login(user.name, user.password)
    pid = srv.pid
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    uid_line = [ln for ln in status.splitlines() if ln.startswith("Uid:")][0]
    assert uid_line.split()[1:] == [str(user.uid)] * 4
    # A non-dumpable process's /proc files belong to root, not to the user it runs as.
    assert os.stat(f"/proc/{pid}/mem").st_uid == 0
    probe = textwrap.dedent(f"""
        import ctypes, errno, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ptrace.restype = ctypes.c_long
        r = libc.ptrace({PTRACE_ATTACH}, {pid}, None, None)
        e = ctypes.get_errno()
        try:
            open("/proc/{pid}/mem", "rb").read(1)
            mem = "readable"
        except OSError as x:
            mem = x.errno
        try:
            open({cert.key!r}).read()
            key = "readable"
        except OSError as x:
            key = x.errno
        print(r, e, mem, key)
    """)

    def become_user():
        os.setgroups([])
        os.setgid(user.gid)
        os.setuid(user.uid)

    p = subprocess.run([sys.executable, "-c", probe], preexec_fn=become_user,
                       capture_output=True, timeout=30)
    r, e, mem, key = p.stdout.decode().split()
    assert (r, int(e)) == ("-1", 1)            # EPERM
    assert mem != "readable" and key == "13"    # EACCES on the key file
    c.logout()
    assert srv.wait() == 0


# --- protocol versions and certificate chains ---------------------------------------------

def test_tls_1_2_client(tcp_server, user, cert):
    """A client that stops at TLS 1.2 still gets in (RFC 8314 4.1 wants 1.2 or newer)."""
    srv = tcp_server(tls_config(user, cert), ["--tls"])
    ctx = client_context(cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    c = imaplib.IMAP4_SSL("localhost", srv.port, ssl_context=ctx)
    assert c.sock.version() == "TLSv1.2"
    assert c.login(user.name, user.password)[0] == "OK"
    c.logout()
    assert srv.wait_all() == [0]
    assert "TLS: TLSv1.2 " in srv.log()


@pytest.fixture(scope="module")
def chain():
    """root CA -> intermediate CA -> leaf for localhost; the client trusts only the root,
    so it can verify the leaf only if imapd sends the intermediate too."""
    d = tempfile.mkdtemp(prefix="imapd-chain-")
    os.chmod(d, 0o755)

    def run(*args):
        subprocess.run([OPENSSL] + list(args), check=True, capture_output=True, cwd=d)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    with open(os.path.join(d, "ca.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    with open(os.path.join(d, "leaf.ext"), "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=imapd test root", "-keyout",
        "root.key", "-out", "root.pem", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-subj", "/CN=imapd test intermediate", "-keyout", "int.key", "-out",
        "int.csr")
    run("x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ca.ext", "-out", "int.pem")
    run("req", *ec, "-subj", "/CN=localhost", "-keyout", "leaf.key", "-out", "leaf.csr")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "int.pem", "-CAkey", "int.key",
        "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", "leaf.pem")
    with open(os.path.join(d, "fullchain.pem"), "wb") as f:
        for n in ("leaf.pem", "int.pem"):
            with open(os.path.join(d, n), "rb") as g:
                f.write(g.read())
    os.chmod(os.path.join(d, "leaf.key"), 0o600)
    c = type("Chain", (), {})()
    c.dir, c.root = d, os.path.join(d, "root.pem")
    c.fullchain, c.leaf = os.path.join(d, "fullchain.pem"), os.path.join(d, "leaf.pem")
    c.key = os.path.join(d, "leaf.key")
    yield c
    shutil.rmtree(d, ignore_errors=True)


def test_certificate_chain_is_sent(tcp_server, user, chain):
    srv = tcp_server(user_config(user, tls_cert=chain.fullchain, tls_key=chain.key),
                     ["--tls"])
    ctx = ssl.create_default_context(cafile=chain.root)
    c = imaplib.IMAP4_SSL("localhost", srv.port, ssl_context=ctx)
    assert c.login(user.name, user.password)[0] == "OK"
    c.logout()
    assert srv.wait_all() == [0]


def test_leaf_alone_does_not_verify(tcp_server, user, chain):
    """The counterpart: without the intermediate in tls_cert the client cannot verify,
    which is why the docs say fullchain.pem."""
    srv = tcp_server(user_config(user, tls_cert=chain.leaf, tls_key=chain.key), ["--tls"])
    ctx = ssl.create_default_context(cafile=chain.root)
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL("localhost", srv.port, ssl_context=ctx)
    srv.wait_all()
