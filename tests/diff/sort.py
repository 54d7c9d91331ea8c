#!/usr/bin/python3
"""SORT and THREAD differential test: imapd against Dovecot's imap on the same mbox.

    tests/diff/sort.py [-v] [--a dovecot] [--b imapd] [--imapd-cmd '...'] [--fixtures DIR]
                       [--generated 300] [--random 200] [--seed 5256] [--no-cases]
                       [--mbox FILE ...] [--write-cases FILE] [--known tests/diff/known.txt]

Run as root from anywhere (it changes to the repository root). Both servers run
preauthenticated on stdin/stdout as a throwaway user (tests/bench/imapharness.py), each on its
own copy of one mbox built as tests/diff/diff.py builds it: the fixture messages, then the
cases this script writes (hand-made ones for the corners of RFC 5256, RFC 5051 and RFC 5957,
then --random messages drawn from a seeded generator that mixes the same corners), then any
--mbox files, then --generated messages of tests/bench/gen-mbox.py --seed 7.

Compared (after SELECT INBOX; EXISTS must agree): SORT with each key alone and REVERSE, multi-key
programs, DISPLAYFROM/DISPLAYTO, UID SORT, SORT with search criteria, ESORT's RETURN options
(MIN MAX COUNT ALL, PARTIAL), THREAD ORDEREDSUBJECT and REFERENCES, UID THREAD. UIDs are mapped
to message numbers through each server's own UID list. Each server is also checked against
itself: UID SORT is SORT under its UIDs, ESORT's ALL/PARTIAL/MIN/MAX/COUNT agree with the plain
SORT (RFC 5267 3.1, 4.4), THREAD names exactly the messages SEARCH finds, ORDEREDSUBJECT has no
grandchildren (RFC 5256 3).

A SORT difference is shown at the first position where the answers part, and as the messages
that one longest common order leaves out ("moved"), each with the header fields its keys read
and its neighbours in both answers. A THREAD difference is shown thread by thread, with the
Subject, Date, Message-ID, In-Reply-To and References of the messages in them; an ESORT one by
its return items, judged by the plain SORT of the same program and criteria. known.txt rules
whose ITEM is SORT:<command> (spaces as ?; | separates alternatives in ITEM and MESSAGE) excuse
the messages they name in those commands: a difference is explained when the answers are equal
once the excused messages (for THREAD, the threads holding one) are left out of both. Exit
status: 0 when every difference is explained, 1 otherwise, 2 when a server could not be run.

--b dovecot compares Dovecot with itself (two processes), which checks this script.
"""

import argparse
import bisect
import email.header
import email.utils
import os
import random
import re
import shutil
import sys
import time
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import diff as D  # noqa: E402  (diff.py: build_mbox, known.txt rules; it imports the harness)

H = D.H
ROOT = D.ROOT

KEYS = ["ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"]

# (command, literals). SORT, UID SORT, ESORT and THREAD; the same list for both servers.
COMMANDS = (
    [("SORT (%s) UTF-8 ALL" % k, []) for k in KEYS] +
    [("SORT (REVERSE %s) UTF-8 ALL" % k, []) for k in KEYS] +
    [(c, []) for c in [
        "SORT (SUBJECT DATE) UTF-8 ALL",
        "SORT (FROM REVERSE DATE) UTF-8 ALL",
        "SORT (REVERSE SIZE ARRIVAL) UTF-8 ALL",
        "SORT (CC TO) UTF-8 ALL",
        "SORT (REVERSE SUBJECT REVERSE DATE) UTF-8 ALL",
        "SORT (DISPLAYFROM SUBJECT) UTF-8 ALL",
        "SORT (REVERSE DISPLAYTO DATE) UTF-8 ALL",
        "SORT (TO REVERSE ARRIVAL) UTF-8 ALL",
        "SORT (SUBJECT) US-ASCII ALL",
        "UID SORT (SUBJECT) UTF-8 ALL",
        "UID SORT (REVERSE DATE) UTF-8 ALL",
        "UID SORT (DISPLAYFROM) UTF-8 UID 1:200",
        "SORT (SUBJECT) UTF-8 SINCE 1-Jan-2024",
        "SORT (DATE) UTF-8 SENTBEFORE 1-Jan-2023",
        "SORT (ARRIVAL) UTF-8 SUBJECT kiwi",
        "SORT (REVERSE DATE) UTF-8 SUBJECT Re",
        "SORT (FROM) UTF-8 OR FROM example.org SUBJECT budget",
        "SORT (SIZE) UTF-8 LARGER 5000",
        "SORT (DATE SUBJECT) UTF-8 NOT HEADER References \"\"",
        "SORT (SUBJECT) UTF-8 200:*",
    ]] +
    [("SORT (SUBJECT) UTF-8 SUBJECT {}", ["äpfel"]),
     ("SORT (DATE) UTF-8 FROM {}", ["Jürgen"])] +
    [(c, []) for c in [
        "SORT RETURN (MIN MAX COUNT ALL) (SUBJECT) UTF-8 ALL",
        "SORT RETURN (PARTIAL 1:50) (REVERSE DATE) UTF-8 ALL",
        "SORT RETURN (PARTIAL 100:180) (FROM) UTF-8 ALL",
        "SORT RETURN (PARTIAL 1:10 COUNT) (SUBJECT) UTF-8 SUBJECT kiwi",
        "SORT RETURN () (DISPLAYTO) UTF-8 SINCE 1-Jan-2025",
        "UID SORT RETURN (MIN MAX ALL) (REVERSE ARRIVAL) UTF-8 ALL",
        "SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nosuchwordanywhere",
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
        "UID THREAD REFERENCES UTF-8 ALL",
        "THREAD REFERENCES UTF-8 SINCE 1-Jan-2024",
        "THREAD REFERENCES UTF-8 SUBJECT kiwi",
        "THREAD ORDEREDSUBJECT UTF-8 NOT SUBJECT Re",
        "THREAD REFERENCES US-ASCII HEADER Message-ID sort.test",
    ]])

HEADER_FIELDS = ["Date", "Subject", "From", "To", "Cc", "Message-ID", "In-Reply-To",
                 "References"]
# What each sort key reads, for the report.
KEY_FIELDS = {"ARRIVAL": ["INTERNALDATE"], "CC": ["Cc"], "DATE": ["Date", "INTERNALDATE"],
              "FROM": ["From"], "SIZE": ["RFC822.SIZE"], "SUBJECT": ["Subject"],
              "TO": ["To"], "DISPLAYFROM": ["From"], "DISPLAYTO": ["To"]}
THREAD_FIELDS = ["Subject", "Date", "Message-ID", "In-Reply-To", "References"]


# -- the cases ---------------------------------------------------------------------------------

CASE_T0 = 1717200000            # 2024-06-01 00:00:00 UTC: INTERNALDATE of the first case
FROMS = ["Alice Abbott <alice@one.sort.test>", "bruno@two.sort.test",
         "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@three.sort.test>",
         "\"Zed, Zoe\" <zoe@one.sort.test>", "ALICE@one.sort.test",
         "Élodie <elodie@four.sort.test>"]


def ew(text, enc="Q", charset="UTF-8"):
    """text as one RFC 2047 encoded-word."""
    raw = text.encode(charset)
    if enc == "B":
        import base64
        return "=?%s?B?%s?=" % (charset, base64.b64encode(raw).decode())
    out = "".join(chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else
                  "_" if b == 32 else "=%02X" % b for b in raw)
    return "=?%s?Q?%s?=" % (charset, out)


def handmade():
    """[(name, {field: value})] for the corners, in mailbox order. A value None leaves the
    field out; fields not given get defaults (see write_cases); _at is the INTERNALDATE,
    _body the body."""
    c = []

    def add(name, **h):
        c.append((name, h))

    # RFC 5256 2.1: base subject. The words "kiwi"/"alpha" keep these apart from the rest.
    add("subj-plain", Subject="alpha kiwi")
    add("subj-re", Subject="Re: alpha kiwi")
    add("subj-RE-re", Subject="RE: re: alpha kiwi")
    add("subj-re-nospace", Subject="re:alpha kiwi")
    add("subj-re-space-colon", Subject="Re : alpha kiwi")
    add("subj-re-blob", Subject="Re[2]: alpha kiwi")
    add("subj-re-space-blob", Subject="Re [list]: alpha kiwi")
    add("subj-fwd", Subject="Fwd: alpha kiwi")
    add("subj-fw", Subject="FW: alpha kiwi")
    add("subj-fwd-nospace", Subject="fwd:alpha kiwi")
    add("subj-blob-re", Subject="[users] Re: alpha kiwi")
    add("subj-re-blob-base", Subject="Re: [users] alpha kiwi")
    add("subj-blob-blob", Subject="[a] [b] alpha kiwi")
    add("subj-blob-noblank", Subject="Re:[list]alpha kiwi")
    add("subj-blob-only", Subject="[users]")
    add("subj-blob-only-re", Subject="Re: [users]")
    add("subj-two-blobs-only", Subject="[a][b]")
    add("subj-trailer", Subject="alpha kiwi (fwd)")
    add("subj-trailers", Subject="alpha kiwi (FWD) (fwd)  ")
    add("subj-trailer-glued", Subject="alpha kiwi(fwd)")
    add("subj-not-trailer", Subject="alpha kiwi (fwd)x")
    add("subj-fwd-wrap", Subject="[fwd: alpha kiwi]")
    add("subj-fwd-wrap-re", Subject="[Fwd: Re: alpha kiwi]")
    add("subj-re-fwd-wrap", Subject="Re: [fwd: alpha kiwi] (fwd)")
    add("subj-fwd-wrap-blob", Subject="[fwd: [list] alpha kiwi]")
    add("subj-fwd-wrap-open", Subject="[fwd: alpha kiwi")
    add("subj-fwd-wrap-nested", Subject="[fwd: [fwd: alpha kiwi]]")
    add("subj-ref-not-re", Subject="Ref: alpha kiwi")
    add("subj-fwd-nocolon", Subject="Fwd alpha kiwi")
    add("subj-re-re-word", Subject="Re: Re")
    add("subj-re-only", Subject="Re:")
    add("subj-leading-ws", Subject="   Re:   alpha    kiwi  ")
    add("subj-tabs", Subject="alpha\tkiwi")
    add("subj-folded", Subject="alpha\n kiwi")
    add("subj-empty", Subject="")
    add("subj-missing", Subject=None)
    add("subj-ew-re", Subject=ew("Re: alpha kiwi"))
    add("subj-ew-b", Subject=ew("Fwd: Äpfel kiwi", "B"))
    add("subj-ew-split", Subject="%s %s" % (ew("alp"), ew("ha kiwi")))
    add("subj-ew-latin1", Subject=ew("Äpfel kiwi", "Q", "ISO-8859-1"))
    add("subj-ew-unknown", Subject="=?x-unknown?Q?kiwi_xyz?=")
    add("subj-ew-inside", Subject="Re: %s kiwi" % ew("Äpfel"))
    add("subj-8bit-utf8", Subject="äpfel kiwi")
    add("subj-apfel", Subject="Apfel kiwi")
    add("subj-APFEL", Subject="APFEL KIWI")
    add("subj-ligature", Subject="ﬁsh kiwi")
    add("subj-fi", Subject="fish kiwi")
    add("subj-fullwidth", Subject="ＡＢＣ kiwi")
    add("subj-abc", Subject="abc kiwi")
    add("subj-decomposed", Subject="cafe\u0301 kiwi")
    add("subj-composed", Subject="café kiwi")
    add("subj-sharp-s", Subject="straße kiwi")
    add("subj-SS", Subject="STRASSE kiwi")
    add("subj-digraph-dz", Subject="ǆemal kiwi")
    add("subj-digraph-DZ", Subject="Ǆemal kiwi")
    add("subj-digraph-Dz", Subject="ǅemal kiwi")
    add("subj-digraph-lj", Subject="ǉubljana kiwi")
    add("subj-sigma", Subject="σίσυφος kiwi")
    add("subj-SIGMA", Subject="ΣΊΣΥΦΟΣ kiwi")
    add("subj-dotless", Subject="ıstanbul kiwi")
    add("subj-dotted-I", Subject="İstanbul kiwi")
    # Two subjects alike for their first 600 bytes, the later one first in collation.
    long_head = "kiwi long " + "x" * 590
    add("subj-long-b", Subject=long_head + " b")
    add("subj-long-a", Subject=long_head + " a")
    # RFC 5256 2.2: sent date. The cases' INTERNALDATEs are 2024-06-01 plus an hour each.
    add("date-missing", Date=None)
    add("date-garbage", Date="yesterday at noon")
    add("date-no-zone", Date="Sat, 1 Jun 2024 05:00:00")
    add("date-plus1400", Date="Sat, 1 Jun 2024 20:00:00 +1400")
    add("date-minus1200", Date="Fri, 31 May 2024 18:00:00 -1200")
    add("date-minus0000", Date="Sat, 1 Jun 2024 06:00:00 -0000")
    add("date-EST", Date="Sat, 1 Jun 2024 01:00:00 EST")
    add("date-PDT", Date="Fri, 31 May 2024 23:00:00 PDT")
    add("date-GMT", Date="Sat, 1 Jun 2024 06:00:00 GMT")
    add("date-UT", Date="Sat, 1 Jun 2024 06:00:00 UT")
    add("date-military-Z", Date="Sat, 1 Jun 2024 06:00:00 Z")
    add("date-military-A", Date="Sat, 1 Jun 2024 06:00:00 A")
    add("date-bad-zone", Date="Sat, 1 Jun 2024 06:30:00 +9960")
    add("date-comment-zone", Date="Sat, 1 Jun 2024 08:00:00 +0200 (CEST)")
    add("date-two-digit-year", Date="Sat, 1 Jun 24 06:00:00 +0000")
    add("date-three-digit-year", Date="Sat, 1 Jun 124 06:00:00 +0000")
    add("date-no-seconds", Date="1 Jun 2024 06:00 +0000")
    add("date-no-weekday", Date="1 Jun 2024 06:00:00 +0000")
    add("date-wrong-weekday", Date="Mon, 1 Jun 2024 06:00:00 +0000")
    add("date-lowercase", Date="sat, 1 jun 2024 06:00:00 +0000")
    add("date-1960", Date="Fri, 1 Jan 1960 00:00:00 +0000")
    add("date-2100", Date="Fri, 1 Jan 2100 00:00:00 +0000")
    add("date-bad-time", Date="Sat, 1 Jun 2024 25:61:00 +0000")
    add("date-same-instant-1", Date="Sat, 1 Jun 2024 12:00:00 +0200")
    add("date-same-instant-2", Date="Sat, 1 Jun 2024 10:00:00 +0000")
    add("date-folded", Date="Sat, 1 Jun 2024\n 06:00:01 +0000")
    # RFC 5256 FROM/TO/CC (addr-mailbox of the first address), RFC 5957 DISPLAY.
    add("addr-group-empty", From="undisclosed-recipients:;", To="undisclosed-recipients:;")
    add("addr-group", From="Team: zed@five.sort.test, amy@five.sort.test;",
        To="Crew: bob@five.sort.test;")
    add("addr-no-from", From=None, To=None)
    add("addr-empty-from", From="", To="")
    add("addr-comment-name", From="carol@six.sort.test (Carol Comment)")
    add("addr-quoted-local", From="\"van der Berg\"@six.sort.test")
    add("addr-route", From="Rout <@relay.sort.test:dave@six.sort.test>")
    add("addr-upper", From="DAVE@six.sort.test")
    add("addr-two", From="yan@six.sort.test, abe@six.sort.test",
        Cc="Ymir <ymir@six.sort.test>, Ada <ada@six.sort.test>")
    add("addr-empty-name", From="\"\" <eve@six.sort.test>", To="\"\" <eve@six.sort.test>")
    add("addr-ew-name", From="%s <fay@six.sort.test>" % ew("Ängström, Fay"),
        To="%s <gus@six.sort.test>" % ew("Øster Gus", "B"))
    add("addr-8bit-name", From="Ärger Hal <hal@six.sort.test>")
    add("addr-name-spaces", From="\"   \" <ivy@six.sort.test>")
    add("addr-no-at", From="justlocal", To="someone")
    add("addr-cc-only", Cc="aaron@seven.sort.test", To=None)
    add("addr-cc-empty", Cc="")
    add("addr-bad", From="<>", To="@@")
    # RFC 5256 REFERENCES. Each group has a subject word of its own.
    add("ref-a-root", Subject="mango one", **{"Message-ID": "<a1@ref.sort.test>"})
    add("ref-a-reply", Subject="Re: mango one", **{"Message-ID": "<a2@ref.sort.test>",
        "References": "<a1@ref.sort.test>"})
    add("ref-a-reply2", Subject="Re: mango one", **{"Message-ID": "<a3@ref.sort.test>",
        "References": "<a1@ref.sort.test> <a2@ref.sort.test>"})
    add("ref-a-truncated", Subject="Re: mango one", **{"Message-ID": "<a4@ref.sort.test>",
        "References": "<a3@ref.sort.test>"})
    add("ref-a-irt-only", Subject="Re: mango one", **{"Message-ID": "<a5@ref.sort.test>",
        "In-Reply-To": "<a2@ref.sort.test>"})
    add("ref-a-irt-garbage", Subject="mango one reply", **{"Message-ID": "<a6@ref.sort.test>",
        "In-Reply-To": "Anna's message of Sat 1 Jun <a5@ref.sort.test> (sent) <a1@ref.sort.test>"})
    add("ref-a-refs-invalid", Subject="mango reply", **{"Message-ID": "<a7@ref.sort.test>",
        "References": "not-an-id", "In-Reply-To": "<a1@ref.sort.test>"})
    add("ref-a-quoted", Subject="mango quoted", **{"Message-ID": "<a8@ref.sort.test>",
        "References": "<\"a1\"@ref.sort.test>"})
    add("ref-a-cfws", Subject="mango cfws", **{"Message-ID": "<a9@ref.sort.test>",
        "References": "<a1@ref.sort.test>\n (comment) <a2 @ ref.sort.test>"})
    add("ref-b-missing-parent-1", Subject="papaya two", **{"Message-ID": "<b1@ref.sort.test>",
        "References": "<gone-b@ref.sort.test>"})
    add("ref-b-missing-parent-2", Subject="Re: papaya two", **{"Message-ID":
        "<b2@ref.sort.test>", "References": "<gone-b@ref.sort.test>"})
    add("ref-c-missing-only-child", Subject="guava three", **{"Message-ID":
        "<c1@ref.sort.test>", "References": "<gone-c0@ref.sort.test> <gone-c@ref.sort.test>"})
    add("ref-d-dup-1", Subject="lychee four", **{"Message-ID": "<dup-d@ref.sort.test>"})
    add("ref-d-dup-2", Subject="lychee four again", **{"Message-ID": "<dup-d@ref.sort.test>"})
    add("ref-d-reply", Subject="Re: lychee four", **{"Message-ID": "<d3@ref.sort.test>",
        "References": "<dup-d@ref.sort.test>"})
    add("ref-e-loop-1", Subject="quince five", **{"Message-ID": "<e1@ref.sort.test>",
        "References": "<e2@ref.sort.test>"})
    add("ref-e-loop-2", Subject="quince five b", **{"Message-ID": "<e2@ref.sort.test>",
        "References": "<e1@ref.sort.test>"})
    add("ref-e-loop-3", Subject="quince five c", **{"Message-ID": "<e3@ref.sort.test>",
        "References": "<e1@ref.sort.test> <e3@ref.sort.test> <e2@ref.sort.test>"})
    add("ref-f-self", Subject="durian six", **{"Message-ID": "<f1@ref.sort.test>",
        "References": "<f1@ref.sort.test>"})
    add("ref-g-child-first", Subject="Re: feijoa seven", **{"Message-ID": "<g2@ref.sort.test>",
        "References": "<g1@ref.sort.test>"})
    add("ref-g-parent-later", Subject="feijoa seven", **{"Message-ID": "<g1@ref.sort.test>"})
    add("ref-h-case-1", Subject="salak eight", **{"Message-ID": "<H1@ref.sort.test>"})
    add("ref-h-case-2", Subject="salak eight b", **{"Message-ID": "<h2@ref.sort.test>",
        "References": "<h1@ref.sort.test>"})
    add("ref-i-conflict-1", Subject="pomelo nine", **{"Message-ID": "<i3@ref.sort.test>",
        "References": "<i1@ref.sort.test> <i2@ref.sort.test>"})
    add("ref-i-conflict-2", Subject="pomelo nine b", **{"Message-ID": "<i4@ref.sort.test>",
        "References": "<i9@ref.sort.test> <i2@ref.sort.test>"})
    add("ref-i-root", Subject="pomelo nine c", **{"Message-ID": "<i1@ref.sort.test>"})
    add("ref-j-no-msgid", Subject="Re: jambu ten", **{"Message-ID": None,
        "References": "<j1@ref.sort.test>"})
    add("ref-j-bad-msgid", Subject="jambu ten", **{"Message-ID": "j1-without-brackets"})
    add("ref-j-root", Subject="jambu ten", **{"Message-ID": "<j1@ref.sort.test>"})
    add("ref-k-subject-merge-1", Subject="rambutan eleven")
    add("ref-k-subject-merge-re", Subject="Re: rambutan eleven")
    add("ref-k-subject-merge-2", Subject="rambutan eleven")
    add("ref-l-both-replies-1", Subject="Re: longan twelve")
    add("ref-l-both-replies-2", Subject="Fwd: longan twelve")
    add("ref-m-dummy-merge-1", Subject="Re: sapote thirteen", **{"References":
        "<gone-m@ref.sort.test>"})
    add("ref-m-dummy-merge-2", Subject="Re: sapote thirteen", **{"References":
        "<gone-m@ref.sort.test>"})
    add("ref-m-plain", Subject="sapote thirteen")
    add("ref-n-dates-1", Subject="Re: carambola fourteen", Date="Sat, 8 Jun 2024 10:00:00 +0000",
        **{"Message-ID": "<n2@ref.sort.test>", "References": "<n1@ref.sort.test>"})
    add("ref-n-dates-2", Subject="Re: carambola fourteen", Date="Sat, 8 Jun 2024 09:00:00 +0000",
        **{"Message-ID": "<n3@ref.sort.test>", "References": "<n1@ref.sort.test>"})
    add("ref-n-dates-root", Subject="carambola fourteen", Date="Sat, 8 Jun 2024 11:00:00 +0000",
        **{"Message-ID": "<n1@ref.sort.test>"})
    add("ref-o-empty-subj-1", Subject="", **{"References": "<gone-o1@ref.sort.test>"})
    add("ref-o-empty-subj-2", Subject="Re:", **{"References": "<gone-o2@ref.sort.test>"})
    add("ref-p-long-root", Subject="tamarind fifteen", **{"Message-ID": "<p0@ref.sort.test>"})
    add("ref-p-long", Subject="tamarind fifteen chain", **{"Message-ID": "<p-end@ref.sort.test>",
        "References": " ".join(["<p0@ref.sort.test>"] +
                               ["<gone-p%d@ref.sort.test>" % k for k in range(1, 300)])})
    add("ref-q-deep-1", Subject="soursop sixteen", **{"Message-ID": "<q1@ref.sort.test>"})
    for k in range(2, 6):
        add("ref-q-deep-%d" % k, Subject="Re: soursop sixteen", **{
            "Message-ID": "<q%d@ref.sort.test>" % k,
            "References": " ".join("<q%d@ref.sort.test>" % j for j in range(1, k))})
    add("ref-q-branch", Subject="Re: soursop sixteen", **{"Message-ID": "<q9@ref.sort.test>",
        "References": "<q1@ref.sort.test> <q2@ref.sort.test>"})
    add("ref-r-dummy-chain", Subject="Re: cherimoya seventeen", **{
        "References": "<gone-r1@ref.sort.test> <gone-r2@ref.sort.test>"})
    add("ref-r-dummy-chain-2", Subject="Re: cherimoya seventeen", **{
        "References": "<gone-r1@ref.sort.test> <gone-r3@ref.sort.test>"})
    # ARRIVAL and SIZE ties: the same INTERNALDATE, the same size (the mailbox order decides).
    add("tie-arrival-1", _at=CASE_T0 + 3600 * 500, _body="same body\n")
    add("tie-arrival-2", _at=CASE_T0 + 3600 * 500, _body="same body\n")
    add("tie-arrival-3", _at=CASE_T0 + 3600 * 500, _body="same body\n")
    return c


def fold_refs(value):
    """A long References value folded at spaces (lines under 78 octets)."""
    out, line = [], ""
    for w in value.split(" "):
        if line and len(line) + 1 + len(w) > 76:
            out.append(line)
            line = w
        else:
            line = (line + " " + w) if line else w
    out.append(line)
    return "\n ".join(out)


def random_cases(n, seed):
    """n messages from a seeded generator mixing the same corners."""
    r = random.Random(seed)
    # (tag for the label, base subject)
    bases = [("budget", "budget plan"), ("apfel", "Äpfel und Birnen"),
             ("fi-ligature", "ﬁsh tank"), ("resume", "résumé draft"), ("naive", "naïve café"),
             ("naive-nfd", "nai\u0308ve cafe\u0301"), ("sharp-s", "Straße"), ("SS", "STRASSE"),
             ("Dz-digraph", "ǅemal"), ("sigma", "σίσυφος"), ("SIGMA", "ΣΊΣΥΦΟΣ"),
             ("fullwidth", "ＷＩＤＥ text"), ("wide", "wide text"), ("kiwi", "kiwi report"),
             ("blob", "[users]"), ("x", "x"), ("Zebra", "Zebra"), ("zebra", "zebra"),
             ("Lj-digraph", "ǈubljana"), ("Omega", "Ωmega"), ("omega", "ωmega"),
             ("roman-12", "Ⅻ chapters"), ("xii", "xii chapters"), ("emile", "émile"),
             ("Emile", "Émile"), ("I-dot", "İzmir"), ("izmir", "izmir"), ("Arger", "Ärger"),
             ("arger", "arger"), ("quarter", "¼ share"), ("1/4", "1/4 share")]
    prefixes = ["", "", "", "Re: ", "RE: ", "re:", "Fwd: ", "Fw: ", "FWD:", "Re[2]: ",
                "[list] ", "[list] Re: ", "Re: [list] ", "Re: Fwd: ", "[a][b] ", "Re:Re: ",
                "  ", "Aw: ", "Re :"]
    zones = ["+0000", "-0800", "+0530", "+1400", "-1200", "-0000", "EST", "EDT", "CST",
             "PDT", "GMT", "UT", "Z", "A", "M", "N", "Y", "", "+0100 (CET)", "-0330"]
    addrs = FROMS + ["undisclosed-recipients:;", "Zed <zed@nine.sort.test>",
                     "%s <q@nine.sort.test>" % ew("Ørjan Ås"), "x@nine.sort.test",
                     "\"Émile\" <emile@nine.sort.test>", "Émile <EMILE@nine.sort.test>",
                     "list: ann@nine.sort.test, ben@nine.sort.test;", ""]
    out = []
    ids = []
    t = CASE_T0 + 3600 * 1000
    for k in range(n):
        h = {}
        tags = []
        btag, base = r.choice(bases)
        tags.append(btag)
        subj = r.choice(prefixes) + base
        if r.random() < 0.1:
            subj = "[fwd: %s]" % subj
        if r.random() < 0.1:
            subj += r.choice([" (fwd)", " (FWD)", "(fwd) ", " (fwd) (fwd)"])
        x = r.random()
        if x < 0.2:
            subj = ew(subj, r.choice("QB"))
        elif x < 0.3:
            subj = " ".join(ew(w, "Q") if r.random() < 0.5 else w for w in subj.split(" "))
        h["Subject"] = subj
        sent = CASE_T0 + r.randint(-400, 400) * 86400 + r.randint(0, 86399)
        x = r.random()
        if x < 0.05:
            h["Date"] = None
            tags.append("no-date")
        elif x < 0.08:
            h["Date"] = r.choice(["soon", "Sat, 32 Foo 2024", "2024-06-01T10:00:00Z"])
            tags.append("bad-date")
        else:
            z = r.choice(zones)
            tags.append("zone=%s" % (z.split()[0] if z else "none"))
            tm = time.gmtime(sent)
            year = "%d" % tm.tm_year if r.random() > 0.05 else "%02d" % (tm.tm_year % 100)
            if len(year) == 2:
                tags.append("yy")
            h["Date"] = ("%s, %d %s %s %02d:%02d:%02d %s" % (
                ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][tm.tm_wday], tm.tm_mday,
                ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                 "Dec"][tm.tm_mon - 1], year, tm.tm_hour, tm.tm_min, tm.tm_sec, z)).rstrip()
        h["From"] = r.choice(addrs)
        h["To"] = r.choice(addrs) if r.random() < 0.9 else None
        h["Cc"] = r.choice(addrs) if r.random() < 0.4 else None
        x = r.random()
        if x < 0.05:
            mid = None
        elif x < 0.08 and ids:
            mid = r.choice(ids)                  # a duplicate Message-ID
        elif x < 0.10:
            mid = "rand%d-no-brackets" % k
        else:
            mid = "<rand%d@rnd.sort.test>" % k
            ids.append(mid)
        h["Message-ID"] = mid
        x = r.random()
        if x < 0.45:
            chain = []
            for _ in range(r.randint(1, 6)):
                if r.random() < 0.2 or not ids:
                    chain.append("<gone%d@rnd.sort.test>" % r.randint(0, n // 4))
                elif r.random() < 0.15:
                    chain.append("<rand%d@rnd.sort.test>" % r.randint(0, n - 1))  # may be later
                else:
                    chain.append(r.choice(ids))
            h["References"] = fold_refs(" ".join(chain))
            if r.random() < 0.5:
                h["In-Reply-To"] = chain[-1]
        elif x < 0.6 and ids:
            h["In-Reply-To"] = r.choice(ids) + (r.choice(["", " (some comment)",
                                                          " from bob"]) if r.random() < 0.3
                                                else "")
        step = r.choice([0, 0, 1, 37, 3600, 86400])
        t += step
        body = "".join("line %d of message %d\n" % (i, k) for i in range(r.randint(0, 40)))
        if r.random() < 0.1:
            body = "same size body\n"
        out.append(("rand#%d/%s" % (k + 1, "/".join(tags)), dict(h, _at=t, _body=body)))
    return out


def write_cases(path, seed, nrandom, handmade_too=True):
    """Write the cases mbox; return their labels, in order."""
    cases = (handmade() if handmade_too else []) + random_cases(nrandom, seed)
    labels = []
    with open(path, "wb") as out:
        for i, (name, h) in enumerate(cases):
            at = h.get("_at", CASE_T0 + 3600 * i)
            body = h.get("_body", "Case %s.\n" % name)
            label = name if name.startswith("rand#") else "case:" + name
            fields = {
                "Date": email.utils.formatdate(at + 1800, usegmt=False).replace("-0000",
                                                                              "+0000"),
                "From": FROMS[i % len(FROMS)],
                "To": FROMS[(i * 5 + 3) % len(FROMS)],
                "Subject": "case %s" % name,
                "Message-ID": "<case%d@sort.test>" % i,
            }
            for k, v in h.items():
                if not k.startswith("_"):
                    fields[k] = v
            lines = []
            for k in ["Date", "From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To",
                      "References"]:
                if fields.get(k) is not None:
                    v = fields[k]
                    if k == "References" and "\n" not in v and len(v) > 70:
                        v = fold_refs(v)
                    lines.append("%s:%s%s" % (k, " " if v else "", v))
            lines.append("X-Sort-Case: %s" % label)
            lines.append("MIME-Version: 1.0")
            lines.append("Content-Type: text/plain; charset=utf-8")
            lines.append("Content-Transfer-Encoding: 8bit")
            msg = ("\n".join(lines) + "\n\n" + body).encode("utf-8")
            out.write(b"From case@sort.test %s\n" % D.ctime(at).encode())
            out.write(H.mbox_quote(msg))
            out.write(b"\n")
            labels.append(label)
    return labels


# -- the script's own reading of the RFCs, shown as a hint next to the headers ---------------


def decode_words(raw):
    """RFC 2047 decoding of a header value as Python's email package does it."""
    try:
        parts = email.header.decode_header(raw)
    except Exception:
        return raw
    out = []
    for b, cs in parts:
        if isinstance(b, str):
            out.append(b)
            continue
        try:
            out.append(b.decode(cs or "utf-8", "strict") if cs not in (None, "unknown-8bit")
                       else b.decode("utf-8", "surrogateescape"))
        except (LookupError, UnicodeDecodeError):
            out.append(b.decode("latin-1"))
    return "".join(out)


_BLOB = re.compile(r"\[[^\[\]]*\] *")
_REFWD = re.compile(r"(re|fwd?) *(\[[^\[\]]*\] *)?:", re.I)


def base_subject(raw):
    """RFC 5256 2.1 steps (1)-(7); returns (base, is_reply)."""
    s = decode_words(raw) if raw is not None else ""
    s = re.sub(r"[\t\r\n]", " ", s)
    s = re.sub(r" +", " ", s)
    reply = False
    while True:
        while True:                                   # (2)
            if s.endswith(" "):
                s = s[:-1]
            elif s.lower().endswith("(fwd)"):
                s = s[:-5]
                reply = True
            else:
                break
        while True:                                   # (5) = repeat (3) and (4)
            changed = False
            while True:                               # (3)
                if s.startswith(" "):
                    s = s[1:]
                    changed = True
                    continue
                p = 0
                m = _BLOB.match(s, p)
                while m:
                    p = m.end()
                    m = _BLOB.match(s, p)
                m = _REFWD.match(s, p)
                if not m:
                    break
                s = s[m.end():]
                reply = changed = True
            m = _BLOB.match(s)                        # (4)
            if m and m.end() < len(s):
                s = s[m.end():]
                changed = True
            if not changed:
                break
        if len(s) >= 6 and s[:5].lower() == "[fwd:" and s.endswith("]"):   # (6)
            s = s[5:-1]
            reply = True
            continue
        return s, reply


def casemap(s):
    """RFC 5051 i;unicode-casemap key (Python's Unicode tables; simple titlecase where the
    full one is a single code point)."""
    out = []
    for ch in s:
        t = ch.title()
        if len(t) != 1:
            t = ch
        out.append(unicodedata.normalize("NFKD", t))
    return "".join(out)


def sent_date(raw):
    if raw is None:
        return None
    try:
        tt = email.utils.parsedate_tz(" ".join(raw.split()))
    except Exception:
        tt = None
    if not tt:
        return None
    try:
        return email.utils.mktime_tz(tt)
    except (OverflowError, ValueError):
        return None


# -- parsing answers ---------------------------------------------------------------------------


class Err(str):
    """A command that failed (tagged NO/BAD, or the server died)."""

    def __repr__(self):
        return "<%s>" % str(self)


def expand_set(text):
    """An ESEARCH sequence set in its order (a:b with a > b counts down)."""
    out = []
    if not text:
        return out
    for piece in text.split(","):
        a, _, b = piece.partition(":")
        a, b = int(a), int(b or a)
        out.extend(range(a, b + 1) if a <= b else range(a, b - 1, -1))
    return out


def parse_esearch(line):
    """{'MIN': n, 'MAX': n, 'COUNT': n, 'ALL': [...], 'PARTIAL': (range, [...]), 'UID': True}"""
    toks = line.split()
    out = {}
    i = 2
    if i < len(toks) and toks[i].startswith(b"("):
        while i < len(toks) and not toks[i].endswith(b")"):
            i += 1
        i += 1
    while i < len(toks):
        k = toks[i].decode("ascii", "replace").upper()
        if k == "UID":
            out["UID"] = True
            i += 1
        elif k == "PARTIAL" and i + 2 < len(toks):
            rng = toks[i + 1].lstrip(b"(").decode()
            val = toks[i + 2].rstrip(b")").decode()
            out["PARTIAL"] = (rng, [] if val.upper() == "NIL" else expand_set(val))
            i += 3
        elif k in ("MIN", "MAX", "COUNT") and i + 1 < len(toks):
            out[k] = int(toks[i + 1])
            i += 2
        elif k == "ALL" and i + 1 < len(toks):
            out["ALL"] = expand_set(toks[i + 1].decode())
            i += 2
        else:
            out.setdefault("?", []).append(k)
            i += 1
    return out


class Node:
    __slots__ = ("id", "kids")

    def __init__(self, id_):
        self.id = id_
        self.kids = []


def parse_threads(text):
    """The thread-lists of a THREAD response (bytes after 'THREAD') as trees of Node; a
    dummy (a list that starts with a nested list) has id None."""
    toks = re.findall(rb"\(|\)|\d+", text)
    pos = 0

    def parse_list():
        nonlocal pos
        # at "(" already consumed
        head = cur = None
        while pos < len(toks) and toks[pos].isdigit():
            n = Node(int(toks[pos]))
            pos += 1
            if cur is None:
                head = cur = n
            else:
                cur.kids.append(n)
                cur = n
        if cur is None:
            head = cur = Node(None)
        while pos < len(toks) and toks[pos] == b"(":
            pos += 1
            cur.kids.append(parse_list())
        if pos < len(toks) and toks[pos] == b")":
            pos += 1
        return head

    out = []
    while pos < len(toks):
        if toks[pos] == b"(":
            pos += 1
            out.append(parse_list())
        else:
            pos += 1
    return out


def thread_str(node, name=str):
    """The canonical thread-list text of a tree (RFC 5256 5)."""
    def members(n):
        if n.id is None:
            return "".join("(" + members(k) + ")" for k in n.kids)
        s = name(n.id)
        if len(n.kids) == 1:
            return s + " " + members(n.kids[0])
        if n.kids:
            return s + " " + "".join("(" + members(k) + ")" for k in n.kids)
        return s
    return "(" + members(node) + ")"


def thread_ids(node):
    out = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.id is not None:
            out.append(n.id)
        stack.extend(n.kids)
    return out


def thread_map(node, f):
    m = Node(None if node.id is None else f(node.id))
    m.kids = [thread_map(k, f) for k in node.kids]
    return m


def max_depth_below_root(node):
    """Depth of the deepest message under a thread's top (dummies not counted)."""
    best = 0
    stack = [(node, 0)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        for k in n.kids:
            stack.append((k, d + (1 if n.id is not None else 0)))
    return best


def lis_keep(seq):
    """Indices of one longest strictly increasing subsequence of seq."""
    tails, tails_i, prev = [], [], [None] * len(seq)
    for i, x in enumerate(seq):
        j = bisect.bisect_left(tails, x)
        if j == len(tails):
            tails.append(x)
            tails_i.append(i)
        else:
            tails[j] = x
            tails_i[j] = i
        prev[i] = tails_i[j - 1] if j > 0 else None
    out = set()
    i = tails_i[-1] if tails_i else None
    while i is not None:
        out.add(i)
        i = prev[i]
    return out


def moved_items(a, b):
    """The items of a (a list of distinct items) that one longest common order of a and b
    leaves out, and those only in a / only in b."""
    pb = {x: i for i, x in enumerate(b)}
    common = [x for x in a if x in pb]
    keep = lis_keep([pb[x] for x in common])
    moved = [x for i, x in enumerate(common) if i not in keep]
    sa = set(a)
    return moved, [x for x in a if x not in pb], [x for x in b if x not in sa]


# -- one server --------------------------------------------------------------------------------


class Side(D.Side):
    def start(self):
        self.conn = self.srv.start(timeout=15)
        st, line, u, _ = self.conn.command("SELECT INBOX", timeout=self.timeout)
        if st != "OK":
            raise H.ServerGone("SELECT INBOX: %s" % line.decode("utf-8", "replace"))
        self.count = H.exists_count(u)
        return self.count

    def run(self, text, lits):
        """(kind, value): kind SORT (list), ESEARCH (dict), THREAD (list of trees) or Err."""
        try:
            st, line, u, _ = self.conn.command(text, [x.encode() for x in lits],
                                               timeout=self.timeout)
        except (H.ServerGone, H.StepTimeout) as e:
            self.note_failure(text, e)
            self.restart()
            return Err(type(e).__name__)
        if st != "OK":
            return Err("%s %s" % (st, line.decode("utf-8", "replace")[:100]))
        sort, threads, es, raw = [], [], None, []
        for r in u:
            up = r[:12].upper()
            if up.startswith(b"* SORT"):
                sort.extend(int(x) for x in r[6:].split())
                raw.append(r)
            elif up.startswith(b"* THREAD"):
                threads.extend(parse_threads(r[8:]))
                raw.append(r)
            elif up.startswith(b"* ESEARCH"):
                es = parse_esearch(r)
                raw.append(r)
        self.last_raw = raw
        if es is not None:
            return es
        if b"THREAD" in text.upper().encode()[:12]:
            return threads
        return sort

    def uid_map(self):
        st, line, u, _ = self.conn.command("FETCH 1:* (UID)", timeout=self.timeout)
        out = {}
        for r in u:
            fi = H.fetch_items(H.parse_response(r))
            if fi and "UID" in fi[1]:
                out[int(fi[1]["UID"])] = fi[0]
        return out

    def search(self, crit, lits=()):
        try:
            st, line, u, _ = self.conn.command("SEARCH " + crit, [x.encode() for x in lits],
                                               timeout=self.timeout)
        except (H.ServerGone, H.StepTimeout) as e:
            self.note_failure("SEARCH " + crit, e)
            self.restart()
            return Err(type(e).__name__)
        if st != "OK":
            return Err("%s %s" % (st, line.decode("utf-8", "replace")[:60]))
        return sorted(H.search_result(u))

    def headers(self):
        """{seq: {field: value}} with INTERNALDATE, RFC822.SIZE and the header fields."""
        st, line, u, _ = self.conn.command(
            "FETCH 1:* (INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (%s)])" %
            " ".join(HEADER_FIELDS), timeout=self.timeout)
        out = {}
        for r in u:
            fi = H.fetch_items(H.parse_response(r))
            if not fi:
                continue
            seq, it = fi
            d = {"INTERNALDATE": (it.get("INTERNALDATE") or b"").decode("ascii", "replace"),
                 "RFC822.SIZE": (it.get("RFC822.SIZE") or b"").decode("ascii", "replace")}
            hdr = next((v for k, v in it.items() if k.startswith("BODY[HEADER.FIELDS")), b"")
            text = bytes(hdr or b"").replace(b"\r\n", b"\n")
            for m in re.finditer(rb"^([!-9;-~]+):[ \t]?(.*(?:\n[ \t].*)*)", text, re.M):
                name = m.group(1).decode("ascii").lower()
                for f in HEADER_FIELDS:
                    if f.lower() == name and f not in d:
                        d[f] = m.group(2).decode("utf-8", "surrogateescape")
            out[seq] = d
        return out


# -- the comparison ----------------------------------------------------------------------------


def command_keys(text):
    """The sort keys a SORT command names (for the report), or THREAD."""
    m = re.search(r"SORT (?:RETURN \([^)]*\) )?\(([^)]*)\)", text)
    if not m:
        return ["THREAD"]
    return [k for k in m.group(1).split() if k != "REVERSE"]


class Report:
    def __init__(self, args, rules, labels, sides):
        self.args = args
        self.rules = rules
        self.labels = labels
        self.A, self.B = sides
        self.unexplained = 0
        self.known = 0
        self.inconsistent = 0
        self.hdrs = None

    def label(self, seq):
        return self.labels[seq - 1] if 0 < seq <= len(self.labels) else "?"

    def header(self, seq, side=0):
        """Side A's header fields, INTERNALDATE and RFC822.SIZE of seq (side 1: B's)."""
        if self.hdrs is None:
            self.hdrs = []
            for s in (self.A, self.B):
                try:
                    self.hdrs.append(s.headers())
                except (H.ServerGone, H.StepTimeout):
                    self.hdrs.append({})
        return self.hdrs[side].get(seq, {})

    def describe(self, seq, fields):
        h = self.header(seq)
        out = []
        for f in fields:
            v = h.get(f)
            if v is None:
                out.append("%s: (none)" % f)
                continue
            v = " ".join(v.split("\n"))
            if len(v) > 90:
                v = v[:60] + " ... " + v[-25:]
            out.append("%s: %r" % (f, v))
            vb = self.header(seq, 1).get(f)
            if f in ("INTERNALDATE", "RFC822.SIZE") and vb != h.get(f):
                out.append("(%s: %r)" % (self.B.name, vb))
            if f == "Subject":
                b, rep = base_subject(h.get("Subject"))
                key = casemap(b)
                out.append("[base %r%s%s]" % (
                    b if len(b) < 60 else b[:57] + "...", ", reply" if rep else "",
                    (", key %s" % ascii(key[:40])) if not key.isascii() else ""))
            elif f == "Date":
                t = sent_date(h.get("Date"))
                out.append("[%s]" % (time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
                                     if t is not None else "no date: INTERNALDATE"))
        return "  ".join(out)

    def excused(self, item, seqs):
        """{seq: rule} for the messages of seqs that a SORT: rule for item names."""
        out = {}
        for s in seqs:
            label = self.label(s)
            r = next((r for r in self.rules if glob_any(r["item"], item)
                      and glob_any(r["msg"], label)), None)
            if r is not None:
                out[s] = r
        return out

    def verdict(self, exc, involved, equal_without):
        """The tag of a difference: known when the answers agree once the excused messages
        are left out (equal_without) and an excused message is involved."""
        used = {exc[s]["line"]: exc[s] for s in involved if s in exc}
        if equal_without and used:
            for r in used.values():
                r["used"] += 1
            self.known += 1
            return "known (%s)" % ", ".join("known.txt:%d" % n for n in sorted(used))
        self.unexplained += 1
        return "DIFF"

    def show_list(self, lst, at, width=6):
        lo = max(0, at - 2)
        s = " ".join(("[%d]=%d" % (i + 1, x)) if i == at else str(x)
                     for i, x in enumerate(lst[lo:lo + width], lo))
        return ("... " if lo else "") + s + (" ..." if lo + width < len(lst) else "")

    def sort_diff(self, text, va, vb, what=None, item_text=None, tag=None):
        """Report a difference of two ordered lists of message numbers; returns the tag."""
        item = "SORT:" + (item_text or text)
        exc = self.excused(item, set(va) | set(vb))
        ra = [x for x in va if x not in exc]
        rb = [x for x in vb if x not in exc]
        moved, only_a, only_b = moved_items(va, vb)
        if tag is None:
            tag = self.verdict(exc, moved + only_a + only_b, ra == rb)
        if tag != "DIFF" and not self.args.verbose:
            return tag
        at = next((i for i in range(min(len(va), len(vb))) if va[i] != vb[i]),
                  min(len(va), len(vb)))
        if tag == "DIFF" and exc:
            # what is left once the excused messages are out
            moved, only_a, only_b = moved_items(ra, rb)
        involved = moved + only_a + only_b
        print("%s %s%s: %d and %d messages, first differ at position %d; %d moved, %d only "
              "%s, %d only %s%s" % (tag, text, " (%s)" % what if what else "",
                                    len(va), len(vb), at + 1, len(moved), len(only_a),
                                    self.A.name, len(only_b), self.B.name,
                                    "; %d excused by known.txt left out" % len(exc)
                                    if tag == "DIFF" and exc else ""))
        print("    %s: %s\n    %s: %s" % (self.A.name, self.show_list(va, at), self.B.name,
                                          self.show_list(vb, at)))
        fields = []
        for k in command_keys(text):
            for f in KEY_FIELDS.get(k, []):
                if f not in fields:
                    fields.append(f)
        pa = {x: i for i, x in enumerate(va)}
        pb = {x: i for i, x in enumerate(vb)}
        limit = None if self.args.verbose else 8
        for s in involved[:limit]:
            print("    #%d %s  %s" % (s, self.label(s), self.describe(s, fields)))
            for name, lst, pos in ((self.A.name, va, pa), (self.B.name, vb, pb)):
                if s not in pos:
                    print("        %s: not in its answer" % name)
                    continue
                i = pos[s]
                nb = []
                for j, rel in ((i - 1, "after"), (i + 1, "before")):
                    if 0 <= j < len(lst):
                        nb.append("%s #%d %s (%s)" % (rel, lst[j], self.label(lst[j]),
                                                      self.describe(lst[j], fields)))
                print("        %s: position %d, %s" % (name, i + 1, "; ".join(nb) or
                                                       "alone"))
        if limit is not None and len(involved) > limit:
            print("    ... %d more (-v shows all)" % (len(involved) - limit))
        return tag

    def thread_diff(self, text, ta, tb):
        item = "SORT:" + text
        exc = self.excused(item, {x for t in ta + tb for x in thread_ids(t)})
        sa = [thread_str(t) for t in ta]
        sb = [thread_str(t) for t in tb]
        seta, setb = set(sa), set(sb)
        involved = set()
        for t, s in list(zip(ta, sa)) + list(zip(tb, sb)):
            if s not in (setb if t in ta else seta):
                involved |= set(thread_ids(t))
        moved, _, _ = moved_items(sa, sb)
        for s in moved:
            involved |= set(thread_ids(ta[sa.index(s)]))

        def without(ts):
            return [thread_str(t) for t in ts if not set(thread_ids(t)) & set(exc)]
        tag = self.verdict(exc, sorted(involved), without(ta) == without(tb))
        if tag != "DIFF" and not self.args.verbose:
            return
        if tag == "DIFF" and exc:
            ta = [t for t in ta if not set(thread_ids(t)) & set(exc)]
            tb = [t for t in tb if not set(thread_ids(t)) & set(exc)]
            sa = [thread_str(t) for t in ta]
            sb = [thread_str(t) for t in tb]
            seta, setb = set(sa), set(sb)
            moved, _, _ = moved_items(sa, sb)
        only_a = [t for t, s in zip(ta, sa) if s not in setb]
        only_b = [t for t, s in zip(tb, sb) if s not in seta]
        print("%s %s: %d and %d threads; %d threads only %s, %d only %s, %d in another order%s"
              % (tag, text, len(ta), len(tb), len(only_a), self.A.name, len(only_b),
                 self.B.name, len(moved), "; threads with a message excused by known.txt "
                 "left out" if tag == "DIFF" and exc else ""))
        limit = None if self.args.verbose else 6
        shown = set()
        groups = 0
        for t in only_a:
            ids = set(thread_ids(t))
            if ids & shown:
                continue
            other = [u for u in only_b if ids & set(thread_ids(u))]
            near = set(ids).union(*[set(thread_ids(o)) for o in other])
            mine = [u for u in only_a if set(thread_ids(u)) & near] or [t]
            groups += 1
            msgs = sorted(set().union(*[set(thread_ids(u)) for u in mine + other]))
            shown |= set(msgs)
            if limit is not None and groups > limit:
                continue
            print("    %s: %s" % (self.A.name, " ".join(thread_str(u) for u in mine)))
            print("    %s: %s" % (self.B.name, " ".join(thread_str(u) for u in other) or
                                  "(these messages are in threads of the same shape)"))
            for s in msgs[:None if limit is None else 12]:
                print("        #%d %s  %s" % (s, self.label(s), self.describe(s, THREAD_FIELDS)))
        for t in only_b:
            if set(thread_ids(t)) & shown:
                continue
            groups += 1
            shown |= set(thread_ids(t))
            if limit is not None and groups > limit:
                continue
            print("    %s: (nothing alike)\n    %s: %s" % (self.A.name, self.B.name,
                                                         thread_str(t)))
        for s in moved[:limit]:
            print("    thread %s: %s at %d, %s at %d" % (s, self.A.name, sa.index(s) + 1,
                                                      self.B.name, sb.index(s) + 1))
            for x in thread_ids(ta[sa.index(s)])[:limit and 4]:
                print("        #%d %s  %s" % (x, self.label(x), self.describe(x, THREAD_FIELDS)))
        if limit is not None and groups > limit:
            print("    ... %d more groups (-v shows all)" % (groups - limit))

    def failed(self, text, va, vb):
        self.unexplained += 1
        print("DIFF %s\n    %s: %s\n    %s: %s" % (text, self.A.name, short(va), self.B.name,
                                                 short(vb)))

    def self_check(self, side, what, ok, detail=""):
        if ok:
            return
        self.inconsistent += 1
        self.unexplained += 1
        print("INCONSISTENT %s %s%s" % (side.name, what, (": " + detail) if detail else ""))


def glob_any(pattern, text):
    """diff.py's glob (* and ?), with alternatives separated by |."""
    return any(D.glob_match(p, text) for p in pattern.split("|"))


def short(v):
    if isinstance(v, Err):
        return repr(v)
    s = str(v)
    return s if len(s) < 200 else s[:197] + "..."


def to_seq(v, umap):
    """The same answer with UIDs turned into message numbers (umap: uid -> seq)."""
    if isinstance(v, Err) or umap is None:
        return v
    if isinstance(v, dict):
        out = dict(v)
        for k in ("MIN", "MAX"):
            if k in out:
                out[k] = umap.get(out[k], -out[k])
        if "ALL" in out:
            out["ALL"] = [umap.get(x, -x) for x in out["ALL"]]
        if "PARTIAL" in out:
            out["PARTIAL"] = (out["PARTIAL"][0], [umap.get(x, -x) for x in out["PARTIAL"][1]])
        return out
    if v and isinstance(v[0], Node):
        return [thread_map(t, lambda x: umap.get(x, -x)) for t in v]
    return [umap.get(x, -x) for x in v]


def is_uid(text):
    return text.upper().startswith("UID ")


def plain_sort_of(text):
    """SORT RETURN (...) prog ... -> SORT prog ... (what ESORT's answers must agree with)."""
    return re.sub(r"SORT RETURN \([^)]*\) ", "SORT ", text)


def criteria_of(text):
    m = re.match(r"(?:UID )?THREAD \S+ (\S+) (.*)$", text)
    return (m.group(1), m.group(2)) if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", default="dovecot", choices=["dovecot", "imapd"])
    ap.add_argument("--b", default="imapd", choices=["dovecot", "imapd"])
    ap.add_argument("--imapd-cmd", default="imapd/imapd --preauth --config {config}")
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "tests", "fixtures", "messages"))
    ap.add_argument("--generated", type=int, default=300)
    ap.add_argument("--random", type=int, default=400, help="seeded random cases")
    ap.add_argument("--seed", type=int, default=5256)
    ap.add_argument("--no-cases", action="store_true", help="leave the hand-made cases out")
    ap.add_argument("--mbox", action="append", default=[])
    ap.add_argument("--write-cases", metavar="FILE", help="also keep the cases mbox here")
    ap.add_argument("--known", default=os.path.join(HERE, "known.txt"))
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    os.chdir(ROOT)
    t_start = time.monotonic()

    rules = [r for r in D.load_known(args.known) if r["item"].startswith("SORT:")]
    H.remove_stale_accounts()
    account = H.Account()
    sides = []
    try:
        cases = os.path.join(account.top, "sortcases.mbox")
        case_labels = write_cases(cases, args.seed, args.random, not args.no_cases)
        if args.write_cases:
            shutil.copy(cases, args.write_cases)
        mbox = os.path.join(account.top, "sort.mbox")
        labels = D.build_mbox(mbox, args.fixtures, args.generated, [cases] + args.mbox)
        # build_mbox names the extra file's messages sortcases.mbox#k: use the case names
        k0 = next((i for i, x in enumerate(labels) if x.startswith("sortcases.mbox#")), None)
        if k0 is not None:
            labels[k0:k0 + len(case_labels)] = case_labels
        names = [args.a + ("-a" if args.a == args.b else ""),
                 args.b + ("-b" if args.a == args.b else "")]
        for name, kind in zip(names, (args.a, args.b)):
            sides.append(Side(name, kind, account, mbox, args.imapd_cmd, args.timeout))
        counts = []
        for s in sides:
            try:
                counts.append(s.start())
            except (H.ServerGone, H.StepTimeout) as e:
                print("%s: cannot start or select: %s" % (s.name, e))
                return 2
        A, B = sides
        rep = Report(args, rules, labels, sides)
        if counts[0] != counts[1] or counts[0] != len(labels):
            print("DIFF EXISTS: %s=%s %s=%s (mbox has %d messages)" % (
                A.name, counts[0], B.name, counts[1], len(labels)))
            rep.unexplained += 1
        print("comparing SORT and THREAD on %d messages: %s vs %s" % (min(counts), A.name,
                                                                    B.name))
        umaps = [s.uid_map() for s in sides]
        for s, um in zip(sides, umaps):
            if sorted(um.values()) != list(range(1, s.count + 1)):
                print("ERROR %s: FETCH 1:* (UID) does not cover every message" % s.name)
                rep.unexplained += 1
        answers = [{}, {}]
        for text, lits in COMMANDS:
            shown = text.replace("{}", "%s") % tuple('"%s"' % x for x in lits) if lits \
                else text
            raw = [s.run(text, lits) for s in sides]
            vals = [to_seq(v, um if is_uid(text) else None) for v, um in zip(raw, umaps)]
            for k in (0, 1):
                answers[k][shown] = vals[k]
            va, vb = vals
            if args.verbose:
                print("%s -> %s" % (shown, short(raw[0]) if isinstance(raw[0], Err)
                                    else "%d items" % len(raw[0])))
            if isinstance(va, Err) or isinstance(vb, Err):
                if isinstance(va, Err) and isinstance(vb, Err):
                    print("BOTH FAILED %s\n    %s: %r\n    %s: %r" % (shown, A.name, va, B.name,
                                                                      vb))
                    rep.unexplained += 1
                else:
                    rep.failed(shown, va, vb)
                continue
            if isinstance(va, dict):
                if {k: v for k, v in va.items() if k != "UID"} == \
                        {k: v for k, v in vb.items() if k != "UID"}:
                    continue
                # ESORT: judged by the plain SORT of the same program and criteria (each
                # server's ESORT agrees with its own SORT: the self-checks below)
                ptext = plain_sort_of(shown)
                plain = []
                for k, side in enumerate(sides):
                    if ptext not in answers[k]:
                        answers[k][ptext] = to_seq(side.run(plain_sort_of(text), lits),
                                                   umaps[k] if is_uid(text) else None)
                    plain.append(answers[k][ptext])
                if any(isinstance(x, Err) for x in plain):
                    rep.failed(ptext, *plain)
                    continue
                if plain[0] == plain[1]:
                    tag = "DIFF"
                    rep.unexplained += 1
                else:
                    tag = rep.sort_diff(shown, plain[0], plain[1], "the plain SORT " + ptext,
                                        item_text=shown)
                if tag != "DIFF" and not args.verbose:
                    continue
                for key in sorted(set(va) | set(vb)):
                    x, y = va.get(key), vb.get(key)
                    if x == y:
                        continue
                    if key == "PARTIAL" and x and y and x[0] == y[0]:
                        x, y = x[1], y[1]
                    print("%s %s: ESEARCH %s%s\n    %s: %s\n    %s: %s" % (
                        tag, shown, key, "" if plain[0] != plain[1] else
                        " (the plain SORTs agree)", A.name, short(x), B.name, short(y)))
                continue
            elif va and isinstance(va[0], Node) or vb and isinstance(vb[0], Node) or \
                    "THREAD" in text:
                if [thread_str(t) for t in va] != [thread_str(t) for t in vb]:
                    rep.thread_diff(shown, va, vb)
            elif va != vb:
                rep.sort_diff(shown, va, vb)

        # each server against itself
        for k, side in enumerate(sides):
            ans = answers[k]
            for text, v in ans.items():
                if isinstance(v, Err):
                    continue
                if text.startswith("UID SORT") and "RETURN" not in text:
                    plain = ans.get(text[4:])
                    if plain is not None and not isinstance(plain, Err):
                        rep.self_check(side, "%s = %s under UIDs (RFC 5256 3)" % (text,
                                                                                  text[4:]),
                                       plain == v)
                if isinstance(v, dict):
                    plain_text = plain_sort_of(text)
                    plain = ans.get(plain_text)
                    if plain is None:
                        plain = side.run(plain_text, [])
                        plain = to_seq(plain, umaps[k] if is_uid(text) else None)
                    if isinstance(plain, Err):
                        continue
                    ret = re.search(r"RETURN \(([^)]*)\)", text).group(1).split()
                    want = {}
                    if not ret or "ALL" in ret:
                        want["ALL"] = plain if plain else None
                    if "COUNT" in ret:
                        want["COUNT"] = len(plain)
                    if "MIN" in ret and plain:
                        want["MIN"] = plain[0]
                    if "MAX" in ret and plain:
                        want["MAX"] = plain[-1]
                    m = re.search(r"PARTIAL (\d+):(\d+)", text)
                    if m:
                        lo, hi = int(m.group(1)), int(m.group(2))
                        # NIL (nothing in the range) is an empty list here (RFC 5267 4.4)
                        want["PARTIAL"] = ("%d:%d" % (lo, hi), plain[lo - 1:hi])
                    got = {x: y for x, y in v.items() if x != "UID"}
                    if got.get("ALL") == []:
                        got["ALL"] = None
                    want = {x: y for x, y in want.items() if y is not None}
                    got = {x: y for x, y in got.items() if y is not None}
                    for key in sorted(set(want) | set(got)):
                        rep.self_check(side, "%s: %s agrees with %s (RFC 5267 3.1, 4.4)" % (
                            text, key, plain_text), want.get(key) == got.get(key),
                            "%s, want %s" % (short(got.get(key)), short(want.get(key))))
                if "THREAD" in text:
                    cr = criteria_of(text)
                    if cr:
                        found = side.search("CHARSET %s %s" % cr)
                        if not isinstance(found, Err):
                            got = sorted(x for t in v for x in thread_ids(t))
                            rep.self_check(side, "%s names exactly what SEARCH finds" % text,
                                           got == found, "%d against %d" % (len(got),
                                                                            len(found)))
                    if "ORDEREDSUBJECT" in text:
                        deep = [t for t in v if max_depth_below_root(t) > 1]
                        rep.self_check(side, "%s has no grandchildren (RFC 5256 3)" % text,
                                       not deep, " ".join(thread_str(t) for t in deep[:3]))

        print("\nsummary: %d messages, %d commands; %d unexplained difference(s), %d known, "
              "%d self-check failure(s); %.1f s" % (
                  min(counts), len(COMMANDS), rep.unexplained, rep.known, rep.inconsistent,
                  time.monotonic() - t_start))
        for s in sides:
            if s.failures:
                print("  %s died or hung %d time(s); see the ERROR lines" % (s.name, s.failures))
                rep.unexplained += 1
        for r in rules:
            if r["used"]:
                print("  known.txt:%d explains %d: %s %s" % (r["line"], r["used"], r["item"],
                                                          r["msg"]))
            elif args.verbose:
                print("  known.txt:%d matched nothing (%s %s)" % (r["line"], r["item"],
                                                               r["msg"]))
        return 0 if rep.unexplained == 0 else 1
    finally:
        for s in sides:
            s.stop()
        if os.environ.get("DIFF_KEEP_LOGS"):
            for s in sides:
                shutil.copy(s.srv.log + ".stderr", "/tmp/sort-%s.stderr" % s.name)
        account.cleanup()


if __name__ == "__main__":
    sys.exit(main())
