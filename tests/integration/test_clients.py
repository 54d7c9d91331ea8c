"""curl against imapd on a loopback TCP port: LIST, a message by UID and a section of one,
SEARCH through the URL and through -X, STORE and EXPUNGE through -X, APPEND by upload; the
tests compare what curl receives with the mbox file and read the file back after changes."""
import base64
import os
import random

import clients_util
from clients_util import (CORPUS, FIXTURES, build_mbox, crlf_to_lf, fixture, need, read_mbox, run,
                          simple_message, subjects)

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port


def curl(tcp, url, *args):
    need("curl")
    cmd = ["curl", "-sS", "--max-time", "30", url] + list(args)
    if not tcp.preauth:
        cmd += ["-u", f"{tcp.login}:{tcp.password}"]

    def step():
        r = run(cmd)
        assert r.returncode != 67, r.stderr     # 67: login denied (or SELECT refused)
        return r
    return tcp.pam_retry(step)


def test_curl_list(tcp, mailstore):
    mailstore.write_inbox(build_mbox([fixture("plain-ascii.eml")]))
    mailstore.write_mailbox("Work", build_mbox([fixture("alternative.eml")]))
    mailstore.write_mailbox("lists/debian", b"")
    r = curl(tcp, tcp.url())
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    names = {}
    for ln in out.splitlines():
        assert ln.startswith("* LIST ("), out
        attrs, _, rest = ln[len("* LIST ("):].partition(")")
        name = rest.split(None, 1)[1].strip('"')
        names[name] = attrs.split()
    assert set(names) == {"INBOX", "Work", "lists", "lists/debian"}, out
    assert "\\Noselect" in names["lists"] or "\\NoSelect" in names["lists"], out


def test_curl_fetch_by_uid_matches_the_mbox(tcp, mailstore):
    mailstore.write_inbox(build_mbox([fixture(n) for n in CORPUS]))
    for uid in range(1, len(CORPUS) + 1):
        r = curl(tcp, tcp.url(f"INBOX;UID={uid}"))
        assert r.returncode == 0, (uid, r.stderr)
        stored = read_mbox(mailstore.inbox)
        assert len(stored) == len(CORPUS)
        assert crlf_to_lf(r.stdout) == stored[uid - 1].visible(), uid
        assert b"\r\n" in r.stdout and b"\n" not in r.stdout.replace(b"\r\n", b"")
    # A section: the text part of the multipart/alternative message.
    r = curl(tcp, tcp.url("INBOX;UID=2/;SECTION=1"))
    assert r.returncode == 0, r.stderr
    assert b"Content-Type" not in r.stdout and r.stdout.strip(), r.stdout


def test_curl_search(tcp, mailstore):
    mailstore.write_inbox(build_mbox([fixture(n) for n in CORPUS]))
    r = curl(tcp, tcp.url("INBOX?SUBJECT%20lunch"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["*", "SEARCH", "1"], r.stdout
    r = curl(tcp, tcp.url("INBOX"), "-X", 'UID SEARCH BODY "nothing special"')
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["*", "SEARCH", "4"], r.stdout
    r = curl(tcp, tcp.url("INBOX"), "-X", "SEARCH NOT FROM alice")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["*", "SEARCH", "2", "3", "4", "5"], r.stdout


def test_curl_store_and_expunge_reach_the_file(tcp, mailstore):
    mailstore.write_inbox(build_mbox([fixture(n) for n in CORPUS]))
    r = curl(tcp, tcp.url("INBOX"), "-X", "UID STORE 2 +FLAGS (\\Flagged \\Seen)")
    assert r.returncode == 0, r.stderr
    assert "FLAGS" in r.stdout.decode(), r.stdout
    stored = read_mbox(mailstore.inbox)
    assert stored[1].flags == {"\\Flagged", "\\Seen"}
    assert [m.flags for i, m in enumerate(stored) if i != 1] == [set()] * 4
    r = curl(tcp, tcp.url("INBOX"), "-X", "UID STORE 3 +FLAGS.SILENT (\\Deleted)")
    assert r.returncode == 0, r.stderr
    r = curl(tcp, tcp.url("INBOX"), "-X", "EXPUNGE")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["*", "3", "EXPUNGE"], r.stdout
    stored = read_mbox(mailstore.inbox)
    want = [fixture(n) for i, n in enumerate(CORPUS) if i != 2]
    assert [m.subject for m in stored] == subjects(want)
    assert stored[1].flags == {"\\Flagged", "\\Seen"}


def test_curl_append(tcp, mailstore, tmp_path):
    mailstore.write_mailbox("Work", build_mbox([fixture("plain-ascii.eml")]))
    msg = simple_message("uploaded with curl", "A body line.\n\nFrom the second paragraph.")
    up = tmp_path / "up.eml"
    up.write_bytes(msg.replace(b"\n", b"\r\n"))
    r = curl(tcp, tcp.url("Work"), "-T", str(up))
    assert r.returncode == 0, r.stderr
    stored = read_mbox(os.path.join(mailstore.mail_dir, "Work"))
    assert [m.subject for m in stored] == ["Lunch on Thursday", "uploaded with curl"]
    if tcp.kind == "imapd":
        # The body line that begins with "From " is quoted in the file (mboxo, as Debian's
        # MDAs write it), so no mail reader splits the message there.
        assert b"\n>From the second paragraph." in stored[1].body
    r = curl(tcp, tcp.url("Work;UID=2"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == msg.replace(b"\n", b"\r\n") or \
        crlf_to_lf(r.stdout) == stored[1].visible()


def test_curl_large_message_round_trip(tcp, mailstore, tmp_path):
    """A 6 MB message (an attachment's worth of base64) goes up with APPEND and comes back
    byte for byte."""
    mailstore.write_mailbox("Work", b"")
    body = base64.encodebytes(random.Random(7).randbytes(6 * 1024 * 1024)).decode()
    msg = simple_message("big attachment", body)
    up = tmp_path / "up.eml"
    up.write_bytes(msg.replace(b"\n", b"\r\n"))
    r = curl(tcp, tcp.url("Work"), "-T", str(up))
    assert r.returncode == 0, r.stderr
    stored = read_mbox(os.path.join(mailstore.mail_dir, "Work"))
    assert len(stored) == 1 and stored[0].visible() == msg
    r = curl(tcp, tcp.url("Work;UID=1"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == msg.replace(b"\n", b"\r\n")


def test_curl_fetches_every_fixture_as_stored(tcp, mailstore):
    """Every message fixture (MIME variety, CRLF and mixed line ends, 8-bit headers, From_
    lines in bodies) through curl: CRLF line ends on the wire, and the message the mbox holds.
    header-only.eml is left out: imapd reads the blank line that ends its mbox entry as the end
    of its header (BODY[] ends in an empty line), Dovecot as the mbox separator."""
    names = sorted(n for n in os.listdir(FIXTURES)
                   if n.endswith(".eml") and n != "header-only.eml")
    mailstore.write_inbox(build_mbox([fixture(n) for n in names]))
    stored = read_mbox(mailstore.inbox)
    assert len(stored) == len(names)
    for uid, name in enumerate(names, 1):
        r = curl(tcp, tcp.url(f"INBOX;UID={uid}"))
        assert r.returncode == 0, (name, r.stderr)
        assert b"\n" not in r.stdout.replace(b"\r\n", b""), name
        assert crlf_to_lf(r.stdout) == crlf_to_lf(stored[uid - 1].visible()), name


def test_curl_international_mailbox_names(tcp, mailstore, tmp_path):
    """Names are modified UTF-7 on the wire (RFC 3501 5.1.3) and on disk, as UW-IMAP and
    Dovecot store them: a folder created by a client shows up as such a file, and mail
    appended to it lands there."""
    mailstore.write_inbox(b"")
    r = curl(tcp, tcp.url(), "-X", 'CREATE "Entw&APw-rfe"')
    assert r.returncode == 0, r.stderr
    assert os.path.isfile(os.path.join(mailstore.mail_dir, "Entw&APw-rfe"))
    mailstore.write_mailbox("&ZeVnLIqe-", build_mbox([fixture("plain-ascii.eml")]))
    r = curl(tcp, tcp.url())
    assert r.returncode == 0, r.stderr
    listed = r.stdout.decode()
    assert "Entw&APw-rfe" in listed and "&ZeVnLIqe-" in listed, listed
    up = tmp_path / "up.eml"
    up.write_bytes(simple_message("draft", "Noch nicht fertig.").replace(b"\n", b"\r\n"))
    r = curl(tcp, tcp.url("Entw%26APw-rfe"), "-T", str(up))
    assert r.returncode == 0, r.stderr
    assert [m.subject for m in read_mbox(os.path.join(mailstore.mail_dir, "Entw&APw-rfe"))] \
        == ["draft"]
    r = curl(tcp, tcp.url("%26ZeVnLIqe-;UID=1"))
    assert r.returncode == 0, r.stderr
    assert b"Subject: Lunch on Thursday\r\n" in r.stdout
