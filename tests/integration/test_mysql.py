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
import pytest

import dirtables
import harness
from dirtables import auth, mid, rcpt
from harness import check, make_msg
from test_auth import ARGON2ID, FAIL
from test_tls import cert  # noqa: F401 (fixture)

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
    yield from dirtables.module_mx(
        tmp_path_factory, "mysql",
        lambda d: configure(d, "inet:127.0.0.1:%d" % mariadb.port))


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
    a = mx.delivered_msgid("alice@hosted.test", m)
    b = mx.delivered_msgid("bob@hosted.test", m)
    c = mx.delivered_msgid("carol@second.test", m)
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
    dirtables.outage_gives_451_then_recovers(mx, mariadb, "mysql",
                                             "x@second.test")


def test_outage_defers_queued_mail_never_bounces(build, mariadb, facteurd):
    """During an outage a recipient known from the cache is accepted, but
    its quota lookup (virtual_mailbox_limit_maps = schema/sql/quota.cf, not
    cached) cannot be answered: the message is queued and deferred (4.3.0),
    never bounced; once mariadbd is back the queue delivers it, without
    restarting facteurd."""
    hosts = "inet:127.0.0.1:%d" % mariadb.port
    d = facteurd(start=False)
    d.params["virtual_mailbox_limit_maps"] = write_cf(d, "quota.cf", "quota.cf", hosts)
    d.params.update(dirtables.FAST_RETRY)
    configure(d, hosts, dirtables.CACHE)
    d.start()
    dirtables.outage_defers_queued_mail(d, mariadb)


def test_second_host_used_when_first_is_down(build, mariadb, facteurd):
    dead = harness.free_port()
    d = facteurd(start=False)
    configure(d, "inet:127.0.0.1:%d 127.0.0.1:%d" % (dead, mariadb.port))
    d.start()
    dirtables.second_server_used(d)


def test_unreachable_server_at_start_defers(build, facteurd):
    """facteurd starts with its only server down, and answers 451."""
    d = facteurd(start=False)
    configure(d, "inet:127.0.0.1:%d" % harness.free_port())
    d.start()
    check(rcpt(d, "alice@hosted.test"), 451, "4.3.0")


@pytest.fixture
def auth_mx(facteurd, mariadb, cert):
    d = dirtables.sasl_daemon(facteurd, cert)
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
    dirtables.auth_outage_is_454_then_recovers(auth_mx, mariadb, "mysql")


# ---- smtpd_sender_login_maps = mysql:sender_login.cf (alias goto + mailbox)

@pytest.fixture
def login_mx(facteurd, mariadb, cert):
    hosts = "inet:127.0.0.1:%d" % mariadb.port
    d = dirtables.sasl_daemon(
        facteurd, cert,
        smtpd_sender_restrictions="reject_sender_login_mismatch")
    d.params["smtpd_sasl_passdb"] = write_cf(d, "auth.cf", "passdb.cf", hosts)
    d.params["smtpd_sender_login_maps"] = write_cf(d, "logins.cf",
                                                   "sender_login.cf", hosts)
    configure(d, hosts)
    d.start()
    return d


def test_sender_login_maps(login_mx, mariadb):
    # team@: the alias goto lists her
    dirtables.sender_login_maps(login_mx, "carol@second.test", [],
                                "\"x' OR '1'='1\"@hosted.test")
    assert mariadb.sql("SELECT COUNT(*) FROM alias").strip() == "4"


def test_sender_login_maps_outage_is_4xx(login_mx, mariadb):
    dirtables.sender_login_outage_is_4xx(login_mx, mariadb, "carol@second.test")
