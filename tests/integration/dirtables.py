"""
dirtables.py - what the ldap: and mysql: table tests share: starting the
private slapd / mariadbd as module fixtures (tests/servers.py), writing a
schema/ example table with the test server's settings into a facteurd's
config directory, one-recipient probes, waiting for a server that was
restarted, and the checks both run against their server: an outage in
the middle of an SMTP session, of AUTH, of smtpd_sender_login_maps, of
the queue manager (mail deferred, never bounced), and a second server
used when the first is down. A server is anything with stop()/start()
(servers.Slapd, servers.MariaDB); kind is the table type (ldap, mysql).
Must not: start anything without stopping it, or wait without a bound.
"""
import os
import re
import sys
import time

import pytest

import harness
from harness import check, make_msg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import servers  # noqa: E402  (tests/servers.py: private slapd and mariadbd)


# the lookup cache on, known answers and misses kept an hour
CACHE = "cache = yes\ncache_ttl = 1h\ncache_negative_ttl = 1h\n"
# retries within seconds
FAST_RETRY = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}


def need(cls):
    missing = cls.missing()
    if missing:
        pytest.fail("%s missing: run `make test-deps`" % missing[0], pytrace=False)


def slapd(suffix, reader, entries):
    """Generator body of a slapd fixture."""
    need(servers.Slapd)
    with servers.running_slapd(suffix, reader, entries, live=harness.LIVE) as s:
        yield s


def mariadb(user, password, rows):
    """Generator body of a mariadbd fixture."""
    need(servers.MariaDB)
    with servers.running_mariadb(user, password, rows, live=harness.LIVE) as m:
        yield m


def write_cf(d, kind, name, example, strip, settings):
    """schema/KIND/EXAMPLE as d's NAME with settings; returns "TYPE:path"."""
    path = servers.example_cf(kind, example, os.path.join(d.confdir, name),
                              strip, settings)
    return ("ldap:" if kind == "ldap" else "mysql:") + path


def rcpt(d, addr):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        return c.cmd("RCPT TO:<%s>" % addr)


mid = harness.msgid_of


def until_code(attempt, want, waiting, timeout=15):
    """Calls attempt() until its reply has code want (servers come back
    after a back-off); any code but want and waiting fails at once."""
    deadline = time.time() + timeout
    while True:
        r = attempt()
        if r.code == want or time.time() > deadline:
            return r
        assert r.code == waiting, str(r)
        time.sleep(0.3)


def auth(d, user, pw):
    """AUTH PLAIN in a new TLS session; the reply."""
    from test_auth import b64, tls_session
    c, _ = tls_session(d)
    with c:
        return c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw)))


def module_mx(tmp_path_factory, name, setup):
    """Generator body of a module-scoped daemon fixture: setup(d) writes
    its tables and parameters before the start."""
    pool = harness.Pool(tmp_path_factory.mktemp(name))
    d = pool.new(start=False)
    setup(d)
    d.start()
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def sasl_daemon(facteurd, cert, **main_cf):
    """A daemon, not started, with TLS and AUTH (only under TLS) on."""
    from test_tls import tls_cf
    return facteurd(start=False, main_cf=tls_cf(
        cert, smtpd_sasl_auth_enable="yes", smtpd_tls_auth_only="yes",
        **main_cf))


def as_user(d, user, pw):
    """A TLS session logged in (AUTH PLAIN 235) as user."""
    from test_auth import b64, tls_session
    c, _ = tls_session(d)
    check(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))), 235)
    return c


def try_sender(c, sender, to):
    """A new transaction from sender to to in session c; the RCPT reply."""
    check(c.cmd("RSET"), 250)
    check(c.cmd("MAIL FROM:<%s>" % sender), 250)
    return c.cmd("RCPT TO:<%s>" % to)


def outage_gives_451_then_recovers(d, server, kind, unknown):
    """alice@ and bob@hosted.test exist. In one session: alice accepted,
    then with the server down every RCPT (the unknown address too) is
    451 4.3.0, and once it is back bob is accepted in the same session,
    without restarting facteurd (retry_interval = 1 s)."""
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@hosted.test>"), 250)
        server.stop()
        try:
            for addr in ("bob@hosted.test", "alice@hosted.test", unknown):
                check(c.cmd("RCPT TO:<%s>" % addr), 451, "4.3.0")
        finally:
            server.start()
        r = until_code(lambda: c.cmd("RCPT TO:<bob@hosted.test>"), 250, 451)
        check(r, 250, "2.1.5")
    assert re.search(r"%s:\S+ lookup error for \"\S+\": " % kind, d.log())


def outage_defers_queued_mail(d, server):
    """d: started, alice@hosted.test's recipient lookup cached, her quota
    lookup not. With the server down mail to her is accepted, deferred
    (4.3.0) and not delivered, never bounced; once the server is back the
    queue delivers it, without restarting facteurd."""
    check(rcpt(d, "alice@hosted.test"), 250)
    msg = make_msg("queued during an outage", to="alice@hosted.test")
    server.stop()
    try:
        qid = d.send("sender@example.net", ["alice@hosted.test"], msg)
        d.wait_log(r"%s: to=<alice@hosted\.test>.*dsn=4\.3\.0, "
                   r"status=deferred" % qid)
        time.sleep(2.5)                         # a retry or two, still down
        assert d.files("alice@hosted.test") == []
        assert d.queue_files(("deferred", "active", "incoming"))
    finally:
        server.start()
    assert len(d.wait_msgid("alice@hosted.test", mid(msg), timeout=30)) == 1
    assert d.wait_queue_empty(timeout=15) == []
    log = d.log()
    assert "status=bounced" not in log and "sender non-delivery" not in log
    assert re.search(r"%s: to=<alice@hosted\.test>.*status=sent" % qid, log)


def second_server_used(d):
    """d's tables name a dead server first: every lookup still answers."""
    for i in range(6):
        check(rcpt(d, "alice@hosted.test"), 250)
        check(rcpt(d, "nobody@hosted.test"), 550)


def auth_outage_is_454_then_recovers(d, server, kind):
    """AUTH PLAIN as alice@hosted.test (alice-pw): 235, then 454 4.7.0
    with the server stopped in the middle of a session, 235 again once it
    is back; the lookup error is logged."""
    from test_auth import b64, tls_session
    check(auth(d, "alice@hosted.test", "alice-pw"), 235)
    c, _ = tls_session(d)
    with c:
        check(c.cmd("EHLO client.example"), 250)
        server.stop()                       # in the middle of the session
        try:
            check(c.cmd("AUTH PLAIN " + b64("\0alice@hosted.test\0alice-pw")),
                  454, "4.7.0", "Temporary authentication failure")
        finally:
            server.start()
    r = until_code(lambda: auth(d, "alice@hosted.test", "alice-pw"), 235, 454)
    check(r, 235, "2.7.0")
    assert re.search(r"%s:\S+ lookup error for \"alice@hosted.test\": " % kind,
                     d.log())


def sender_login_maps(d, to, alice_also, injection):
    """Logged in as alice@hosted.test, she may send as herself, as
    team@hosted.test and as each address of alice_also, not as bob (553
    5.7.1 not owned by user alice@hosted.test); bob may send as team,
    not as alice; the injection attempt (a sender address), looked up
    literally, has no owner; without a login: not logged in."""
    from test_auth import tls_session
    with as_user(d, "alice@hosted.test", "alice-pw") as c:
        for sender in ["alice@hosted.test"] + alice_also + ["team@hosted.test"]:
            check(try_sender(c, sender, to), 250)
        check(try_sender(c, "bob@hosted.test", to), 553, "5.7.1",
              "<bob@hosted.test>: Sender address rejected: not owned by user "
              "alice@hosted.test")
    with as_user(d, "bob@hosted.test", "bob-pw") as c:
        check(try_sender(c, "team@hosted.test", to), 250)
        check(try_sender(c, "alice@hosted.test", to), 553, "5.7.1",
              "not owned by user bob@hosted.test")
        check(try_sender(c, injection, to), 553, "5.7.1")
    c, _ = tls_session(d)
    with c:
        check(try_sender(c, "alice@hosted.test", to), 553, "5.7.1",
              "<alice@hosted.test>: Sender address rejected: not logged in")


def sender_login_outage_is_4xx(d, server, rcpt_to):
    """Logged in as alice, sending as herself: accepted, 4xx while the
    server is down (never 5xx), accepted again once it is back."""
    with as_user(d, "alice@hosted.test", "alice-pw") as c:
        check(try_sender(c, "alice@hosted.test", rcpt_to), 250)
        server.stop()
        try:
            r = try_sender(c, "alice@hosted.test", rcpt_to)
            assert r.code // 100 == 4, str(r)
        finally:
            server.start()
        check(until_code(lambda: try_sender(c, "alice@hosted.test", rcpt_to),
                         250, 451), 250)
