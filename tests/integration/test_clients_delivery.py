"""Mail delivered by procmail (a real MDA, writing the throwaway user's spool with its own
locking) while an IMAP client is connected to imapd: the client in IDLE is told of the new
message, a client polling with NOOP sees it, and what it fetches is what procmail wrote."""
import re
import time

import clients_util
from clients_util import (CORPUS, build_mbox, crlf_to_lf, fixture, imap_connect, procmail,
                          read_mbox, simple_message)

tcp = clients_util.tcp  # the fixture: imapd on a loopback TCP port


def connect(tcp):
    return imap_connect(tcp)


def close(c):
    try:
        c.shutdown()
    except OSError:
        pass


def fetch_items(data):
    """The non-literal parts of one FETCH response, as imaplib splits them."""
    return b" ".join(x[0] if isinstance(x, tuple) else x for x in data)


def read_until(c, pattern, timeout):
    """Reads untagged lines (during IDLE) until one matches pattern."""
    c.sock.settimeout(timeout)
    seen = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        ln = c.readline()
        if not ln:
            raise AssertionError("connection closed; got %r" % seen)
        seen.append(ln)
        if re.match(pattern, ln):
            return seen
    raise AssertionError("no %r in %r" % (pattern, seen))


def test_procmail_delivery_seen_by_noop(tcp, user, mailstore):
    inbox = [fixture(n) for n in CORPUS[:3]]
    mailstore.write_inbox(build_mbox(inbox))
    c = connect(tcp)
    try:
        typ, data = c.select("INBOX")
        assert typ == "OK" and data == [b"3"]
        for n, subject in ((4, "delivered between NOOPs"), (5, "and another one")):
            procmail(user, simple_message(subject, "Procmail wrote this."))
            # Polling as clients do: a NOOP after the delivery reports the new count.
            for _ in range(50):
                c.noop()
                exists = c.untagged_responses.pop("EXISTS", None)
                if exists:
                    break
                time.sleep(0.1)
            assert exists and exists[-1] == str(n).encode(), exists
            assert "EXPUNGE" not in c.untagged_responses
            typ, data = c.fetch(str(n), "(UID FLAGS BODY.PEEK[])")
            assert typ == "OK", data
            stored = read_mbox(mailstore.inbox)
            assert len(stored) == n and stored[n - 1].subject == subject
            assert crlf_to_lf(data[0][1]) == stored[n - 1].visible()
            assert crlf_to_lf(data[0][1]).endswith(b"\n\nProcmail wrote this.\n")
            meta = fetch_items(data)
            assert b"\\Recent" in meta and re.search(rb"\bUID %d\b" % n, meta), meta
        # The earlier messages are untouched and in order.
        typ, data = c.fetch("1:3", "(BODY.PEEK[])")
        stored = read_mbox(mailstore.inbox)
        got = [crlf_to_lf(x[1]) for x in data if isinstance(x, tuple)]
        assert got == [m.visible() for m in stored[:3]]
        c.logout()
    finally:
        close(c)


def test_procmail_delivery_during_idle(tcp, user, mailstore):
    inbox = [fixture(n) for n in CORPUS[:3]]
    mailstore.write_inbox(build_mbox(inbox))
    c = connect(tcp)
    try:
        typ, data = c.select("INBOX")
        assert typ == "OK" and data == [b"3"]
        # IDLE (RFC 2177): the server must report the delivery while the client waits.
        tag = c._new_tag()
        c.send(tag + b" IDLE\r\n")
        assert c.readline().startswith(b"+"), "no continuation for IDLE"
        t0 = time.time()
        procmail(user, simple_message("delivered during IDLE", "Procmail wrote this."))
        seen = read_until(c, rb"\* 4 EXISTS\r\n", timeout=10)
        took = time.time() - t0
        c.send(b"DONE\r\n")
        rest = read_until(c, re.escape(tag) + rb" OK", timeout=10)
        assert not any(b"EXPUNGE" in ln for ln in seen + rest), seen + rest
        # The design promises a report within about a second (inotify); allow slack.
        assert took < 5, took
        typ, data = c.uid("FETCH", "4", "(BODY.PEEK[] FLAGS)")
        assert typ == "OK", data
        stored = read_mbox(mailstore.inbox)
        assert len(stored) == 4 and stored[3].subject == "delivered during IDLE"
        assert crlf_to_lf(data[0][1]) == stored[3].visible()
        assert b"\\Recent" in fetch_items(data), data
        c.logout()
    finally:
        close(c)
