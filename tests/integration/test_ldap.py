"""
test_ldap.py - ldap: tables against a real slapd started here (mdb in a
temp dir, loopback port) with schema/ldap/facteur.schema, sample entries
and the example queries of schema/ldap/*.cf: domains, mailboxes, alternate
addresses, aliases with DN recursion (nested lists) and catch-all deliver
end to end; filter injection attempts are unknown users; an outage gives
451 4.3.0 and mail flows again when slapd is back, without restarting
facteurd (with the lookup cache on, known answers are served meanwhile);
with two servers the one that answers is used. smtpd_sasl_passdb =
ldap:auth.cf (schema/ldap/passdb.cf) verifies AUTH PLAIN against
userPassword ({SSHA}, {CRYPT}$6$, {ARGON2ID}): 535 for a wrong password,
an unknown or inactive user alike, 454 4.7.0 while slapd is down.
"""
import os
import re
import shutil
import sys
import tempfile
import time

import pytest

import harness
from harness import check, make_msg
from test_auth import ARGON2ID, FAIL, b64, tls_session
from test_tls import cert, tls_cf  # noqa: F401

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import servers  # noqa: E402  (tests/servers.py: private slapd and mariadbd)

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
""".format(b=BASE, reader=READER, pw=READER_PW, argon2id=ARGON2ID)


@pytest.fixture(scope="module")
def slapd():
    missing = servers.Slapd.missing()
    if missing:
        pytest.fail("%s missing: run `make test-deps`" % missing[0], pytrace=False)
    base = tempfile.mkdtemp(prefix="facteur-slapd-")
    s = servers.Slapd(base, BASE, READER, live=harness.LIVE)
    s.start()
    s.add(ENTRIES)
    yield s
    s.stop()
    shutil.rmtree(base, ignore_errors=True)


def write_cf(d, name, example, hosts, extra=""):
    """An example table of schema/ldap with this server's settings."""
    with open(os.path.join(SCHEMA, example)) as f:
        text = f.read()
    text = re.sub(r"(?m)^(server_host|search_base|bind_dn|bind_pw|timeout) =.*\n",
                  "", text)
    text += ("server_host = %s\nsearch_base = %s\nbind_dn = %s\nbind_pw = %s\n"
             "timeout = 3\nretry_interval = 1\n%s"
             % (hosts, BASE, READER, READER_PW, extra))
    path = os.path.join(d.confdir, name)
    with open(path, "w") as f:
        f.write(text)
    return "ldap:" + path


def configure(d, hosts, extra=""):
    w = lambda n, e: write_cf(d, n, e, hosts, extra)
    d.params["virtual_mailbox_domains"] = w("domains.cf", "virtual_domains.cf")
    d.params["virtual_mailbox_maps"] = w("mailboxes.cf", "virtual_mailboxes.cf")
    d.params["virtual_alias_maps"] = ", ".join([
        w("aliases.cf", "virtual_aliases.cf"),
        w("addresses.cf", "virtual_addresses.cf")])
    d.write_config()


@pytest.fixture(scope="module")
def mx(build, slapd, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("ldap"))
    d = pool.new(start=False)
    configure(d, slapd.url)
    d.start()
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def rcpt(d, addr):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        return c.cmd("RCPT TO:<%s>" % addr)


def mid(msg):
    return re.search(rb"(?im)^Message-ID:\s*(\S+)", msg).group(1).decode()


def delivered(d, addr, m):
    return [x for x in d.delivered(addr) if x.header("Message-ID") == m]


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
    assert len(delivered(mx, "alice@hosted.test", m)) == 1
    assert len(delivered(mx, "bob@hosted.test", m)) == 1
    assert len(delivered(mx, "carol@hosted.test", m)) == 1


@pytest.mark.parametrize("addr", [
    "nobody@hosted.test",       # hosted domain, no such entry
    "gone@hosted.test",         # inactive mailbox
    "someone@hosted.test",      # the catch-all entry is inactive
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
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@hosted.test>"), 250)
        slapd.stop()
        try:
            for addr in ("bob@hosted.test", "alice@hosted.test", "x@hosted.test"):
                check(c.cmd("RCPT TO:<%s>" % addr), 451, "4.3.0")
        finally:
            slapd.start()
        deadline = time.time() + 10
        while True:
            r = c.cmd("RCPT TO:<bob@hosted.test>")
            if r.code == 250 or time.time() > deadline:
                break
            assert r.code == 451, str(r)
            time.sleep(0.3)
        check(r, 250, "2.1.5")
    assert re.search(r"ldap:\S+ lookup error for \"\S+\": ", mx.log())


def test_cache_answers_during_outage_errors_are_not_kept(build, slapd, facteurd):
    """cache = yes: a known answer (found or not found) is served from the
    cache while slapd is down; a key never seen gets 451, and that failure
    is not kept once slapd is back."""
    d = facteurd(start=False)
    configure(d, slapd.url, "cache = yes\ncache_ttl = 1h\ncache_negative_ttl = 1h\n")
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
    deadline = time.time() + 10
    while True:
        r = rcpt(d, "bob@hosted.test")
        if r.code == 250 or time.time() > deadline:
            break
        assert r.code == 451, str(r)
        time.sleep(0.3)
    check(r, 250)


def test_second_server_used_when_first_is_down(build, slapd, facteurd):
    d = facteurd(start=False)
    configure(d, "ldap://127.0.0.1:%d/ %s" % (harness.free_port(), slapd.url))
    d.start()
    for i in range(4):
        check(rcpt(d, "alice@hosted.test"), 250)
        check(rcpt(d, "nobody@hosted.test"), 550)


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
    c, _ = tls_session(auth_mx)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))), 235,
              "2.7.0")


@pytest.mark.parametrize("user,pw", [
    ("alice@hosted.test", "bob-pw"),     # wrong password
    ("nobody@hosted.test", "alice-pw"),  # unknown user
    ("gone@hosted.test", "alice-pw"),    # inactive: not found by the filter
    ("a*)(mail=*", "alice-pw"),          # filter injection: looked up literally
])
def test_auth_failures_are_535(auth_mx, user, pw):
    c, _ = tls_session(auth_mx)
    with c:
        r = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw)))
        assert r.raw == [FAIL], r


@pytest.fixture
def auth_mx(facteurd, slapd, cert):
    d = facteurd(start=False, main_cf=tls_cf(
        cert, smtpd_sasl_auth_enable="yes", smtpd_tls_auth_only="yes"))
    d.params["smtpd_sasl_passdb"] = write_cf(d, "auth.cf", "passdb.cf", slapd.url)
    d.write_config()
    d.start()
    return d


def test_auth_outage_is_454_then_recovers(auth_mx, slapd):
    c, _ = tls_session(auth_mx)
    with c:
        slapd.stop()
        try:
            check(c.cmd("AUTH PLAIN " + b64("\0alice@hosted.test\0alice-pw")),
                  454, "4.7.0", "Temporary authentication failure")
        finally:
            slapd.start()
    deadline = time.time() + 10
    while True:
        c, _ = tls_session(auth_mx)
        with c:
            r = c.cmd("AUTH PLAIN " + b64("\0alice@hosted.test\0alice-pw"))
        if r.code == 235 or time.time() > deadline:
            break
        assert r.code == 454, str(r)
        time.sleep(0.3)
    check(r, 235, "2.7.0")
    assert re.search(r"ldap:\S+ lookup error for \"alice@hosted.test\": ",
                     auth_mx.log())
