"""offlineimap against imapd on a loopback TCP port: a two-way sync with a local Maildir.
Mail and flags come down, local flag changes and a message written locally go up (APPEND),
and the mbox files are read back."""
import os

import clients_util
from clients_util import (build_mbox, crlf_to_lf, fixture, imap_connect, need, read_mbox, run,
                          simple_message, subjects)

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port


def maildir(d):
    out = {}
    for sub in ("new", "cur"):
        p = os.path.join(d, sub)
        for n in sorted(os.listdir(p)) if os.path.isdir(p) else []:
            out[os.path.join(sub, n)] = open(os.path.join(p, n), "rb").read()
    return out


def test_offlineimap_two_way_sync(tcp, mailstore, tmp_path):
    need("offlineimap")
    inbox = [fixture(n) for n in ("plain-ascii.eml", "alternative.eml", "encoded-words.eml")]
    mailstore.write_inbox(build_mbox(inbox))
    work = mailstore.write_mailbox("Work", build_mbox([fixture("forward-rfc822.eml")]))
    local = tmp_path / "oi"
    local.mkdir()
    conf = tmp_path / "offlineimaprc"
    if tcp.preauth:
        # offlineimap cannot take a PREAUTH greeting over TCP, only through a tunnel.
        remote = f"preauthtunnel = {tcp.tunnel}"
    else:
        remote = (f"remotehost = {tcp.host}\nremoteport = {tcp.port}\n"
                  f"remoteuser = {tcp.login}\nremotepass = {tcp.password}\n"
                  "ssl = no\nstarttls = no")
    conf.write_text(f"""[general]
accounts = t
metadata = {tmp_path}/oi-meta
ui = quiet

[Account t]
localrepository = L
remoterepository = R

[Repository L]
type = Maildir
localfolders = {local}

[Repository R]
type = IMAP
{remote}
folderfilter = lambda f: f in ["INBOX", "Work"]
""")

    def sync():
        tcp.pam_retry(sync_once)

    def sync_once():
        r = run(["offlineimap", "-c", str(conf), "-o", "-u", "quiet"], timeout=90,
                env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        log = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 0 and "ERROR" not in log, log[-4000:]

    sync()
    for box, path in (("INBOX", mailstore.inbox), ("Work", work)):
        got = sorted(crlf_to_lf(b) for b in maildir(str(local / box)).values())
        assert got == sorted(m.visible() for m in read_mbox(path)), box

    # Locally: flag the first message and mark it seen, write a new message into Work.
    files = maildir(str(local / "INBOX"))
    first = [n for n, b in files.items() if b"Subject: Lunch on Thursday" in b][0]
    src = local / "INBOX" / first
    base = os.path.basename(first).split(":2,")[0]
    os.rename(src, local / "INBOX" / "cur" / (base + ":2,FS"))
    msg = simple_message("written offline", "Composed on the train.")
    (local / "Work" / "new" / "1772500000.local.1.host").write_bytes(msg)
    sync()
    stored = read_mbox(mailstore.inbox)
    assert [m.subject for m in stored] == subjects(inbox)
    assert [m.flags for m in stored] == [{"\\Flagged", "\\Seen"}, set(), set()]
    w = read_mbox(work)
    assert [m.subject for m in w] == subjects([fixture("forward-rfc822.eml")]) + [
        "written offline"]
    # offlineimap may add its own X-OfflineIMAP header to what it uploads; the rest is ours.
    up = b"".join(ln for ln in w[1].visible().splitlines(True)
                  if not ln.startswith(b"X-OfflineIMAP:"))
    assert up == msg

    # Deleted locally: gone from the server. Expunged on the server (another client): gone
    # from the Maildir. The rest stays as it was.
    files = maildir(str(local / "INBOX"))
    agenda = [n for n, b in files.items() if b"Subject: Agenda for the server" in b][0]
    os.unlink(local / "INBOX" / agenda)
    c = imap_connect(tcp)
    c.select("Work")
    typ, data = c.uid("STORE", "1", "+FLAGS.SILENT", "(\\Deleted)")
    assert typ == "OK", data
    assert c.expunge()[0] == "OK"
    c.logout()
    sync()
    assert [m.subject for m in read_mbox(mailstore.inbox)] == subjects(inbox[:1] + inbox[2:])
    assert [m.subject for m in read_mbox(work)] == ["written offline"]
    local_work = [b for b in maildir(str(local / "Work")).values()]
    assert len(local_work) == 1 and b"Subject: written offline" in local_work[0]
    assert len(maildir(str(local / "INBOX"))) == 2
