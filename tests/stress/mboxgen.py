"""Deterministic messages for the stress run.

Every message the harness puts into the mailbox (the initial mbox, APPENDs, deliveries) comes
from Gen, so the harness knows its exact bytes.  Each has a unique Message-ID (the key the
model tracks messages by) and a unique token in a header and in the body.

Rules that keep "the bytes put in" and "the bytes a server shows" comparable:
- LF line ends here; what a client fetches is the same with CRLF;
- no body line begins with "From " (an mbox writer would quote it); the initial mailbox has
  lines that are already quoted (">From "), which stay as they are;
- no header the servers hide (X-UID, Status, X-Status, X-Keywords, X-IMAPbase, X-IMAP,
  Content-Length), no bare CR, and the last line is never empty.
"""

import base64
import math
import random
import time

WORDS = ("the of and to in is for on that with as this by be are at it or an was have not "
         "but we they will all can one more about which their has been would there what "
         "when up out if so some time into only other new could also these after first "
         "way years work any may well back over just such meeting report budget server "
         "release patch schedule invoice review draft notes kernel backup mailbox printer "
         "network cluster storage quota upgrade config deadline project minutes agenda "
         "proposal contract figures summary question weekend travel lunch coffee office "
         "library course lecture exam thanks please regards tomorrow yesterday today "
         "morning evening week month quarter holiday garden bicycle train ticket concert "
         "museum river mountain village weather forecast recipe soup bread cheese").split()
NAMES = ["Alice Abbott", "Bruno Berg", "Chiara Castellano", "Dmitri Dubois", "Elin Eklund",
         "Farid Fischer", "Greta Gallagher", "Hiroshi Hansen", "Ines Iwasaki", "Jonas Novak",
         "Kasia Kowalski", "Lars Lindqvist", "Mei Moreau", "Nadia Okafor", "Oskar Petrov",
         "Priya Rossi", "Quentin Schmidt", "Rosa Takahashi", "Sven Varga", "Zofia Xu"]
UNAMES = ["Jürgen Weiß", "Søren Søndergaard", "José Núñez", "Zoë Müller"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "corp.example"]
HIDDEN = (b"x-uid", b"status", b"x-status", b"x-keywords", b"x-imapbase", b"x-imap",
          b"content-length")

START = 1704067200          # 2024-01-01 UTC


def ctime(t):
    """The date of a From_ line: 'Mon Jan  1 00:00:00 2024'."""
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t))


def rfcdate(t):
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))


def ew_b(s):
    return "=?UTF-8?B?%s?=" % base64.b64encode(s.encode()).decode()


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.seed = seed
        self.n = 0

    def addr(self):
        r = self.r
        if r.random() < 0.15:
            name = r.choice(UNAMES)
            local = "user%d" % r.randint(1, 99)
            return "%s <%s@%s>" % (ew_b(name), local, r.choice(DOMAINS))
        name = r.choice(NAMES)
        local = name.lower().replace(" ", ".")
        if r.random() < 0.2:
            return "%s@%s" % (local, r.choice(DOMAINS))
        return "\"%s\" <%s@%s>" % (name, local, r.choice(DOMAINS))

    def line(self):
        r = self.r
        s = " ".join(r.choice(WORDS) for _ in range(r.randint(5, 13)))
        return s[0].upper() + s[1:] + r.choice([".", ".", ",", "?", ":"])

    def text(self, nbytes, quoted_from=False, eight=False):
        r = self.r
        out = []
        size = 0
        while size < nbytes:
            k = r.randint(1, 6)
            for _ in range(k):
                ln = self.line()
                if eight and r.random() < 0.2:
                    ln = ln.replace("a", "ä", 1).replace("o", "ø", 1)
                out.append(ln)
                size += len(ln) + 1
            out.append("")
            size += 1
        if quoted_from and out:
            out.insert(r.randrange(len(out)), ">From the archive: " + self.line())
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out) + "\n"

    def message(self, origin, t=None, size=None):
        """(message_id, bytes with LF line ends) for a new message.  origin is a short word
        that goes into the Message-ID (init, app, mda)."""
        r = self.r
        self.n += 1
        token = "%s-%d-%d-%08x" % (origin, self.seed, self.n, r.getrandbits(32))
        msgid = "<%s@stress.example>" % token
        if t is None:
            t = START + self.n * 3600
        if size is None:
            size = int(math.exp(r.gauss(7.95, 0.8)))
            size = max(300, min(size, 40000))
        h = []
        h.append("Received: from relay.example.net (relay.example.net [192.0.2.%d])\n"
                 "\tby mx.example.org with ESMTP id %X;\n\t%s" % (
                     r.randint(1, 254), r.getrandbits(40), rfcdate(t + 5)))
        h.append("Date: %s" % rfcdate(t))
        h.append("From: %s" % self.addr())
        if r.random() < 0.95:
            tos = [self.addr() for _ in range(r.randint(1, 3))]
            h.append("To: " + ",\n    ".join(tos))
        if r.random() < 0.2:
            h.append("Cc: %s" % self.addr())
        if r.random() < 0.97:
            subj = " ".join(r.choice(WORDS) for _ in range(r.randint(2, 9))).capitalize()
            k = r.random()
            if k < 0.1:
                subj = ew_b(subj + " – café")
            elif k < 0.2 and len(subj) > 20:
                cut = subj.find(" ", 12)
                if cut > 0:
                    subj = subj[:cut] + "\n " + subj[cut + 1:]
            h.append("Subject: %s" % subj)
        h.append(("Message-ID: " if r.random() < 0.7 else "Message-Id: ") + msgid)
        h.append("X-Stress-Token: %s" % token)
        if r.random() < 0.3:
            h.append("User-Agent: stress-gen/1.0")
        eight = r.random() < 0.1
        quoted = origin == "init" and r.random() < 0.1
        kind = r.random()
        body_text = self.text(size, quoted_from=quoted, eight=eight)
        body_text += "stress-token: %s\n" % token
        h.append("MIME-Version: 1.0")
        if kind < 0.6:
            if eight:
                h.append("Content-Type: text/plain; charset=utf-8")
                h.append("Content-Transfer-Encoding: 8bit")
            else:
                h.append("Content-Type: text/plain; charset=us-ascii")
            body = body_text
        elif kind < 0.8:
            b = "=_alt_%016x" % r.getrandbits(64)
            h.append("Content-Type: multipart/alternative;\n boundary=\"%s\"" % b)
            html = "".join("<p>%s</p>\n" % p for p in body_text.split("\n\n") if p.strip())
            body = ("This is a multi-part message in MIME format.\n\n--%s\n"
                    "Content-Type: text/plain; charset=utf-8\n"
                    "Content-Transfer-Encoding: 8bit\n\n%s\n--%s\n"
                    "Content-Type: text/html; charset=utf-8\n"
                    "Content-Transfer-Encoding: 8bit\n\n<html><body>\n%s</body></html>\n"
                    "--%s--\n" % (b, body_text, b, html, b))
        else:
            b = "=_mix_%016x" % r.getrandbits(64)
            h.append("Content-Type: multipart/mixed; boundary=\"%s\"" % b)
            raw = r.randbytes(r.randint(200, 3000))
            att = base64.encodebytes(raw).decode("ascii")
            body = ("--%s\nContent-Type: text/plain; charset=utf-8\n\n%s\n--%s\n"
                    "Content-Type: application/octet-stream; name=\"data-%d.bin\"\n"
                    "Content-Disposition: attachment; filename=\"data-%d.bin\"\n"
                    "Content-Transfer-Encoding: base64\n\n%s--%s--\n" % (
                        b, body_text, b, self.n, self.n, att, b))
        data = ("\n".join(h) + "\n\n" + body).encode("utf-8")
        check(data)
        return msgid.encode(), data

    def from_line(self, t):
        return ("From %s %s\n" % (self.r.choice(["alice@example.com", "bounce@example.org",
                                                 "MAILER-DAEMON"]), ctime(t))).encode()


def check(data):
    """Asserts the rules in the module docstring (a generator bug, not a server bug)."""
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")
    assert b"\r" not in data
    assert not data.startswith(b"From ") and b"\nFrom " not in data
    head = data.split(b"\n\n", 1)[0]
    for ln in head.split(b"\n"):
        if ln[:1] not in (b" ", b"\t"):
            assert ln.split(b":", 1)[0].strip().lower() not in HIDDEN, ln


def crlf(data):
    return data.replace(b"\n", b"\r\n")


def initial_mbox(gen, count):
    """(mbox bytes, [(message_id, content)]) for the initial INBOX."""
    out = []
    msgs = []
    for i in range(count):
        t = START + i * 3600
        mid, data = gen.message("init", t=t)
        msgs.append((mid, data))
        out.append(gen.from_line(t + 60) + data + b"\n")
    return b"".join(out), msgs
