"""Real clients over TLS: mbsync and mutt through STARTTLS on a server that refuses
plaintext login, and mbsync and offlineimap with TLS from the first byte (imaps, --tls); the
clients trust exactly the test's certificate, so a handshake that is not right fails."""
import os
import re

import pytest

import clients_util
from clients_util import (CORPUS, TcpServer, build_mbox, crlf_to_lf, fixture, need, read_mbox,
                          run, show_debug, start_mutt)

tls_cert = clients_util.tls_cert  # the fixture: a self-signed certificate for 127.0.0.1


@pytest.fixture(params=["starttls", "imaps"])
def tls_srv(request, pam, user, mailstore, tmp_path, tls_cert):
    if os.environ.get("IMAPD_CLIENTS_SERVER", "imapd") != "imapd":
        pytest.skip("TLS is tested against imapd only")
    os.chmod(tmp_path, 0o755)
    args = ["--tls"] if request.param == "imaps" else []
    srv = TcpServer(pam, user, str(tmp_path), args=args, tls_cert=tls_cert.cert,
                    tls_key=tls_cert.key, plaintext_auth="never")
    srv.mode = request.param
    yield srv
    srv.stop()
    print("--- server log (tail) ---\n" + srv.log()[-6000:])


def test_mbsync_over_tls(tls_srv, mailstore, tmp_path, tls_cert):
    need("mbsync")
    inbox = [fixture(n) for n in CORPUS]
    mailstore.write_inbox(build_mbox(inbox))
    local = tmp_path / "Mail"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount srv
Host {tls_srv.host}
Port {tls_srv.port}
User {tls_srv.login}
Pass {tls_srv.password}
SSLType {"STARTTLS" if tls_srv.mode == "starttls" else "IMAPS"}
CertificateFile {tls_cert.cert}
AuthMechs LOGIN

IMAPStore far
Account srv

MaildirStore near
Path {local}/
Inbox {local}/INBOX

Channel ch
Far :far:
Near :near:
Patterns INBOX
Create Near
SyncState *
""")

    def step():
        r = run(["mbsync", "-c", str(rc), "-Dn", "ch"])
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 0, out[-4000:]
        return out
    trace = tls_srv.pam_retry(step)
    if tls_srv.mode == "starttls":
        assert re.search(r">>> \d+ STARTTLS", trace), trace[-3000:]
    got = []
    for sub in ("new", "cur"):
        for n in sorted(os.listdir(local / "INBOX" / sub)):
            b = crlf_to_lf((local / "INBOX" / sub / n).read_bytes())
            got.append(re.sub(rb"(?m)^X-TUID: \S+\n", b"", b, count=1))
    assert sorted(got) == sorted(m.visible() for m in read_mbox(mailstore.inbox))


def test_offlineimap_over_tls(tls_srv, mailstore, tmp_path, tls_cert):
    need("offlineimap")
    if tls_srv.mode != "imaps":
        pytest.skip("offlineimap's STARTTLS is covered by mbsync and mutt")
    inbox = [fixture(n) for n in CORPUS[:3]]
    mailstore.write_inbox(build_mbox(inbox))
    local = tmp_path / "oi"
    local.mkdir()
    conf = tmp_path / "offlineimaprc"
    conf.write_text(f"""[general]
accounts = t
metadata = {tmp_path}/oi-meta

[Account t]
localrepository = L
remoterepository = R

[Repository L]
type = Maildir
localfolders = {local}

[Repository R]
type = IMAP
remotehost = {tls_srv.host}
remoteport = {tls_srv.port}
remoteuser = {tls_srv.login}
remotepass = {tls_srv.password}
ssl = yes
sslcacertfile = {tls_cert.cert}
folderfilter = lambda f: f == "INBOX"
""")

    def step():
        r = run(["offlineimap", "-c", str(conf), "-o", "-u", "quiet"], timeout=90,
                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        log = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 0 and "ERROR" not in log, log[-4000:]
    tls_srv.pam_retry(step)
    got = sorted(crlf_to_lf(p.read_bytes()) for sub in ("new", "cur")
                 for p in (local / "INBOX" / sub).iterdir())
    assert got == sorted(m.visible() for m in read_mbox(mailstore.inbox))


def test_mutt_over_tls(tls_srv, mailstore, tmp_path, tls_cert):
    """mutt with TLS required (ssl_force_tls): STARTTLS on the IMAP port or imaps://; it
    trusts the test certificate through certificate_file, reads a message, deletes one."""
    inbox = [fixture(n) for n in CORPUS[:3]]
    mailstore.write_inbox(build_mbox(inbox))
    extra = (f"set ssl_force_tls=yes\nset ssl_starttls=yes\n"
             f"set certificate_file=\"{tls_cert.cert}\"\nset ssl_verify_host=yes")
    scheme = "imaps" if tls_srv.mode == "imaps" else "imap"
    t, index, home = start_mutt(tls_srv, tmp_path, "Grüße aus Köln", extra=extra,
                                scheme=scheme)
    try:
        t.keys("2", "Enter")
        t.keys("Enter")
        t.wait_for("2. Move the mail spool")
        t.keys("q")
        t.wait_for("Grüße aus Köln")
        t.keys("1", "Enter", "d")
        t.wait_line("Lunch on Thursday", "D")
        t.keys("$")
        t.wait_gone("Lunch on Thursday")
        t.keys("q")
        t.wait_exit()
    except AssertionError:
        show_debug(home)
        raise
    finally:
        t.close()
    dbg = (home / ".muttdebug0").read_text(errors="replace")
    if tls_srv.mode == "starttls":
        assert "STARTTLS" in dbg
    stored = read_mbox(mailstore.inbox)
    assert len(stored) == 2 and stored[0].flags == {"\\Seen"} and stored[1].flags == set()
