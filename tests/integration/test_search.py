"""SEARCH and UID SEARCH end to end through the real binary (imapd --preauth, imaplib):
flags, sets, sizes, dates, decoded header and body text, CHARSET with [BADCHARSET],
ESEARCH result options (RFC 4731), and a \\Seen flag set by STORE."""
import pytest

MSGS = [
    ("Mon Jan  1 10:00:00 2024",
     "From: =?ISO-8859-1?Q?J=F6rg?= <joerg@example.de>\n"
     "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Berlin\n"
     "Date: Mon, 1 Jan 2024 10:00:00 +0100\n"
     "Content-Type: text/plain; charset=iso-8859-1\n"
     "Content-Transfer-Encoding: quoted-printable\n"
     "\n"
     "Caf=E9 and the periwinkle=\n harbour ledger\n"),
    ("Tue Feb  6 12:00:00 2024",
     "From: ann@example.org\nTo: bob@example.org\nSubject: printer\n"
     "Date: Tue, 6 Feb 2024 12:00:00 +0000\n"
     "Content-Type: multipart/mixed; boundary=b\n\n"
     "--b\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
     "PGI+w4lMw4lQSEFOVDwvYj4=\n"
     "--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
     "c2VjcmV0IGF0dGFjaG1lbnQ=\n--b--\n"),
    ("Wed Mar 13 08:00:00 2024",
     "From: carol@example.net\nSubject: no date here\n\n" + "x" * 3000 + "\n"),
]


def mbox():
    return "".join("From sender@example.org %s\n%s\n" % (d, m) for d, m in MSGS)


@pytest.fixture
def client(preauth_server, mailstore):
    mailstore.write_inbox(mbox())
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    yield c
    try:
        c.logout()
    except Exception:
        pass
    srv.stop()


def search(c, *crit, charset=None, uid=False):
    if uid:
        typ, data = c.uid("SEARCH", *crit) if charset is None else \
            c.uid("SEARCH", "CHARSET", charset, *crit)
    else:
        typ, data = c.search(charset, *crit)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_flags_and_sets(client):
    assert search(client, "ALL") == [1, 2, 3]
    assert search(client, "UNSEEN") == [1, 2, 3]
    assert search(client, "SEEN") == []
    client.store("2", "+FLAGS", "(\\Seen \\Flagged)")
    assert search(client, "SEEN") == [2]
    assert search(client, "FLAGGED", "UNANSWERED") == [2]
    assert search(client, "NOT", "SEEN") == [1, 3]
    assert search(client, "OR", "SEEN", "3") == [2, 3]
    assert search(client, "2:*") == [2, 3]
    assert search(client, "UID", "1,3") == [1, 3]
    assert search(client, "(1:2", "NOT", "SEEN)") == [1]
    assert search(client, "ALL", uid=True) == [1, 2, 3]


def test_sizes_and_dates(client):
    assert search(client, "LARGER", "3000") == [3]
    assert search(client, "SMALLER", "3000") == [1, 2]
    assert search(client, "ON", "6-Feb-2024") == [2]
    assert search(client, "SINCE", "6-Feb-2024") == [2, 3]
    assert search(client, "BEFORE", "6-Feb-2024") == [1]
    assert search(client, "SENTON", "1-Jan-2024") == [1]
    assert search(client, "SENTSINCE", "1-Feb-2024") == [2]
    # no Date header: sent at the epoch
    assert search(client, "SENTBEFORE", "1-Jan-1971") == [3]


def test_text(client):
    assert search(client, "FROM", "example.org") == [2]
    assert search(client, "SUBJECT", "berlin") == [1]
    assert search(client, "TO", "bob") == [2]
    assert search(client, "HEADER", "Subject", "printer") == [2]
    assert search(client, "HEADER", "X-None", '""') == []
    assert search(client, "BODY", '"periwinkle harbour ledger"') == [1]
    assert search(client, "BODY", "secret") == []      # attachments are not text
    assert search(client, "TEXT", "printer") == [2]
    assert search(client, "BODY", "printer") == []


def search_lit(c, charset, key, value):
    """SEARCH CHARSET c KEY {n}value: 8-bit text goes as a literal."""
    c.literal = value
    typ, data = c.search(charset, key)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_charset(client):
    assert search_lit(client, "UTF-8", "SUBJECT", "Grüße".encode()) == [1]
    assert search_lit(client, "UTF-8", "FROM", "jörg".encode()) == [1]
    assert search_lit(client, "UTF-8", "BODY", "éléphant".encode()) == [2]
    assert search_lit(client, "ISO-8859-1", "BODY", "CAFÉ".encode("iso-8859-1")) == [1]
    typ, data = client.search("X-NO-SUCH", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]


def test_esearch(client):
    typ, data = client._simple_command("UID", "SEARCH", "RETURN", "(MIN MAX COUNT ALL)",
                                       "ALL")
    assert typ == "OK"
    typ, data = client._untagged_response(typ, data, "ESEARCH")
    assert data[0].endswith(b"UID MIN 1 MAX 3 COUNT 3 ALL 1:3"), data
    typ, data = client._simple_command("SEARCH", "RETURN", "(COUNT)", "SEEN")
    typ, data = client._untagged_response(typ, data, "ESEARCH")
    assert data[0].endswith(b") COUNT 0"), data


def test_bad_searches(client):
    for crit in (("BOGUS",), ("OR", "SEEN"), ("ON", "2024-01-01"), ("LARGER", "x"), ("0",)):
        with pytest.raises(client.error):
            client.search(None, *crit)
    assert search(client, "ALL") == [1, 2, 3]


def test_from_with_comments_inside_the_address(preauth_server, mailstore):
    """RFC 5322 3.4.1 and 3.2.2: comments and folding white space inside an addr-spec are
    not part of it; SEARCH FROM matches the address as ENVELOPE gives it."""
    mailstore.write_inbox(
        "From a@b Mon Jan  1 10:00:00 2024\n"
        "From: Fred <user-from (comment)@ (comment) domain.org>\nSubject: one\n\nx\n\n"
        "From a@b Mon Jan  1 10:00:00 2024\n"
        "From: user-from@domain.org (Fred)\nTo: \"Ann\" <ann @ example . org>\n"
        "Subject: two\n\ny\n\n"
        "From a@b Mon Jan  1 10:00:00 2024\n"
        "From: other@domain.org\nSubject: three\n\nz\n")
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    assert search(c, "FROM", "user-from@domain.org") == [1, 2]
    assert search(c, "FROM", "comment") == [1]      # the raw text still matches
    # as ENVELOPE names them: a bare addr-spec's comment is its display name
    assert search(c, "FROM", '"Fred <user-from@"') == [1, 2]
    assert search(c, "TO", "ann@example.org") == [2]
    assert search(c, "FROM", "other@domain.org") == [3]
    typ, data = c.fetch("1", "(ENVELOPE)")
    assert b'"user-from" "domain.org"' in data[0]
    c.logout()
    srv.stop()


def test_uid_sets_up_to_the_largest_uid(client):
    """4294967295 is a valid UID (nz-number); "$uidnext:4294967295" asks for anything new."""
    assert search(client, "UID", "1:4294967295", uid=True) == [1, 2, 3]
    assert search(client, "UID", "2:4294967295", uid=True) == [2, 3]
    assert search(client, "UID", "4:4294967295", uid=True) == []
    assert search(client, "UID", "4294967295", uid=True) == []
    typ, data = client.uid("FETCH", "3:4294967295", "(FLAGS)")
    assert typ == "OK" and b"UID 3" in data[0]
    with pytest.raises(client.error, match="bad UID set"):
        client.uid("SEARCH", "UID", "4294967296")
