"""procmail (a real MDA with its own fcntl + dotlock locking) delivers into the spool while
an imapd session keeps expunging from it: no delivered message is lost or damaged, and the
session's view stays consistent with the file."""
import os
import re
import threading
import time

from clients_util import as_user, ctime, need, run
from test_store import mbox, sessions  # noqa: F401  (fixture)


def procmail(user, spool, subject):
    rc = os.path.join(user.base, "procmailrc")
    with open(rc, "w") as f:
        f.write(f"DEFAULT={spool}\nLOCKTIMEOUT=60\n:0:\n{spool}\n")
    os.chmod(rc, 0o644)
    msg = (f"From sam@example.org {ctime(time.time())}\nFrom: sam@example.org\n"
           f"Subject: {subject}\n\nFrom the MDA.\nbody of {subject}\n").encode()
    r = run(["procmail", "-m", rc], input=msg, preexec_fn=as_user(user),
            env={"PATH": "/usr/bin:/bin", "HOME": user.home, "LOGNAME": user.name})
    assert r.returncode == 0, r.stderr


def test_delivery_during_expunge(sessions, user):
    need("procmail")
    st = sessions.store
    st.write_inbox(mbox(20))
    a = sessions()
    a.ok("SELECT INBOX")
    n = 15
    errors = []

    def deliver():
        try:
            for i in range(n):
                procmail(user, st.inbox, f"mda-{i}")
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=deliver)
    t.start()
    rounds = expunged = 0
    deadline = time.monotonic() + 120
    while (t.is_alive() or rounds < 3) and time.monotonic() < deadline:
        a.ok("NOOP")
        # expunge the first original message each round (a rewrite of the whole file);
        # delivered mail is never expunged, so every delivery must be there at the end
        k = rounds % 20 + 1
        a.ok(f"UID STORE {k} +FLAGS.SILENT (\\Deleted)")
        r = a.ok(f"UID EXPUNGE {k}")
        expunged += sum(1 for ln in r if ln.endswith(" EXPUNGE"))
        rounds += 1
        time.sleep(0.02)
    t.join()
    assert not errors, errors
    data = open(st.inbox, "rb").read().decode()
    # every delivery is there exactly once, whole, with its body quoted as procmail wrote it
    for i in range(n):
        assert data.count(f"Subject: mda-{i}\n") == 1, i
        assert f"\n>From the MDA.\nbody of mda-{i}\n" in data, i
    r = a.ok("SELECT INBOX")
    count = int([m.group(1) for ln in r for m in [re.match(r"\* (\d+) EXISTS", ln)] if m][0])
    # (a pseudo message keeps the UID state if the mailbox was emptied on the way)
    assert count == data.count("\nSubject: ") - data.count("FOLDER INTERNAL DATA")
    assert expunged > 0
    assert count == 20 + n - expunged
