"""
test_auth_mechs.py - the challenge-response SASL mechanisms of the builtin
server: SCRAM-SHA-256 (RFC 5802 / RFC 7677) with a SCRAM client written
here from the RFC (hashlib, hmac), against credentials stored by
`facteur passwd -s SCRAM-SHA-256`, by `doveadm pw -s SCRAM-SHA-256` and as
{PLAIN}; CRAM-MD5 (RFC 2195) for {PLAIN} users only; what EHLO and the
ManageSieve capability offer (smtpd_sasl_mechanisms, noplaintext) and the
start-up warning about users whose stored password cannot do them; wrong
passwords, unknown users and unusable stored hashes all end in the same
535 5.7.8; malformed messages (501 for bad base64, 535 for a bad SASL
message, channel binding refused); SCRAM over ManageSieve (the server's
final message in OK (SASL ...)); and the time an unknown user takes
compared with a wrong argon2id password.
"""
import base64
import hashlib
import hmac
import os
import statistics
import subprocess
import time

import pytest

from harness import bin_path, check
from test_auth import FAIL, auth_daemon, b64, tls_session
from test_managesieve import Sieve, start as sieve_start
from test_tls import cert, starttls, tls_cf, tls_conn  # noqa: F401

MECHS = "plain login scram-sha-256 cram-md5"


def facteur_hash(scheme, pw):
    r = subprocess.run([bin_path("facteur"), "passwd", "-s", scheme],
                       input=(pw + "\n").encode(), capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r
    return r.stdout.decode().strip()


def doveadm_hash(scheme, pw):
    r = subprocess.run(["doveadm", "pw", "-s", scheme, "-p", pw],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    return r.stdout.decode().strip()


@pytest.fixture(scope="module")
def users_text():
    return ("scram@example.test:%s\n"
            "dove@example.test:%s\n"
            "plain@example.test:{PLAIN}plain pw\n"
            "argon@example.test:%s\n"
            % (facteur_hash("SCRAM-SHA-256", "scram pw"),
               doveadm_hash("SCRAM-SHA-256", "dove pw"),
               facteur_hash("ARGON2ID", "argon pw")))


@pytest.fixture
def md(facteurd, cert, users_text):
    return auth_daemon(facteurd, cert, users_text,
                       smtpd_sasl_mechanisms=MECHS)


# ------------------------------------------------------------ SCRAM client

def saslname(s):
    return s.replace("=", "=3D").replace(",", "=2C")


class Scram:
    """The client side of SCRAM-SHA-256, straight from RFC 5802 3."""

    def __init__(self, user, pw, nonce=None, gs2="n,,"):
        self.user, self.pw, self.gs2 = user, pw, gs2
        self.cnonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.bare = "n=%s,r=%s" % (saslname(user), self.cnonce)

    def first(self):
        return self.gs2 + self.bare

    def final(self, server_first):
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        assert attrs["r"].startswith(self.cnonce), server_first
        assert len(attrs["r"]) > len(self.cnonce), server_first
        salt = base64.b64decode(attrs["s"])
        it = int(attrs["i"])
        assert it >= 4096, server_first
        self.salt_b64 = attrs["s"]
        salted = hashlib.pbkdf2_hmac("sha256", self.pw.encode(), salt, it)
        ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        sk = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        stored = hashlib.sha256(ck).digest()
        without = "c=%s,r=%s" % (base64.b64encode(self.gs2.encode()).decode(),
                                 attrs["r"])
        am = ",".join([self.bare, server_first, without]).encode()
        sig = hmac.new(stored, am, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(ck, sig))
        self.server_sig = hmac.new(sk, am, hashlib.sha256).digest()
        return without + ",p=" + base64.b64encode(proof).decode()

    def check_server_final(self, text):
        assert text == "v=" + base64.b64encode(self.server_sig).decode(), text


def unb64(reply):
    assert reply.code == 334, reply
    return base64.b64decode(reply.text).decode()


def smtp_scram(c, user, pw, initial=True):
    """Runs AUTH SCRAM-SHA-256; returns the final reply."""
    s = Scram(user, pw)
    if initial:
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64(s.first()))
    else:
        r = c.cmd("AUTH SCRAM-SHA-256")
        assert r.raw == ["334 "], r
        r = c.cmd(b64(s.first()))
    r = c.cmd(b64(s.final(unb64(r))))
    if r.code != 334:
        return r, s
    s.check_server_final(unb64(r))
    return c.cmd(""), s


# ------------------------------------------------------------ SMTP

def test_ehlo_offers_configured_mechanisms(facteurd, cert, users_text):
    d = auth_daemon(facteurd, cert, users_text, smtpd_sasl_mechanisms=MECHS,
                    smtpd_tls_auth_only="no",
                    smtpd_sasl_security_options="noanonymous, noplaintext",
                    smtpd_sasl_tls_security_options="noanonymous")
    with tls_conn(d) as c:
        r = check(c.cmd("EHLO client.test"), 250)
        # Before TLS, noplaintext leaves the challenge-response ones.
        assert "AUTH CRAM-MD5 SCRAM-SHA-256" in r.lines, r
        check(c.cmd("AUTH PLAIN " + b64("\0plain@example.test\0plain pw")),
              504, "5.5.4")
        starttls(c)
        r = check(c.cmd("EHLO client.test"), 250)
        assert "AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256" in r.lines, r


def test_startup_warns_about_users_who_cannot_use_a_mechanism(md):
    md.wait_log(r"warning: \S+: smtpd_sasl_mechanisms: SCRAM-SHA-256 is "
                r"offered but 1 of 4 users in passwd-file \S+ have no "
                r"\{SCRAM-SHA-256\} or \{PLAIN\} password and cannot use it"
                r".*; CRAM-MD5 is offered but 3 of 4 users .* have no "
                r"\{PLAIN\} password")


def test_default_mechanisms_are_plain_login(facteurd, cert, users_text):
    d = auth_daemon(facteurd, cert, users_text)
    c, r = tls_session(d)
    with c:
        assert "AUTH PLAIN LOGIN" in r.lines, r
        check(c.cmd("AUTH SCRAM-SHA-256 " + b64("n,,n=plain@example.test,r=x")),
              504, "5.5.4")
        check(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4")


@pytest.mark.parametrize("user,pw,initial", [
    ("scram@example.test", "scram pw", True),     # facteur passwd
    ("dove@example.test", "dove pw", True),       # doveadm pw (Dovecot 2.3)
    ("DOVE@Example.TEST", "dove pw", False),      # case, no initial response
    ("plain@example.test", "plain pw", True),     # {PLAIN}: keys on the fly
])
def test_scram_right_password(md, user, pw, initial):
    c, _ = tls_session(md)
    with c:
        r, _ = smtp_scram(c, user, pw, initial)
        check(r, 235, "2.7.0", "Authentication successful")
        check(c.cmd("MAIL FROM:<x@example.test>"), 250)
    md.wait_log(r"disconnect from .* auth=1")


def test_scram_user_in_received_and_log(md):
    c, _ = tls_session(md, source="127.0.0.2")
    with c:
        r, _ = smtp_scram(c, "scram@example.test", "scram pw")
        check(r, 235)
        check(c.cmd("MAIL FROM:<scram@example.test>"), 250)
        check(c.cmd("RCPT TO:<someone@elsewhere.test>"), 250)
    md.wait_log(r"client=unknown\[127\.0\.0\.2\], sasl_method=SCRAM-SHA-256, "
                r"sasl_username=scram@example\.test$")


@pytest.mark.parametrize("user,pw,cause", [
    ("scram@example.test", "wrong", "wrong password"),
    ("ghost@example.test", "scram pw", "unknown user"),
    ("argon@example.test", "argon pw", "does not allow SCRAM-SHA-256"),
])
def test_scram_failures_look_alike(md, user, pw, cause):
    c, _ = tls_session(md, source="127.0.0.%d" % (40 + len(cause) % 50))
    with c:
        r, s = smtp_scram(c, user, pw)
        assert r.raw == [FAIL], r
    md.wait_log(r"warning: unknown\[127\.0\.0\.\d+\]: SASL SCRAM-SHA-256 "
                r"authentication failed: $")
    md.wait_log(r"SASL SCRAM-SHA-256: .*%s" % cause)


def test_scram_unknown_user_gets_a_stable_salt(md):
    salts = []
    for i in range(2):
        c, _ = tls_session(md, source="127.0.0.%d" % (60 + i))
        with c:
            r, s = smtp_scram(c, "ghost@example.test", "x")
            assert r.raw == [FAIL], r
            salts.append(s.salt_b64)
    assert salts[0] == salts[1]


def test_scram_malformed_messages(md):
    c, _ = tls_session(md, source="127.0.0.70")
    with c:
        # not base64: the command is wrong (501), not the credentials
        check(c.cmd("AUTH SCRAM-SHA-256 n,,n=x,r=y"), 501, "5.5.2")
        # base64 of a broken client-first: a SASL failure
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64("x,,n=scram@example.test,r=a"))
        assert r.raw == [FAIL], r
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64("n,,r=abc"))
        assert r.raw == [FAIL], r
    c, _ = tls_session(md, source="127.0.0.71")
    with c:
        # channel binding: we offer no SCRAM-SHA-256-PLUS
        r = c.cmd("AUTH SCRAM-SHA-256 " +
                  b64("p=tls-exporter,,n=scram@example.test,r=abc"))
        assert r.raw == [FAIL], r
        # a client final message with a forged nonce
        s = Scram("scram@example.test", "scram pw")
        first = unb64(c.cmd("AUTH SCRAM-SHA-256 " + b64(s.first())))
        final = s.final(first).replace(",r=" + s.cnonce, ",r=" + s.cnonce + "X")
        r = c.cmd(b64(final))
        assert r.raw == [FAIL], r
    c, _ = tls_session(md, source="127.0.0.72")
    with c:
        # "*" after the server's first message cancels (501)
        s = Scram("scram@example.test", "scram pw")
        unb64(c.cmd("AUTH SCRAM-SHA-256 " + b64(s.first())))
        check(c.cmd("*"), 501, "5.7.0", "aborted")
        # data instead of the empty answer to the server's final message
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64(s.first()))
        final = unb64(c.cmd(b64(s.final(unb64(r)))))
        s.check_server_final(final)
        r = c.cmd(b64("junk"))
        assert r.raw == [FAIL], r
    md.wait_log(r"SASL SCRAM-SHA-256: SCRAM channel binding requested but "
                r"not offered")
    md.wait_log(r"SASL SCRAM-SHA-256: SCRAM nonce mismatch")


# ------------------------------------------------------------ CRAM-MD5

def cram(c, user, pw):
    chal = unb64(c.cmd("AUTH CRAM-MD5"))
    assert chal.startswith("<") and chal.endswith(">"), chal
    digest = hmac.new(pw.encode(), chal.encode(), hashlib.md5).hexdigest()
    return c.cmd(b64("%s %s" % (user, digest)))


def test_cram_md5(md):
    c, _ = tls_session(md, source="127.0.0.80")
    with c:
        check(cram(c, "plain@example.test", "plain pw"), 235, "2.7.0")
    for i, (user, pw) in enumerate([
            ("plain@example.test", "plain pX"),       # wrong password
            ("scram@example.test", "scram pw"),       # no plaintext stored
            ("argon@example.test", "argon pw"),       # no plaintext stored
            ("ghost@example.test", "plain pw")]):     # unknown user
        c, _ = tls_session(md, source="127.0.0.%d" % (81 + i))
        with c:
            r = cram(c, user, pw)
            assert r.raw == [FAIL], (user, r)
    md.wait_log(r"SASL CRAM-MD5: no plaintext password stored for "
                r"argon@example\.test")
    c, _ = tls_session(md, source="127.0.0.90")
    with c:
        # a server-first mechanism takes no initial response
        r = c.cmd("AUTH CRAM-MD5 " + b64("plain@example.test 00"))
        assert r.raw == [FAIL], r


def test_unknown_mechanism_name_is_refused_at_start(facteurd, cert):
    main = tls_cf(cert, smtpd_sasl_auth_enable="yes",
                  smtpd_sasl_passdb="passwd-file:/dev/null",
                  smtpd_sasl_mechanisms="plain digest-md5")
    facteurd(start=False, main_cf=main).start_fails(
        r'smtpd_sasl_mechanisms: unknown mechanism "digest-md5"')


# ------------------------------------------------------------ ManageSieve

def test_managesieve_scram_and_capability(facteurd, cert):
    d = sieve_start(facteurd, cert, smtpd_sasl_mechanisms=MECHS)
    with open(d.params["smtpd_sasl_passdb"].split(":", 1)[1], "a") as f:
        f.write("scram@example.test:%s\n"
                % facteur_hash("SCRAM-SHA-256", "scram pw"))
    c = Sieve(d.sieve_port)
    try:
        c.response()
        _, lines = c.starttls()
        assert b'"SASL" "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256"' in lines, lines
        s = Scram("alice@example.test", "alice-pw")   # a {PLAIN} user
        c.send('AUTHENTICATE "SCRAM-SHA-256" "%s"\r\n' % b64(s.first()))
        chal = c.line().decode()
        assert chal.startswith('"') and chal.endswith('"'), chal
        c.send('"%s"\r\n' % b64(s.final(base64.b64decode(chal[1:-1])
                                        .decode())))
        st, _ = c.response()
        # RFC 5804 2.1: the server's final data rides on the OK
        assert st.startswith('OK (SASL "'), st
        s.check_server_final(base64.b64decode(st.split('"')[1]).decode())
        st, _ = c.cmd("LISTSCRIPTS")
        assert st.startswith("OK"), st
    finally:
        c.close()
    # wrong password over ManageSieve: NO, same as PLAIN's failure
    c = Sieve(d.sieve_port)
    try:
        c.response()
        c.starttls()
        s = Scram("scram@example.test", "nope")
        c.send('AUTHENTICATE "SCRAM-SHA-256" "%s"\r\n' % b64(s.first()))
        chal = c.line().decode()
        c.send('"%s"\r\n' % b64(s.final(base64.b64decode(chal[1:-1])
                                        .decode())))
        st, _ = c.response()
        assert st == 'NO "Authentication failed"', st
        # CRAM-MD5 without an initial response: the challenge comes first
        c.send('AUTHENTICATE "CRAM-MD5"\r\n')
        chal = base64.b64decode(c.line().decode()[1:-1]).decode()
        digest = hmac.new(b"dave-pw", chal.encode(), hashlib.md5).hexdigest()
        st, _ = c.cmd('"%s"' % b64("dave@example.test " + digest))
        assert st.startswith("OK"), st
    finally:
        c.close()


# ------------------------------------------------------------ timing

def test_unknown_user_costs_like_a_wrong_password(facteurd, cert):
    """An unknown user is verified against a dummy hash of the passdb's
    cost: its 535 must not come back much faster than an argon2id one."""
    h = facteur_hash("ARGON2ID", "argon pw")
    text = "".join("user%d@example.test:%s\n" % (i, h) for i in range(3))
    d = auth_daemon(facteurd, cert, text)

    def one(user, addr):
        c, _ = tls_session(d, source=addr)
        with c:
            t0 = time.monotonic()
            r = c.cmd("AUTH PLAIN " + b64("\0%s\0wrong" % user))
            t = time.monotonic() - t0
            assert r.raw == [FAIL], r
        return t

    one("ghost@example.test", "127.0.0.100")     # makes the dummy hash
    wrong, unknown = [], []
    for i in range(5):                            # interleaved: same load
        wrong.append(one("user1@example.test", "127.0.0.%d" % (110 + i)))
        unknown.append(one("nobody%d@example.test" % i,
                           "127.0.0.%d" % (120 + i)))
    w, u = statistics.median(wrong), statistics.median(unknown)
    assert w > 0.005, (wrong, unknown)   # argon2id really ran
    assert u >= 0.3 * w, ("unknown user answered too fast", wrong, unknown)
