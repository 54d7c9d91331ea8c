"""`make install DESTDIR=...` leaves the tree a Debian host expects, and what it installs
works: the units name the installed binary and verify, the settings file parses, the man
pages format without warnings, and every setting imapd accepts is documented."""
import os
import re
import shutil
import socket
import stat
import subprocess

import pytest

from conftest import IMAPD, ROOT

EXPECTED = {
    "usr/sbin/imapd": 0o755,
    "lib/systemd/system/imapd.socket": 0o644,
    "lib/systemd/system/imapd@.service": 0o644,
    "lib/systemd/system/imaps.socket": 0o644,
    "lib/systemd/system/imaps@.service": 0o644,
    "etc/pam.d/imap": 0o644,
    "etc/imapd.conf": 0o644,
    "usr/share/man/man8/imapd.8": 0o644,
    "usr/share/man/man5/imapd.conf.5": 0o644,
    "usr/share/doc/imapd/deployment.md": 0o644,
    "usr/share/doc/imapd/examples/inetd.conf": 0o644,
    "usr/share/doc/imapd/examples/xinetd.imapd": 0o644,
    "usr/share/doc/imapd/examples/imapd.conf.example": 0o644,
}


def make_install(dest, *extra):
    # -o: use the binary that is there; this test checks the install, not the build.
    bin_rel = os.path.relpath(IMAPD, ROOT)
    return subprocess.run(["make", "-s", "-C", ROOT, "-o", bin_rel, "install",
                           f"BIN={bin_rel}", f"DESTDIR={dest}", *extra],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    dest = tmp_path_factory.mktemp("destdir")
    p = make_install(dest, "PREFIX=/usr")
    assert p.returncode == 0, p.stdout + p.stderr
    return dest


def listing(dest):
    out = set()
    for d, _, files in os.walk(dest):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), dest))
    return out


def test_tree_has_debian_layout(tree):
    assert listing(tree) == set(EXPECTED)
    for rel, mode in EXPECTED.items():
        st = os.stat(tree / rel)
        assert stat.S_IMODE(st.st_mode) == mode, rel
    with open(IMAPD, "rb") as a, open(tree / "usr/sbin/imapd", "rb") as b:
        assert a.read() == b.read()


def test_units_name_installed_binary_and_verify(tree, tmp_path):
    unitdir = tree / "lib/systemd/system"
    for u in ("imapd@.service", "imaps@.service"):
        text = (unitdir / u).read_text()
        assert re.search(r"^ExecStart=/usr/sbin/imapd( --tls)?$", text, re.M), u
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze missing")
    # systemd-analyze checks that ExecStart= is executable; the tree is not mounted at /,
    # so point the installed units at the installed binary by its path in the tree.
    check = tmp_path / "verify"
    check.mkdir()
    for u in os.listdir(unitdir):
        text = (unitdir / u).read_text()
        (check / u).write_text(text.replace("/usr/sbin/imapd", str(tree / "usr/sbin/imapd")))
    for u in ("imapd.socket", "imaps.socket", "imapd@.service", "imaps@.service"):
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(check / u)],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stderr.strip() == "", u + p.stderr


def test_prefix_changes_binary_path_in_units(tmp_path):
    p = make_install(tmp_path, "PREFIX=/usr/local")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "usr/local/sbin/imapd").exists()
    assert (tmp_path / "usr/local/share/man/man8/imapd.8").exists()
    text = (tmp_path / "lib/systemd/system/imaps@.service").read_text()
    assert re.search(r"^ExecStart=/usr/local/sbin/imapd --tls$", text, re.M)


def test_site_files_are_not_overwritten(tmp_path):
    (tmp_path / "etc/pam.d").mkdir(parents=True)
    (tmp_path / "etc/pam.d/imap").write_text("# the site's own\n")
    (tmp_path / "etc/imapd.conf").write_text("mail_dir = Mail\n")
    p = make_install(tmp_path, "PREFIX=/usr")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "etc/pam.d/imap").read_text() == "# the site's own\n"
    assert (tmp_path / "etc/imapd.conf").read_text() == "mail_dir = Mail\n"


def test_installed_config_parses(tree, tmp_path):
    """The installed /etc/imapd.conf is accepted, as is each commented example uncommented."""
    conf = tree / "etc/imapd.conf"
    a, b = socket.socketpair()
    p = subprocess.Popen([str(tree / "usr/sbin/imapd"), "-d", "-c", str(conf)], stdin=b,
                         stdout=b, stderr=subprocess.PIPE)
    b.close()
    a.settimeout(10)
    assert a.recv(4096).startswith(b"* OK")
    a.sendall(b"a LOGOUT\r\n")
    assert p.wait(10) == 0, p.stderr.read()
    a.close()
    text = conf.read_text()
    settings = re.findall(r"^#(\w+) = (.*)$", text, re.M)
    assert settings
    uncommented = tmp_path / "uncommented.conf"
    uncommented.write_text("".join(f"{k} = {v}\n" for k, v in settings))
    a, b = socket.socketpair()
    p = subprocess.Popen([str(tree / "usr/sbin/imapd"), "-d", "-c", str(uncommented)],
                         stdin=b, stdout=b, stderr=subprocess.PIPE)
    b.close()
    a.settimeout(10)
    greeting = a.recv(4096)
    a.close()
    err = p.stderr.read().decode()
    p.wait(10)
    # The Let's Encrypt example names files that are not here: STARTTLS is then not
    # offered, which is what the log must say. Any other complaint is a bad example.
    # A settings error would end imapd before its greeting.
    assert greeting.startswith(b"* OK"), err
    assert "STARTTLS not offered: tls_cert /etc/letsencrypt/" in err


def config_keys():
    with open(os.path.join(ROOT, "imapd", "config.c")) as f:
        src = f.read()
    table = src[src.index("keys[] = {"):]
    table = table[:table.index("};")]
    keys = re.findall(r'(?:STR|INT)\("(\w+)"|\{ "(\w+)"', table)
    return sorted({a or b for a, b in keys})


def test_every_setting_is_documented():
    keys = config_keys()
    assert "tls_cert" in keys and "plaintext_auth" in keys
    with open(os.path.join(ROOT, "doc", "imapd.conf.5")) as f:
        man = f.read()
    with open(os.path.join(ROOT, "doc", "imapd.conf.example")) as f:
        example = f.read()
    for k in keys:
        assert re.search(rf"^\.BR {k} ", man, re.M), f"{k} missing from imapd.conf(5)"
        assert re.search(rf"^#?{k} = ", example, re.M), f"{k} missing from the example"


def test_every_option_is_documented():
    with open(os.path.join(ROOT, "imapd", "main.c")) as f:
        src = f.read()
    longopts = re.findall(r'\{ "([\w-]+)", (?:no|required)_argument', src)
    assert "tls" in longopts and "preauth" in longopts
    with open(os.path.join(ROOT, "doc", "imapd.8")) as f:
        man = f.read().replace("\\-", "-")
    for o in longopts:
        assert f"--{o}" in man, f"--{o} missing from imapd(8)"


@pytest.mark.parametrize("page", ["imapd.8", "imapd.conf.5"])
def test_man_pages_format_cleanly(page):
    if shutil.which("groff") is None:
        pytest.skip("groff missing")
    p = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(ROOT, "doc", page)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
