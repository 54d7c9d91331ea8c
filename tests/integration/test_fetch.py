"""FETCH and UID FETCH end to end through the real binary (imapd --preauth on a socketpair,
driven by imaplib): every item kind, macros, sections with partial ranges, BINARY with
[UNKNOWN-CTE], \\Seen on non-PEEK fetches in read-write mailboxes only, and CRLF sizes for
a mailbox stored with LF line ends."""
import re

import pytest

MSGS = [
    # 1: single part, LF line ends
    "From: Alice Example <alice@example.org>\n"
    "To: undisclosed-recipients:;\n"
    "Subject: =?utf-8?q?caf=C3=A9?=\n"
    "Date: Mon, 1 Jan 2024 10:00:00 +0100\n"
    "Message-ID: <one@example.org>\n"
    "\n"
    "line one\nline two\n",
    # 2: multipart with a base64 part, a forwarded message and an unknown encoding
    "From: bob@example.org\n"
    "Subject: parts\n"
    "Content-Type: multipart/mixed; boundary=\"b\"\n"
    "\n"
    "preamble\n"
    "--b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "first part\n"
    "--b\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAECAw==\n"
    "--b\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: inner\n"
    "From: carol@example.org\n"
    "\n"
    "inner body\n"
    "--b\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: x-uuencode\n"
    "\n"
    "begin 644 x\n"
    "--b--\n",
]


def mbox():
    out = []
    for i, m in enumerate(MSGS):
        out.append("From sender@example.org Mon Jan  1 10:00:0%d 2024\n" % i)
        out.append(m)
        out.append("\n")
    return "".join(out)


@pytest.fixture
def client(preauth_server, mailstore):
    mailstore.write_inbox(mbox())
    srv = preauth_server()
    c = srv.imap()
    yield c
    try:
        c.logout()
    except Exception:
        pass
    srv.stop()


def fetch(c, seq, items, uid=False):
    if uid:
        typ, data = c.uid("FETCH", seq, items)
    else:
        typ, data = c.fetch(seq, items)
    assert typ == "OK", data
    return data


def flat(data):
    """imaplib's FETCH data as one bytes string (literals inlined with their {n})."""
    out = b""
    for d in data:
        if isinstance(d, tuple):
            out += d[0] + b"\r\n" + d[1]
        else:
            out += d
    return out


def test_envelope_bodystructure_size(client):
    client.select("INBOX")
    d = flat(fetch(client, "1", "(RFC822.SIZE ENVELOPE BODYSTRUCTURE)"))
    body = MSGS[0].replace("\n", "\r\n").encode()
    assert b"RFC822.SIZE %d" % len(body) in d
    assert (b'ENVELOPE ("Mon, 1 Jan 2024 10:00:00 +0100" "=?utf-8?q?caf=C3=A9?=" '
            b'(("Alice Example" NIL "alice" "example.org")) '
            b'(("Alice Example" NIL "alice" "example.org")) '
            b'(("Alice Example" NIL "alice" "example.org")) '
            b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL NIL NIL '
            b'"<one@example.org>")') in d
    assert (b'BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2 '
            b'NIL NIL NIL NIL)') in d


def test_nested_structure(client):
    client.select("INBOX")
    d = flat(fetch(client, "2", "(BODY)"))
    assert d.startswith(b'2 (BODY (("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 10 0)'
                        b'("application" "octet-stream" NIL NIL NIL "base64" 8)'
                        b'("message" "rfc822" NIL NIL NIL "7bit" 53 '), d
    assert b'"mixed")' in d


def test_sections_and_partial(client):
    client.select("INBOX")
    d = flat(fetch(client, "2", "(BODY.PEEK[1] BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] "
                               "BODY.PEEK[1.MIME] BODY.PEEK[TEXT]<0.8> "
                               "BODY.PEEK[HEADER.FIELDS (Subject)])"))
    assert b"BODY[1] {10}\r\nfirst part" in d
    assert b"BODY[3.HEADER] {43}\r\nSubject: inner\r\nFrom: carol@example.org\r\n\r\n" in d
    assert b"BODY[3.TEXT] {10}\r\ninner body" in d
    assert b"BODY[1.MIME] {43}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" in d
    assert b"BODY[TEXT]<0> {8}\r\npreamble" in d
    assert b"BODY[HEADER.FIELDS (Subject)] {18}\r\nSubject: parts\r\n\r\n" in d
    # nothing was read without PEEK: no \Seen
    d = flat(fetch(client, "2", "(FLAGS)"))
    assert b"\\Seen" not in d


def test_rfc822_items_and_seen(client):
    client.select("INBOX")
    d = flat(fetch(client, "1", "(RFC822.HEADER)"))
    assert b"\\Seen" not in d
    d = flat(fetch(client, "1", "(RFC822.TEXT)"))
    assert b"RFC822.TEXT {20}\r\nline one\r\nline two\r\n" in d
    # the non-PEEK fetch set \Seen and said so
    assert re.search(rb"FLAGS \([^)]*\\Seen", d), d
    d = flat(fetch(client, "1", "(RFC822)"))
    assert d.count(b"\r\n") >= 7


def test_seen_not_set_when_examined(client):
    client.select("INBOX", readonly=True)
    d = flat(fetch(client, "1", "(BODY[TEXT])"))
    assert b"\\Seen" not in d
    d = flat(fetch(client, "1", "(FLAGS)"))
    assert b"\\Seen" not in d


def test_binary(client):
    client.select("INBOX")
    d = flat(fetch(client, "2", "(BINARY.PEEK[2] BINARY.SIZE[2])"))
    assert b"BINARY[2] ~{4}\r\n\x00\x01\x02\x03" in d
    assert b"BINARY.SIZE[2] 4" in d
    typ, data = client.fetch("2", "(BINARY.PEEK[4])")
    assert typ == "NO" and b"UNKNOWN-CTE" in data[0]


def test_macros_and_uid(client):
    client.select("INBOX")
    d = flat(fetch(client, "1", "FAST"))
    assert b"FLAGS (" in d and b"INTERNALDATE \"01-Jan-2024 10:00:00" in d
    assert b"RFC822.SIZE" in d and b"ENVELOPE" not in d
    d = flat(fetch(client, "1", "ALL"))
    assert b"ENVELOPE" in d and b"BODY " not in d
    d = flat(fetch(client, "1", "FULL"))
    assert b"ENVELOPE" in d and b"BODY (" in d
    d = flat(fetch(client, "1:*", "(FLAGS)", uid=True))
    assert b"UID 1" in d and b"UID 2" in d


def test_bad_fetches(client):
    client.select("INBOX")
    for items in ("(BODY[0])", "(BODY[1.])", "(NOSUCH)", "()", "(BODY[HEADER.FIELDS])",
                  "(BINARY[1.TEXT])", "(BODY[]<1.0>)"):
        with pytest.raises(client.error, match="BAD|Invalid"):
            client.fetch("1", items)
    # the session goes on
    d = flat(fetch(client, "1", "(UID)"))
    assert b"UID 1" in d
