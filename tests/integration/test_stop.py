"""
test_stop.py - graceful stop (SIGTERM, `facteur stop`): the listening
socket closes at once, a session in progress may finish its transaction
within facteur_shutdown_timeout, after the bound open sessions get a 421;
every acknowledged message is delivered or still queued (nothing in
incoming/), the pid file is removed, the exit status is 0.
"""
import os
import signal
import socket
import time

import pytest

from harness import check, dot_stuff, make_msg


def pidfile(d):
    return os.path.join(d.queue, "pid", "facteurd.pid")


def wait_exit(d, timeout):
    try:
        rc = d.proc.wait(timeout)
    except Exception:
        pytest.fail("facteurd did not exit within %ss\n%s"
                    % (timeout, d.diagnostics()), pytrace=False)
    d.expect_exit = True
    return rc


def refused(d):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((d.host, d.port))
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False    # accepted into the backlog as the socket closed
    finally:
        s.close()
    return False


def queue_consistent(d):
    """Nothing half-written; what is left is complete and deliverable."""
    assert not d.queue_files(("incoming",)), d.queue_files(("incoming",))


def test_session_finishes_within_the_bound(facteurd):
    d = facteurd(main_cf={"facteur_shutdown_timeout": "20s"})
    assert os.path.exists(pidfile(d))
    c = d.session()
    check(c.cmd("MAIL FROM:<s@example.net>"), 250)
    t0 = time.time()
    os.kill(d.pid, signal.SIGTERM)
    # No new connections from now on.
    deadline = time.time() + 3
    while not refused(d) and time.time() < deadline:
        time.sleep(0.05)
    assert refused(d), "the listening socket is still open after SIGTERM"
    # (a probe above may have been accepted just before: 1 or more)
    d.wait_log(r"facteur/master\[\d+\]: stopping on signal: no new "
               r"connections; \d+ sessions? may finish within 20s")
    # The open session completes its transaction.
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    check(c.cmd("DATA"), 354)
    c.send(dot_stuff(make_msg("during stop", to="alice@example.test")))
    check(c.reply(), 250, "2.0.0", "queued as")
    check(c.cmd("QUIT"), 221)
    c.close()
    rc = wait_exit(d, 10)
    assert rc == 0
    assert time.time() - t0 < 10, "waited for the bound with no session left"
    assert not os.path.exists(pidfile(d)), "pid file left behind"
    queue_consistent(d)
    # Acknowledged = delivered, or still in the queue for the next start.
    if not d.files("alice@example.test"):
        assert d.queue_files(("active", "deferred")), \
            "acknowledged message neither delivered nor queued"
    log = d.log()
    assert "terminating on signal 15" in log
    assert "reached" not in log


def test_after_the_bound_sessions_get_421(facteurd):
    d = facteurd(main_cf={"facteur_shutdown_timeout": "1s"})
    idle = d.session()
    inside = d.session()
    check(inside.cmd("MAIL FROM:<s@example.net>"), 250)
    check(inside.cmd("RCPT TO:<alice@example.test>"), 250)
    check(inside.cmd("DATA"), 354)
    inside.send(b"Subject: never finished\r\n\r\nhalf a message\r\n")
    os.kill(d.pid, signal.SIGTERM)
    # Unsolicited 421 once the bound is reached, then the server closes.
    r = idle.reply(timeout=6)
    check(r, 421, "4.3.2", "shutting down")
    assert idle.expect_closed(5)
    r = inside.reply(timeout=6)
    check(r, 421, "4.3.2")
    assert inside.expect_closed(5)
    rc = wait_exit(d, 10)
    assert rc == 0
    assert not os.path.exists(pidfile(d))
    queue_consistent(d)
    assert not d.queue_files(("active", "deferred", "hold")), \
        "a message that was never acknowledged was queued"
    d.wait_log(r"stopping: facteur_shutdown_timeout \(1s\) reached: closing "
               r"2 sessions with 421")


def test_new_command_after_the_bound_gets_421(facteurd):
    # A client that sends a command in the very moment of the bound gets
    # the 421, not a 250.
    d = facteurd(main_cf={"facteur_shutdown_timeout": "1s"})
    c = d.session()
    os.kill(d.pid, signal.SIGTERM)
    time.sleep(1.6)
    try:
        c.send(b"NOOP\r\n")
    except OSError:
        pass
    r = c.reply(timeout=5)
    assert r.code == 421, r
    wait_exit(d, 10)


def test_facteur_stop_command(facteurd):
    d = facteurd()
    with d.session() as c:
        check(c.cmd("QUIT"), 221)
    qid = d.send("s@example.net", "bob@example.test", make_msg("before stop"))
    assert qid
    r = d.cli("stop", timeout=30)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert "facteurd stopped" in out
    rc = wait_exit(d, 5)
    assert rc == 0
    assert not os.path.exists(pidfile(d))
    queue_consistent(d)
    assert "terminating on request" in d.log()
    # Not running any more: stop and status say so and exit 1.
    r = d.cli("stop")
    assert r.returncode == 1
    assert b"not running" in r.stderr
    r = d.cli("status")
    assert r.returncode == 1
    assert b"not running" in r.stderr


def test_second_sigterm_does_not_wait(facteurd):
    d = facteurd(main_cf={"facteur_shutdown_timeout": "60s"})
    c = d.session()
    os.kill(d.pid, signal.SIGTERM)
    d.wait_log(r"stopping on signal")
    t0 = time.time()
    os.kill(d.pid, signal.SIGTERM)
    check(c.reply(timeout=5), 421)
    assert wait_exit(d, 10) == 0
    assert time.time() - t0 < 5
