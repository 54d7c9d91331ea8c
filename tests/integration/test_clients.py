"""curl against imapd on a loopback TCP port (systemd-socket-activate, LOGIN through PAM)."""

from clients_util import build_mbox, fixture, need, run, tcp  # noqa: F401 (tcp is a fixture)


def curl(tcp, url, *args):
    need("curl")
    cmd = ["curl", "-sS", "--max-time", "30", url] + list(args)
    if not tcp.preauth:
        cmd += ["-u", f"{tcp.login}:{tcp.password}"]
    return run(cmd)


def test_curl_list(tcp, mailstore):
    mailstore.write_inbox(build_mbox([fixture("plain-ascii.eml")]))
    mailstore.write_mailbox("Work", build_mbox([fixture("alternative.eml")]))
    mailstore.write_mailbox("lists/debian", b"")
    r = curl(tcp, tcp.url())
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    names = {}
    for ln in out.splitlines():
        assert ln.startswith("* LIST ("), out
        attrs, _, rest = ln[len("* LIST ("):].partition(")")
        name = rest.split(None, 1)[1].strip('"')
        names[name] = attrs.split()
    assert set(names) == {"INBOX", "Work", "lists", "lists/debian"}, out
    assert "\\Noselect" in names["lists"] or "\\NoSelect" in names["lists"], out
