"""Mailbox commands end to end through the real binary: LIST, LSUB, CREATE, DELETE, RENAME
(hierarchies and INBOX), SUBSCRIBE/UNSUBSCRIBE (surviving a restart), NAMESPACE, STATUS,
and every way of reaching outside the mail directory, each refused."""
import os
import re
import stat
import time

import pytest

from conftest import Raw


class Session:
    """A logged-in raw client: cmd() sends one command and returns its lines."""

    def __init__(self, srv, user):
        self.srv = srv
        self.raw = Raw(srv.sock)
        self.n = 0
        greeting = self.raw.line()
        if not greeting.startswith("* PREAUTH"):
            assert greeting.startswith("* OK"), greeting
            ok = self.cmd(f"LOGIN {user.name} {user.password}")
            assert ok[-1].startswith("OK"), ok

    def cmd(self, text):
        """Returns the untagged lines plus the tagged status (without the tag)."""
        self.n += 1
        tag = f"t{self.n}"
        if isinstance(text, bytes):
            self.raw.send(tag.encode() + b" " + text + b"\r\n")
        else:
            self.raw.send(f"{tag} {text}\r\n")
        lines = self.raw.until_tagged(tag)
        lines[-1] = lines[-1][len(tag) + 1:]
        return lines

    def ok(self, text):
        r = self.cmd(text)
        assert r[-1].startswith("OK"), (text, r)
        return r[:-1]

    def no(self, text, code=None):
        r = self.cmd(text)
        assert r[-1].startswith("NO"), (text, r)
        if code is not None:
            assert r[-1].startswith(f"NO [{code}]"), (text, r)
        return r

    def send_literal(self, prefix, data, suffix=b""):
        """A command with one synchronising literal; returns its lines like cmd()."""
        self.n += 1
        tag = f"t{self.n}".encode()
        self.raw.send(tag + b" " + prefix + b" {" + str(len(data)).encode() + b"}\r\n")
        cont = self.raw.line()
        assert cont.startswith("+"), cont
        self.raw.send(data + suffix + b"\r\n")
        lines = self.raw.until_tagged(tag.decode())
        lines[-1] = lines[-1][len(tag) + 1:]
        return lines

    def list(self, ref="", pat="*", verb="LIST"):
        """{name: set(attrs)} from LIST/LSUB."""
        out = {}
        for ln in self.ok(f'{verb} "{ref}" "{pat}"'):
            m = re.match(r'\* ' + verb + r' \(([^)]*)\) "/" (?:"((?:[^"\\]|\\.)*)"|(\S+))$', ln)
            assert m, ln
            name = m.group(2) if m.group(2) is not None else m.group(3)
            out[name.replace('\\"', '"').replace("\\\\", "\\")] = set(m.group(1).split())
        return out

    def logout(self):
        self.cmd("LOGOUT")
        assert self.srv.wait() == 0


@pytest.fixture
def sess(preauth_server, user, mailstore):
    """Most tests run as an ssh-tunnel (--preauth) session: the same binary and code as
    after LOGIN, already running as the user."""
    srv = preauth_server()
    s = Session(srv, user)
    s.store = mailstore
    s.user = user
    yield s
    try:
        s.srv.sock.close()
    except OSError:
        pass
    s.srv.wait()


MSG = ("From alice@example.org Sat Jan  1 00:00:00 2000\n"
       "From: alice@example.org\nSubject: {n}\n{extra}\nbody {n}\n\n")


def mbox(n, extra=lambda i: ""):
    return "".join(MSG.format(n=i, extra=extra(i)) for i in range(n))


def owned_by_user(path, user, mode):
    st = os.lstat(path)
    assert st.st_uid == user.uid and st.st_gid == user.gid, path
    assert stat.S_IMODE(st.st_mode) == mode, (path, oct(st.st_mode))


def test_after_login(login_server, user, mailstore):
    """The commands through a root-started server after LOGIN and the privilege drop."""
    s = Session(login_server(), user)
    s.ok('CREATE "Work/2024"')
    owned_by_user(os.path.join(mailstore.mail_dir, "Work"), user, 0o700)
    owned_by_user(os.path.join(mailstore.mail_dir, "Work/2024"), user, 0o600)
    assert set(s.list()) == {"INBOX", "Work", "Work/2024"}
    s.ok('SUBSCRIBE "Work/2024"')
    owned_by_user(os.path.join(mailstore.mail_dir, ".subscriptions"), user, 0o600)
    assert s.ok('LSUB "" "*"') == ['* LSUB () "/" "Work/2024"']
    s.ok('DELETE "Work/2024"')
    s.logout()


def test_namespace_and_list_root(sess):
    assert sess.ok("NAMESPACE") == ['* NAMESPACE (("" "/")) NIL NIL']
    assert sess.ok('LIST "" ""') == ['* LIST (\\Noselect) "/" ""']
    assert sess.ok('LIST "a/b" ""') == ['* LIST (\\Noselect) "/" ""']
    assert sess.cmd("NAMESPACE x")[-1].startswith("BAD")
    assert sess.cmd("LIST onlyone")[-1].startswith("BAD")
    assert sess.cmd("LIST")[-1].startswith("BAD")


def test_list_attributes(sess):
    st = sess.store
    st.write_mailbox("Sent", mbox(1))
    st.write_mailbox("Drafts", "")
    write_nested(sess, "Lists/debian", mbox(2))
    st.write_mailbox(".hidden", "")
    st.write_mailbox("x.lock", "")
    os.makedirs(os.path.join(st.mail_dir, "Empty"))
    os.chown(os.path.join(st.mail_dir, "Empty"), sess.user.uid, sess.user.gid)
    got = sess.list()
    assert set(got) == {"INBOX", "Sent", "Drafts", "Lists", "Lists/debian", "Empty"}
    assert "\\NoInferiors" in got["INBOX"]
    assert got["Sent"] >= {"\\NoInferiors", "\\Sent"}
    assert got["Drafts"] >= {"\\NoInferiors", "\\Drafts"}
    assert got["Lists"] >= {"\\Noselect", "\\HasChildren"}
    assert got["Empty"] >= {"\\Noselect", "\\HasNoChildren"}
    assert "\\HasNoChildren" not in got["Sent"]   # implied by \NoInferiors (RFC 3348)
    # \Marked where cheap: new mail since the last read (mtime after atime, as mail
    # readers have always guessed); \Unmarked otherwise, and for an empty mailbox
    now = time.time()
    os.utime(os.path.join(st.mail_dir, "Sent"), (now - 100, now))
    write_nested(sess, "Lists/old", mbox(1))
    os.utime(os.path.join(st.mail_dir, "Lists/old"), (now, now - 100))
    marks = sess.list()
    assert "\\Marked" in marks["Sent"] and "\\Unmarked" not in marks["Sent"]
    assert "\\Unmarked" in marks["Lists/old"] and "\\Marked" not in marks["Lists/old"]
    assert "\\Unmarked" in marks["Drafts"]
    assert not marks["Lists"] & {"\\Marked", "\\Unmarked"}
    os.unlink(os.path.join(st.mail_dir, "Lists/old"))
    assert set(sess.list(pat="%")) == {"INBOX", "Sent", "Drafts", "Lists", "Empty"}
    assert set(sess.list(pat="Lists/%")) == {"Lists/debian"}
    assert set(sess.list(ref="Lists/", pat="%")) == {"Lists/debian"}
    assert set(sess.list(pat="inbox")) == {"INBOX"}
    assert set(sess.list(pat="*i*")) == {"Lists", "Lists/debian"}
    assert sess.list(pat="nothing") == {}


def test_create_delete_hierarchy(sess):
    st, user = sess.store, sess.user
    sess.ok('CREATE "a/b/c"')
    owned_by_user(os.path.join(st.mail_dir, "a"), user, 0o700)
    owned_by_user(os.path.join(st.mail_dir, "a/b"), user, 0o700)
    owned_by_user(os.path.join(st.mail_dir, "a/b/c"), user, 0o600)
    sess.no('CREATE "a/b/c"', "ALREADYEXISTS")
    sess.no("CREATE INBOX", "ALREADYEXISTS")
    sess.no("CREATE inbox", "ALREADYEXISTS")
    sess.no('CREATE "a/b/c/d"', "CANNOT")       # a mailbox has no children
    sess.ok('CREATE "dir/"')                     # trailing '/': a directory
    owned_by_user(os.path.join(st.mail_dir, "dir"), user, 0o700)
    got = sess.list()
    assert got["dir"] >= {"\\Noselect", "\\HasNoChildren"}
    assert got["a"] >= {"\\Noselect", "\\HasChildren"}
    assert got["a/b/c"] >= {"\\NoInferiors"}
    sess.no('DELETE "a"', "CANNOT")              # has children (RFC 3501 6.3.4)
    sess.no("DELETE INBOX", "CANNOT")
    sess.no('DELETE "nope"', "NONEXISTENT")
    sess.ok('DELETE "a/b/c"')
    sess.ok('DELETE "a/b"')
    sess.ok('DELETE "a"')
    sess.ok('DELETE "dir"')
    assert set(sess.list()) == {"INBOX"}
    assert os.listdir(st.mail_dir) == [] or set(os.listdir(st.mail_dir)) <= {".subscriptions"}


def write_nested(sess, name, data):
    """~/mail/NAME with every directory on the way owned by the user."""
    st, user = sess.store, sess.user
    path = st.mail_dir
    for comp in name.split("/")[:-1]:
        path = os.path.join(path, comp)
        os.makedirs(path, exist_ok=True)
        os.chown(path, user.uid, user.gid)
    path = os.path.join(st.mail_dir, name)
    with open(path, "w") as f:
        f.write(data)
    os.chown(path, user.uid, user.gid)
    os.chmod(path, 0o600)


def test_rename_hierarchy(sess):
    st = sess.store
    write_nested(sess, "old/x", mbox(1))
    write_nested(sess, "old/sub/y", mbox(2))
    sess.ok('RENAME "old" "new/place"')
    assert set(sess.list()) == {"INBOX", "new", "new/place", "new/place/x", "new/place/sub",
                                "new/place/sub/y"}
    assert st.read(os.path.join(st.mail_dir, "new/place/sub/y")) == mbox(2).encode()
    sess.ok('CREATE "t"')
    sess.no('RENAME "t" "new/place/x"', "ALREADYEXISTS")
    sess.no('RENAME "t" "INBOX"', "ALREADYEXISTS")
    sess.no('RENAME "gone" "z"', "NONEXISTENT")
    sess.no('RENAME "new" "new/inside"', "CANNOT")
    sess.ok('RENAME "t" "u"')
    assert "u" in sess.list() and "t" not in sess.list()


def test_rename_inbox(sess):
    st = sess.store
    st.write_inbox(mbox(3))
    sess.ok("RENAME INBOX Archive/2024")
    assert sess.ok('STATUS "Archive/2024" (MESSAGES)') == \
        ['* STATUS "Archive/2024" (MESSAGES 3)']
    assert sess.ok("STATUS INBOX (MESSAGES)") == ['* STATUS "INBOX" (MESSAGES 0)']
    assert os.path.exists(st.inbox)                 # INBOX stays, empty of messages
    data = st.read(os.path.join(st.mail_dir, "Archive/2024")).decode()
    for i in range(3):
        assert f"Subject: {i}\n" in data and f"body {i}\n" in data
    assert "Subject: 0" not in st.read(st.inbox).decode()
    sess.no("RENAME INBOX Archive/2024", "ALREADYEXISTS")
    # an empty INBOX renames to an empty mailbox
    sess.ok("RENAME INBOX Empty")
    assert sess.ok("STATUS Empty (MESSAGES)") == ['* STATUS "Empty" (MESSAGES 0)']


def test_subscriptions_survive_restart(preauth_server, user, mailstore):
    s = Session(preauth_server(), user)
    s.ok('SUBSCRIBE "Sent"')
    s.ok('SUBSCRIBE "a/b/c"')
    s.ok("SUBSCRIBE inbox")
    s.ok('SUBSCRIBE "never/created"')
    s.no('UNSUBSCRIBE "not-subscribed"', "NONEXISTENT")
    s.no('SUBSCRIBE "../etc"', "CANNOT")
    s.logout()
    with open(os.path.join(mailstore.mail_dir, ".subscriptions")) as f:
        assert f.read() == "INBOX\nSent\na/b/c\nnever/created\n"
    s = Session(preauth_server(), user)
    assert s.list(verb="LSUB") == {"INBOX": set(), "Sent": set(), "a/b/c": set(),
                                   "never/created": set()}
    assert s.list(pat="%", verb="LSUB") == {"INBOX": set(), "Sent": set(),
                                            "a": {"\\Noselect"}, "never": {"\\Noselect"}}
    s.ok('UNSUBSCRIBE "Sent"')
    assert "Sent" not in s.list(verb="LSUB")
    s.logout()


def test_uw_mailboxlist_import(preauth_server, user, mailstore):
    path = os.path.join(user.home, ".mailboxlist")
    with open(path, "w") as f:
        f.write("mail/Sent\nmail/lists/debian\nINBOX\nNotes/x\n/etc/passwd\n")
    os.chown(path, user.uid, user.gid)
    try:
        s = Session(preauth_server(), user)
        assert set(s.list(verb="LSUB")) == {"INBOX", "Sent", "lists/debian"}
        s.logout()
    finally:
        os.unlink(path)


def test_status(sess):
    st = sess.store
    st.write_mailbox("box", mbox(3, extra=lambda i: "Status: RO\n" if i == 0 else ""))
    r = sess.ok('STATUS "box" (MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT SIZE)')
    m = re.match(r'\* STATUS "box" \(MESSAGES 3 UNSEEN 2 UIDNEXT (\d+) UIDVALIDITY (\d+) '
                 r'RECENT (\d+) SIZE (\d+)\)$', r[0])
    assert m, r
    assert int(m.group(1)) >= 4 and int(m.group(2)) > 0 and int(m.group(3)) <= 2
    # SIZE counts every message as clients see it: LF as CRLF, store headers hidden
    one = "From: alice@example.org\r\nSubject: {n}\r\n\r\nbody {n}\r\n"
    assert int(m.group(4)) == sum(len(one.format(n=i)) for i in range(3))
    # STATUS is read-only: the file is unchanged
    assert st.read(os.path.join(st.mail_dir, "box")) == \
        mbox(3, extra=lambda i: "Status: RO\n" if i == 0 else "").encode()
    sess.no('STATUS "nope" (MESSAGES)', "NONEXISTENT")
    sess.ok('CREATE "d/"')
    sess.no('STATUS "d" (MESSAGES)', "CANNOT")
    sess.ok('CREATE "fresh"')
    assert sess.ok('STATUS "fresh" (MESSAGES UNSEEN)') == \
        ['* STATUS "fresh" (MESSAGES 0 UNSEEN 0)']
    assert sess.cmd('STATUS "box" (BOGUS)')[-1].startswith("BAD")
    assert sess.cmd('STATUS "box" ()')[-1].startswith("BAD")
    assert sess.cmd('STATUS "box"')[-1].startswith("BAD")


def cache_files(user):
    d = os.path.join(user.home, ".imapd")
    if not os.path.isdir(d):
        return {}
    return {n: os.stat(os.path.join(d, n)) for n in os.listdir(d)
            if n.startswith(".imapd-cache-") and "." not in n[len(".imapd-cache-"):]}


def test_status_unchanged_mailbox_comes_from_the_cache(sess):
    """STATUS of a mailbox that is not selected keeps the store's cache (~/.imapd): a file
    that has not changed since the last look is not parsed again, so the cache file is
    left as it is; mail appended meanwhile is counted (the cache is extended)."""
    st, user = sess.store, sess.user
    big = mbox(400, extra=lambda i: "X-Pad: " + "x" * 900 + "\n")
    path = st.write_mailbox("big", big)
    assert len(big) > 256 * 1024          # over the store's MBOX_CACHE_MIN_SIZE
    assert cache_files(user) == {}
    assert sess.ok('STATUS "big" (MESSAGES UNSEEN)') == [
        '* STATUS "big" (MESSAGES 400 UNSEEN 400)']
    first = cache_files(user)
    assert len(first) == 1, first
    name, before = next(iter(first.items()))
    # the second look at the unchanged file is answered from the cache, which stays
    time.sleep(0.05)
    assert sess.ok('STATUS "big" (MESSAGES UNSEEN)') == [
        '* STATUS "big" (MESSAGES 400 UNSEEN 400)']
    after = cache_files(user)[name]
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # LIST-STATUS goes the same way
    got = sess.ok('LIST "" "big" RETURN (STATUS (MESSAGES))')
    assert got[-1] == '* STATUS "big" (MESSAGES 400)'
    after = cache_files(user)[name]
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    # an MDA appends: the change is seen, and the cache is brought up to date
    with open(path, "a") as f:
        f.write(MSG.format(n=400, extra=""))
    assert sess.ok('STATUS "big" (MESSAGES UNSEEN)') == [
        '* STATUS "big" (MESSAGES 401 UNSEEN 401)']
    assert cache_files(user)[name].st_ino != before.st_ino
    # STATUS is still read-only: the mailbox file is what the MDA left
    assert st.read(path) == (big + MSG.format(n=400, extra="")).encode()


def test_modified_utf7_names(sess):
    st = sess.store
    sess.ok('CREATE "Entw&APw-rfe"')
    assert os.path.isfile(os.path.join(st.mail_dir, "Entw&APw-rfe"))
    assert "Entw&APw-rfe" in sess.list()
    sess.ok('CREATE "a&-b"')
    assert os.path.isfile(os.path.join(st.mail_dir, "a&-b"))
    for bad in ('"&AGE-"', '"x&"', '"&AOk-&AOk-"', '"&2D0-"', '"&AAo-"'):
        sess.no(f"CREATE {bad}", "CANNOT")
    # raw 8-bit names (a literal) are not modified UTF-7
    r = sess.send_literal(b"CREATE", "caf\u00e9".encode())
    assert r[-1].startswith("NO [CANNOT]"), r


def test_escapes_refused(sess, user):
    st = sess.store
    st.write_inbox(mbox(1))
    outside = os.path.join(user.base, "outside")
    os.makedirs(outside, exist_ok=True)
    os.chmod(outside, 0o777)
    with open(os.path.join(outside, "secret"), "w") as f:
        f.write(mbox(1))
    os.chmod(os.path.join(outside, "secret"), 0o666)
    os.symlink(outside, os.path.join(st.mail_dir, "out"))
    os.symlink(os.path.join(outside, "secret"), os.path.join(st.mail_dir, "secretlink"))
    os.symlink("..", os.path.join(st.mail_dir, "up"))
    os.symlink(st.inbox, os.path.join(st.mail_dir, "spool"))
    for name in ["../x", "/tmp/x", "~root/x", "~/x", "a/../../x", "a//b", "./x", "a/./b",
                 "..", ".", "#news/x", ".hidden", "x.lock", "a/.", "INBOX/child"]:
        for cmd in ("CREATE", "DELETE", "STATUS", "SUBSCRIBE"):
            args = f'"{name}"' + (" (MESSAGES)" if cmd == "STATUS" else "")
            r = sess.cmd(f"{cmd} {args}")
            assert r[-1].startswith("NO ["), (cmd, name, r)
        r = sess.cmd(f'RENAME "{name}" "y"')
        assert r[-1].startswith("NO ["), (name, r)
        r = sess.cmd(f'RENAME "y" "{name}"')
        assert r[-1].startswith("NO ["), (name, r)
    # control characters, sent as literals so that the parser lets them through
    for raw in (b"a\rb", b"a\nb", b"a\x00b", b"a\tb", b"a\x7f"):
        r = sess.send_literal(b"CREATE", raw)
        assert r[-1].startswith("NO") or r[-1].startswith("BAD"), (raw, r)
    # links leading outside: not listed, not usable, not followed
    assert set(sess.list()) == {"INBOX"}
    assert sess.list(ref="out/", pat="*") == {}
    assert sess.list(ref="../", pat="*") == {}
    assert sess.list(ref="/", pat="*") == {}
    assert sess.list(ref="~root/", pat="*") == {}
    sess.no('STATUS "secretlink" (MESSAGES)', "NOPERM")
    sess.no('STATUS "out/secret" (MESSAGES)', "NOPERM")
    sess.no('STATUS "up/spool/x" (MESSAGES)')
    sess.no('CREATE "out/new"', "NOPERM")
    sess.no('DELETE "out/secret"', "NOPERM")
    sess.no('RENAME "out/secret" "stolen"', "NOPERM")
    sess.no('DELETE "secretlink"', "NOPERM")
    sess.no('DELETE "spool"', "NOPERM")
    assert sorted(os.listdir(outside)) == ["secret"]
    assert os.path.islink(os.path.join(st.mail_dir, "secretlink"))
    assert not os.path.exists(os.path.join(user.base, "x"))
    assert not os.path.exists("/tmp/x")
    assert os.path.exists(st.inbox)
    # names over the limits (FOLDER_COMPONENT_MAX 255 a level, FOLDER_NAME_MAX 1024 in all)
    # are refused before the file system is asked
    sess.ok('CREATE "%s"' % ("c" * 255))
    sess.no('CREATE "%s"' % ("c" * 256), "LIMIT")
    deep = "/".join(["d" * 200] * 5) + "/" + "e" * 19         # 1024 octets
    assert len(deep) == 1024
    sess.ok(f'CREATE "{deep}"')
    sess.no(f'CREATE "{deep}e"', "LIMIT")
    sess.no(f'STATUS "{deep}e" (MESSAGES)', "LIMIT")
    assert not os.path.exists(os.path.join(st.mail_dir, "c" * 256))
    sess.ok('DELETE "%s"' % ("c" * 255))
    # links that stay inside the mail directory are followed
    st.write_mailbox("real/box", mbox(2))
    os.symlink("real/box", os.path.join(st.mail_dir, "alias"))
    os.symlink("real", os.path.join(st.mail_dir, "dirlink"))
    assert sess.ok('STATUS "alias" (MESSAGES)') == ['* STATUS "alias" (MESSAGES 2)']
    assert sess.ok('STATUS "dirlink/box" (MESSAGES)') == [
        '* STATUS "dirlink/box" (MESSAGES 2)']
    listed = sess.list()
    assert {"alias", "dirlink", "dirlink/box", "real/box"} <= set(listed)
    assert "out" not in listed and "secretlink" not in listed
    assert "* 2 EXISTS" in sess.ok('SELECT "alias"')
    sess.ok("CLOSE")
    # removing or renaming a link acts on the link, never on what it points to
    sess.ok('RENAME "alias" "alias2"')
    assert os.path.islink(os.path.join(st.mail_dir, "alias2"))
    sess.ok('DELETE "alias2"')
    sess.ok('DELETE "dirlink"')
    assert not os.path.lexists(os.path.join(st.mail_dir, "dirlink"))
    box = os.path.join(st.mail_dir, "real/box")
    assert not os.path.islink(box)
    assert st.read(box).count(b"\nSubject: ") == 2     # SELECT wrote its UIDs there
    # a dangling link is only a link: removing it touches nothing outside
    os.symlink(os.path.join(outside, "missing"), os.path.join(st.mail_dir, "dangling"))
    sess.ok('DELETE "dangling"')
    assert not os.path.lexists(os.path.join(st.mail_dir, "dangling"))


def test_list_extended(sess):
    """RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE options."""
    def xok(sess, text):
        # \Marked/\Unmarked depend on file times; checked in test_list_attributes
        return [re.sub(r" ?\\(Un)?[Mm]arked", "", ln).replace("( ", "(")
                for ln in sess.ok(text)]
    st = sess.store
    st.write_mailbox("Sent", mbox(2))
    st.write_mailbox("Drafts", mbox(1, extra=lambda i: "Status: RO\n"))
    write_nested(sess, "Lists/debian", mbox(3))
    write_nested(sess, "Old/Trash", "")
    xok(sess, 'SUBSCRIBE "Sent"')
    xok(sess, 'SUBSCRIBE "Lists/debian"')
    xok(sess, 'SUBSCRIBE "gone"')
    # several patterns, one response per name
    assert xok(sess, 'LIST "" ("Sent" "S*" "Lists/*")') == [
        '* LIST (\\NoInferiors) "/" "Lists/debian"',
        '* LIST (\\NoInferiors \\Sent) "/" "Sent"']
    # an empty pattern is not the root request here
    assert xok(sess, 'LIST () "" ""') == []
    # SUBSCRIBED: exactly the subscribed names, existing or not
    assert xok(sess, 'LIST (SUBSCRIBED) "" "*"') == [
        '* LIST (\\NoInferiors \\Subscribed) "/" "Lists/debian"',
        '* LIST (\\NoInferiors \\Subscribed \\Sent) "/" "Sent"',
        '* LIST (\\NonExistent \\Subscribed) "/" "gone"']
    # RECURSIVEMATCH: a level above a subscribed name the pattern does not reach
    assert xok(sess, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"') == [
        '* LIST (\\Noselect \\HasChildren) "/" "Lists" ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\NoInferiors \\Subscribed \\Sent) "/" "Sent"',
        '* LIST (\\NonExistent \\Subscribed) "/" "gone"']
    # RETURN (SUBSCRIBED) marks, without selecting
    got = xok(sess, 'LIST "" "%" RETURN (SUBSCRIBED CHILDREN)')
    assert '* LIST (\\NoInferiors \\Subscribed \\Sent) "/" "Sent"' in got
    assert '* LIST (\\NoInferiors \\Drafts) "/" "Drafts"' in got
    assert '* LIST (\\Noselect \\HasChildren) "/" "Old"' in got
    # SPECIAL-USE selection (the default map names top-level folders), and with
    # RECURSIVEMATCH, which adds nothing when no special folder lies deeper
    special = ['* LIST (\\NoInferiors \\Drafts) "/" "Drafts"',
               '* LIST (\\NoInferiors \\Sent) "/" "Sent"']
    assert xok(sess, 'LIST (SPECIAL-USE) "" "*"') == special
    assert xok(sess, 'LIST (SPECIAL-USE RECURSIVEMATCH) "" "%"') == special
    assert xok(sess, 'LIST (SPECIAL-USE SUBSCRIBED) "" "*"') == [
        '* LIST (\\NoInferiors \\Subscribed \\Sent) "/" "Sent"']
    # LIST-STATUS: a STATUS after each selectable mailbox, none for \Noselect
    got = xok(sess, 'LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))')
    i = got.index('* LIST (\\NoInferiors \\Sent) "/" "Sent"')
    assert got[i + 1] == '* STATUS "Sent" (MESSAGES 2 UNSEEN 2)'
    i = got.index('* LIST (\\NoInferiors \\Drafts) "/" "Drafts"')
    assert got[i + 1] == '* STATUS "Drafts" (MESSAGES 1 UNSEEN 0)'
    i = got.index('* LIST (\\Noselect \\HasChildren) "/" "Lists"')
    assert got[i + 1].startswith("* LIST")
    assert sum(1 for ln in got if ln.startswith("* STATUS")) == 5   # + INBOX, debian, Trash
    # bad options
    for bad in ('LIST (RECURSIVEMATCH) "" "*"', 'LIST (BOGUS) "" "*"',
                'LIST "" "*" RETURN (BOGUS)', 'LIST "" "*" RETURN (STATUS (BOGUS))',
                'LIST "" "*" RETURN (STATUS ())', 'LIST (SUBSCRIBED) ""',
                'LIST "" ()'):
        assert sess.cmd(bad)[-1].startswith("BAD"), bad


def test_atom_with_open_bracket(sess):
    """'[' is an ATOM-CHAR (RFC 3501 9): a name with one that no ']' closes is a name like
    any other, answered NO (no such mailbox) or with an empty LIST, never BAD."""
    sess.store.write_inbox(mbox(1))
    name = "!#$&'+,-.0123456789:;<=>?@^_`|[}"
    r = sess.no("SELECT " + name, "NONEXISTENT")
    assert sess.ok('LIST "" ' + name + "%*") == []
    # ('&' above starts modified UTF-7, so that one cannot be created; this one can)
    sess.ok("CREATE x[y")
    r = sess.ok('LIST "" x[%')
    assert len(r) == 1 and r[0].startswith("* LIST ("), r
    assert r[0].endswith((" x[y", ' "x[y"')), r
    r = sess.ok("SELECT x[y")
    assert "* 0 EXISTS" in r


def test_uidvalidity_grows_when_a_name_is_reused(sess):
    """RFC 3501 2.3.1.1: a mailbox deleted and created again under the same name gets a
    greater UIDVALIDITY, even within the same second."""
    sess.store.write_inbox(mbox(1))
    seen = []
    for _ in range(3):
        sess.ok("CREATE reused")
        sess.send_literal(b"APPEND reused", b"Subject: x\r\n\r\nbody\r\n")
        r = sess.ok("SELECT reused")
        v = [int(x.split()[3].rstrip("]")) for x in r if "[UIDVALIDITY " in x]
        assert len(v) == 1, r
        seen.append(v[0])
        sess.ok("UNSELECT")
        sess.ok("DELETE reused")
    assert seen[0] < seen[1] < seen[2], seen
