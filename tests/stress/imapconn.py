"""One IMAP connection on a socket, and a parser for what servers send.

- Conn: reads whole responses (literals inline) from a connected socket, sends commands
  (synchronizing literals wait for "+", LITERAL+ ones do not), with a deadline per read.
- parse(): turns the bytes of one response into tokens.
- Response: one parsed server response (tagged, untagged, continuation) with the fields the
  checks use.

Standard library only. Nothing here knows about the stress model.
"""

import re
import socket
import time


class ServerGone(Exception):
    """The server closed the connection (or the socket failed)."""


class Timeout(Exception):
    """No complete response before the deadline."""


class Str(bytes):
    """A string (quoted or literal) as opposed to an atom."""


class Atom(bytes):
    """An atom or number; section specs stay attached (BODY[HEADER.FIELDS (A B)]<0>)."""


_LIT_END = re.compile(rb"~?\{(\d+)\+?\}$")


class Conn:
    """A connection whose server end is another process.  Not thread-safe: one owner."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.pos = 0
        self.ntag = 0
        self.bytes_in = 0
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    # -- reading -----------------------------------------------------------------------------
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise Timeout()
        self.sock.settimeout(min(left, 5.0))
        try:
            data = self.sock.recv(1 << 18)
        except socket.timeout:
            if time.monotonic() >= deadline:
                raise Timeout()
            return
        except OSError as e:
            raise ServerGone("recv: %s" % e)
        if not data:
            raise ServerGone("connection closed by the server")
        self.bytes_in += len(data)
        self.buf += data

    def read_raw(self, deadline):
        """One response as bytes, literals inline, without its final CRLF."""
        if self.pos > (1 << 20):
            # Only here, where no offset into buf is held.
            del self.buf[:self.pos]
            self.pos = 0
        start = self.pos
        scan = start
        seg = start
        while True:
            i = self.buf.find(b"\r\n", scan)
            if i < 0:
                scan = max(seg, len(self.buf) - 1)
                self._fill(deadline)
                continue
            m = _LIT_END.search(self.buf, max(seg, i - 24), i)
            if m:
                end = i + 2 + int(m.group(1))
                while len(self.buf) < end:
                    self._fill(deadline)
                seg = scan = end
                continue
            self.pos = i + 2
            return bytes(self.buf[start:i])

    def read(self, deadline):
        return Response(self.read_raw(deadline))

    def at_eof(self, timeout):
        """Waits up to timeout for the server to close; True if it did (data is kept)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except ServerGone:
            return True
        except Timeout:
            return False

    def pending(self):
        """Bytes received but not consumed."""
        return bytes(self.buf[self.pos:])

    # -- writing -----------------------------------------------------------------------------
    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ServerGone("send: %s" % e)

    def next_tag(self):
        self.ntag += 1
        return b"S%05d" % self.ntag


# ---------------------------------------------------------------------------------------------
# Parsing

def parse(data, pos=0):
    """Tokens of data from pos: Atom, Str, None for NIL, lists for parentheses.  Raises
    ValueError on malformed input (unbalanced brackets, bad literal)."""
    n = len(data)
    stack = [[]]
    while pos < n:
        c = data[pos]
        if c == 0x20:
            pos += 1
        elif c == 0x28:
            stack.append([])
            pos += 1
        elif c == 0x29:
            if len(stack) == 1:
                raise ValueError("unbalanced ')' at %d" % pos)
            lst = stack.pop()
            stack[-1].append(lst)
            pos += 1
        elif c == 0x22:
            out = bytearray()
            pos += 1
            while True:
                if pos >= n:
                    raise ValueError("unterminated quoted string")
                ch = data[pos]
                if ch == 0x22:
                    break
                if ch == 0x5C:
                    pos += 1
                    if pos >= n:
                        raise ValueError("bad escape")
                    ch = data[pos]
                out.append(ch)
                pos += 1
            pos += 1
            stack[-1].append(Str(out))
        elif c == 0x7B or (c == 0x7E and data[pos + 1:pos + 2] == b"{"):
            if c == 0x7E:
                pos += 1
            end = data.find(b"}", pos)
            if end < 0 or data[end + 1:end + 3] != b"\r\n":
                raise ValueError("bad literal at %d" % pos)
            cnt = int(data[pos + 1:end].rstrip(b"+"))
            start = end + 3
            if start + cnt > n:
                raise ValueError("short literal")
            stack[-1].append(Str(data[start:start + cnt]))
            pos = start + cnt
        else:
            start = pos
            depth = 0
            while pos < n:
                ch = data[pos]
                if ch == 0x5B:
                    depth += 1
                elif ch == 0x5D:
                    depth -= 1
                elif depth == 0 and ch in (0x20, 0x28, 0x29):
                    break
                pos += 1
            if depth != 0:
                raise ValueError("unbalanced '[' in atom")
            if pos == start:
                raise ValueError("unexpected byte %r at %d" % (bytes([c]), pos))
            atom = data[start:pos]
            stack[-1].append(None if atom.upper() == b"NIL" else Atom(atom))
    if len(stack) != 1:
        raise ValueError("unbalanced '('")
    return stack[0]


_CODE = re.compile(rb"\[([^\]]*)\]")


class Response:
    """One server response.

    kind: 'tagged', 'cont' (+), 'status' (* OK/NO/BAD/BYE/PREAUTH), 'num' (* n WORD ...),
    'data' (* WORD ...).  For tagged and status: status (OK/NO/BAD/BYE/PREAUTH), code (the
    text inside [...] at the start, upper-cased first word in code_name), text.  For num:
    number and word (EXISTS/RECENT/EXPUNGE/FETCH), and for FETCH the parsed item list in
    fetch (dict KEY -> value, keys upper-cased with white space collapsed)."""

    __slots__ = ("raw", "kind", "tag", "status", "code", "code_name", "text", "number", "word",
                 "fetch", "fetch_error", "rest")

    def __init__(self, raw):
        self.raw = raw
        self.tag = None
        self.status = None
        self.code = None
        self.code_name = None
        self.text = b""
        self.number = None
        self.word = None
        self.fetch = None
        self.fetch_error = None
        self.rest = b""
        if raw.startswith(b"+"):
            self.kind = "cont"
            return
        sp = raw.find(b" ")
        first = raw[:sp] if sp >= 0 else raw
        rest = raw[sp + 1:] if sp >= 0 else b""
        if first != b"*":
            self.kind = "tagged"
            self.tag = first
            self._status(rest)
            return
        sp = rest.find(b" ")
        w = (rest[:sp] if sp >= 0 else rest)
        after = rest[sp + 1:] if sp >= 0 else b""
        if w.isdigit():
            self.kind = "num"
            self.number = int(w)
            sp2 = after.find(b" ")
            self.word = (after[:sp2] if sp2 >= 0 else after).upper()
            self.rest = after[sp2 + 1:] if sp2 >= 0 else b""
            if self.word == b"FETCH":
                self._fetch(self.rest)
            return
        wu = w.upper()
        if wu in (b"OK", b"NO", b"BAD", b"BYE", b"PREAUTH"):
            self.kind = "status"
            self._status(rest)
            return
        self.kind = "data"
        self.word = wu
        self.rest = after

    def _status(self, rest):
        sp = rest.find(b" ")
        self.status = (rest[:sp] if sp >= 0 else rest).upper().decode("latin-1")
        text = rest[sp + 1:] if sp >= 0 else b""
        if text.startswith(b"["):
            m = _CODE.match(text)
            if m:
                self.code = m.group(1)
                self.code_name = self.code.split(b" ", 1)[0].upper().decode("latin-1")
                text = text[m.end():].lstrip(b" ")
        self.text = text

    def _fetch(self, rest):
        try:
            toks = parse(rest)
        except ValueError as e:
            self.fetch_error = str(e)
            return
        if len(toks) != 1 or not isinstance(toks[0], list) or len(toks[0]) % 2:
            self.fetch_error = "FETCH data is not one list of item/value pairs"
            return
        items = {}
        lst = toks[0]
        for k in range(0, len(lst), 2):
            key = lst[k]
            if not isinstance(key, Atom):
                self.fetch_error = "FETCH item name is not an atom"
                return
            name = b" ".join(bytes(key).upper().split())
            if name in items:
                self.fetch_error = "FETCH item %s twice" % name.decode("latin-1")
                return
            items[name] = lst[k + 1]
        self.fetch = items

    def short(self, limit=300):
        """The response for a report: the first line, literals shown as {N}, cut."""
        s = self.raw
        out = []
        pos = 0
        while True:
            i = s.find(b"\r\n", pos)
            if i < 0:
                out.append(s[pos:])
                break
            out.append(s[pos:i])
            m = _LIT_END.search(s, max(pos, i - 24), i)
            if not m:
                break
            cnt = int(m.group(1))
            out.append(b"<%d octets>" % cnt)
            pos = i + 2 + cnt
        text = b"".join(out).decode("utf-8", "replace")
        return text if len(text) <= limit else text[:limit] + "..."


def flag_list(value):
    """The flags of a FETCH FLAGS value (a parsed list) as a list of str, or None."""
    if not isinstance(value, list):
        return None
    out = []
    for f in value:
        if not isinstance(f, Atom):
            return None
        out.append(bytes(f).decode("latin-1"))
    return out


def canon_structure(v):
    """A comparable form of a parsed value: quoted and literal strings alike, atoms
    upper-cased only where the grammar makes them case-insensitive is not attempted (the
    same server is compared with itself)."""
    if isinstance(v, list):
        return tuple(canon_structure(x) for x in v)
    if v is None:
        return None
    if isinstance(v, Str):
        return ("s", bytes(v))
    return ("a", bytes(v))
