"""
test_ldap.py - ldap: tables against a real slapd started here (mdb in a
temp dir, loopback port) with schema/ldap/facteur.schema, sample entries
and the example queries of schema/ldap/*.cf: domains, mailboxes, alternate
addresses, aliases with DN recursion (nested lists), catch-all and alias
domains deliver end to end; filter injection attempts are unknown users;
an outage gives 451 4.3.0 and mail flows again when slapd is back,
without restarting facteurd (with the lookup cache on, known answers are
served meanwhile, on the event loop even while the workers wait for a
hung server; mail queued meanwhile is deferred, never bounced, and
delivered afterwards); with two servers the one that answers is used.
smtpd_sasl_passdb = ldap:auth.cf verifies AUTH PLAIN against userPassword
(schema/ldap/passdb.cf: {SSHA}, {CRYPT}$6$, {ARGON2ID}) or by binding as
the user (schema/ldap/passdb_bind.cf, auth_bind = yes, DN searched or
from auth_bind_userdn): 535 for a wrong password, an unknown or inactive
user alike, 454 4.7.0 while slapd is down. smtpd_sender_login_maps =
ldap:sender_login.cf (facteurSenderLogin) lets a login send only as the
addresses it owns.
"""
import os
import re
import signal
import time

import pytest

import dirtables
import harness
from dirtables import auth, mid, rcpt, until_code
from harness import check, make_msg
from test_auth import ARGON2ID, FAIL, b64, tls_session
from test_tls import cert  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(ROOT, "schema", "ldap")
BASE = "dc=facteur,dc=test"
READER = "cn=reader,%s" % BASE
READER_PW = "reader pw"

ENTRIES = """
dn: {b}
objectClass: dcObject
objectClass: organization
dc: facteur
o: facteur tests

dn: {reader}
objectClass: person
cn: reader
sn: reader
userPassword: {pw}

dn: ou=domains,{b}
objectClass: organizationalUnit
ou: domains

dn: facteurDomain=hosted.test,ou=domains,{b}
objectClass: facteurMailDomain
facteurDomain: hosted.test
facteurActive: TRUE

dn: facteurDomain=alias.test,ou=domains,{b}
objectClass: facteurMailDomain
objectClass: domainRelatedObject
facteurDomain: alias.test
associatedDomain: hosted.test
facteurActive: TRUE

dn: facteurDomain=catch.test,ou=domains,{b}
objectClass: facteurMailDomain
facteurDomain: catch.test
facteurActive: TRUE

dn: facteurDomain=off.test,ou=domains,{b}
objectClass: facteurMailDomain
facteurDomain: off.test
facteurActive: FALSE

dn: ou=people,{b}
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,{b}
objectClass: inetOrgPerson
objectClass: facteurMailUser
uid: alice
cn: Alice
sn: A
mail: alice@hosted.test
facteurMailAddress: a.liddell@hosted.test
facteurMailbox: hosted.test/alice/
userPassword: {{SSHA}}K/e/gWUfYKFeWUPWPJh/DrcE3wEFc2FsdHk=
facteurSenderLogin: alice@hosted.test
facteurActive: TRUE

dn: uid=bob,ou=people,{b}
objectClass: inetOrgPerson
objectClass: facteurMailUser
uid: bob
cn: Bob
sn: B
mail: bob@hosted.test
facteurMailbox: hosted.test/bob/
userPassword: {{CRYPT}}$6$facteurSalt$p1jY/omctEfUJGJ1bKYDaAGi28FLces2meT1RJlIqhIZ4QUVJMtdps4f2NFnSWPwQQ9GXFOv8fQ5aNqgvWXvV.
facteurActive: TRUE

dn: uid=carol,ou=people,{b}
objectClass: inetOrgPerson
objectClass: facteurMailUser
uid: carol
cn: Carol
sn: C
mail: carol@hosted.test
facteurMailbox: hosted.test/carol/
userPassword: {{ARGON2ID}}{argon2id}
facteurActive: TRUE

dn: uid=gone,ou=people,{b}
objectClass: inetOrgPerson
objectClass: facteurMailUser
uid: gone
cn: Gone
sn: G
mail: gone@hosted.test
facteurMailbox: hosted.test/gone/
userPassword: {{SSHA}}K/e/gWUfYKFeWUPWPJh/DrcE3wEFc2FsdHk=
facteurActive: FALSE

dn: ou=aliases,{b}
objectClass: organizationalUnit
ou: aliases

dn: cn=team,ou=aliases,{b}
objectClass: facteurMailAlias
cn: team
mail: team@hosted.test
member: uid=alice,ou=people,{b}
member: uid=bob,ou=people,{b}
facteurSenderLogin: alice@hosted.test
facteurSenderLogin: bob@hosted.test
facteurActive: TRUE

dn: cn=all,ou=aliases,{b}
objectClass: facteurMailAlias
cn: all
mail: all@hosted.test
member: cn=team,ou=aliases,{b}
member: uid=carol,ou=people,{b}
member: uid=nobody-here,ou=people,{b}
facteurActive: TRUE

dn: cn=fwd,ou=aliases,{b}
objectClass: facteurMailAlias
cn: fwd
mail: fwd@hosted.test
facteurForwardTo: carol@hosted.test
facteurActive: TRUE

dn: cn=catchall,ou=aliases,{b}
objectClass: facteurMailAlias
cn: catchall
mail: @hosted.test
facteurForwardTo: carol@hosted.test
facteurActive: FALSE

dn: cn=catchall-live,ou=aliases,{b}
objectClass: facteurMailAlias
cn: catchall-live
mail: @catch.test
facteurForwardTo: carol@hosted.test
facteurActive: TRUE
""".format(b=BASE, reader=READER, pw=READER_PW, argon2id=ARGON2ID)


@pytest.fixture(scope="module")
def slapd():
    yield from dirtables.slapd(BASE, READER, ENTRIES)


def write_cf(d, name, example, hosts, extra=""):
    """An example table of schema/ldap with this server's settings."""
    return dirtables.write_cf(
        d, "ldap", name, example,
        ("server_host", "search_base", "bind_dn", "bind_pw", "timeout"),
        "server_host = %s\nsearch_base = %s\nbind_dn = %s\nbind_pw = %s\n"
        "timeout = 3\nretry_interval = 1\n%s"
        % (hosts, BASE, READER, READER_PW, extra))


def configure(d, hosts, extra=""):
    w = lambda n, e: write_cf(d, n, e, hosts, extra)
    d.params["virtual_mailbox_domains"] = w("domains.cf", "virtual_domains.cf")
    d.params["virtual_mailbox_maps"] = w("mailboxes.cf", "virtual_mailboxes.cf")
    d.params["virtual_alias_maps"] = ", ".join([
        w("aliases.cf", "virtual_aliases.cf"),
        w("addresses.cf", "virtual_addresses.cf"),
        w("alias_domains.cf", "virtual_alias_domains.cf")])
    d.write_config()


@pytest.fixture(scope="module")
def mx(build, slapd, tmp_path_factory):
    yield from dirtables.module_mx(tmp_path_factory, "ldap",
                                   lambda d: configure(d, slapd.url))


def test_mailbox_alternate_address_and_lists_delivered(mx):
    msg = make_msg("ldap", to="all@hosted.test")
    mx.send("sender@example.net", ["a.liddell@hosted.test", "all@hosted.test",
                                   "fwd@hosted.test"], msg)
    m = mid(msg)
    for u in ("alice", "bob", "carol"):
        mx.wait_msgid(u + "@hosted.test", m)
    assert mx.wait_queue_empty(timeout=15) == []
    # alice via her alternate address and via all -> team: one copy each
    # address (Postfix removes duplicates of the final recipient).
    assert len(mx.delivered_msgid("alice@hosted.test", m)) == 1
    assert len(mx.delivered_msgid("bob@hosted.test", m)) == 1
    assert len(mx.delivered_msgid("carol@hosted.test", m)) == 1


def test_alias_domain_and_catchall_delivered(mx):
    """bob@alias.test is bob@hosted.test (schema/ldap/virtual_alias_domains.cf:
    the domain entry's associatedDomain); anything@catch.test goes to the
    catch-all's facteurForwardTo."""
    msg = make_msg("ldap alias domain", to="bob@alias.test")
    mx.send("sender@example.net", ["BOB@alias.test", "whoever@catch.test"], msg)
    m = mid(msg)
    b = mx.wait_msgid("bob@hosted.test", m)
    c = mx.wait_msgid("carol@hosted.test", m)
    assert len(b) == 1 and len(c) == 1
    assert b[0].field("X-Original-To") == "BOB@alias.test"   # as received
    assert b[0].field("Delivered-To") == "bob@hosted.test"
    assert c[0].field("X-Original-To") == "whoever@catch.test"


@pytest.mark.parametrize("addr", [
    "nobody@hosted.test",       # hosted domain, no such entry
    "gone@hosted.test",         # inactive mailbox
    "someone@hosted.test",      # the catch-all entry is inactive
    "nobody@alias.test",        # alias domain: no nobody@hosted.test
    "gone@alias.test",
])
def test_unknown_and_inactive(mx, addr):
    check(rcpt(mx, addr), 550, "5.1.1")


@pytest.mark.parametrize("local", [
    "*",                        # would match every mailbox unescaped
    "a*",
    "\"a*)(uid=*\"",
    "\"*)(|(mail=*\"",
    "\"\\\\2a\"",
])
def test_filter_injection_is_an_unknown_user(mx, slapd, local):
    check(rcpt(mx, local + "@hosted.test"), 550, "5.1.1")
    assert slapd.count("(objectClass=facteurMailUser)") == 4
    check(rcpt(mx, "alice@hosted.test"), 250)


def test_outage_gives_451_then_recovers(mx, slapd):
    dirtables.outage_gives_451_then_recovers(mx, slapd, "ldap", "x@hosted.test")


def test_cache_answers_during_outage_errors_are_not_kept(build, slapd, facteurd):
    """cache = yes: a known answer (found or not found) is served from the
    cache while slapd is down; a key never seen gets 451, and that failure
    is not kept once slapd is back."""
    d = facteurd(start=False)
    configure(d, slapd.url, dirtables.CACHE)
    d.start()
    check(rcpt(d, "alice@hosted.test"), 250)
    check(rcpt(d, "nobody@hosted.test"), 550)
    slapd.stop()
    try:
        check(rcpt(d, "alice@hosted.test"), 250)
        check(rcpt(d, "ALICE@hosted.test"), 250)
        check(rcpt(d, "nobody@hosted.test"), 550)
        check(rcpt(d, "bob@hosted.test"), 451, "4.3.0")
    finally:
        slapd.start()
    r = until_code(lambda: rcpt(d, "bob@hosted.test"), 250, 451)
    check(r, 250)


def test_cached_answer_does_not_wait_for_a_busy_worker(build, slapd, facteurd):
    """With the cache on, a recipient whose answer is cached is evaluated
    on the event loop: it is answered at once even while the only worker
    thread waits for a hung slapd (SIGSTOP) on another session's lookup."""
    d = facteurd(start=False)
    d.params["facteur_worker_threads"] = "1"
    configure(d, slapd.url, dirtables.CACHE)
    d.start()
    check(rcpt(d, "alice@hosted.test"), 250)
    check(rcpt(d, "nobody@hosted.test"), 550)
    os.kill(slapd.proc.pid, signal.SIGSTOP)
    try:
        with d.session() as a:
            check(a.cmd("MAIL FROM:<sender@example.net>"), 250)
            a.send("RCPT TO:<bob@hosted.test>\r\n")     # not cached: the worker
            time.sleep(0.3)
            for addr, code in (("alice@hosted.test", 250), ("ALICE@hosted.test", 250),
                               ("nobody@hosted.test", 550)):
                t0 = time.time()
                check(rcpt(d, addr), code)
                assert time.time() - t0 < 1.5, "waited for the worker"
            check(a.reply(timeout=30), 451, "4.3.0")
    finally:
        os.kill(slapd.proc.pid, signal.SIGCONT)
    check(until_code(lambda: rcpt(d, "bob@hosted.test"), 250, 451), 250)
    assert "would block" not in d.log()


def test_outage_defers_queued_mail_never_bounces(build, slapd, facteurd):
    """During an outage a recipient known from the cache is accepted, but
    its quota lookup (virtual_mailbox_limit_maps = schema/ldap/quota.cf,
    not cached) cannot be answered: the message is queued and deferred
    (4.3.0), never bounced; once slapd is back the queue delivers it,
    without restarting facteurd."""
    d = facteurd(start=False)
    d.params["virtual_mailbox_limit_maps"] = write_cf(d, "quota.cf", "quota.cf",
                                                      slapd.url)
    d.params.update(dirtables.FAST_RETRY)
    configure(d, slapd.url, dirtables.CACHE)
    d.start()
    dirtables.outage_defers_queued_mail(d, slapd)


def test_cached_restriction_logs_once(build, slapd, facteurd):
    """check_recipient_access with an ldap: table (a WARN action built by
    result_format) and the cache on: the first RCPT misses and runs on a
    worker, the second is answered from the cache on the loop; each logs
    its warn line exactly once (lines of the trial on the loop are held,
    then written or dropped)."""
    d = facteurd(start=False)
    extra = dirtables.CACHE
    access = write_cf(d, "access.cf", "virtual_mailboxes.cf", slapd.url,
                      extra + "result_attribute = uid\nresult_format = WARN user %s\n")
    d.params["smtpd_recipient_restrictions"] = ("check_recipient_access %s, "
                                                "permit_mynetworks, reject" % access)
    configure(d, slapd.url, extra)
    d.start()
    for i in range(2):
        check(rcpt(d, "alice@hosted.test"), 250)
    check(rcpt(d, "bob@hosted.test"), 250)
    d.wait_log(r"warn: RCPT from .*: user bob;")
    log = d.log()
    assert len(re.findall(r"warn: RCPT from \S+: user alice; from=<sender@example\.net> "
                          r"to=<alice@hosted\.test>", log)) == 2, log
    assert len(re.findall(r"user bob;", log)) == 1
    assert "would block" not in log


def test_second_server_used_when_first_is_down(build, slapd, facteurd):
    d = facteurd(start=False)
    configure(d, "ldap://127.0.0.1:%d/ %s" % (harness.free_port(), slapd.url))
    d.start()
    dirtables.second_server_used(d)


def test_wrong_bind_password_defers(build, slapd, facteurd):
    d = facteurd(start=False)
    configure(d, slapd.url)
    for name in ("domains.cf", "mailboxes.cf"):
        path = os.path.join(d.confdir, name)
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("bind_pw = %s" % READER_PW, "bind_pw = wrong"))
    d.start()
    check(rcpt(d, "alice@hosted.test"), 451, "4.3.0")


def test_schema_ldif_matches_schema():
    def defs(path, strip):
        with open(path) as f:
            text = f.read()
        text = re.sub(r"(?m)^#.*\n", "", text)
        return sorted(re.sub(r"\s+", " ", x).strip()
                      for x in re.findall(r"\(\s*1\.3\.6\.1\.4\.1\.32473[^\n]*(?:\n[ \t]+[^\n]*)*", text))
    a = defs(os.path.join(SCHEMA, "facteur.schema"), False)
    b = defs(os.path.join(SCHEMA, "facteur.ldif"), True)
    assert len(a) == 11 and a == b


@pytest.mark.parametrize("user,pw", [
    ("alice@hosted.test", "alice-pw"),   # {SSHA}
    ("BOB@hosted.test", "bob-pw"),       # {CRYPT}$6$, login name folded
    ("carol@hosted.test", "Secret-1"),   # {ARGON2ID}
])
def test_auth_against_user_password(auth_mx, user, pw):
    check(auth(auth_mx, user, pw), 235, "2.7.0")


@pytest.mark.parametrize("user,pw", [
    ("alice@hosted.test", "bob-pw"),     # wrong password
    ("nobody@hosted.test", "alice-pw"),  # unknown user
    ("gone@hosted.test", "alice-pw"),    # inactive: not found by the filter
    ("a*)(mail=*", "alice-pw"),          # filter injection: looked up literally
])
def test_auth_failures_are_535(auth_mx, user, pw):
    assert auth(auth_mx, user, pw).raw == [FAIL]


def passdb_mx(facteurd, slapd, cert, example, extra=""):
    d = dirtables.sasl_daemon(facteurd, cert)
    d.params["smtpd_sasl_passdb"] = write_cf(d, "auth.cf", example, slapd.url,
                                             extra)
    d.write_config()
    d.start()
    return d


@pytest.fixture
def auth_mx(facteurd, slapd, cert):
    return passdb_mx(facteurd, slapd, cert, "passdb.cf")


def test_auth_outage_is_454_then_recovers(auth_mx, slapd):
    dirtables.auth_outage_is_454_then_recovers(auth_mx, slapd, "ldap")


# ---- auth_bind = yes: slapd checks the password (schema/ldap/passdb_bind.cf)

USERDN = "auth_bind_userdn = uid=%%u,ou=people,%s\n" % BASE


@pytest.fixture(params=["search", "userdn"])
def bind_mx(request, facteurd, slapd, cert):
    """search: query_filter finds the DN (as the reader); userdn: the DN
    comes from auth_bind_userdn, no search."""
    return passdb_mx(facteurd, slapd, cert, "passdb_bind.cf",
                     USERDN if request.param == "userdn" else "")


def test_auth_bind_right_passwords(bind_mx):
    """Binds as alice, bob, alice again, each on the user-bind connection:
    had a user bind taken over the reader's connection, the next search
    (as alice, who may read nothing) would find no one."""
    for user, pw in [("alice@hosted.test", "alice-pw"),     # {SSHA} in slapd
                     ("BOB@hosted.test", "bob-pw"),         # {CRYPT}, folded
                     ("alice@hosted.test", "alice-pw"),
                     ("bob@hosted.test", "bob-pw")]:
        check(auth(bind_mx, user, pw), 235, "2.7.0")
    log = bind_mx.log()
    assert "lookup error" not in log and "auth_bind error" not in log


@pytest.mark.parametrize("user,pw", [
    ("alice@hosted.test", "bob-pw"),     # wrong password: invalidCredentials
    ("alice@hosted.test", "ALICE-PW"),
    ("nobody@hosted.test", "alice-pw"),  # unknown user
    ("a*)(mail=*", "alice-pw"),          # filter injection
    ("alice,ou=people", "alice-pw"),     # DN injection (escaped: no entry)
])
def test_auth_bind_failures_are_535(bind_mx, user, pw):
    assert auth(bind_mx, user, pw).raw == [FAIL]


def test_auth_bind_empty_password_is_never_anonymous(facteurd, slapd, cert):
    """An empty password would be an unauthenticated bind, which slapd
    accepts as anonymous: refused before asking the server."""
    d = passdb_mx(facteurd, slapd, cert, "passdb_bind.cf", USERDN)
    assert auth(d, "alice@hosted.test", "").raw == [FAIL]
    c, _ = tls_session(d)
    with c:
        check(c.cmd("AUTH LOGIN " + b64("alice@hosted.test")), 334)
        assert c.cmd("=").raw == [FAIL]
    assert len(re.findall(r"empty password", d.log())) == 2, d.log()


def test_auth_bind_inactive_user_refused_by_search(facteurd, slapd, cert):
    """gone@ has the right password but facteurActive = FALSE: the search
    form refuses it; the DN-template form binds without looking."""
    d = passdb_mx(facteurd, slapd, cert, "passdb_bind.cf")
    assert auth(d, "gone@hosted.test", "alice-pw").raw == [FAIL]
    d2 = passdb_mx(facteurd, slapd, cert, "passdb_bind.cf", USERDN)
    check(auth(d2, "gone@hosted.test", "alice-pw"), 235)


def test_auth_bind_wrong_service_password_is_454(facteurd, slapd, cert):
    """The search needs the reader's bind: a wrong bind_pw is the
    operator's problem, a temporary failure, never a 535."""
    d = dirtables.sasl_daemon(facteurd, cert)
    spec = write_cf(d, "auth.cf", "passdb_bind.cf", slapd.url)
    with open(spec[5:]) as f:
        text = f.read()
    with open(spec[5:], "w") as f:
        f.write(text.replace("bind_pw = %s" % READER_PW, "bind_pw = wrong"))
    d.params["smtpd_sasl_passdb"] = spec
    d.write_config()
    d.start()
    check(auth(d, "alice@hosted.test", "alice-pw"), 454, "4.7.0")


def test_auth_bind_outage_is_454_then_recovers(bind_mx, slapd):
    check(auth(bind_mx, "alice@hosted.test", "alice-pw"), 235)
    slapd.stop()
    try:
        for pw in ("alice-pw", "wrong"):
            check(auth(bind_mx, "alice@hosted.test", pw), 454, "4.7.0",
                  "Temporary authentication failure")
    finally:
        slapd.start()
    r = until_code(lambda: auth(bind_mx, "alice@hosted.test", "alice-pw"), 235, 454)
    check(r, 235, "2.7.0")
    assert re.search(r"ldap:\S+ auth_bind error for \"alice@hosted.test\": ",
                     bind_mx.log())


# ---- smtpd_sender_login_maps = ldap:sender_login.cf (facteurSenderLogin)

@pytest.fixture
def login_mx(facteurd, slapd, cert):
    d = dirtables.sasl_daemon(
        facteurd, cert,
        smtpd_sender_restrictions="reject_sender_login_mismatch")
    d.params["smtpd_sasl_passdb"] = write_cf(d, "auth.cf", "passdb.cf", slapd.url)
    d.params["smtpd_sender_login_maps"] = write_cf(d, "logins.cf",
                                                   "sender_login.cf", slapd.url)
    configure(d, slapd.url)
    d.start()
    return d


def test_sender_login_maps(login_mx):
    # a.liddell@hosted.test: her other address
    dirtables.sender_login_maps(login_mx, "carol@hosted.test",
                                ["a.liddell@hosted.test"], "*@hosted.test")


def test_sender_login_maps_outage_is_4xx(login_mx, slapd):
    dirtables.sender_login_outage_is_4xx(login_mx, slapd, "carol@hosted.test")
