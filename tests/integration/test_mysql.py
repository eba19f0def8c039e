"""
test_mysql.py - mysql: tables against a real mariadbd started here (temp
datadir, loopback port), loaded with schema/sql/mariadb.sql and the example
queries of schema/sql/*.cf: domains, mailboxes, aliases, alias domains and
catch-all deliver end to end; injection attempts are unknown users and the
data stays intact; an outage gives 451 4.3.0 and mail flows again when the
server is back, without restarting facteurd (mail queued meanwhile is
deferred, never bounced, and delivered afterwards); with two hosts the one
that answers is used. smtpd_sasl_passdb = mysql:auth.cf
(schema/sql/passdb.cf) verifies AUTH PLAIN against mailbox.password
({SSHA}, {SHA512-CRYPT}, {ARGON2ID}): 535 for a wrong password, an unknown
or inactive user alike, 454 4.7.0 while mariadbd is down.
smtpd_sender_login_maps = mysql:sender_login.cf (alias goto and mailbox
owner) lets a login send only as the addresses it owns.
"""
import re
import time

import pytest

import dirtables
import harness
from dirtables import auth, delivered, mid, rcpt, until_code
from harness import check, make_msg
from test_auth import ARGON2ID, FAIL, b64, tls_session
from test_tls import cert, tls_cf  # noqa: F401

PASSWORD = "s3cret'pw"

ROWS = """
INSERT INTO domain (domain, active) VALUES ('hosted.test', 1), ('second.test', 1),
  ('off.test', 0);
INSERT INTO mailbox (username, password, maildir, local_part, domain, active) VALUES
  ('alice@hosted.test', '{SSHA}K/e/gWUfYKFeWUPWPJh/DrcE3wEFc2FsdHk=', 'hosted.test/alice/', 'alice', 'hosted.test', 1),
  ('bob@hosted.test', '{SHA512-CRYPT}$6$facteurSalt$p1jY/omctEfUJGJ1bKYDaAGi28FLces2meT1RJlIqhIZ4QUVJMtdps4f2NFnSWPwQQ9GXFOv8fQ5aNqgvWXvV.', 'hosted.test/bob/', 'bob', 'hosted.test', 1),
  ('gone@hosted.test', '{SSHA}K/e/gWUfYKFeWUPWPJh/DrcE3wEFc2FsdHk=', 'hosted.test/gone/', 'gone', 'hosted.test', 0),
  ('carol@second.test', '{ARGON2ID}%s', 'second.test/carol/', 'carol', 'second.test', 1);
INSERT INTO alias (address, goto, domain, active) VALUES
  ('alice@hosted.test', 'alice@hosted.test', 'hosted.test', 1),
  ('bob@hosted.test', 'bob@hosted.test', 'hosted.test', 1),
  ('team@hosted.test', 'alice@hosted.test,bob@hosted.test', 'hosted.test', 1),
  ('@second.test', 'carol@second.test', 'second.test', 1);
INSERT INTO alias_domain (alias_domain, target_domain, active) VALUES
  ('alias.test', 'hosted.test', 1), ('second-alias.test', 'second.test', 1);
INSERT INTO domain (domain, active) VALUES ('alias.test', 1), ('second-alias.test', 1);
""" % ARGON2ID


@pytest.fixture(scope="module")
def mariadb():
    yield from dirtables.mariadb("facteur", PASSWORD, ROWS)


def write_cf(d, name, example, hosts, extra=""):
    """An example query file of schema/sql with this server's settings."""
    return dirtables.write_cf(
        d, "sql", name, example, ("hosts", "user", "password", "dbname"),
        "hosts = %s\nuser = facteur\npassword = %s\ndbname = postfixadmin\n"
        "retry_interval = 1\ntimeout = 3\n%s" % (hosts, PASSWORD, extra))


def configure(d, hosts, extra=""):
    w = lambda n, e: write_cf(d, n, e, hosts, extra)
    d.params["virtual_mailbox_domains"] = w("domains.cf", "virtual_domains.cf")
    d.params["virtual_mailbox_maps"] = ", ".join([
        w("mailboxes.cf", "virtual_mailboxes.cf"),
        w("ad_mailboxes.cf", "virtual_alias_domain_mailboxes.cf")])
    d.params["virtual_alias_maps"] = ", ".join([
        w("aliases.cf", "virtual_aliases.cf"),
        w("ad_aliases.cf", "virtual_alias_domain_aliases.cf"),
        w("ad_catchall.cf", "virtual_alias_domain_catchall.cf")])
    d.write_config()


@pytest.fixture(scope="module")
def mx(build, mariadb, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("mysql"))
    d = pool.new(start=False)
    configure(d, "inet:127.0.0.1:%d" % mariadb.port)
    d.start()
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_mailbox_alias_alias_domain_catchall_delivered(mx):
    msg = make_msg("sql", to="team@hosted.test")
    mx.send("sender@example.net",
            ["alice@hosted.test", "team@hosted.test", "bob@alias.test",
             "anyone@second.test", "someone@second-alias.test"], msg)
    m = mid(msg)
    a = mx.wait_msgid("alice@hosted.test", m)
    b = mx.wait_msgid("bob@hosted.test", m)
    c = mx.wait_msgid("carol@second.test", m)
    assert mx.wait_queue_empty(timeout=15) == []
    a = delivered(mx, "alice@hosted.test", m)
    b = delivered(mx, "bob@hosted.test", m)
    c = delivered(mx, "carol@second.test", m)
    assert len(a) == 1 and len(b) == 1 and len(c) == 1
    assert a[0].field("Delivered-To") == "alice@hosted.test"
    assert c[0].field("Delivered-To") == "carol@second.test"


@pytest.mark.parametrize("addr,code", [
    ("nobody@hosted.test", 550),        # hosted domain, no such mailbox
    ("gone@hosted.test", 550),          # inactive mailbox
])
def test_unknown_and_inactive(mx, addr, code):
    r = rcpt(mx, addr)
    assert r.code == code, str(r)


@pytest.mark.parametrize("local", [
    "\"x'); DROP TABLE mailbox; --\"",
    "\"x' OR '1'='1\"",
    "\"x' OR '1'='1' OR 'a\"",       # true for every row if unescaped
    "\"alice@hosted.test' OR username LIKE '%\"",
    "\"a*)(uid=*\"",
    "\"x\\\\' OR 1=1 -- \"",
])
def test_injection_is_an_unknown_user(mx, mariadb, local):
    r = rcpt(mx, local + "@hosted.test")
    check(r, 550, "5.1.1")
    assert mariadb.sql("SELECT COUNT(*) FROM mailbox").strip() == "4"
    assert mariadb.sql("SELECT COUNT(*) FROM alias").strip() == "4"
    check(rcpt(mx, "alice@hosted.test"), 250)


def test_outage_gives_451_then_recovers(mx, mariadb):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@hosted.test>"), 250)
        mariadb.stop()
        try:
            for addr in ("bob@hosted.test", "alice@hosted.test", "x@second.test"):
                check(c.cmd("RCPT TO:<%s>" % addr), 451, "4.3.0")
        finally:
            mariadb.start()
        # The same session, without restarting facteurd: the next attempts
        # reconnect (back-off is at most retry_interval = 1 s).
        r = until_code(lambda: c.cmd("RCPT TO:<bob@hosted.test>"), 250, 451)
        check(r, 250, "2.1.5")
    assert re.search(r"mysql:\S+ lookup error for \"\S+\": ", mx.log())


def test_outage_defers_queued_mail_never_bounces(build, mariadb, facteurd):
    """During an outage a recipient known from the cache is accepted, but
    its quota lookup (virtual_mailbox_limit_maps = schema/sql/quota.cf, not
    cached) cannot be answered: the message is queued and deferred (4.3.0),
    never bounced; once mariadbd is back the queue delivers it, without
    restarting facteurd."""
    hosts = "inet:127.0.0.1:%d" % mariadb.port
    d = facteurd(start=False)
    d.params["virtual_mailbox_limit_maps"] = write_cf(d, "quota.cf", "quota.cf", hosts)
    d.params.update({"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
                     "queue_run_delay": "1s"})
    configure(d, hosts, "cache = yes\ncache_ttl = 1h\ncache_negative_ttl = 1h\n")
    d.start()
    check(rcpt(d, "alice@hosted.test"), 250)
    msg = make_msg("queued during an outage", to="alice@hosted.test")
    mariadb.stop()
    try:
        qid = d.send("sender@example.net", ["alice@hosted.test"], msg)
        d.wait_log(r"%s: to=<alice@hosted\.test>.*dsn=4\.3\.0, status=deferred" % qid)
        time.sleep(2.5)                         # a retry or two, still down
        assert d.files("alice@hosted.test") == []
        assert d.queue_files(("deferred", "active", "incoming"))
    finally:
        mariadb.start()
    assert len(d.wait_msgid("alice@hosted.test", mid(msg), timeout=30)) == 1
    assert d.wait_queue_empty(timeout=15) == []
    log = d.log()
    assert "status=bounced" not in log and "sender non-delivery" not in log
    assert re.search(r"%s: to=<alice@hosted\.test>.*status=sent" % qid, log)


def test_second_host_used_when_first_is_down(build, mariadb, facteurd):
    dead = harness.free_port()
    d = facteurd(start=False)
    configure(d, "inet:127.0.0.1:%d 127.0.0.1:%d" % (dead, mariadb.port))
    d.start()
    for i in range(6):
        check(rcpt(d, "alice@hosted.test"), 250)
        check(rcpt(d, "nobody@hosted.test"), 550)


def test_unreachable_server_at_start_defers(build, facteurd):
    """facteurd starts with its only server down, and answers 451."""
    d = facteurd(start=False)
    configure(d, "inet:127.0.0.1:%d" % harness.free_port())
    d.start()
    check(rcpt(d, "alice@hosted.test"), 451, "4.3.0")


@pytest.fixture
def auth_mx(facteurd, mariadb, cert):
    d = facteurd(start=False, main_cf=tls_cf(
        cert, smtpd_sasl_auth_enable="yes", smtpd_tls_auth_only="yes"))
    d.params["smtpd_sasl_passdb"] = write_cf(
        d, "auth.cf", "passdb.cf", "inet:127.0.0.1:%d" % mariadb.port)
    d.write_config()
    d.start()
    return d


@pytest.mark.parametrize("user,pw", [
    ("alice@hosted.test", "alice-pw"),   # {SSHA}
    ("BOB@hosted.test", "bob-pw"),       # {SHA512-CRYPT}, login name folded
    ("carol@second.test", "Secret-1"),   # {ARGON2ID}
])
def test_auth_against_mailbox_password(auth_mx, user, pw):
    check(auth(auth_mx, user, pw), 235, "2.7.0")


@pytest.mark.parametrize("user,pw", [
    ("alice@hosted.test", "bob-pw"),     # wrong password
    ("nobody@hosted.test", "alice-pw"),  # unknown user
    ("gone@hosted.test", "alice-pw"),    # inactive
    ("x' OR '1'='1", "alice-pw"),        # injection: looked up literally
])
def test_auth_failures_are_535(auth_mx, user, pw):
    r = auth(auth_mx, user, pw)
    assert r.raw == [FAIL], r


def test_auth_outage_is_454_then_recovers(auth_mx, mariadb):
    check(auth(auth_mx, "alice@hosted.test", "alice-pw"), 235)
    c, _ = tls_session(auth_mx)
    with c:
        check(c.cmd("EHLO client.example"), 250)
        mariadb.stop()                      # in the middle of the session
        try:
            check(c.cmd("AUTH PLAIN " + b64("\0alice@hosted.test\0alice-pw")),
                  454, "4.7.0", "Temporary authentication failure")
        finally:
            mariadb.start()
    r = until_code(lambda: auth(auth_mx, "alice@hosted.test", "alice-pw"), 235, 454)
    check(r, 235, "2.7.0")
    assert re.search(r"mysql:\S+ lookup error for \"alice@hosted.test\": ",
                     auth_mx.log())


# ---- smtpd_sender_login_maps = mysql:sender_login.cf (alias goto + mailbox)

@pytest.fixture
def login_mx(facteurd, mariadb, cert):
    hosts = "inet:127.0.0.1:%d" % mariadb.port
    d = facteurd(start=False, main_cf=tls_cf(
        cert, smtpd_sasl_auth_enable="yes", smtpd_tls_auth_only="yes",
        smtpd_sender_restrictions="reject_sender_login_mismatch"))
    d.params["smtpd_sasl_passdb"] = write_cf(d, "auth.cf", "passdb.cf", hosts)
    d.params["smtpd_sender_login_maps"] = write_cf(d, "logins.cf",
                                                   "sender_login.cf", hosts)
    configure(d, hosts)
    d.start()
    return d


def as_user(d, user, pw):
    c, _ = tls_session(d)
    check(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))), 235)
    return c


def try_sender(c, sender):
    check(c.cmd("RSET"), 250)
    check(c.cmd("MAIL FROM:<%s>" % sender), 250)
    return c.cmd("RCPT TO:<carol@second.test>")


def test_sender_login_maps(login_mx, mariadb):
    with as_user(login_mx, "alice@hosted.test", "alice-pw") as c:
        check(try_sender(c, "alice@hosted.test"), 250)
        check(try_sender(c, "team@hosted.test"), 250)        # alias goto lists her
        check(try_sender(c, "bob@hosted.test"), 553, "5.7.1",
              "<bob@hosted.test>: Sender address rejected: not owned by user "
              "alice@hosted.test")
    with as_user(login_mx, "bob@hosted.test", "bob-pw") as c:
        check(try_sender(c, "team@hosted.test"), 250)
        check(try_sender(c, "alice@hosted.test"), 553, "5.7.1",
              "not owned by user bob@hosted.test")
        # injection attempts are looked up literally: no owner, refused
        check(try_sender(c, "\"x' OR '1'='1\"@hosted.test"), 553, "5.7.1")
    assert mariadb.sql("SELECT COUNT(*) FROM alias").strip() == "4"
    c, _ = tls_session(login_mx)
    with c:
        check(try_sender(c, "alice@hosted.test"), 553, "5.7.1",
              "<alice@hosted.test>: Sender address rejected: not logged in")


def test_sender_login_maps_outage_is_4xx(login_mx, mariadb):
    with as_user(login_mx, "alice@hosted.test", "alice-pw") as c:
        check(try_sender(c, "alice@hosted.test"), 250)
        mariadb.stop()
        try:
            r = try_sender(c, "alice@hosted.test")
            assert r.code // 100 == 4, str(r)
        finally:
            mariadb.start()
        check(until_code(lambda: try_sender(c, "alice@hosted.test"), 250, 451), 250)
