"""Mail through TLS: multi-megabyte APPEND and FETCH (more than the socket buffers hold, so
the TLS layer waits to write and to read), a client that sends byte by byte, and IDLE
noticing new mail while the connection is TLS."""
import imaplib
import re
import socket
import threading
import time

import pytest

from test_tls import TcpServer, cert, client_context, tls_config  # noqa: F401 (fixture)


@pytest.fixture
def tls_server(tmp_path, pam, user, cert):  # noqa: F811
    pam.add(user.name, user.password)
    servers = []

    def make(implicit):
        s = TcpServer(str(tmp_path), pam.env,
                      tls_config(user, cert, plaintext_auth="never", append_max="64M"),
                      ["--tls"] if implicit else [])
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def connect(srv, cert, implicit):  # noqa: F811
    if implicit:
        return imaplib.IMAP4_SSL("localhost", srv.port, ssl_context=client_context(cert))
    c = imaplib.IMAP4("localhost", srv.port)
    c.starttls(client_context(cert))
    return c


def big_message(size):
    head = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\n"
            b"Message-ID: <big@example.org>\r\n\r\n")
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_\r\n"
    body = line * (size // len(line) + 1)
    return head + body[:size - len(head) - 2] + b"\r\n"


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "imaps"])
def test_big_append_and_fetch(tls_server, user, cert, mailstore, implicit):  # noqa: F811
    srv = tls_server(implicit)
    c = connect(srv, cert, implicit)
    c.login(user.name, user.password)
    msg = big_message(6 * 1024 * 1024)
    typ, _ = c.append("INBOX", None, None, msg)
    assert typ == "OK"
    typ, _ = c.select("INBOX")
    assert typ == "OK"
    typ, data = c.fetch("1", "(RFC822.SIZE BODY.PEEK[])")
    assert typ == "OK"
    assert int(re.search(rb"RFC822\.SIZE (\d+)", data[0][0]).group(1)) == len(msg)
    assert data[0][1] == msg
    # The same bytes again, as the client reads them slowly: the server's writes wait.
    tag = c._new_tag()
    c.send(tag + b" FETCH 1 BODY.PEEK[TEXT]\r\n")
    time.sleep(1.0)
    typ, data = c._command_complete("FETCH", tag)
    assert typ == "OK"
    assert c.logout()[0] == "BYE"
    assert srv.wait_all() == [0]


def test_byte_at_a_time_through_tls(tls_server, user, cert):  # noqa: F811
    """Each byte in its own TLS record: the line reader assembles them."""
    srv = tls_server(True)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
    s = client_context(cert).wrap_socket(raw, server_hostname="localhost")
    f = s.makefile("rb")
    assert f.readline().startswith(b"* OK")
    for b in f"a LOGIN {user.name} {{{len(user.password)}+}}\r\n{user.password}\r\n".encode():
        s.sendall(bytes([b]))
    assert f.readline().startswith(b"a OK")
    s.sendall(b"b LOGOUT\r\n")
    assert f.readline().startswith(b"* BYE")
    assert f.readline().startswith(b"b OK")
    s.close()
    assert srv.wait_all() == [0]


def test_idle_over_tls_reports_new_mail(tls_server, user, cert, mailstore):  # noqa: F811
    mailstore.write_inbox("From a@example.org Mon Jan  1 00:00:00 2024\n"
                          "From: a@example.org\nSubject: one\n\nbody\n\n")
    srv = tls_server(False)
    c = connect(srv, cert, False)
    c.login(user.name, user.password)
    typ, data = c.select("INBOX")
    assert data == [b"1"]
    tag = c._new_tag()
    c.send(tag + b" IDLE\r\n")
    assert c._get_line().startswith(b"+")

    def deliver():
        time.sleep(0.5)
        with open(mailstore.inbox, "ab") as f:
            f.write(b"From b@example.org Mon Jan  1 00:00:01 2024\n"
                    b"From: b@example.org\nSubject: two\n\nbody\n\n")

    t = threading.Thread(target=deliver)
    t.start()
    c.sock.settimeout(20)
    seen = []
    while True:
        ln = c._get_line()
        seen.append(ln)
        if ln == b"* 2 EXISTS":
            break
    t.join()
    c.send(b"DONE\r\n")
    while True:
        ln = c._get_line()
        if ln.startswith(tag):
            assert ln.startswith(tag + b" OK")
            break
    c.logout()
    assert srv.wait_all() == [0]
