"""SORT, THREAD, ESORT, SEARCHRES and WITHIN end to end through the real binary
(imapd --preauth): every sort key with REVERSE, UID SORT, both threading algorithms,
RETURN (MIN MAX COUNT ALL PARTIAL SAVE), "$" in SEARCH, FETCH, STORE and COPY, OLDER and
YOUNGER, [BADCHARSET], bad arguments, and the sort cache a second session reads."""
import os
import re
import time

import pytest

MSGS = [
    ("Fri Jan  5 10:00:00 2024",
     'From: "Aaron" <zed@b.example>\nTo: amy@x.example\nSubject: Re: Hello\n'
     "Date: Fri, 1 Mar 2024 10:00:00 +0000\nMessage-ID: <1@x>\n\nbody one\n"),
    ("Wed Jan  3 10:00:00 2024",
     "From: Bob <bob@a.example>\nSubject: hello\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n"
     "Message-ID: <2@x>\n\nbody two, a little longer than one\n"),
    ("Thu Feb  1 10:00:00 2024",
     "From: carl@c.example\nCc: dan@d.example\nSubject: [list] Fwd: Apple\n"
     "In-Reply-To: <2@x>\n\nthree\n"),
    ("Thu Jan  4 10:00:00 2024",
     "From: =?utf-8?q?=C3=89mile?= <emile@e.example>\nSubject: =?utf-8?q?=C3=A9clair?=\n"
     "Date: Mon, 1 Jan 2024 10:00:00 -0800\nReferences: <1@x> <2@x>\n\nfour\n"),
    ("Tue Jan  2 10:00:00 2024",
     "From: amy@a.example\nSubject: apple (fwd)\nDate: Thu, 15 Feb 2024 10:00:00 +0000\n"
     "Message-ID: <5@x>\nReferences: <3missing@x>\n\nfive five five five five five\n"),
]


def mbox(msgs=MSGS):
    return "".join("From sender@example.org %s\n%s\n" % (d, m) for d, m in msgs)


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


def cmd(c, name, *args):
    """Runs a command, returns (status, its untagged ESEARCH data, tagged text)."""
    c.untagged_responses.pop("ESEARCH", None)
    try:
        typ, data = c._simple_command(name, *args)
    except c.error as e:
        return "BAD", [], [str(e).encode()]
    untagged = c.untagged_responses.pop("ESEARCH", [])
    return typ, [x for x in untagged if x is not None], data


def sort(c, prog, *crit, uid=False):
    typ, data = c.uid("SORT", prog, "UTF-8", *(crit or ("ALL",))) if uid else \
        c.sort(prog, "UTF-8", *(crit or ("ALL",)))
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def esearch(c, *args):
    typ, untagged, data = cmd(c, *args)
    assert typ == "OK", data
    assert len(untagged) == 1, untagged
    return untagged[0].decode()


def test_capabilities(client):
    caps = client.capabilities
    for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES",
                "ESORT", "SEARCHRES", "WITHIN", "ESEARCH", "CONTEXT=SEARCH", "CONTEXT=SORT"):
        assert cap in caps, caps


def test_each_key(client):
    c = client
    # base subjects APPLE APPLE E\u0301CLAIR HELLO HELLO, ties by sequence number
    assert sort(c, "(SUBJECT)") == [3, 5, 4, 1, 2]
    # sent dates (4 is 18:00 UTC; 3 has none: its INTERNALDATE, RFC 5256 2.2)
    assert sort(c, "(DATE)") == [2, 4, 3, 5, 1]
    assert sort(c, "(REVERSE DATE)") == [1, 5, 3, 4, 2]
    assert sort(c, "(FROM)") == [5, 2, 3, 4, 1]
    assert sort(c, "(DISPLAYFROM)") == [1, 5, 2, 3, 4]
    assert sort(c, "(TO)") == [2, 3, 4, 5, 1]
    assert sort(c, "(DISPLAYTO)") == [2, 3, 4, 5, 1]
    assert sort(c, "(CC)") == [1, 2, 4, 5, 3]
    assert sort(c, "(ARRIVAL)") == [5, 2, 4, 1, 3]
    assert sort(c, "(REVERSE ARRIVAL)") == [3, 1, 4, 2, 5]
    typ, data = c.fetch("1:*", "(RFC822.SIZE)")
    sizes = [int(re.search(rb"RFC822.SIZE (\d+)", x).group(1)) for x in data]
    assert sort(c, "(SIZE)") == sorted(range(1, 6), key=lambda i: (sizes[i - 1], i))
    assert sort(c, "(REVERSE SIZE)") == sorted(range(1, 6), key=lambda i: (-sizes[i - 1], i))
    # REVERSE reverses one criterion, not the implicit sequence number (RFC 5256 3)
    assert sort(c, "(REVERSE SUBJECT)") == [1, 2, 4, 3, 5]
    assert sort(c, "(SUBJECT REVERSE DATE)") == [5, 3, 4, 1, 2]
    # with search criteria, in US-ASCII too
    assert sort(c, "(DATE)", "SUBJECT", "apple") == [3, 5]
    typ, data = c.sort("(DATE)", "US-ASCII", "SINCE", "1-Jan-2024")
    assert typ == "OK" and data[0] == b"2 4 3 5 1"


def test_uid_sort_and_thread(client):
    c = client
    # make UIDs differ from sequence numbers
    c.store("1", "+FLAGS", "(\\Deleted)")
    c.expunge()
    assert sort(c, "(SUBJECT)") == [2, 4, 3, 1]
    assert sort(c, "(SUBJECT)", uid=True) == [3, 5, 4, 2]
    typ, data = c.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data[0] == b"(2 (4)(3))(5)", data


def test_thread(client):
    c = client
    typ, data = c.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK" and data[0] == b"(5)(1 2 (4)(3))", data
    typ, data = c.thread("ORDEREDSUBJECT", "UTF-8", "ALL")
    assert typ == "OK" and data[0] == b"(2 1)(4)(3 5)", data
    typ, data = c.thread("REFERENCES", "UTF-8", "SUBJECT", "nothing-matches")
    assert typ == "OK" and data in ([None], [b""]), data
    typ, data = c.thread("REFERENCES", "UTF-8", "UNSEEN", "NOT", "4")
    # without 4 nothing links 1 and 2: 1 joins 2 by subject (step 5), being a reply
    assert typ == "OK" and data[0] == b"(2 (3)(1))(5)", data


def test_esort(client):
    c = client
    got = esearch(c, "SORT", "RETURN", "(MIN MAX COUNT ALL)", "(DATE)", "UTF-8", "ALL")
    assert re.fullmatch(r'\(TAG "[^"]+"\) MIN 2 MAX 1 COUNT 5 ALL 2,4,3,5,1', got), got
    # RETURN () is ALL; consecutive ascending numbers become a range
    got = esearch(c, "SORT", "RETURN", "()", "(ARRIVAL)", "UTF-8", "ALL")
    assert got.endswith(" ALL 5,2,4,1,3"), got
    got = esearch(c, "SORT", "RETURN", "()", "(SIZE)", "UTF-8", "1:3")
    assert re.search(r" ALL [0-9,:]+$", got), got
    typ, untagged, data = cmd(c, "UID", "SORT", "RETURN", "(COUNT)", "(DATE)", "UTF-8", "ALL")
    assert typ == "OK" and b" UID COUNT 5" in untagged[0], untagged
    # PARTIAL (RFC 5267 4.4): positions in the sorted result, NIL beyond it
    got = esearch(c, "SORT", "RETURN", "(PARTIAL 2:3)", "(DATE)", "UTF-8", "ALL")
    assert got.endswith(" PARTIAL (2:3 4,3)"), got
    got = esearch(c, "SORT", "RETURN", "(PARTIAL 4:10)", "(DATE)", "UTF-8", "ALL")
    assert got.endswith(" PARTIAL (4:10 5,1)"), got
    got = esearch(c, "SORT", "RETURN", "(PARTIAL 6:9)", "(DATE)", "UTF-8", "ALL")
    assert got.endswith(" PARTIAL (6:9 NIL)"), got
    got = esearch(c, "SEARCH", "RETURN", "(PARTIAL 1:2)", "ALL")
    assert got.endswith(" PARTIAL (1:2 1:2)"), got
    # empty result: no MIN/MAX/ALL, COUNT 0
    got = esearch(c, "SORT", "RETURN", "(MIN MAX COUNT)", "(DATE)", "UTF-8", "SUBJECT", "zzz")
    assert got.endswith(" COUNT 0"), got


def test_searchres(client):
    c = client
    # SAVE alone: no ESEARCH response (RFC 5182 2.1)
    typ, untagged, data = cmd(c, "SEARCH", "RETURN", "(SAVE)", "SUBJECT", "apple")
    assert typ == "OK" and untagged == [], untagged
    typ, data = c.fetch("$", "(UID)")
    assert typ == "OK" and [re.match(rb"(\d+)", x).group(1) for x in data] == [b"3", b"5"]
    typ, data = c.uid("FETCH", "$", "(FLAGS)")
    assert typ == "OK" and len(data) == 2
    typ, data = c.search(None, "$")
    assert data[0] == b"3 5"
    typ, data = c.search(None, "OR", "$", "1")
    assert data[0] == b"1 3 5"
    typ, data = c.uid("SEARCH", "UID", "$", "SMALLER", "100000")
    assert data[0] == b"3 5"
    typ, data = c.store("$", "+FLAGS", "(\\Flagged)")
    assert typ == "OK"
    typ, data = c.search(None, "FLAGGED")
    assert data[0] == b"3 5"
    # SAVE with MIN and MAX only keeps those (2.4); from SORT order for SORT
    esearch(c, "SEARCH", "RETURN", "(SAVE MIN MAX)", "ALL")
    assert c.search(None, "$")[1][0] == b"1 5"
    esearch(c, "SEARCH", "RETURN", "(SAVE MIN)", "ALL")
    assert c.search(None, "$")[1][0] == b"1"
    esearch(c, "SEARCH", "RETURN", "(SAVE MIN COUNT)", "NOT", "2")
    assert c.search(None, "$")[1][0] == b"1 3 4 5"
    esearch(c, "SORT", "RETURN", "(SAVE MIN)", "(DATE)", "UTF-8", "ALL")
    assert c.search(None, "$")[1][0] == b"2"
    # a SEARCH without SAVE leaves it; a BAD one leaves it; a NO with SAVE empties it
    c.search(None, "ALL")
    typ, untagged, data = cmd(c, "SEARCH", "RETURN", "(SAVE)", "BOGUS-KEY")
    assert typ == "BAD"
    assert c.search(None, "$")[1][0] == b"2"
    typ, untagged, data = cmd(c, "SEARCH", "RETURN", "(SAVE)", "CHARSET", "X-NONE", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    assert c.search(None, "$")[1][0] == b""
    typ, data = c.fetch("$", "(UID)")
    assert typ == "OK" and data == [None]
    # an expunged message drops out of it
    assert cmd(c, "UID", "SEARCH", "RETURN", "(SAVE)", "SUBJECT", "apple")[0] == "OK"
    c.store("3", "+FLAGS", "(\\Deleted)")
    c.expunge()
    assert c.search(None, "$")[1][0] == b"4"       # was 5, now number 4
    assert c.uid("SEARCH", "$")[1][0] == b"5"
    typ, data = c.copy("$", "INBOX")
    assert typ == "OK"
    # a new SELECT empties it
    c.select("INBOX")
    assert c.search(None, "$")[1][0] == b""


def test_within(preauth_server, mailstore):
    now = time.time()
    msgs = [(time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(now - age)),
             "Subject: aged %d\n\nx\n" % age) for age in (30 * 86400, 7200, 60)]
    mailstore.write_inbox(mbox(msgs))
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    assert c.search(None, "YOUNGER", "3600")[1][0] == b"3"
    assert c.search(None, "YOUNGER", "86400")[1][0] == b"2 3"
    assert c.search(None, "OLDER", "3600")[1][0] == b"1 2"
    assert c.search(None, "NOT", "OLDER", "86400")[1][0] == b"2 3"
    assert sort(c, "(REVERSE ARRIVAL)", "YOUNGER", "86400") == [3, 2]
    for bad in (("OLDER", "0"), ("YOUNGER", "-1"), ("OLDER", "x"), ("OLDER",)):
        typ, untagged, data = cmd(c, "SEARCH", *bad)
        assert typ == "BAD", bad
    c.logout()
    srv.stop()


def test_bad_input(client):
    c = client
    typ, untagged, data = cmd(c, "SORT", "(SUBJECT)", "KOI8-R", "ALL")
    assert typ == "NO" and b"[BADCHARSET (UTF-8 US-ASCII)]" in data[0], data
    for args in (("()", "UTF-8", "ALL"), ("(BOGUS)", "UTF-8", "ALL"), ("(REVERSE)", "UTF-8", "ALL"),
                 ("SUBJECT", "UTF-8", "ALL"), ("(SUBJECT)",), ("(SUBJECT)", "UTF-8"),
                 ("(SUBJECT)", "UTF-8", "NOSUCHKEY"),
                 ("RETURN", "(BOGUS)", "(SUBJECT)", "UTF-8", "ALL"),
                 ("RETURN", "(PARTIAL 1:*)", "(SUBJECT)", "UTF-8", "ALL"),
                 ("RETURN", "(PARTIAL 0:5)", "(SUBJECT)", "UTF-8", "ALL"),
                 ("RETURN", "(PARTIAL 1:5 ALL)", "(SUBJECT)", "UTF-8", "ALL"),
                 ("RETURN", "(PARTIAL)", "(SUBJECT)", "UTF-8", "ALL"),
                 ("RETURN", "(MIN MIN)", "(SUBJECT)", "UTF-8", "ALL"),
                 ("(" + "DATE " * 40 + ")", "UTF-8", "ALL")):
        typ, untagged, data = cmd(c, "SORT", *args)
        assert typ == "BAD", (args, typ, data)
    for args in (("BOGUSALG", "UTF-8", "ALL"), ("REFERENCES",), ("REFERENCES", "UTF-8")):
        typ, untagged, data = cmd(c, "THREAD", *args)
        assert typ == "BAD", (args, typ, data)
    typ, untagged, data = cmd(c, "THREAD", "REFERENCES", "ISO-8859-1", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    # the session goes on
    assert sort(c, "(DATE)") == [2, 4, 3, 5, 1]


def test_sort_cache_second_session(preauth_server, mailstore, user):
    """The first SORT writes the sort cache; a new session's answers are the same when they
    come from it, and a message delivered meanwhile is added."""
    mailstore.write_inbox(mbox())
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    first = (sort(c, "(SUBJECT)"), sort(c, "(DISPLAYFROM)"),
             c.thread("REFERENCES", "UTF-8", "ALL")[1][0])
    c.logout()
    srv.stop()
    files = [os.path.join(d, f) for d, _, fs in os.walk(user.home) for f in fs
             if f.startswith("sort.")]
    assert len(files) == 1, files
    size = os.path.getsize(files[0])
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    assert (sort(c, "(SUBJECT)"), sort(c, "(DISPLAYFROM)"),
            c.thread("REFERENCES", "UTF-8", "ALL")[1][0]) == first
    c.logout()
    srv.stop()
    assert os.path.getsize(files[0]) == size     # nothing new: not rewritten
    # one more message: its keys are read and the file grows
    with open(mailstore.inbox, "a") as f:
        f.write("From x@y Sat Jan  6 10:00:00 2024\nSubject: Aardvark\n"
                "Message-ID: <6@x>\nReferences: <5@x>\n\nsix\n\n")
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    assert sort(c, "(SUBJECT)") == [6, 3, 5, 4, 1, 2]
    assert c.thread("REFERENCES", "UTF-8", "ALL")[1][0] == b"(5 6)(1 2 (4)(3))"
    c.logout()
    srv.stop()
    assert os.path.getsize(files[0]) > size


def test_many_ties(preauth_server, mailstore):
    """Orders on 600 messages whose subjects share long beginnings (so that the first
    octets of many keys tie, and some subjects are others' beginnings), whose dates tie
    in groups and whose sizes repeat, against the order RFC 5256 3 defines computed here:
    the keys, then the sequence number, never reversed."""
    import random
    rnd = random.Random(5256)
    stems = ["ALPHA BRAVO CHARLIE DELTA ECHO", "ALPHA BRAVO CHARLIE DELTA", "ALPHA",
             "ZULU YANKEE XRAY WHISKEY VICTOR UNIFORM TANGO SIERRA", "M"]
    msgs, keys = [], []
    for i in range(600):
        subj = rnd.choice(stems)
        if rnd.random() < 0.7:
            subj += " " + "".join(rnd.choice("ABC") for _ in range(rnd.randint(0, 12)))
        subj = subj.strip()
        day = rnd.randint(1, 5)
        hour = rnd.choice([0, 12])
        pad = "x" * rnd.randint(0, 3)
        msgs.append(("Mon Jan  1 00:00:00 2024",
                     "From: a@b.example\nSubject: %s\nDate: Mon, %d Jan 2024 %02d:00:00 +0000\n"
                     "\n%s\n" % (subj, day, hour, pad)))
        keys.append((subj.encode(), (day, hour)))
    mailstore.write_inbox(mbox(msgs))
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    seqs = list(range(1, 601))
    sizes = {}
    typ, data = c.fetch("1:*", "(RFC822.SIZE)")
    for d in data:
        m = re.match(rb"(\d+) \(RFC822.SIZE (\d+)\)", d)
        sizes[int(m.group(1))] = int(m.group(2))

    def want(*crit):
        def k(seq):
            subj, date = keys[seq - 1]
            out = []
            for rev, name in crit:
                v = {"SUBJECT": subj, "DATE": date, "SIZE": sizes[seq]}[name]
                out.append(v)
            return out
        # a stable sort per criterion, last first, gives the full order with REVERSE only on
        # its own criterion and the sequence number last, ascending
        # (Python's sort stays stable with reverse=True, as REVERSE leaves ties alone)
        order = list(seqs)
        for pos in range(len(crit) - 1, -1, -1):
            order.sort(key=lambda s: k(s)[pos], reverse=crit[pos][0])
        return order

    for crit in [[(False, "SUBJECT")], [(True, "SUBJECT")], [(False, "DATE")],
                 [(True, "DATE")], [(False, "SUBJECT"), (True, "DATE")],
                 [(True, "SUBJECT"), (False, "SIZE")], [(False, "SIZE")],
                 [(False, "DATE"), (True, "SUBJECT"), (False, "SIZE")]]:
        prog = "(%s)" % " ".join(("REVERSE " if r else "") + n for r, n in crit)
        assert sort(c, prog) == want(*crit), prog
    c.logout()
    srv.stop()


def test_header_only_message_keeps_its_size(preauth_server, mailstore):
    """A message that is only a header (no empty line, no body) keeps its bytes when imapd
    writes its metadata into it: the same RFC822.SIZE, BODY[] and SIZE order under the
    same UID (RFC 3501 2.3.1.1) before the first write, after it and in the next session."""
    msgs = [("Mon Jan  1 10:00:00 2024", "Subject: only a header\nMessage-ID: <h@x>\n"),
            ("Tue Jan  2 10:00:00 2024", "Subject: b\n\n" + "x" * 31 + "\n"),
            ("Wed Jan  3 10:00:00 2024", "Subject: c\n\nc\n")]
    mailstore.write_inbox(mbox(msgs))
    seen = []
    for step in ("EXAMINE", "SELECT", "STORE", "again"):
        srv = preauth_server()
        c = srv.imap()
        c.select("INBOX", readonly=step == "EXAMINE")
        if step == "STORE":
            assert c.store("1", "+FLAGS", "(\\Flagged)")[0] == "OK"
        typ, data = c.fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
        assert typ == "OK", data
        seen.append(([x[0] for x in data if isinstance(x, tuple)],
                     [x[1] for x in data if isinstance(x, tuple)], sort(c, "(SIZE)")))
        c.logout()
        srv.stop()
        if step == "SELECT":
            with open(mailstore.inbox, "rb") as f:
                assert b"X-UID: 1\n" in f.read()     # the metadata was written
    assert seen[0][1][0] == b"Subject: only a header\r\nMessage-ID: <h@x>\r\n"
    # 46 bytes, one less than message 2: two more would put it after
    assert seen[0][2] == [3, 1, 2]
    assert all(s == seen[0] for s in seen), seen


def test_unknown_charset_subject_sorts_as_octets(preauth_server, mailstore):
    """RFC 5051 2 (1)(b): a Subject with an encoded word in a charset imapd cannot convert
    is compared unchanged (i;octet), so lower-case "kiwi" sorts after the titlecased
    "ZEBRA"; SEARCH still finds the word."""
    msgs = [("Mon Jan  1 10:00:00 2024", "Subject: =?x-unknown?q?kiwi?=\n\nx\n"),
            ("Tue Jan  2 10:00:00 2024", "Subject: zebra\n\nx\n"),
            ("Wed Jan  3 10:00:00 2024", "Subject: =?utf-8?q?Kiwi?=\n\nx\n")]
    mailstore.write_inbox(mbox(msgs))
    srv = preauth_server()
    c = srv.imap()
    c.select("INBOX")
    assert sort(c, "(SUBJECT)") == [3, 2, 1]
    assert c.search(None, "SUBJECT", "kiwi")[1][0] == b"1 3"
    c.logout()
    srv.stop()
