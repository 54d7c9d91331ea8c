"""Fixtures that run the real imapd binary the way clients meet it.

- IMAPD: the binary under test ($IMAPD_BIN, else imapd/imapd).
- `pam`: a pam_wrapper + pam_matrix setup (no host password file is touched); `pam.add()`
  adds a user/password, `pam.env` is the environment imapd needs to use it.
- `user` (session scope, needs root): a throwaway Unix user with a home, a spool file
  directory and a mail directory under a temp dir, removed at the end. Its password for
  pam_matrix is `user.password`.
- `Server`: starts imapd on a socketpair (fd 0/1, as inetd does), returns the client
  socket; `server.imap()` wraps it in an imaplib.IMAP4; `server.stop()` waits for the
  process and checks it exited (no process is ever left behind).
- `raw(server)`: a line-oriented raw client for bad-input transcripts.
"""
import atexit
import grp
import imaplib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IMAPD = os.path.abspath(os.environ.get("IMAPD_BIN", os.path.join(ROOT, "imapd", "imapd")))
PAM_WRAPPER = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"
PAM_MATRIX = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"


def _is_sanitizer_build(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SANITIZED = _is_sanitizer_build(IMAPD)
_NODEEPBIND = None


def pam_preload():
    """LD_PRELOAD for pam_wrapper; under ASan with a shim that drops RTLD_DEEPBIND."""
    global _NODEEPBIND
    if not SANITIZED:
        return PAM_WRAPPER
    if _NODEEPBIND is None:
        d = tempfile.mkdtemp(prefix="imapd-shim-")
        atexit.register(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        _NODEEPBIND = os.path.join(d, "nodeepbind.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", _NODEEPBIND,
                        os.path.join(os.path.dirname(__file__), "nodeepbind.c"), "-ldl"],
                       check=True)
        os.chmod(_NODEEPBIND, 0o755)
    return _NODEEPBIND + ":" + PAM_WRAPPER


def sanitizer_env():
    """ASan must tolerate pam_wrapper being preloaded first."""
    return {
        "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "PAM_WRAPPER_DISABLE_DEEPBIND": "1",
    }


def clean_pam_wrapper_dirs():
    """pam_wrapper keeps a directory /tmp/pam.X per process, with only 36 names; a server
    that dropped privileges cannot remove its own. Remove those whose process is gone."""
    import glob
    for d in glob.glob("/tmp/pam.?"):
        try:
            with open(os.path.join(d, "pid")) as f:
                pid = int(f.read().strip() or "0")
            if pid > 0:
                os.kill(pid, 0)
                continue
        except PermissionError:
            continue        # alive, someone else's
        except (OSError, ValueError):
            pass
        shutil.rmtree(d, ignore_errors=True)


clean_pam_wrapper_dirs()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, proc=None, timeout=15):
    """Waits until a socket listens on 127.0.0.1:port, reading /proc/net/tcp rather than
    connecting: a probe connection makes an activator start a server process that exits at
    once, and pam_wrapper's per-process directories race when such a process starts next to
    the first real client's."""
    want = "0100007F:%04X" % port
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open("/proc/net/tcp") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[1] == want and fields[3] == "0A":
                    return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"listener exited early: {proc.returncode}")
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on port {port}")


class Pam:
    def __init__(self, d, service="imap"):
        clean_pam_wrapper_dirs()
        self.dir = d
        self.service = service
        self.passdb = os.path.join(d, "passdb")
        self.users = []
        os.makedirs(os.path.join(d, "services"), exist_ok=True)
        open(self.passdb, "w").close()
        os.chmod(d, 0o755)
        # "other" is PAM's fallback service; having it keeps pam_wrapper quiet.
        for svc in (service, "other"):
            with open(os.path.join(d, "services", svc), "w") as f:
                for kind in ("auth", "account", "password", "session"):
                    f.write(f"{kind} required {PAM_MATRIX} passdb={self.passdb}\n")
        self.env = {
            "LD_PRELOAD": pam_preload(),
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": os.path.join(d, "services"),
        }
        self.env.update(sanitizer_env())

    def add(self, name, password):
        self.users.append((name, password))
        with open(self.passdb, "w") as f:
            for n, p in self.users:
                f.write(f"{n}:{p}:{self.service}\n")


@pytest.fixture
def pam(tmp_path):
    return Pam(str(tmp_path / "pam"))


class UnixUser:
    pass


@pytest.fixture(scope="session")
def user():
    """A throwaway Unix user (root only): proves the privilege drop, owns the test mail."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a throwaway user")
    base = tempfile.mkdtemp(prefix="imapd-test-")
    os.chmod(base, 0o755)
    name = "imapdt" + secrets.token_hex(3)
    home = os.path.join(base, "home")
    subprocess.run(["useradd", "--no-create-home", "--home-dir", home, "--shell",
                    "/usr/sbin/nologin", "--user-group", name], check=True)
    try:
        pw = pwd.getpwnam(name)
        os.makedirs(home)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        spool = os.path.join(base, "spool")
        os.makedirs(spool)
        os.chmod(spool, 0o1777)
        u = UnixUser()
        u.name, u.uid, u.gid, u.home, u.spool_dir = name, pw.pw_uid, pw.pw_gid, home, spool
        u.password = "pw-" + secrets.token_hex(8)
        u.base = base
        yield u
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(base, ignore_errors=True)


class Server:
    """imapd on a socketpair, as inetd starts it."""

    def __init__(self, args=(), env=None, config=None, run_as=None, tmp=None):
        self.sock, child = socket.socketpair()
        self.conf_dir = None
        cmd = [IMAPD, "-d"]
        if config is not None:
            # Readable by a server that runs as the throwaway user, too (pytest's own
            # temp dirs are not), and removed by the factory afterwards.
            d = tempfile.mkdtemp(prefix="imapd-conf-")
            os.chmod(d, 0o755)
            self.conf_dir = d
            path = os.path.join(d, "imapd.conf")
            with open(path, "w") as f:
                for k, v in config.items():
                    f.write(f"{k} = {v}\n")
            os.chmod(path, 0o644)
            cmd += ["-c", path]
        else:
            cmd += ["-c", "/dev/null"]
        cmd += list(args)
        full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        full_env.update(sanitizer_env())
        if env:
            full_env.update(env)
        preexec = None
        if run_as is not None:
            uid, gid, home = run_as.uid, run_as.gid, run_as.home
            full_env.update({"HOME": home, "USER": run_as.name, "LOGNAME": run_as.name})

            def preexec():
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
        self.log_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=child, stdout=child, stderr=self.log_file,
                                     env=full_env, close_fds=True, preexec_fn=preexec)
        child.close()
        self.sock.settimeout(30)

    @property
    def pid(self):
        return self.proc.pid

    def imap(self):
        return SocketIMAP4(self.sock)

    def log(self):
        self.log_file.seek(0)
        return self.log_file.read().decode("utf-8", "replace")

    def stop(self, timeout=15):
        """Closes our end and waits; returns the exit code. Kills a process that hangs
        and fails the test then."""
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("imapd did not exit; log:\n" + self.log())

    def wait(self, timeout=15):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("imapd did not exit; log:\n" + self.log())


class SocketIMAP4(imaplib.IMAP4):
    """imaplib over an already connected socket."""

    def __init__(self, sock):
        self._given_sock = sock
        super().__init__("localhost", 0)

    def _create_socket(self, timeout=None):
        return self._given_sock


class Raw:
    """A raw line client: send bytes, read lines, for transcripts of bad input."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self, timeout=30):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; got " + repr(self.buf))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def until_tagged(self, tag, timeout=30):
        """Lines up to and including the one starting with tag."""
        out = []
        while True:
            ln = self.line(timeout)
            out.append(ln)
            if ln.startswith(tag + " "):
                return out

    def closed(self, timeout=10):
        """True when the server closes the connection (after any remaining lines)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True


@pytest.fixture
def server_factory(tmp_path):
    servers = []

    def make(*args, **kw):
        kw.setdefault("tmp", str(tmp_path))
        s = Server(*args, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        if s.conf_dir:
            shutil.rmtree(s.conf_dir, ignore_errors=True)
    clean_pam_wrapper_dirs()


def user_config(user, **extra):
    """imapd.conf settings for the throwaway user's spool and mail directory."""
    cfg = {"spool_dir": user.spool_dir, "mail_dir": "mail", "login_delay_ms": "0"}
    cfg.update(extra)
    return cfg


@pytest.fixture
def login_server(server_factory, pam, user):
    """A root-started imapd that the throwaway user can LOGIN to; returns the factory."""
    pam.add(user.name, user.password)

    def make(**extra):
        return server_factory(env=pam.env, config=user_config(user, **extra))
    return make


@pytest.fixture
def preauth_server(server_factory, user):
    """imapd --preauth running as the throwaway user (an ssh tunnel session)."""
    def make(**extra):
        return server_factory(args=["--preauth"], config=user_config(user, **extra),
                              run_as=user)
    return make


@pytest.fixture
def imap(login_server, user):
    """A logged-in imaplib client on a fresh root-started imapd."""
    srv = login_server()
    c = srv.imap()
    c.login(user.name, user.password)
    yield c
    try:
        c.logout()
    except Exception:
        pass
    srv.stop()


class MailStore:
    """Paths of the throwaway user's INBOX (spool file) and mail directory."""

    def __init__(self, user):
        self.user = user
        self.inbox = os.path.join(user.spool_dir, user.name)
        self.mail_dir = os.path.join(user.home, "mail")

    def write_inbox(self, data, mode=0o600):
        """Writes the spool file as the MDA would (owned by the user)."""
        if isinstance(data, str):
            data = data.encode()
        with open(self.inbox, "wb") as f:
            f.write(data)
        os.chown(self.inbox, self.user.uid, self.user.gid)
        os.chmod(self.inbox, mode)

    def write_mailbox(self, name, data):
        """Writes ~/mail/NAME (directories made as needed, owned by the user)."""
        if isinstance(data, str):
            data = data.encode()
        path = os.path.join(self.mail_dir, name)
        d = os.path.dirname(path)
        os.makedirs(d, exist_ok=True)
        p = self.mail_dir
        os.chown(p, self.user.uid, self.user.gid)
        for part in os.path.relpath(d, self.mail_dir).split("/"):
            if part != ".":
                p = os.path.join(p, part)
                os.chown(p, self.user.uid, self.user.gid)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, self.user.uid, self.user.gid)
        os.chmod(path, 0o600)
        return path

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()


@pytest.fixture
def mailstore(user):
    """The user's INBOX and mail directory, emptied (along with imapd's own state
    directory) before each test."""
    ms = MailStore(user)
    for p in (ms.inbox, ms.inbox + ".lock"):
        if os.path.exists(p):
            os.unlink(p)
    for d in (ms.mail_dir, os.path.join(user.home, ".imapd")):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(ms.mail_dir)
    os.chown(ms.mail_dir, user.uid, user.gid)
    os.chmod(ms.mail_dir, 0o700)
    return ms
