"""The throwaway account and the server processes of one stress run.

- Account (root only): a Unix user made for the run (GECOS marks it, so that a run that was
  interrupted hard is cleaned up by the next), a home, a spool directory whose file named
  after the user is the INBOX, and the configuration files of imapd, Dovecot, pam_wrapper
  and procmail.  cleanup() ends the user's processes (each by its id), removes the user and
  every file.
- Launcher: starts one server process per connection on a socketpair (fd 0/1, as inetd
  does): imapd --preauth as the user, imapd as root with LOGIN through pam_wrapper and
  pam_matrix, or Dovecot's imap preauthenticated.  Keeps every process it started so that
  kill_all() leaves none behind.
"""

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

MARKER = "imapd-stress throwaway"
DOVECOT_IMAP = "/usr/lib/dovecot/imap"
PAM_WRAPPER = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"
NODEEPBIND_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration",
                            "nodeepbind.c")


def is_sanitizer_build(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def login_env(imapd, workdir):
    """What a root-started imapd needs for pam_wrapper: under ASan, the runtime must come
    first, so a shim that drops RTLD_DEEPBIND is preloaded before pam_wrapper (as
    tests/integration/conftest.py does), and ASan is told to accept the order."""
    if not is_sanitizer_build(imapd):
        return {"LD_PRELOAD": PAM_WRAPPER}
    shim = os.path.join(workdir, "nodeepbind.so")
    if not os.path.exists(shim):
        subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", shim, NODEEPBIND_C, "-ldl"],
                       check=True)
        os.chmod(shim, 0o755)
    return {"LD_PRELOAD": shim + ":" + PAM_WRAPPER,
            "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=0:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
            "PAM_WRAPPER_DISABLE_DEEPBIND": "1"}
PAM_MATRIX = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"


def kill_uid(uid):
    """SIGKILL, each by its pid, the processes whose real uid is uid (the run's user)."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            os.kill(int(d), signal.SIGKILL)
                        break
        except (OSError, ValueError):
            pass


def _uid_has_processes(uid):
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/status" % d) as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            return True
                        break
        except (OSError, ValueError):
            pass
    return False


def remove_stale_accounts():
    """Users an earlier, interrupted run left behind: marked in GECOS with the pid of the
    run that made them, home in /tmp; removed only when that run is gone (several runs may
    go on at once).  A mark without a pid (older runs) counts as stale only when the user
    runs nothing and its directory is more than an hour old."""
    for pw in pwd.getpwall():
        if not pw.pw_gecos.startswith(MARKER) or not pw.pw_dir.startswith(
                os.path.join(tempfile.gettempdir(), "imapd-stress-")):
            continue
        rest = pw.pw_gecos[len(MARKER):].strip()
        top = os.path.dirname(pw.pw_dir)
        if rest.startswith("pid="):
            try:
                pid = int(rest[4:])
            except ValueError:
                continue
            try:
                os.kill(pid, 0)
                continue            # its run is alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        else:
            try:
                age = time.time() - os.stat(top).st_mtime
            except OSError:
                age = 1e9
            if _uid_has_processes(pw.pw_uid) or age < 3600:
                continue
        kill_uid(pw.pw_uid)
        subprocess.run(["userdel", pw.pw_name], stderr=subprocess.DEVNULL)
        shutil.rmtree(top, ignore_errors=True)


def clean_pam_wrapper_dirs():
    """pam_wrapper makes /tmp/pam.X per process (36 names); a server that dropped
    privileges cannot remove its own.  Remove those whose process is gone."""
    for d in glob.glob("/tmp/pam.?"):
        try:
            with open(os.path.join(d, "pid")) as f:
                pid = int(f.read().strip() or "0")
            if pid <= 0:
                raise ValueError("being made")
            os.kill(pid, 0)
            continue                    # alive
        except PermissionError:
            continue
        except ProcessLookupError:
            pass                        # its process has ended
        except (OSError, ValueError):
            # no pid in it yet: another server is making it right now (clients start
            # servers at once), unless it is old
            try:
                if time.time() - os.stat(d).st_mtime < 5:
                    continue
            except OSError:
                continue
        shutil.rmtree(d, ignore_errors=True)


class Account:
    def __init__(self, keep=False, condstore=False):
        if os.geteuid() != 0:
            raise SystemExit("stress.py must run as root: it creates a throwaway Unix user")
        remove_stale_accounts()
        self.keep = keep
        self.condstore = condstore
        self.top = tempfile.mkdtemp(prefix="imapd-stress-")
        os.chmod(self.top, 0o755)
        self.user = "imapst%05d" % (os.getpid() % 100000)
        self.home = os.path.join(self.top, "home")
        subprocess.run(["useradd", "-M", "-d", self.home, "-s", "/usr/sbin/nologin", "-c",
                        "%s pid=%d" % (MARKER, os.getpid()), "-U", self.user], check=True)
        self.alive = True
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.password = "pw-" + secrets.token_hex(8)
        self.spool_dir = os.path.join(self.top, "spool")
        self.mail_dir = os.path.join(self.home, "mail")
        for d in (self.home, self.spool_dir, self.mail_dir):
            os.mkdir(d)
            os.chown(d, self.uid, self.gid)
        os.chmod(self.home, 0o700)
        os.chmod(self.spool_dir, 0o755)
        self.inbox = os.path.join(self.spool_dir, self.user)
        self.logs = os.path.join(self.top, "logs")
        os.mkdir(self.logs)
        os.chmod(self.logs, 0o777)
        self._configs()

    def _configs(self):
        self.imapd_conf = os.path.join(self.top, "imapd.conf")
        with open(self.imapd_conf, "w") as f:
            f.write("spool_dir = %s\nmail_dir = mail\nlogin_delay_ms = 0\n" % self.spool_dir)
            if self.condstore:
                f.write("condstore = yes\n")     # CONDSTORE and QRESYNC (RFC 7162)
        os.chmod(self.imapd_conf, 0o644)
        self.dovecot_conf = os.path.join(self.top, "dovecot.conf")
        with open(self.dovecot_conf, "w") as f:
            # mbox_lazy_writes = no: flag changes go into the file at once, as they must when
            # a local mail reader shares the file (Dovecot's default delays them).
            f.write("mail_location = mbox:%s:INBOX=%s/%%u\n"
                    "log_path = %s/dovecot.log\n"
                    "ssl = no\n"
                    "protocols = imap\n"
                    "base_dir = %s/run\n"
                    "mbox_lazy_writes = no\n" % (self.mail_dir, self.spool_dir, self.logs,
                                                self.top))
        os.chmod(self.dovecot_conf, 0o644)
        pam = os.path.join(self.top, "pam")
        os.makedirs(os.path.join(pam, "services"))
        os.chmod(pam, 0o755)
        self.pam_services = os.path.join(pam, "services")
        passdb = os.path.join(pam, "passdb")
        with open(passdb, "w") as f:
            f.write("%s:%s:imap\n" % (self.user, self.password))
        os.chmod(passdb, 0o644)
        for svc in ("imap", "other"):
            with open(os.path.join(self.pam_services, svc), "w") as f:
                for kind in ("auth", "account", "password", "session"):
                    f.write("%s required %s passdb=%s\n" % (kind, PAM_MATRIX, passdb))
        self.procmailrc = os.path.join(self.top, "procmailrc")

    def write_inbox(self, data):
        with open(self.inbox, "wb") as f:
            f.write(data)
        os.chown(self.inbox, self.uid, self.gid)
        os.chmod(self.inbox, 0o600)

    def cleanup(self):
        if not self.alive:
            return
        self.alive = False
        kill_uid(self.uid)
        for _ in range(50):
            r = subprocess.run(["userdel", self.user], stderr=subprocess.PIPE)
            if r.returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(["groupdel", self.user], stderr=subprocess.DEVNULL)
        if not self.keep:
            shutil.rmtree(self.top, ignore_errors=True)
        clean_pam_wrapper_dirs()


class Proc:
    """One server process and our end of its socketpair."""

    def __init__(self, popen, sock, kind):
        self.p = popen
        self.sock = sock
        self.kind = kind
        self.pid = popen.pid
        self.storm_killed = False
        self.harness_killed = False
        self.in_command = False


class Launcher:
    def __init__(self, acct, server, imapd, debug=False):
        self.acct = acct
        self.debug = debug
        self.server = server        # "imapd" or "dovecot"
        self.imapd = imapd
        self.lock = threading.Lock()
        self.procs = set()
        self.closing = False
        self.errlog = open(os.path.join(acct.logs, "server.stderr"), "ab")
        self.login_env = None

    def _user_env(self):
        a = self.acct
        return {"USER": a.user, "LOGNAME": a.user, "HOME": a.home,
                "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C"}

    def start(self, login=False):
        a = self.acct
        ours, theirs = socket.socketpair()
        try:
            if self.server == "dovecot":
                argv = [DOVECOT_IMAP, "-c", a.dovecot_conf]
                kw = dict(user=a.uid, group=a.gid, extra_groups=[], env=self._user_env(),
                          cwd=a.home)
            elif login:
                clean_pam_wrapper_dirs()
                argv = [self.imapd] + (["-d"] if self.debug else []) + ["-c", a.imapd_conf]
                env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C",
                       "PAM_WRAPPER": "1", "PAM_WRAPPER_SERVICE_DIR": a.pam_services}
                if self.login_env is None:
                    self.login_env = login_env(self.imapd, a.logs)
                env.update(self.login_env)
                kw = dict(env=env, cwd="/")
            else:
                argv = [self.imapd] + (["-d"] if self.debug else []) + \
                    ["--preauth", "-c", a.imapd_conf]
                kw = dict(user=a.uid, group=a.gid, extra_groups=[], env=self._user_env(),
                          cwd=a.home)
            with self.lock:
                if self.closing:
                    raise RuntimeError("launcher is closing")
                p = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=self.errlog,
                                     close_fds=True, start_new_session=True, **kw)
                proc = Proc(p, ours, "login" if login else self.server)
                self.procs.add(proc)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return proc

    def reap(self, proc, timeout=10.0):
        """Waits for proc to exit (killing it after timeout).  Returns (status, hung)."""
        hung = False
        try:
            proc.p.wait(timeout)
        except subprocess.TimeoutExpired:
            hung = True
            self.kill(proc)
            proc.p.wait()
        with self.lock:
            self.procs.discard(proc)
        try:
            proc.sock.close()
        except OSError:
            pass
        return proc.p.returncode, hung

    def kill(self, proc):
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except OSError:
            pass

    def live(self):
        with self.lock:
            return [p for p in self.procs if p.p.poll() is None]

    def kill_live(self):
        """SIGKILL every server running now (their sessions are void); new ones may start."""
        with self.lock:
            procs = list(self.procs)
        for p in procs:
            p.harness_killed = True
            self.kill(p)

    def kill_all(self):
        with self.lock:
            self.closing = True
            procs = list(self.procs)
        for p in procs:
            p.harness_killed = True
            self.kill(p)
        for p in procs:
            try:
                p.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
            try:
                p.sock.close()
            except OSError:
                pass
        with self.lock:
            self.procs.clear()
