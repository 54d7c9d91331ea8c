#!/usr/bin/python3
"""Write a realistic, deterministic mbox for imapd's benchmarks.

    gen-mbox.py [--seed N] [--messages N] [--manifest FILE.json] OUT.mbox

The same seed and count always give the same bytes (with the same Python minor version).
Messages average about 13 KB: most are small text mails, some carry base64 attachments up to a
few megabytes. The mix: text/plain (7bit, 8bit, quoted-printable), multipart/alternative,
multipart/mixed with attachments, forwards as message/rfc822, encoded-word subjects and
display names (Q and B, UTF-8 and ISO-8859-1), occasional raw 8-bit headers, group addresses,
Received chains, Message-ID, Date spread over several years. The file is written as Debian's
MDAs write mboxo: a `From sender ctime-date` line, the message with LF line ends, a blank line
after each message, and body lines that begin with "From " quoted as ">From ".

Known search answers: a phrase (PHRASE) in about 1% of message bodies, a subject word
(SUBJECT_WORD) in about 2% of subjects and a sender (SENDER) in about 3% of From fields. The
manifest (JSON) lists, 1-based in file order, the messages that carry each, so that SEARCH
benchmarks and tests have defined answers.
"""

import argparse
import base64
import json
import math
import random
import sys
import time

PHRASE = "periwinkle harbour ledger"
SUBJECT_WORD = "Quokkafest"
SENDER = "ottilie.brandvold@lantern.example.org"
SENDER_NAME = "Ottilie Brandvold"

FIRST = ["Alice", "Bruno", "Chiara", "Dmitri", "Elin", "Farid", "Greta", "Hiroshi", "Ines",
         "Jonas", "Kasia", "Lars", "Mei", "Nadia", "Oskar", "Priya", "Quentin", "Rosa",
         "Sven", "Tariq", "Ulla", "Viktor", "Wanda", "Xavier", "Yusuf", "Zofia", "Amaru",
         "Bea", "Cyrus", "Dagny", "Emeka", "Fiona", "Gunnar", "Halima", "Ivo", "Juno"]
LAST = ["Abbott", "Bergström", "Castellano", "Dubois", "Eklund", "Fischer", "Gallagher",
        "Hansen", "Iwasaki", "Jovanović", "Kowalski", "Lindqvist", "Moreau", "Novak",
        "Okafor", "Petrov", "Quiroga", "Rossi", "Schmidt", "Takahashi", "Urquhart",
        "Varga", "Weiß", "Xu", "Yilmaz", "Zimmermann", "Müller", "Søndergaard", "Núñez"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com",
           "lists.example.org", "uni.example.edu", "corp.example", "home.example.net"]
WORDS = ("the of and to in is for on that with as this by be are from at it or an was "
         "have not but we they will all can one more about which their has been would "
         "there what when up out if so some time into only other new could also these "
         "after first two way years work any may well back because over just such "
         "meeting report budget server release patch schedule invoice review draft notes "
         "kernel backup mailbox printer network cluster storage quota upgrade config "
         "deadline project minutes agenda proposal contract figures summary question "
         "weekend travel lunch coffee office building room library course lecture exam "
         "thanks please regards tomorrow yesterday today morning afternoon evening week "
         "month quarter office holiday garden bicycle train ticket concert museum river "
         "mountain village weather forecast recipe soup bread cheese apple orange plum").split()
SUBJECTS = ["Re: {w} {w2}", "{W} for next week", "Fwd: {w} {w2} {w3}", "{W} update",
            "Question about the {w}", "Minutes of the {w} meeting", "[{list}] {W} {w2}",
            "Re: Re: {w} and {w2}", "Your {w} {w2}", "{W}: {w2} {w3} ({n})",
            "Invoice {n}", "AW: {W} {w2}", "Reminder: {w} on {day}", "{W} {w2}?"]
LISTS = ["users", "devel", "announce", "staff", "club"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
ATTACH = [("application/pdf", "pdf"), ("image/jpeg", "jpg"), ("image/png", "png"),
          ("application/zip", "zip"), ("application/octet-stream", "bin"),
          ("application/vnd.oasis.opendocument.text", "odt")]
MAILERS = ["Mutt/2.2.9 (2022-11-12)", "Alpine 2.26 (DEB 649 2022-06-02)",
           "Mozilla Thunderbird 115.4.1", "Roundcube Webmail/1.6.5",
           "K-9 Mail for Android", "Apple Mail (2.3731.700.6)", "Evolution 3.46.4-2"]

START = 1609459200          # 2021-01-01 00:00:00 UTC
SPAN = 5 * 365 * 86400      # dates spread over five years, in file order


def ctime(t, off_min=0):
    """ctime-style date as From_ lines carry it: 'Thu Jan  7 09:05:03 2021'."""
    tm = time.gmtime(t + off_min * 60)
    return "%s %s %2d %02d:%02d:%02d %d" % (DAYS[tm.tm_wday], MONTHS[tm.tm_mon - 1],
                                            tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                                            tm.tm_year)


def rfcdate(t, off_min):
    tm = time.gmtime(t + off_min * 60)
    sign = "+" if off_min >= 0 else "-"
    a = abs(off_min)
    return "%s, %d %s %d %02d:%02d:%02d %s%02d%02d" % (
        DAYS[tm.tm_wday], tm.tm_mday, MONTHS[tm.tm_mon - 1], tm.tm_year, tm.tm_hour,
        tm.tm_min, tm.tm_sec, sign, a // 60, a % 60)


def qp_encode(text):
    """Quoted-printable body (RFC 2045 6.7) of UTF-8 text with soft line breaks."""
    out = []
    for line in text.split("\n"):
        enc = []
        for ch in line.encode("utf-8"):
            if ch == 0x3D or ch > 0x7E or (ch < 0x20 and ch != 0x09):
                enc.append("=%02X" % ch)
            else:
                enc.append(chr(ch))
        if enc and enc[-1] in (" ", "\t"):
            enc[-1] = "=%02X" % ord(enc[-1])
        cur = ""
        for tok in enc:
            if len(cur) + len(tok) > 75:
                out.append(cur + "=")
                cur = ""
            cur += tok
        out.append(cur)
    return "\n".join(out)


def ew_b(text, charset="UTF-8"):
    return "=?%s?B?%s?=" % (charset, base64.b64encode(text.encode(charset)).decode())


def ew_q(text, charset="UTF-8"):
    enc = []
    for ch in text.encode(charset):
        if ch == 0x20:
            enc.append("_")
        elif 0x30 <= ch <= 0x39 or 0x41 <= ch <= 0x5A or 0x61 <= ch <= 0x7A:
            enc.append(chr(ch))
        else:
            enc.append("=%02X" % ch)
    return "=?%s?Q?%s?=" % (charset, "".join(enc))


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        r = self.r
        # Pools built once so that per-message work is mostly joins and slices.
        self.lines = []
        for _ in range(6000):
            n = r.randint(6, 14)
            s = " ".join(r.choice(WORDS) for _ in range(n))
            if s.startswith("from "):
                s = "so " + s   # "From " openings come only from the injected lines below
            self.lines.append(s[0].upper() + s[1:] + r.choice([".", ".", ",", "?", ":"]))
        self.lines8 = [ln.replace("a", "ä", 1).replace("o", "ø", 1) for ln in self.lines[:800]]
        raw = r.randbytes(6 << 20)
        self.b64 = base64.encodebytes(raw)    # 76-column lines, LF ends
        self.b64_lines = len(self.b64) // 77
        self.people = []
        for i in range(600):
            f, la = r.choice(FIRST), r.choice(LAST)
            local = ("%s.%s" % (f, la)).lower().encode("ascii", "ignore").decode()
            local = "".join(c for c in local if c.isalnum() or c == ".")
            self.people.append((f + " " + la, "%s%d@%s" % (local, i % 7, r.choice(DOMAINS))))
        self.me = ("Robin Example", "robin@home.example.net")
        self.msgid_n = 0

    # -- pieces --------------------------------------------------------------------------
    def name_addr(self, person, style=None):
        r = self.r
        name, addr = person
        style = style if style is not None else r.random()
        if style < 0.08:
            return addr
        if style < 0.12:
            return "<%s>" % addr
        if not name.isascii():
            k = r.random()
            if k < 0.45:
                return "%s <%s>" % (ew_q(name), addr)
            if k < 0.75:
                return "%s <%s>" % (ew_b(name), addr)
            if k < 0.90:
                try:
                    return "%s <%s>" % (ew_q(name, "ISO-8859-1"), addr)
                except UnicodeEncodeError:
                    return "%s <%s>" % (ew_b(name), addr)
            return "\"%s\" <%s>" % (name, addr)     # raw 8-bit header, as some mailers do
        if r.random() < 0.5:
            return "\"%s\" <%s>" % (name, addr)
        return "%s <%s>" % (name, addr)

    def body_text(self, nlines, eight=False):
        r = self.r
        pool = self.lines8 if eight else self.lines
        out = []
        left = nlines
        while left > 0:
            k = min(left, r.randint(2, 7))
            out.extend(r.choices(pool, k=k))
            out.append("")
            left -= k
        if r.random() < 0.15:
            # Lines that an mbox writer must quote; some already quoted in the original.
            out.insert(r.randrange(len(out)), r.choice([
                "From the desk of the " + r.choice(WORDS) + " committee:",
                "From what I remember, " + r.choice(self.lines),
                ">From an earlier mail: " + r.choice(self.lines),
                "From here on it gets " + r.choice(WORDS) + "."]))
        if r.random() < 0.4:
            out.append("-- ")
            out.append(r.choice(FIRST))
        return "\n".join(out) + "\n"

    def text_len(self):
        # Log-normal line count: median ~25 lines, a long tail of long mails.
        return max(1, min(1500, int(math.exp(self.r.gauss(3.2, 0.9)))))

    def attachment(self, boundary):
        r = self.r
        ctype, ext = r.choice(ATTACH)
        nbytes = int(math.exp(r.gauss(9.5, 1.25)))
        nbytes = max(300, min(nbytes, 3 << 20))
        nl = max(1, nbytes // 57)
        start = r.randrange(0, self.b64_lines - nl) if nl < self.b64_lines else 0
        data = self.b64[start * 77:(start + nl) * 77]
        if nl >= self.b64_lines:
            reps = nl // self.b64_lines + 1
            data = (self.b64 * reps)[:nl * 77]
        stem = r.choice(["report", "scan", "photo", "minutes", "invoice", "slides", "data"])
        fname = "%s-%d.%s" % (stem, r.randint(1, 999), ext)
        k = r.random()
        if k < 0.1:
            disp = "attachment;\n filename*=UTF-8''%s%%C3%%A9-%s" % (stem, fname)
            ct = "%s;\n name=\"%s\"" % (ctype, fname)
        elif k < 0.2:
            enc = ew_q("Übersicht " + fname)
            disp = "attachment;\n filename=\"%s\"" % enc
            ct = "%s; name=\"%s\"" % (ctype, enc)
        else:
            disp = "attachment; filename=\"%s\"" % fname
            ct = "%s; name=\"%s\"" % (ctype, fname)
        return ("--%s\nContent-Type: %s\nContent-Disposition: %s\n"
                "Content-Transfer-Encoding: base64\n\n" % (boundary, ct, disp)) + \
            data.decode("ascii")

    def html_of(self, text):
        paras = [p.replace("\n", "<br>\n") for p in text.split("\n\n") if p.strip()]
        return ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; "
                "charset=utf-8\"></head>\n<body>\n" +
                "".join("<p>%s</p>\n" % p.replace("&", "&amp;").replace("<br>", "<br>")
                        for p in paras) + "</body></html>\n")

    def boundary(self):
        return "=_%s_%d" % ("%016x" % self.r.getrandbits(64), self.r.randint(1, 99999))

    # -- one message ------------------------------------------------------------------
    def message(self, idx, total, marks):
        r = self.r
        t = START + int(SPAN * idx / max(1, total)) + r.randint(0, 3000)
        tz = r.choice([0, 60, 120, -300, -240, 330, 540, -420, 0, 60])
        sender = r.choice(self.people)
        mark_from = r.random() < 0.03
        mark_subj = r.random() < 0.02
        mark_body = r.random() < 0.01
        if mark_from:
            sender = (SENDER_NAME, SENDER)
            marks["sender"].append(idx + 1)
        if mark_subj:
            marks["subject"].append(idx + 1)
        if mark_body:
            marks["phrase"].append(idx + 1)

        h = []
        # Received chain, newest first, as MTAs prepend them.
        hops = r.randint(1, 5)
        rt = t + r.randint(5, 120)
        for hop in range(hops):
            ip = "%s.%d" % (r.choice(["192.0.2", "198.51.100", "203.0.113"]),
                            r.randint(1, 254))
            if hop == 0:
                h.append("Received: by home.example.net (Postfix, from userid 1000)\n"
                         "\tid %X; %s" % (r.getrandbits(40), rfcdate(rt, 0)))
            else:
                h.append("Received: from mx%d.%s (mx%d.%s [%s])\n\tby relay%d.%s (Postfix) "
                         "with ESMTPS id %X\n\tfor <%s>; %s" % (
                             hop, r.choice(DOMAINS), hop, r.choice(DOMAINS), ip, hop,
                             r.choice(DOMAINS), r.getrandbits(44), self.me[1],
                             rfcdate(rt, tz)))
            rt -= r.randint(1, 60)
        if r.random() < 0.5:
            h.append("Return-Path: <%s>" % sender[1])
        h.append("Date: %s" % rfcdate(t, tz))
        h.append("From: %s" % self.name_addr(sender, 0.5 if mark_from else None))
        rcpt = r.random()
        if rcpt < 0.05:
            h.append("To: undisclosed-recipients:;")
        elif rcpt < 0.09:
            h.append("To: %s: %s, %s;" % (r.choice(["Team", "Project group", "Friends"]),
                                         self.name_addr(r.choice(self.people)),
                                         self.name_addr(self.me)))
        else:
            tos = [self.me] + r.sample(self.people, r.randint(0, 3))
            r.shuffle(tos)
            h.append("To: " + ",\n    ".join(self.name_addr(p) for p in tos))
        if r.random() < 0.25:
            h.append("Cc: " + ", ".join(self.name_addr(p)
                                         for p in r.sample(self.people, r.randint(1, 4))))
        fill = {"w": r.choice(WORDS), "w2": r.choice(WORDS), "w3": r.choice(WORDS),
                "list": r.choice(LISTS), "n": r.randint(100, 99999), "day": r.choice(DAYS)}
        fill["W"] = fill["w"].capitalize()
        subj = r.choice(SUBJECTS).format(**fill)
        if mark_subj:
            subj = "%s %s" % (SUBJECT_WORD, subj)
        k = r.random()
        if not mark_subj and k < 0.06:
            subj = ew_q(subj + " – " + r.choice(["Grüße", "café", "naïve"]))
        elif not mark_subj and k < 0.10:
            subj = ew_b(subj + " ✓")
        elif not mark_subj and k < 0.11:
            subj = ew_q(subj + " für Sie", "ISO-8859-1")
        elif not mark_subj and k < 0.125:
            subj = subj + " – Grüße"        # raw 8-bit
        if len(subj) > 60 and r.random() < 0.5:
            cut = subj.rfind(" ", 0, 50)
            if cut > 0:
                subj = subj[:cut] + "\n " + subj[cut + 1:]
        h.append("Subject: " + subj)
        self.msgid_n += 1
        h.append("Message-ID: <%d.%x.%d@%s>" % (t, r.getrandbits(32), self.msgid_n,
                                               sender[1].split("@")[1]))
        if r.random() < 0.4:
            h.append("In-Reply-To: <%d.%x@%s>" % (t - r.randint(100, 90000),
                                                 r.getrandbits(32), r.choice(DOMAINS)))
        if r.random() < 0.5:
            h.append(("User-Agent: " if r.random() < 0.5 else "X-Mailer: ") +
                     r.choice(MAILERS))
        if fill["list"] and "[" in subj:
            h.append("List-Id: %s <%s.lists.example.org>" % (fill["list"], fill["list"]))
            h.append("Precedence: list")

        body_text = self.body_text(self.text_len(), eight=r.random() < 0.08)
        if mark_body:
            lines = body_text.split("\n")
            pos = r.randrange(len(lines))
            lines.insert(pos, "Please check the %s before Friday." % PHRASE)
            body_text = "\n".join(lines)

        kind = r.random()
        if kind < 0.55:
            h.append("MIME-Version: 1.0")
            if not body_text.isascii():
                h.append("Content-Type: text/plain; charset=utf-8")
                h.append("Content-Transfer-Encoding: 8bit")
            else:
                h.append("Content-Type: text/plain; charset=us-ascii; format=flowed")
            body = body_text
        elif kind < 0.62:
            h.append("MIME-Version: 1.0")
            h.append("Content-Type: text/plain; charset=UTF-8")
            h.append("Content-Transfer-Encoding: quoted-printable")
            # The phrase line is short and ASCII, so it stays whole on one encoded line.
            body = qp_encode(body_text.replace("the ", "thé ", 2))
        elif kind < 0.77:
            b = self.boundary()
            h.append("MIME-Version: 1.0")
            h.append("Content-Type: multipart/alternative;\n boundary=\"%s\"" % b)
            body = ("This is a multi-part message in MIME format.\n\n--%s\n"
                    "Content-Type: text/plain; charset=utf-8\n"
                    "Content-Transfer-Encoding: 7bit\n\n%s\n--%s\n"
                    "Content-Type: text/html; charset=utf-8\n"
                    "Content-Transfer-Encoding: quoted-printable\n\n%s\n--%s--\n" % (
                        b, body_text, b, qp_encode(self.html_of(body_text)), b))
        elif kind < 0.95:
            b = self.boundary()
            h.append("MIME-Version: 1.0")
            h.append("Content-Type: multipart/mixed; boundary=\"%s\"" % b)
            parts = ["--%s\nContent-Type: text/plain; charset=utf-8\n"
                     "Content-Transfer-Encoding: 8bit\n\n%s" % (b, body_text)]
            for _ in range(1 if r.random() < 0.8 else r.randint(2, 4)):
                parts.append(self.attachment(b))
            body = "\n".join(parts) + "\n--%s--\n" % b
        else:
            b = self.boundary()
            inner_from = r.choice(self.people)
            inner = ("Date: %s\nFrom: %s\nTo: %s\nSubject: %s\nMessage-ID: <%x.fwd@%s>\n"
                     "MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n%s" % (
                         rfcdate(t - r.randint(3600, 900000), tz),
                         self.name_addr(inner_from), self.name_addr(self.me),
                         r.choice(WORDS).capitalize() + " " + r.choice(WORDS),
                         r.getrandbits(48), inner_from[1].split("@")[1],
                         self.body_text(self.text_len())))
            h.append("MIME-Version: 1.0")
            h.append("Content-Type: multipart/mixed; boundary=\"%s\"" % b)
            body = ("--%s\nContent-Type: text/plain; charset=utf-8\n\n%s\n--%s\n"
                    "Content-Type: message/rfc822\n"
                    "Content-Disposition: inline\n\n%s\n--%s--\n" % (
                        b, body_text, b, inner, b))

        if r.random() < 0.02:
            h.append("X-Spam-Status: No, score=-1.9 required=5.0 tests=BAYES_00,\n"
                     "\tDKIM_SIGNED,DKIM_VALID,\n\tSPF_HELO_NONE,\n\tSPF_PASS\n"
                     "\tautolearn=ham autolearn_force=no version=3.4.6")
        # mboxo quoting, as Debian's MDAs write it: only lines that begin with "From ".
        if "\nFrom " in body or body.startswith("From "):
            body = body.replace("\nFrom ", "\n>From ")
            if body.startswith("From "):
                body = ">" + body
        env = "MAILER-DAEMON" if r.random() < 0.01 else sender[1]
        from_line = "From %s  %s\n" % (env, ctime(t + r.randint(30, 600))) \
            if env == "MAILER-DAEMON" else \
            "From %s %s\n" % (env, ctime(t + r.randint(30, 600)))
        if not body.endswith("\n"):
            body += "\n"
        return from_line + "\n".join(h) + "\n\n" + body + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="mbox file to write ('-' for stdout)")
    ap.add_argument("--messages", "-n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--manifest", help="write the known search answers here (JSON)")
    args = ap.parse_args()

    g = Gen(args.seed)
    marks = {"phrase": [], "subject": [], "sender": []}
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    total = 0
    batch = []
    blen = 0
    for i in range(args.messages):
        m = g.message(i, args.messages, marks).encode("utf-8")
        batch.append(m)
        blen += len(m)
        if blen > (8 << 20):
            out.write(b"".join(batch))
            total += blen
            batch, blen = [], 0
    out.write(b"".join(batch))
    total += blen
    if out is not sys.stdout.buffer:
        out.close()
    if args.manifest:
        with open(args.manifest, "w") as f:
            json.dump({"seed": args.seed, "messages": args.messages, "bytes": total,
                       "phrase": PHRASE, "phrase_msgs": marks["phrase"],
                       "subject_word": SUBJECT_WORD, "subject_msgs": marks["subject"],
                       "sender": SENDER, "sender_msgs": marks["sender"]}, f)
            f.write("\n")
    print("gen-mbox: %d messages, %d bytes (%.1f KB average), phrase in %d, subject word "
          "in %d, sender in %d" % (args.messages, total, total / 1024 / max(1, args.messages),
                                   len(marks["phrase"]), len(marks["subject"]),
                                   len(marks["sender"])), file=sys.stderr)


if __name__ == "__main__":
    main()
