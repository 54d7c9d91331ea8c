"""The shipped activation files, run the way their daemons run them:

- systemd/*.socket and *@.service pass `systemd-analyze verify`;
- the services' ExecStart= runs under `systemd-socket-activate --inetd -a` (what
  StandardInput=socket does) and under `systemd-socket-activate -a` with LISTEN_FDS;
- the lines of systemd/inetd.conf run under a real openbsd-inetd;
- systemd/xinetd.d/imapd runs under xinetd where its binary is available.

Every server listens on 127.0.0.1 on a free port and is stopped (and waited for) at the end.
Only the binary path and a `-c FILE` for the test's settings are changed in what is shipped.
"""
import imaplib
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import IMAPD, ROOT, free_port, sanitizer_env, user_config, wait_listening

UNITS = os.path.join(ROOT, "systemd")
SHIPPED_BIN = "/usr/sbin/imapd"


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_config(tmp, cfg):
    path = os.path.join(tmp, "imapd.conf")
    with open(path, "w") as f:
        for k, v in cfg.items():
            f.write(f"{k} = {v}\n")
    os.chmod(path, 0o644)
    return path


def exec_start(unit):
    """The ExecStart= command of a shipped unit, as a list."""
    with open(os.path.join(UNITS, unit)) as f:
        lines = [ln.strip() for ln in f if ln.strip().startswith("ExecStart=")]
    assert len(lines) == 1
    return shlex.split(lines[0][len("ExecStart="):])


def adapt(cmd, conf):
    """The shipped command with the built binary and the test's config file."""
    assert cmd[0] == SHIPPED_BIN
    return [IMAPD] + cmd[1:] + ["-c", conf]


@pytest.fixture(scope="module")
def cert():
    d = tempfile.mkdtemp(prefix="imapd-act-")
    os.chmod(d, 0o755)
    c = type("Cert", (), {})()
    c.cert, c.key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", c.key, "-out", c.cert], check=True, capture_output=True)
    os.chmod(c.key, 0o600)
    yield c
    shutil.rmtree(d, ignore_errors=True)


def tls_ctx(cert):
    return ssl.create_default_context(cafile=cert.cert)


@pytest.fixture
def setup(tmp_path, pam, user, cert):
    pam.add(user.name, user.password)
    conf = write_config(str(tmp_path), user_config(user, tls_cert=cert.cert,
                                                   tls_key=cert.key))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update(sanitizer_env())
    env.update(pam.env)
    return conf, env


def pwrap_retry(fn, attempts=4):
    """Runs fn(), again when pam_wrapper (the test PAM) tripped over its own race: it
    names its per-process directory /tmp/pam.X with one letter, and two processes starting
    at once (from this suite or another running beside it) can pick the same one. The
    failure then shows as "PWRAP_ERROR" text on stderr (the socket, under inetd, so the
    client sees garbage before the greeting or in place of a TLS record), as PAM's critical
    error (NO [UNAVAILABLE]), or as a service file that vanished under it (NO
    [AUTHENTICATIONFAILED]). Other errors fail at once; these fail after a few tries."""
    for i in range(attempts):
        try:
            return fn()
        except (imaplib.IMAP4.error, imaplib.IMAP4.abort, ssl.SSLError) as e:
            text = str(e)
            if i == attempts - 1 or not any(
                    w in text for w in ("PWRAP_ERROR", "UNAVAILABLE", "AUTHENTICATIONFAILED",
                                        "WRONG_VERSION_NUMBER")):
                raise
            time.sleep(0.3)


def login_logout(c, user):
    assert c.login(user.name, user.password)[0] == "OK"
    assert c.noop()[0] == "OK"
    assert c.logout()[0] == "BYE"


def starttls_session(port, user, cert):
    c = imaplib.IMAP4("127.0.0.1", port)
    assert "STARTTLS" in c.capabilities
    c.starttls(tls_ctx(cert))
    login_logout(c, user)


def imaps_session(port, user, cert):
    c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_ctx(cert))
    assert "STARTTLS" not in c.capabilities
    login_logout(c, user)


# --- systemd-analyze verify ---------------------------------------------------------------

@pytest.mark.parametrize("unit", ["imapd.socket", "imapd@.service", "imaps.socket",
                                  "imaps@.service"])
def test_units_verify(tmp_path, unit):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze missing")
    for name in os.listdir(UNITS):
        src = os.path.join(UNITS, name)
        if os.path.isfile(src):
            with open(src) as f:
                text = f.read()
            # The units name the installed binary; point them at the built one.
            (tmp_path / name).write_text(text.replace(SHIPPED_BIN, IMAPD))
    p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # Unknown keys and bad values are only warnings for systemd: none are allowed.
    assert p.stderr.strip() == "", p.stderr


def test_units_settings():
    """What the deployment relies on is in the units."""
    def read(n):
        with open(os.path.join(UNITS, n)) as f:
            return f.read()
    for sock, port in (("imapd.socket", "143"), ("imaps.socket", "993")):
        t = read(sock)
        assert re.search(rf"^ListenStream={port}$", t, re.M)
        assert re.search(r"^Accept=yes$", t, re.M)
        n = int(re.search(r"^MaxConnections=(\d+)$", t, re.M).group(1))
        assert n > 64
        assert re.search(r"^MaxConnectionsPerSource=\d+$", t, re.M)
        burst = int(re.search(r"^TriggerLimitBurst=(\d+)$", t, re.M).group(1))
        assert burst > 200
    for svc in ("imapd@.service", "imaps@.service"):
        t = read(svc)
        assert re.search(r"^StandardInput=socket$", t, re.M)
        assert re.search(r"^StandardError=journal$", t, re.M)
        # The setgid lock helper must keep working.
        assert not re.search(r"^NoNewPrivileges=yes", t, re.M)
        assert not re.search(r"^ProtectHome=(yes|read-only|tmpfs)", t, re.M)
    assert exec_start("imaps@.service")[1:] == ["--tls"]
    assert exec_start("imapd@.service")[1:] == []


# --- systemd-socket-activate --------------------------------------------------------------

def socket_activate(port, cmd, env, inetd=True):
    args = ["systemd-socket-activate", "-a", "-l", f"127.0.0.1:{port}"]
    if inetd:
        args.append("--inetd")
    for k, v in env.items():
        args += ["-E", f"{k}={v}"]
    p = subprocess.Popen(args + cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=env)
    return p


@pytest.mark.parametrize("inetd", [True, False], ids=["inetd", "listen_fds"])
def test_imapd_service_under_socket_activate(setup, user, cert, inetd):
    """imapd@.service's command: StandardInput=socket (--inetd) and LISTEN_FDS; two
    connections at once are two processes; STARTTLS works on both."""
    conf, env = setup
    port = free_port()
    p = socket_activate(port, adapt(exec_start("imapd@.service"), conf), env, inetd)
    try:
        wait_listening(port, p)

        def two_sessions():
            a = imaplib.IMAP4("127.0.0.1", port)
            assert "STARTTLS" in a.capabilities
            assert a.login(user.name, user.password)[0] == "OK"
            # A second connection while the first is logged in: another process.
            b = imaplib.IMAP4("127.0.0.1", port)
            b.starttls(tls_ctx(cert))
            login_logout(b, user)
            assert a.noop()[0] == "OK"
            assert a.logout()[0] == "BYE"

        pwrap_retry(two_sessions)
    finally:
        stop(p)
    err = p.stderr.read().decode()
    spawned = re.findall(r"as PID (\d+)", err)
    assert len(spawned) >= 2 and len(set(spawned)) == len(spawned), err


def test_imaps_service_under_socket_activate(setup, user, cert):
    conf, env = setup
    port = free_port()
    p = socket_activate(port, adapt(exec_start("imaps@.service"), conf), env)
    try:
        wait_listening(port, p)

        def session():
            c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_ctx(cert))
            assert "STARTTLS" not in c.capabilities and "AUTH=PLAIN" in c.capabilities
            login_logout(c, user)

        pwrap_retry(session)
    finally:
        stop(p)


def test_listening_socket_is_refused(setup):
    """A socket unit without Accept=yes hands over the listening socket: imapd says so."""
    conf, env = setup
    port = free_port()
    p = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}",
                          IMAPD, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_listening(port, p)
        # Without Accept=yes the activator starts imapd on the first connection (which
        # imapd's exit may reset).
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        except OSError:
            pass
        rc = p.wait(15)
    finally:
        stop(p)
    assert rc == 1
    assert "Accept=yes" in p.stderr.read().decode()


# --- openbsd-inetd ------------------------------------------------------------------------

def inetd_lines():
    with open(os.path.join(UNITS, "inetd.conf")) as f:
        lines = [ln.rstrip("\n") for ln in f if ln.strip() and not ln.startswith("#")]
    return {ln.split()[0]: ln for ln in lines}


def test_openbsd_inetd_runs_the_shipped_lines(tmp_path, setup, user, cert):
    inetd = shutil.which("inetd") or "/usr/sbin/inetd"
    if not os.path.exists(inetd):
        pytest.skip("openbsd-inetd missing (apt-get install openbsd-inetd)")
    conf, env = setup
    lines = inetd_lines()
    assert set(lines) == {"imap2", "imaps"}
    ports = {"imap2": free_port(), "imaps": free_port()}
    out = []
    for service, line in lines.items():
        f = line.split()
        assert f[1:5] == ["stream", "tcp", f[3], "root"] and f[3].startswith("nowait")
        assert f[5] == SHIPPED_BIN
        # Same fields, with a loopback address and port, the built binary and a config.
        f[0] = f"127.0.0.1:{ports[service]}"
        f[5] = IMAPD
        out.append("\t".join(f + ["-c", conf]))
    inetd_conf = tmp_path / "inetd.conf"
    inetd_conf.write_text("\n".join(out) + "\n")
    # -d: stay in the foreground; -E: keep the environment, which carries pam_wrapper.
    p = subprocess.Popen([inetd, "-d", "-E", str(inetd_conf)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_listening(ports["imap2"], p)
        wait_listening(ports["imaps"], p)
        pwrap_retry(lambda: starttls_session(ports["imap2"], user, cert))
        pwrap_retry(lambda: imaps_session(ports["imaps"], user, cert))
    finally:
        stop(p)


# --- xinetd -------------------------------------------------------------------------------

def find_xinetd(tmp_path):
    x = shutil.which("xinetd")
    if x:
        return x
    # openbsd-inetd and xinetd conflict as packages: unpack xinetd's binary from its .deb,
    # which tests/deps.sh fetches into /var/cache/imapd-tests (apt-get download xinetd).
    for d in ("/var/cache/imapd-tests", "/var/cache/apt/archives", os.path.join(ROOT, "build")):
        if os.path.isdir(d):
            for n in sorted(os.listdir(d)):
                if n.startswith("xinetd_") and n.endswith(".deb"):
                    dest = tmp_path / "xinetd-deb"
                    subprocess.run(["dpkg-deb", "-x", os.path.join(d, n), str(dest)],
                                   check=True)
                    b = dest / "usr" / "sbin" / "xinetd"
                    if b.exists():
                        return str(b)
    return None


def test_xinetd_runs_the_shipped_file(tmp_path, setup, user, cert):
    xinetd = find_xinetd(tmp_path)
    if xinetd is None:
        pytest.skip("no xinetd binary nor .deb (run tests/deps.sh check as root)")
    conf, env = setup
    with open(os.path.join(UNITS, "xinetd.d", "imapd")) as f:
        text = f.read()
    ports = {"imap2": free_port(), "imaps": free_port()}
    for service, port in ports.items():
        default = "143" if service == "imap2" else "993"
        block_re = re.compile(r"(service %s\s*\{.*?\})" % service, re.S)
        block = block_re.search(text).group(1)
        nb = block.replace(f"port\t\t= {default}", f"port\t\t= {port}")
        nb = nb.replace(SHIPPED_BIN, IMAPD)
        nb = nb.replace("\tflags\t\t= IPv6\n", "\tbind\t\t= 127.0.0.1\n")
        if "server_args" in nb:
            nb = re.sub(r"(server_args\s*=.*)", r"\1 -c " + conf, nb)
        else:
            nb = nb.replace(f"\tserver\t\t= {IMAPD}\n",
                            f"\tserver\t\t= {IMAPD}\n\tserver_args\t= -c {conf}\n")
        passenv = " ".join(env)
        nb = nb.replace("\tdisable", f"\tpassenv\t\t= {passenv}\n\tdisable")
        assert nb != block
        text = text.replace(block, nb)
    xconf = tmp_path / "xinetd.conf"
    xconf.write_text("defaults\n{\n}\n" + text)
    p = subprocess.Popen([xinetd, "-dontfork", "-f", str(xconf), "-pidfile",
                          str(tmp_path / "xinetd.pid")], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_listening(ports["imap2"], p)
        wait_listening(ports["imaps"], p)
        pwrap_retry(lambda: starttls_session(ports["imap2"], user, cert))
        pwrap_retry(lambda: imaps_session(ports["imaps"], user, cert))
    finally:
        stop(p)
