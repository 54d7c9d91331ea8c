"""mutt against imapd on a loopback TCP port, driven through a detached tmux as a user would
drive it: the index, the pager, flagging, deleting, syncing; the mbox file read back after."""
import os
import re
import time

import pytest

import clients_util
from clients_util import (CORPUS, build_mbox, fixture, need, parse_mbox, procmail, read_mbox,
                          run, show_debug, simple_message, start_mutt, subjects)

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port


@pytest.mark.parametrize("via", ["tcp", "tunnel"])
def test_mutt_reads_flags_deletes_and_syncs(tcp, mailstore, tmp_path, via):
    inbox = [fixture(n) for n in CORPUS]
    mailstore.write_inbox(build_mbox(inbox))
    t, index, home = start_mutt(tcp, tmp_path, "Scans of the signed forms", via)
    try:
        # The index shows every message, subjects decoded from RFC 2047 words.
        order = [index.find(s) for s in (
            "Lunch on Thursday", "Agenda for the server migration",
            "Grüße aus Köln – die Fotos", "body lines that begin with From",
            "Scans of the signed forms")]
        assert -1 not in order and order == sorted(order), index
        # Read message 2: the pager shows its text part.
        t.keys("2", "Enter")
        t.keys("Enter")
        t.wait_for("2. Move the mail spool")
        t.keys("q")
        t.wait_for("Scans of the signed forms")
        # Save message 5 to a folder that does not exist yet: mutt's COPY gets [TRYCREATE],
        # mutt asks, CREATEs it and copies again; the original is marked deleted.
        t.keys("5", "Enter", "s")
        t.wait_for("Save to mailbox")
        t.keys("C-u", "=Archive", "Enter")
        t.wait_for("Create")
        t.keys("y")
        t.wait_line("Scans of the signed forms", "D")
        # Flag message 3, delete message 1, sync (the deleted messages go), quit.
        t.keys("3", "Enter", "F")
        t.wait_line("Grüße aus Köln", "!")
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
    stored = read_mbox(mailstore.inbox)
    assert [m.subject for m in stored] == subjects(inbox[1:4])
    assert [m.flags for m in stored] == [{"\\Seen"}, {"\\Flagged"}, set()]
    archive = read_mbox(os.path.join(mailstore.mail_dir, "Archive"))
    want = parse_mbox(build_mbox(inbox[4:]))
    assert [m.visible() for m in archive] == [m.visible() for m in want]



def test_mutt_sees_delivery_and_other_sessions(tcp, user, mailstore, tmp_path):
    """While mutt has INBOX open: procmail delivers, another session flags one message and
    expunges another; mutt shows all three, then its own deletion syncs without losing any of
    it (no single-writer "kiss of death")."""
    need("curl")
    inbox = [fixture(n) for n in CORPUS[:3]]
    mailstore.write_inbox(build_mbox(inbox))
    # timeout=1: mutt looks at the open mailbox after each second without a key press.
    t, index, home = start_mutt(tcp, tmp_path, "Grüße aus Köln",
                                extra="set timeout=1\nset mail_check=1\nset imap_idle=yes")
    try:
        procmail(user, simple_message("delivered while mutt reads", "Hello mutt."))
        t.wait_for("delivered while mutt reads")

        def other(*args):
            r = tcp.pam_retry(lambda: curl_ok(tcp, *args))
            return r
        other("-X", "UID STORE 1 +FLAGS (\\Flagged)")
        t.wait_line("Lunch on Thursday", "!")
        other("-X", "UID STORE 2 +FLAGS.SILENT (\\Deleted)")
        other("-X", "UID EXPUNGE 2")
        t.wait_gone("Agenda for the server migration")
        # Now mutt deletes message 2 of what it shows (the Grüße message) and syncs.
        t.keys("2", "Enter", "d")
        t.wait_line("Grüße aus Köln", "D")
        t.keys("$")
        t.wait_gone("Grüße aus Köln")
        t.keys("q")
        t.wait_exit()
    except AssertionError:
        show_debug(home)
        raise
    finally:
        t.close()
    # mutt waited in IDLE (RFC 2177) and the delivery came to it there.
    sent_before = last_command_before((home / ".muttdebug0").read_text(errors="replace"),
                                      "< * 4 EXISTS")
    assert re.fullmatch(r"a\d+ IDLE", sent_before or ""), sent_before
    stored = read_mbox(mailstore.inbox)
    assert [m.subject for m in stored] == ["Lunch on Thursday", "delivered while mutt reads"]
    assert stored[0].flags == {"\\Flagged"}
    assert stored[1].body == b"Hello mutt.\n\n" or stored[1].body == b"Hello mutt.\n"


def last_command_before(debug_log, server_line):
    """The last command mutt sent (its -d 2 log) before the server line that ends with
    server_line."""
    last = None
    for ln in debug_log.splitlines():
        m = re.match(r"\[[^]]*\] \d+> (.*)", ln)
        if m:
            last = m.group(1)
        elif ln.endswith(server_line):
            return last
    return None


def curl_ok(tcp, *args):
    r = run(["curl", "-sS", "--max-time", "30", tcp.url("INBOX")] + list(args) +
            ([] if tcp.preauth else ["-u", f"{tcp.login}:{tcp.password}"]))
    assert r.returncode == 0, r.stderr
    return r


def test_mutt_opens_and_lists_international_folders(tcp, mailstore, tmp_path):
    """mutt speaks modified UTF-7 names (RFC 3501 5.1.3): its folder browser shows the
    folder Entwürfe (stored as Entw&APw-rfe, as UW-IMAP and Dovecot store it) by its real
    name, and opening it by that name selects the right file."""
    mailstore.write_inbox(build_mbox([fixture("plain-ascii.eml")]))
    mailstore.write_mailbox("Entw&APw-rfe", build_mbox([fixture("alternative.eml")]))
    t, index, home = start_mutt(tcp, tmp_path, "Lunch on Thursday")
    try:
        t.keys("c")
        t.wait_for("Open mailbox")
        t.keys("C-u")
        t.keys("-l", "=Entwürfe")
        t.keys("Enter")
        t.wait_for("Agenda for the server migration")
        # The browser on the mail directory lists the folder by its decoded name.
        t.keys("c")
        t.wait_for("Open mailbox")
        t.keys("C-u", "Tab")
        browser = t.wait_for("Directory [")
        entries = [ln.split()[-1] for ln in browser.splitlines() if " IMAP " in ln]
        assert sorted(entries) == ["Entwürfe", "INBOX"], browser
        # Leave the browser (back to the prompt), cancel the prompt, back in the index.
        time.sleep(0.5)     # mutt drops keys typed ahead while the browser opens
        t.keys("q")
        time.sleep(0.5)
        t.keys("C-g")
        t.wait_for("Agenda for the server migration")
        t.keys("q")
        t.wait_exit()
    except AssertionError:
        show_debug(home)
        raise
    finally:
        t.close()
