"""
test_auth.py - SMTP AUTH (RFC 4954) with the builtin SASL server: PLAIN and
LOGIN against a Dovecot passwd-file with crypt, SSHA, argon2 and plain
entries; identical replies for unknown users and wrong passwords; the
exchange's error replies; smtpd_tls_auth_only; authenticated relaying;
the Received header and Postfix's log lines (fail2ban's sasl patterns);
passdb outage (454) and the per-IP throttle.
"""
import base64
import hashlib
import os
import re
import subprocess
import time

import pytest

from harness import check, dot_stuff, make_msg
from test_tls import cert, client_ctx, ehlo_keywords, starttls, tls_cf, tls_conn  # noqa: F401

OUTSIDER = "127.0.0.2"
ARGON2ID = ("$argon2id$v=19$m=8192,t=2,p=1$UkBoSc5Fbp+wONfnaKVSTA$"
            "OwEpYCTKp9ylWr16H9YujIIbYFWhRRxuSgfdek6n0/g")   # "Secret-1"


def b64(s):
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def ssha512(pw, salt=b"\x07salt42"):
    return "{SSHA512}" + b64(hashlib.sha512(pw.encode() + salt).digest() + salt)


@pytest.fixture(scope="module")
def users_text():
    sha512 = subprocess.run(["openssl", "passwd", "-6", "alice-pw"],
                            check=True, capture_output=True,
                            timeout=30).stdout.decode().strip()
    return ("# facteur test users\n"
            "alice@example.test:{SHA512-CRYPT}%s::::::\n"
            "Bob@Example.test:%s\n"
            "carol@example.test:{ARGON2ID}%s\n"
            "dave@example.test:{PLAIN}dave pw:1000:1000::/home/dave::\n"
            % (sha512, ssha512("bob-pw"), ARGON2ID))


def auth_daemon(facteurd, cert, users_text, **extra):
    cf = {"smtpd_sasl_auth_enable": "yes",
          "smtpd_sasl_passdb": "passwd-file:PLACEHOLDER",
          "smtpd_tls_auth_only": "yes",
          "smtpd_sasl_authenticated_header": "yes",
          "smtpd_tls_received_header": "yes"}
    cf.update(extra)
    d = facteurd(start=False, main_cf=tls_cf(cert, **cf))
    users = os.path.join(d.confdir, "users")
    with open(users, "w") as f:
        f.write(users_text)
    d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
    d.users = users
    d.write_config()
    d.start()
    return d


@pytest.fixture
def ad(facteurd, cert, users_text):
    return auth_daemon(facteurd, cert, users_text)


def tls_session(d, source=None):
    c = tls_conn(d, source=source)
    check(c.cmd("EHLO client.test"), 250)
    starttls(c)
    r = check(c.cmd("EHLO client.test"), 250)
    return c, r


FAIL = "535 5.7.8 Error: authentication failed: authentication failure"


def test_auth_only_hides_auth_before_tls(ad):
    with tls_conn(ad) as c:
        r = check(c.cmd("EHLO client.test"), 250)
        assert not any(l.startswith("AUTH") for l in r.lines), r
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0alice-pw")),
              538, "5.7.11", "Encryption required")
        starttls(c)
        r = check(c.cmd("EHLO client.test"), 250)
        assert "AUTH PLAIN LOGIN" in r.lines, r
        assert "AUTH=PLAIN LOGIN" not in r.lines, r


@pytest.mark.parametrize("user,pw", [
    ("alice@example.test", "alice-pw"),        # SHA512-CRYPT (openssl)
    ("bob@example.test", "bob-pw"),            # SSHA512 (hashlib), no scheme case
    ("BOB@EXAMPLE.TEST", "bob-pw"),            # user names are case-insensitive
    ("carol@example.test", "Secret-1"),        # ARGON2ID (libsodium)
    ("dave@example.test", "dave pw"),          # PLAIN, with a space
])
def test_plain_right_password(ad, user, pw):
    c, _ = tls_session(ad)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))), 235,
              "2.7.0", "Authentication successful")
        check(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))), 503,
              "5.5.1", "already authenticated")


def test_plain_without_initial_response_and_authzid(ad):
    c, _ = tls_session(ad)
    with c:
        r = c.cmd("AUTH PLAIN")
        assert r.raw == ["334 "], r
        check(c.cmd(b64("alice@example.test\0alice@example.test\0alice-pw")),
              235, "2.7.0")


def test_login_dialogue(ad):
    c, _ = tls_session(ad)
    with c:
        r = check(c.cmd("AUTH LOGIN"), 334)
        assert r.raw == ["334 VXNlcm5hbWU6"], r
        r = check(c.cmd(b64("dave@example.test")), 334)
        assert r.raw == ["334 UGFzc3dvcmQ6"], r
        check(c.cmd(b64("dave pw")), 235, "2.7.0")
    c, _ = tls_session(ad)
    with c:   # initial response = the user name
        check(c.cmd("AUTH LOGIN " + b64("dave@example.test")), 334)
        check(c.cmd(b64("wrong")), 535, "5.7.8")


@pytest.mark.parametrize("user,pw", [
    ("alice@example.test", "wrong"),
    ("alice@example.test", "Alice-pw"),
    ("nobody@example.test", "alice-pw"),
    ("carol@example.test", "Secret-2"),
])
def test_failures_are_indistinguishable(ad, user, pw):
    replies = []
    c, _ = tls_session(ad)
    with c:
        replies.append(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))))
        check(c.cmd("AUTH LOGIN"), 334)
        check(c.cmd(b64(user)), 334)
        replies.append(c.cmd(b64(pw)))
        # A foreign authorization identity fails the same way.
        replies.append(c.cmd("AUTH PLAIN " + b64(
            "dave@example.test\0alice@example.test\0alice-pw")))
    for r in replies:
        assert r.raw == [FAIL], r


def test_exchange_errors(ad):
    c, _ = tls_session(ad)
    with c:
        check(c.cmd("AUTH"), 501, "5.5.4")
        check(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4")
        check(c.cmd("AUTH PLAIN not*base64"), 501, "5.5.2")
        check(c.cmd("AUTH PLAIN"), 334)
        check(c.cmd("*"), 501, "5.7.0", "aborted")
        check(c.cmd("AUTH LOGIN"), 334)
        check(c.cmd("%%%%"), 501, "5.5.2")
        check(c.cmd("AUTH PLAIN ="), 535, "5.7.8")
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")),
              503, "5.5.1", "transaction")
        check(c.cmd("RSET"), 250)
        check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")),
              235, "2.7.0")


def test_not_enabled(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert))
    c, r = tls_session(d)
    with c:
        assert not any(l.startswith("AUTH") for l in r.lines), r
        check(c.cmd("AUTH PLAIN =",), 503, "5.5.1", "not enabled")


def test_authenticated_relay_and_headers(ad):
    # Unauthenticated outsider: no relaying.
    c, _ = tls_session(ad, source=OUTSIDER)
    with c:
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        r = c.cmd("RCPT TO:<someone@elsewhere.test>")
        assert r.code in (454, 554), r
    c, _ = tls_session(ad, source=OUTSIDER)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")), 235)
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        check(c.cmd("RCPT TO:<someone@elsewhere.test>"), 250, "2.1.5")
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg(sender="dave@example.test")))
        check(c.reply(), 250, "2.0.0")
    got = ad.wait_files("alice@example.test", 1)[0]
    rcv = got.field("Received")
    assert "(Authenticated sender: dave@example.test)" in rcv, rcv
    assert "with ESMTPSA id" in rcv, rcv
    ad.wait_log(r"smtpd\[\d+\]: [0-9A-Z]+: client=unknown\[127\.0\.0\.2\], "
                r"sasl_method=PLAIN, sasl_username=dave@example\.test$")


def test_sasl_local_domain_completes_bare_names(facteurd, cert, users_text):
    """smtpd_sasl_local_domain: "dave" logs in as dave@example.test (the
    name logs, headers and sender login maps see); a full name is kept;
    a listener without it refuses the bare name."""
    d = auth_daemon(facteurd, cert, users_text,
                    smtpd_sasl_local_domain="example.test")
    c, _ = tls_session(d, source=OUTSIDER)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0dave\0dave pw")), 235, "2.7.0")
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        check(c.cmd("RCPT TO:<someone@elsewhere.test>"), 250, "2.1.5")
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg(sender="dave@example.test")))
        check(c.reply(), 250, "2.0.0")
    got = d.wait_files("alice@example.test", 1)[0]
    assert "(Authenticated sender: dave@example.test)" in got.field("Received")
    c, _ = tls_session(d)
    with c:
        check(c.cmd("AUTH LOGIN " + b64("alice")), 334)
        check(c.cmd(b64("alice-pw")), 235, "2.7.0")
    c, _ = tls_session(d)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0bob@example.test\0bob-pw")), 235)
    d.wait_log(r"client=unknown\[127\.0\.0\.2\], sasl_method=PLAIN, "
               r"sasl_username=dave@example\.test$")
    r = d.cli("check")
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert "smtpd_sasl_local_domain" not in out, out   # no "ignored" notice
    d2 = auth_daemon(facteurd, cert, users_text)
    c, _ = tls_session(d2)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0dave\0dave pw")), 535, "5.7.8")


def test_failure_log_lines(ad):
    c, _ = tls_session(ad)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0bad")), 535)
        check(c.cmd("AUTH LOGIN"), 334)
        check(c.cmd(b64("nobody@example.test")), 334)
        check(c.cmd(b64("bad")), 535)
    # Debian fail2ban postfix filter (mode=more/aggressive), sasl part:
    f2b = re.compile(r"warning: [-._\w]+\[(?P<host>[^\]]+)\]: SASL "
                     r"((?i:LOGIN|PLAIN|(?:CRAM|DIGEST)-MD5)) authentication "
                     r"failed:(?! Connection lost to authentication server| "
                     r"Invalid authentication mechanism)")
    ad.wait_log(r"facteur/smtpd\[\d+\]: warning: localhost\[127\.0\.0\.1\]: "
                r"SASL PLAIN authentication failed: $")
    ad.wait_log(r"facteur/smtpd\[\d+\]: warning: localhost\[127\.0\.0\.1\]: "
                r"SASL LOGIN authentication failed: UGFzc3dvcmQ6$")
    hits = [m.group("host") for m in f2b.finditer(ad.log())]
    assert hits == ["127.0.0.1", "127.0.0.1"], hits
    ad.wait_log(r"disconnect from .* auth=0/2")


def test_passdb_outage_is_temporary(ad):
    os.rename(ad.users, ad.users + ".away")
    try:
        c, _ = tls_session(ad)
        with c:
            check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")),
                  454, "4.7.0", "Temporary authentication failure")
    finally:
        os.rename(ad.users + ".away", ad.users)
    # The file comes back: authentication works again.
    c, _ = tls_session(ad)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")), 235)
    ad.wait_log(r"SASL PLAIN authentication temporarily failed: "
                r"passwd-file .*No such file")


def test_passwd_file_reloads(ad):
    with open(ad.users, "a") as f:
        f.write("erin@example.test:{PLAIN}erin-pw\n")
    c, _ = tls_session(ad)
    with c:
        check(c.cmd("AUTH PLAIN " + b64("\0erin@example.test\0erin-pw")), 235)


def test_repeated_failures_are_slowed_not_refused(ad):
    c, _ = tls_session(ad, source="127.0.0.3")
    with c:
        times = []
        for i in range(6):
            t0 = time.monotonic()
            r = c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0guess%d" % i),
                      )
            times.append(time.monotonic() - t0)
            assert r.raw == [FAIL], r
    # The first three failures are answered at once, later ones wait.
    assert max(times[:3]) < 0.9, times
    assert times[4] >= 0.9 and times[5] >= 1.9, times
    # Across sessions: a new connection from that address is still slow.
    c, _ = tls_session(ad, source="127.0.0.3")
    with c:
        t0 = time.monotonic()
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0again")), 535)
        assert time.monotonic() - t0 >= 2.9
        # The right password still works (never 454 because of throttling).
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0alice-pw")),
              235)


@pytest.mark.parametrize("cf,msg", [
    ({"smtpd_sasl_passdb": ""}, r"smtpd_sasl_auth_enable = yes needs "
                                r"smtpd_sasl_passdb"),
    ({"smtpd_sasl_passdb": "texthash:/nonexistent"},
     r"unsupported type \"texthash\""),
    ({"smtpd_sasl_type": "dovecot"}, r"smtpd_sasl_type = dovecot is not "
                                     r"supported"),
    ({"smtpd_sasl_security_options": "noanonymous, nosuch"},
     r"smtpd_sasl_security_options: unknown option \"nosuch\""),
])
def test_config_errors(facteurd, cert, cf, msg):
    main = tls_cf(cert, smtpd_sasl_auth_enable="yes",
                  smtpd_sasl_passdb="passwd-file:/nonexistent/users")
    main.update(cf)
    facteurd(start=False, main_cf=main).start_fails(msg)


def test_noplaintext_before_tls_and_broken_clients(facteurd, cert, users_text):
    d = auth_daemon(facteurd, cert, users_text, smtpd_tls_auth_only="no",
                    smtpd_sasl_security_options="noanonymous, noplaintext",
                    smtpd_sasl_tls_security_options="noanonymous",
                    broken_sasl_auth_clients="yes")
    with tls_conn(d) as c:
        r = check(c.cmd("EHLO client.test"), 250)
        assert not any(l.startswith("AUTH") for l in r.lines), r
        check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")),
              504, "5.5.4")
        starttls(c)
        r = check(c.cmd("EHLO client.test"), 250)
        assert "AUTH PLAIN LOGIN" in r.lines and "AUTH=PLAIN LOGIN" in r.lines
        check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")), 235)
