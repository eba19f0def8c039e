"""
test_postgrey.py - Debian's postgrey, unchanged, behind check_policy_service
(Postfix's policy delegation protocol over inet:): started privately on a
loopback port with its own database directory and a 1 s delay, it
greylists a new triplet (450 4.2.0, as Postfix answers it, with its
"Greylisted, see ..." text and
the NOQUEUE reject line), accepts the retry after the delay, and its
PREPEND action puts the X-Greylist: header on the delivered message.
"""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from harness import check, dot_stuff, free_port, make_msg

POSTGREY = shutil.which("postgrey") or "/usr/sbin/postgrey"


@pytest.fixture
def postgrey(tmp_path):
    if not os.access(POSTGREY, os.X_OK):
        pytest.skip("postgrey is not installed (contrib/install-deps.sh test)")
    # its own database directory, reachable by the postgrey user (pytest's
    # tmp tree is private to root)
    top = tempfile.mkdtemp(prefix="facteur-postgrey-")
    os.chmod(top, 0o755)
    dbdir = os.path.join(top, "db")
    os.makedirs(dbdir)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgrey")
        os.chown(dbdir, pw.pw_uid, pw.pw_gid)
        user = ["--user=postgrey", "--group=postgrey"]
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        user = ["--user=" + me]
    port = free_port()
    log = open(str(tmp_path / "postgrey.log"), "wb")
    p = subprocess.Popen(
        [POSTGREY, "--inet=127.0.0.1:%d" % port, "--dbdir=" + dbdir,
         "--delay=1", "--auto-whitelist-clients=0", "--hostname=grey.test",
         "--whitelist-clients=/dev/null", "--whitelist-recipients=/dev/null",
         "--pidfile=" + os.path.join(top, "postgrey.pid")] + user,
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.time() + 20
    while True:
        assert p.poll() is None, open(str(tmp_path / "postgrey.log")).read()
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            break
        except OSError:
            assert time.time() < deadline, "postgrey did not start"
            time.sleep(0.1)
    yield port
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    log.close()
    shutil.rmtree(top, True)


def test_postgrey_greylists_then_accepts(facteurd, postgrey):
    d = facteurd(main_cf={
        "smtpd_recipient_restrictions":
            "reject_unauth_destination, "
            "check_policy_service inet:127.0.0.1:%d" % postgrey})
    sender = "joe@remote.test"
    with d.session() as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 450, "4.2.0",
              r"<alice@example\.test>: Recipient address rejected: "
              r"Greylisted, see .*postgrey")
    d.wait_log(r"NOQUEUE: reject: RCPT from [^ ]*\[127\.0\.0\.1\]: 450 4\.2\.0 "
               r"<alice@example\.test>: Recipient address rejected: "
               r"Greylisted.*from=<joe@remote\.test> to=<alice@example\.test>")
    # too early: still greylisted; after the delay: accepted
    time.sleep(2.2)
    msg = make_msg("greylisted", sender=sender, to="alice@example.test")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
        # another sender is a new triplet
        check(c.cmd("RCPT TO:<bob@example.test>"), 450, "4.2.0",
              r"Greylisted")
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 250, "2.0.0")
    got = d.wait_files("alice@example.test", 1)
    assert len(got) == 1, d.diagnostics()
    xg = got[0].header("X-Greylist")
    assert xg and "postgrey" in xg and "grey.test" in xg, got[0].content[:400]
    assert d.files("bob@example.test") == []
