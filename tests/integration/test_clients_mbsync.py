"""mbsync (isync) against imapd on a loopback TCP port: a full sync of INBOX and a second
mailbox to a local Maildir, an incremental run that fetches only newly delivered mail, and local
flag changes and deletions that reach the mbox file."""
import json
import os
import re
import sys

import clients_util
from clients_util import (CORPUS, build_mbox, crlf_to_lf, fixture, need, read_mbox, run,
                          simple_message, subjects)

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port

# --- mbsync (isync) --------------------------------------------------------------------------

def maildir_files(d):
    out = {}
    for sub in ("cur", "new"):
        p = os.path.join(d, sub)
        if os.path.isdir(p):
            for n in sorted(os.listdir(p)):
                out[os.path.join(sub, n)] = open(os.path.join(p, n), "rb").read()
    return out


def maildir_uid(name):
    m = re.search(r",U=(\d+)", name)
    return int(m.group(1)) if m else None


class Mbsync:
    def __init__(self, tcp, tmp, expunge="Both"):
        need("mbsync")
        self.tcp = tcp
        self.local = os.path.join(tmp, "Mail")
        os.makedirs(self.local)
        self.rc = os.path.join(tmp, "mbsyncrc")
        with open(self.rc, "w") as f:
            f.write(f"""IMAPAccount srv
Host {tcp.host}
Port {tcp.port}
User {tcp.login}
Pass {tcp.password}
SSLType None
AuthMechs LOGIN

IMAPStore far
Account srv

MaildirStore near
Path {self.local}/
Inbox {self.local}/INBOX
SubFolders Verbatim

Channel ch
Far :far:
Near :near:
Patterns INBOX Work
Create Near
Expunge {expunge}
SyncState *
""")

    def run(self):
        def step():
            r = run(["mbsync", "-c", self.rc, "-Dn", "ch"], timeout=60)
            assert r.returncode == 0, "mbsync failed:\n" + \
                r.stdout.decode(errors="replace")[-3000:] + r.stderr.decode(errors="replace")
            return r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        return self.tcp.pam_retry(step)

    def box(self, name):
        return os.path.join(self.local, name)


def body_fetches(trace):
    """UIDs whose full message mbsync fetched, from its network trace."""
    uids = []
    for m in re.finditer(r">>> \d+ UID FETCH ([0-9:,]+) \(BODY\.PEEK\[\]\)", trace):
        uids.append(m.group(1))
    return uids


def test_mbsync_full_sync_new_mail_and_flags_back(tcp, mailstore, tmp_path):
    inbox = [fixture(n) for n in CORPUS]
    mailstore.write_inbox(build_mbox(inbox))
    work = mailstore.write_mailbox("Work", build_mbox(
        [fixture("forward-rfc822.eml"), fixture("qp-latin1.eml")]))
    sync = Mbsync(tcp, str(tmp_path))
    trace = sync.run()

    # Everything arrived, byte for byte as the mbox holds it (mbsync stores LF line ends).
    for box, path in (("INBOX", mailstore.inbox), ("Work", work)):
        got = maildir_files(sync.box(box))
        stored = read_mbox(path)
        assert len(got) == len(stored), (box, list(got), trace[-2000:])
        # mbsync adds its own X-TUID header to what it stores; keyed by the server's UID.
        far = sync_state(sync.box(box))[1]
        by_uid = {far[maildir_uid(n)]: re.sub(rb"(?m)^X-TUID: \S+\n", b"", crlf_to_lf(b),
                                              count=1)
                  for n, b in got.items()}
        assert sorted(by_uid) == list(range(1, len(stored) + 1)), list(got)
        for i, m in enumerate(stored):
            assert by_uid[i + 1] == m.visible(), (box, i + 1)

    # New mail delivered to the spool: the next run fetches that message and nothing else.
    with open(mailstore.inbox, "ab") as f:
        f.write(build_mbox([simple_message("arrived later", "Fresh news.")], t0=1772500000))
    before = maildir_files(sync.box("INBOX"))
    trace = sync.run()
    after = maildir_files(sync.box("INBOX"))
    new = set(after) - set(before)
    assert len(new) == 1 and set(before) <= set(after), (sorted(before), sorted(after))
    newname = new.pop()
    assert b"Subject: arrived later\n" in after[newname]
    assert sync_state(sync.box("INBOX"))[1][maildir_uid(newname)] == 6
    assert body_fetches(trace) == ["6"], trace[-3000:]

    # Local flag changes go back to the server: message 1 flagged and seen, message 2 trashed
    # (Expunge Both: deleted and expunged on the server), message 3 replied to.
    far = sync_state(sync.box("INBOX"))[1]
    names = {far[maildir_uid(n)]: n for n in after}
    for uid, fl in ((1, "FS"), (2, "ST"), (3, "RS")):
        old = os.path.join(sync.box("INBOX"), names[uid])
        base = os.path.basename(old).split(":2,")[0]
        os.rename(old, os.path.join(sync.box("INBOX"), "cur", base + ":2," + fl))
    sync.run()
    stored = read_mbox(mailstore.inbox)
    assert [m.subject for m in stored] == subjects(inbox[:1] + inbox[2:]) + ["arrived later"]
    assert [m.flags for m in stored] == [
        {"\\Flagged", "\\Seen"}, {"\\Answered", "\\Seen"}, set(), set(), set()]
    assert len(maildir_files(sync.box("INBOX"))) == 5
    # A third run has nothing to do: no message is fetched again.
    trace = sync.run()
    assert body_fetches(trace) == [], trace[-3000:]


def test_mbsync_uploads_local_mail(tcp, mailstore, tmp_path):
    """A message written into the local Maildir (as a mail reader saves a sent message) goes
    up with APPEND, flags and all, and the server's UID for it comes back to the Maildir."""
    work = mailstore.write_mailbox("Work", build_mbox([fixture("plain-ascii.eml")]))
    mailstore.write_inbox(b"")
    sync = Mbsync(tcp, str(tmp_path))
    sync.run()
    assert len(maildir_files(sync.box("Work"))) == 1
    msg = simple_message("saved locally", "Written on the laptop.\n\nFrom there on, sent.")
    with open(os.path.join(sync.box("Work"), "cur", "1772500000.1_1.laptop:2,FS"), "wb") as f:
        f.write(msg)
    trace = sync.run()
    assert re.search(r">>> \d+ APPEND ", trace), trace[-3000:]
    stored = read_mbox(work)
    assert [m.subject for m in stored] == ["Lunch on Thursday", "saved locally"]
    assert stored[1].flags == {"\\Flagged", "\\Seen"}
    # mbsync may add its X-TUID header to find the message again; the rest is ours, with the
    # body line that begins with "From " quoted in the file (mboxo, as imapd writes it).
    up = re.sub(rb"(?m)^X-TUID: \S+\n", b"", stored[1].visible(), count=1)
    if tcp.kind == "imapd":
        msg = msg.replace(b"\nFrom there on", b"\n>From there on")
    assert up == msg
    names = list(maildir_files(sync.box("Work")))
    far = sync_state(sync.box("Work"))[1]
    assert sorted(far[maildir_uid(n)] for n in names) == [1, 2], names
    # Nothing to do the next time.
    trace = sync.run()
    assert not re.search(r">>> \d+ APPEND ", trace) and body_fetches(trace) == [], trace[-3000:]



GEN = os.path.join(os.path.dirname(__file__), "..", "bench", "gen-mbox.py")
FOREIGN = os.path.join(os.path.dirname(__file__), "..", "fixtures", "mbox-foreign")


def sync_state(boxdir):
    """mbsync's record for a box: the server's UIDVALIDITY and {local UID: server UID}."""
    uidv, pairs = None, {}
    with open(os.path.join(boxdir, ".mbsyncstate")) as f:
        for ln in f:
            w = ln.split()
            if len(w) == 2 and w[0] == "FarUidValidity":
                uidv = int(w[1])
            elif len(w) >= 2 and w[0].isdigit():
                pairs[int(w[1])] = int(w[0])
    return uidv, pairs


def maildir_flags(name):
    return set(name.split(":2,", 1)[1]) if ":2," in name else set()


def test_mbsync_keeps_uids_and_flags_of_mboxes_other_servers_wrote(tcp, mailstore, tmp_path):
    """A site switching from UW-IMAP or Dovecot: a client's Maildir copy shows the UIDs and
    flags those servers recorded (tests/fixtures/mbox-foreign/README.md lists them); the
    internal pseudo message and the metadata headers never reach the client."""
    with open(os.path.join(FOREIGN, "uw-imap.mbox"), "rb") as f:
        mailstore.write_inbox(f.read())
    with open(os.path.join(FOREIGN, "dovecot.mbox"), "rb") as f:
        work = mailstore.write_mailbox("Work", f.read())
    sync = Mbsync(tcp, str(tmp_path), expunge="None")
    sync.run()
    # Maildir flags: D draft, F flagged, P forwarded ($Forwarded), R answered, S seen,
    # T deleted; the UIDs are the server's, the UIDVALIDITY the one the file records.
    want = {
        "INBOX": (1772434800, {2: {"R", "S"}, 5: {"F", "P"}, 6: {"R", "T", "S"}, 9: {"D"},
                               10: set()}),
        "Work": (1772438400, {1: {"R", "S"}, 2: {"F", "P"}, 3: {"T", "S"}, 4: {"S"},
                              5: {"D"}, 6: set()}),
    }
    for box, path in (("INBOX", mailstore.inbox), ("Work", work)):
        got = maildir_files(sync.box(box))
        uidv, far = sync_state(sync.box(box))
        assert uidv == want[box][0]
        assert {far[maildir_uid(n)]: maildir_flags(n) for n in got} == want[box][1], sorted(got)
        stored = read_mbox(path)
        by_uid = {far[maildir_uid(n)]: re.sub(rb"(?m)^X-TUID: \S+\n", b"", crlf_to_lf(b),
                                              count=1)
                  for n, b in got.items()}
        assert [by_uid[u] for u in sorted(by_uid)] == [m.visible() for m in stored]
        for body in by_uid.values():
            assert not re.search(rb"(?mi)^(X-IMAP|X-IMAPbase|X-UID|Status|X-Status|"
                                 rb"X-Keywords|Content-Length):", body.split(b"\n\n")[0])
        # Unseen mail lands in new/, the rest in cur/.
        assert all(n.startswith("new/") == ("S" not in maildir_flags(n)) for n in got), got


def test_mbsync_a_thousand_messages(tcp, mailstore, tmp_path):
    """A mailbox of realistic size and variety (tests/bench/gen-mbox.py, 1000 messages,
    16 MB): everything arrives intact; flags set locally on the messages the generator's
    manifest names come back to the file on exactly those messages, and the server's SEARCH
    finds them."""
    out = tmp_path / "gen.mbox"
    manifest = tmp_path / "gen.json"
    r = run([sys.executable, GEN, "--seed", "11", "--messages", "1000", "--manifest",
             str(manifest), str(out)])
    assert r.returncode == 0, r.stderr
    mailstore.write_inbox(out.read_bytes())
    want = json.loads(manifest.read_text())["subject_msgs"]
    assert len(want) >= 5, want
    sync = Mbsync(tcp, str(tmp_path))
    sync.run()
    got = maildir_files(sync.box("INBOX"))
    far = sync_state(sync.box("INBOX"))[1]
    stored = read_mbox(mailstore.inbox)
    assert len(got) == len(stored) == 1000
    by_uid = {far[maildir_uid(n)]: n for n in got}
    for uid, m in enumerate(stored, 1):
        body = re.sub(rb"(?m)^X-TUID: \S+\n", b"", crlf_to_lf(got[by_uid[uid]]), count=1)
        assert body == m.visible(), uid
    # Flag the manifest's messages locally (UID = position: a fresh mailbox).
    for uid in want:
        old = os.path.join(sync.box("INBOX"), by_uid[uid])
        base = os.path.basename(old).split(":2,")[0]
        os.rename(old, os.path.join(sync.box("INBOX"), "cur", base + ":2,F"))
    sync.run()
    stored = read_mbox(mailstore.inbox)
    assert [i for i, m in enumerate(stored, 1) if "\\Flagged" in m.flags] == want
    r = run(["curl", "-sS", tcp.url("INBOX"), "-X", "UID SEARCH FLAGGED"] +
            ([] if tcp.preauth else ["-u", f"{tcp.login}:{tcp.password}"]))
    assert [int(x) for x in r.stdout.split()[2:]] == want, r.stdout
