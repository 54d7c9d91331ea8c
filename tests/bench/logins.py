#!/usr/bin/python3
"""Sessions per second with LOGIN, imapd against Dovecot in the same run.

Both servers listen on 127.0.0.1 as a site runs them: imapd one process per connection
through systemd-socket-activate --inetd (as the shipped socket unit does), Dovecot its own
master with imap-login, auth and imap processes. Both check the password through PAM with
the same stack (pam_unix.so, the same throwaway user and its yescrypt password from
chpasswd), so each pays the same hashing. C clients at once loop: connect, greeting,
LOGIN, SELECT INBOX (a small mailbox), LOGOUT until the server closes. Reported per
server: sessions a second, LOGIN latency (p50, p99, sent to tagged OK), whole-session
latency, and every error. The PAM service file (/etc/pam.d/imapd-bench-PID) and the user
are removed at the end; the servers are stopped; nothing is left behind.

With --pam matrix both check the password with pam_matrix through pam_wrapper instead
(a plain comparison, no hashing), which leaves what the servers themselves spend on a
session; pam_wrapper's per-process directories (/tmp/pam.X, 36 names) are removed as the
processes that made them end.

Usage: tests/bench/logins.py [--clients 2,8] [--seconds 20] [--servers dovecot,imapd]
                             [--pam unix|matrix] [--imapd imapd/imapd]
                             [--markdown FILE] [--json FILE]
"""
import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imapharness  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, proc, timeout=15):
    deadline = time.time() + timeout
    want = "0100007F:%04X" % port
    while time.time() < deadline:
        with open("/proc/net/tcp") as f:
            if any(l.split()[1] == want and l.split()[3] == "0A" for l in f.readlines()[1:]):
                return
        if proc.poll() is not None:
            raise SystemExit("listener exited: %s" % proc.returncode)
        time.sleep(0.05)
    raise SystemExit("nothing listens on %d" % port)


SMALL_MBOX = "".join(
    "From a@example.org Mon Jan  5 01:02:%02d 2015\nFrom: a@example.org\nSubject: %d\n\n"
    "body %d\n\n" % (i, i, i) for i in range(10))


class Line:
    """A minimal IMAP client over a socket: lines only (the commands here get no literal)."""

    def __init__(self, port, timeout):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("server closed the connection")
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return l.rstrip(b"\r")

    def cmd(self, tag, text):
        self.s.sendall(tag + b" " + text + b"\r\n")
        while True:
            l = self.line()
            if l.startswith(tag + b" "):
                return l

    def close(self):
        try:
            while self.s.recv(65536):
                pass
        except OSError:
            pass
        self.s.close()


def client_loop(port, user, password, stop, out, timeout):
    login = b"LOGIN " + user.encode() + b" " + password.encode()
    while not stop.is_set():
        t0 = time.time()
        try:
            c = Line(port, timeout)
            g = c.line()
            if not g.startswith(b"* OK"):
                raise RuntimeError("greeting: %r" % g[:80])
            t1 = time.time()
            r = c.cmd(b"a", login)
            t2 = time.time()
            if not r.startswith(b"a OK"):
                raise RuntimeError("LOGIN: %r" % r[:80])
            r = c.cmd(b"b", b"SELECT INBOX")
            if not r.startswith(b"b OK"):
                raise RuntimeError("SELECT: %r" % r[:80])
            r = c.cmd(b"c", b"LOGOUT")
            if not r.startswith(b"c OK"):
                raise RuntimeError("LOGOUT: %r" % r[:80])
            c.close()
            out["ok"].append((t2 - t1, time.time() - t0))
        except Exception as e:  # noqa: BLE001 - every failure is counted and shown
            out["err"].append(str(e)[:120])
            time.sleep(0.05)


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def measure(port, user, password, clients, seconds, timeout):
    stop = threading.Event()
    outs = [{"ok": [], "err": []} for _ in range(clients)]
    th = [threading.Thread(target=client_loop, args=(port, user, password, stop, o, timeout))
          for o in outs]
    t0 = time.time()
    for t in th:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in th:
        t.join(timeout + 5)
    dt = time.time() - t0
    ok = [x for o in outs for x in o["ok"]]
    err = [x for o in outs for x in o["err"]]
    logins = [a for a, _ in ok]
    sess = [b for _, b in ok]
    return {"sessions": len(ok), "seconds": dt, "rate": len(ok) / dt,
            "login_p50": pct(logins, 50), "login_p99": pct(logins, 99),
            "session_p50": pct(sess, 50), "session_p99": pct(sess, 99),
            "errors": len(err), "error_examples": sorted(set(err))[:5]}


PAM_WRAPPER = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so"
PAM_MATRIX = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so"


class PamMatrix:
    """pam_matrix through pam_wrapper: a service directory, a password file, and a thread
    that removes the per-process directories of processes that have ended."""

    def __init__(self, top, service, user, password):
        self.dir = os.path.join(top, "pam")
        os.makedirs(os.path.join(self.dir, "services"), exist_ok=True)
        passdb = os.path.join(self.dir, "passdb")
        with open(passdb, "w") as f:
            f.write("%s:%s:%s\n" % (user, password, service))
        for svc in (service, "other"):
            with open(os.path.join(self.dir, "services", svc), "w") as f:
                for kind in ("auth", "account", "password", "session"):
                    f.write("%s required %s passdb=%s\n" % (kind, PAM_MATRIX, passdb))
        for root, dirs, files in os.walk(self.dir):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        os.chmod(self.dir, 0o755)
        self.env = {"LD_PRELOAD": PAM_WRAPPER, "PAM_WRAPPER": "1",
                    "PAM_WRAPPER_SERVICE_DIR": os.path.join(self.dir, "services")}
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.clean, daemon=True)
        self.t.start()

    def clean(self):
        import glob  # noqa: PLC0415
        while not self.stop_ev.wait(0.002):
            for d in glob.glob("/tmp/pam.?"):
                try:
                    with open(os.path.join(d, "pid")) as f:
                        pid = int(f.read().strip() or "0")
                    if pid <= 0:
                        raise ValueError("being made")
                    os.kill(pid, 0)
                    continue            # alive
                except PermissionError:
                    continue
                except ProcessLookupError:
                    pass                # its process has ended
                except (OSError, ValueError):
                    # no pid written yet: being made, unless it is old
                    try:
                        if time.time() - os.stat(d).st_mtime < 2:
                            continue
                    except OSError:
                        continue
                shutil.rmtree(d, ignore_errors=True)

    def stop(self):
        self.stop_ev.set()
        self.t.join()


class Imapd:
    def __init__(self, acct, area, binary, service, env=None):
        self.port = free_port()
        conf = os.path.join(area["base"], "imapd.conf")
        with open(conf, "w") as f:
            f.write("spool_dir = %s\nmail_dir = mail\nplaintext_auth = always\n"
                    % area["spool_dir"])
        os.chmod(conf, 0o644)
        e = dict(os.environ)
        e.update(env or {})
        argv = ["systemd-socket-activate", "--inetd", "-a", "-l", "127.0.0.1:%d" % self.port]
        for k in (env or {}):
            argv += ["-E", k]
        self.proc = subprocess.Popen(
            argv + [os.path.abspath(binary), "-c", conf, "--pam-service", service],
            env=e, stdout=subprocess.DEVNULL, stderr=open(os.path.join(area["base"], "imapd.log"),
                                                   "w"), start_new_session=True)
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Dovecot:
    def __init__(self, acct, area, service, env=None):
        self.port = free_port()
        top = area["base"]
        self.conf = os.path.join(top, "dovecot.conf")
        for d in ("run", "state"):
            os.makedirs(os.path.join(top, d), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("""base_dir = {top}/run
state_dir = {top}/state
log_path = {top}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = mbox:~/mail:INBOX={spool}/%u
first_valid_uid = {uid}
last_valid_uid = {uid}
passdb {{
  driver = pam
  args = {service}
}}
userdb {{
  driver = passwd
}}
protocol imap {{
  mail_max_userip_connections = 10000
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_limit = 1000
}}
service imap {{
  process_limit = 1000
}}
service auth {{
  unix_listener auth-userdb {{
    mode = 0666
  }}
}}
import_environment = TZ {imports}
""".format(top=top, spool=area["spool_dir"], uid=acct.uid, service=service, port=self.port,
           imports=" ".join(sorted(env or {}))))
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", self.conf], env=e,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc.poll() is None:
            subprocess.run(["/usr/bin/doveadm", "-c", self.conf, "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def yescrypt_ms(user, password):
    """One check of the user's hash, as pam_unix does it (for the report)."""
    import crypt  # noqa: PLC0415 - deprecated module, used only for this figure
    import spwd   # noqa: PLC0415
    h = spwd.getspnam(user).sp_pwdp
    best = 1e9
    for _ in range(5):
        t = time.time()
        crypt.crypt(password, h)
        best = min(best, time.time() - t)
    return best * 1000, h[:3]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="2,8")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--servers", default="dovecot,imapd")
    ap.add_argument("--imapd", default=os.path.join(ROOT, "imapd", "imapd"))
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--pam", choices=("unix", "matrix"), default="unix")
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    a = ap.parse_args()
    imapharness.remove_stale_accounts()
    acct = imapharness.Account(prefix="imapl")
    service = "imapd-bench-%d" % os.getpid()
    pam_file = "/etc/pam.d/" + service
    servers = []
    matrix = []

    def cleanup(*_):
        for s in servers:
            s.stop()
        for m in matrix:
            m.stop()
        try:
            os.unlink(pam_file)
        except FileNotFoundError:
            pass
        acct.cleanup()

    signal.signal(signal.SIGTERM, lambda *x: (cleanup(), sys.exit(1)))
    signal.signal(signal.SIGINT, lambda *x: (cleanup(), sys.exit(1)))
    results = {}
    try:
        password = "pw-" + secrets.token_hex(8)
        subprocess.run(["chpasswd"], input=("%s:%s\n" % (acct.user, password)).encode(),
                       check=True)
        with open(pam_file, "w") as f:
            f.write("auth required pam_unix.so\naccount required pam_unix.so\n"
                    "session optional pam_unix.so\n")
        # LOGIN takes the home from the password file: the user's own, made here
        home = os.path.join(acct.top, "home")
        os.makedirs(os.path.join(home, "mail"), exist_ok=True)
        for d in (home, os.path.join(home, "mail")):
            os.chown(d, acct.uid, acct.gid)
            os.chmod(d, 0o700)
        env = None
        if a.pam == "matrix":
            matrix.append(PamMatrix(acct.top, service, acct.user, password))
            env = matrix[0].env
            print("PAM: pam_matrix through pam_wrapper (no hashing)", flush=True)
        else:
            ms, kind = yescrypt_ms(acct.user, password)
            print("PAM: pam_unix; one check of the user's hash (%s): %.1f ms; pam_unix in "
                  "Debian 12 makes two per LOGIN" % (kind, ms), flush=True)
        for kindname in a.servers.split(","):
            area = acct.area(kindname)
            acct.install_inbox(area, None)
            with open(area["inbox"], "w") as f:
                f.write(SMALL_MBOX)
            os.chown(area["inbox"], acct.uid, acct.gid)
            os.chmod(area["inbox"], 0o600)
            srv = Imapd(acct, area, a.imapd, service, env) if kindname == "imapd" else \
                Dovecot(acct, area, service, env)
            servers.append(srv)
            for c in [int(x) for x in a.clients.split(",")]:
                print("%s: %d clients, %.0f s" % (kindname, c, a.seconds), flush=True)
                results[(kindname, c)] = measure(srv.port, acct.user, password, c, a.seconds,
                                                 a.timeout)
            srv.stop()
            servers.remove(srv)
    finally:
        cleanup()
    lines = ["| server | clients | sessions/s | LOGIN p50 | LOGIN p99 | session p50 | "
             "session p99 | errors |", "|---|---|---|---|---|---|---|---|"]
    for (k, c), r in sorted(results.items(), key=lambda x: (x[0][1], x[0][0])):
        lines.append("| %s | %d | %.1f | %.0f ms | %.0f ms | %.0f ms | %.0f ms | %d |" % (
            k, c, r["rate"], r["login_p50"] * 1000, r["login_p99"] * 1000,
            r["session_p50"] * 1000, r["session_p99"] * 1000, r["errors"]))
    for c in sorted({c for _, c in results}):
        if ("imapd", c) in results and ("dovecot", c) in results:
            d = results[("dovecot", c)]["rate"]
            lines.append("")
            lines.append("%d clients: imapd %.2fx Dovecot's sessions/s" % (
                c, results[("imapd", c)]["rate"] / d if d else float("inf")))
    for (k, c), r in results.items():
        for e in r["error_examples"]:
            lines.append("- %s, %d clients: %s" % (k, c, e))
    text = "\n".join(lines)
    print(text)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(text + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"%s/%d" % k: v for k, v in results.items()}, f, indent=1)
    bad = sum(r["errors"] for r in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
