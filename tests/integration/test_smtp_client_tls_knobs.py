"""
test_smtp_client_tls_knobs.py - the SMTP client's smtp_tls_* knobs beside
the security level: smtp_tls_wrappermode (implicit TLS to a port-465 style
next hop: the usual smarthost-on-465 recipe), smtp_tls_loglevel (0: no
"TLS connection established" line), smtp_tls_exclude_ciphers (seen in the
negotiated cipher), the obsolete smtp_use_tls / smtp_enforce_tls,
smtp_tls_note_starttls_offer, and a bad cipher grade at start.
The remote side is tests/integration/capture.py, wrapped in TLS from the
first byte for wrappermode.
"""
import os
import shutil
import ssl
import subprocess
import tempfile

import pytest

from harness import free_port, make_msg
from capture import Capture


@pytest.fixture(scope="module")
def remote_cert():
    # smtp_tls_CAfile is read as the mail owner: not in pytest's 0700 dirs
    d = tempfile.mkdtemp(prefix="facteur-knobs-")
    os.chmod(d, 0o755)
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=remote.test",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                   capture_output=True, timeout=60)
    os.chmod(crt, 0o644)
    yield crt, key
    shutil.rmtree(d, ignore_errors=True)


class CipherCapture(Capture):
    """STARTTLS capture that records the negotiated cipher per connection."""

    def _tls(self, c):
        s = super()._tls(c)
        self.ciphers = getattr(self, "ciphers", []) + [s.cipher()[0]]
        return s


class ImplicitTLSCapture(CipherCapture):
    """A capture server speaking TLS from the first byte (smtps, 465)."""

    def _session(self, c, conn):
        try:
            c.settimeout(15)
            c = self._tls(c)
        except (ssl.SSLError, OSError):
            c.close()
            return
        conn.tls = True
        conn.tls_version = c.version()
        super()._session(c, conn)


def relay(facteurd, port, **cf):
    main = {"relayhost": "[127.0.0.1]:%d" % port,
            "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
            "queue_run_delay": "1s"}
    main.update(cf)
    return facteurd(main_cf=main)


def send_far(d, subject):
    return d.send("sender@example.net", ["friend@far.example"],
                  make_msg(subject, to="friend@far.example"))


def test_wrappermode_to_465(facteurd, remote_cert):
    r = ImplicitTLSCapture(port=free_port(), tls_cert=remote_cert)
    try:
        d = relay(facteurd, r.port, smtp_tls_wrappermode="yes",
                  smtp_tls_security_level="encrypt")
        qid = send_far(d, "wrapped")
        got = r.wait_messages(1)
        assert len(got) == 1, d.diagnostics()
        assert r.conns[0].tls
        # no STARTTLS inside the TLS session
        assert not any(c.upper() == "STARTTLS" for c in r.conns[0].commands)
        d.wait_log(r"Untrusted TLS connection established to 127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d: TLSv1\.[23] with cipher" % r.port)
        d.wait_log(r"%s: to=<friend@far\.example>.* status=sent" % qid)
    finally:
        r.close()


def test_without_wrappermode_465_fails(facteurd, remote_cert):
    r = ImplicitTLSCapture(port=free_port(), tls_cert=remote_cert)
    try:
        # both sides wait: the client for a greeting, the server for a
        # TLS hello, until smtp_helo_timeout
        d = relay(facteurd, r.port, smtp_tls_security_level="encrypt",
                  smtp_helo_timeout="1s")
        qid = send_far(d, "not wrapped")
        d.wait_log(r"%s: to=<friend@far\.example>.* status=deferred .*"
                   r"timed out while receiving the initial server greeting"
                   % qid)
        assert r.messages == []
    finally:
        r.close()


def test_wrappermode_needs_tls_level(facteurd):
    facteurd(start=False, main_cf={
        "smtp_tls_wrappermode": "yes"}).start_fails(
        r"smtp_tls_wrappermode = yes needs smtp_tls_security_level = encrypt")


@pytest.mark.parametrize("level", ["0", "1"])
def test_loglevel(facteurd, remote_cert, level):
    r = CipherCapture(port=free_port(), starttls="tls", tls_cert=remote_cert)
    try:
        d = relay(facteurd, r.port, smtp_tls_security_level="may",
                  smtp_tls_loglevel=level)
        qid = send_far(d, "loglevel " + level)
        d.wait_log(r"%s: to=<friend@far\.example>.* status=sent" % qid)
        assert r.conns[0].tls
        logged = "TLS connection established to" in d.log()
        assert logged is (level == "1"), d.log()
    finally:
        r.close()


@pytest.mark.parametrize("param,exclude", [
    ("smtp_tls_exclude_ciphers", ""),
    ("smtp_tls_exclude_ciphers", "AESGCM, CHACHA20"),
    ("smtp_tls_mandatory_exclude_ciphers", "AESGCM, CHACHA20")])
def test_exclude_ciphers(facteurd, remote_cert, param, exclude):
    r = CipherCapture(port=free_port(), starttls="tls", tls_cert=remote_cert,
                      tls_max=ssl.TLSVersion.TLSv1_2)
    try:
        d = relay(facteurd, r.port, smtp_tls_security_level="encrypt",
                  **{param: exclude})
        qid = send_far(d, "exclude")
        d.wait_log(r"%s: to=<friend@far\.example>.* status=sent" % qid)
        cipher = r.ciphers[0]
        if exclude:
            assert "GCM" not in cipher and "CHACHA" not in cipher, cipher
        else:
            assert "GCM" in cipher or "CHACHA" in cipher, cipher
        assert "TLSv1.2 with cipher %s" % cipher in d.log()
    finally:
        r.close()


def test_obsolete_use_tls(facteurd, remote_cert):
    r = CipherCapture(port=free_port(), starttls="tls", tls_cert=remote_cert)
    try:
        d = relay(facteurd, r.port, smtp_use_tls="yes")
        qid = send_far(d, "use_tls")
        d.wait_log(r"%s: to=<friend@far\.example>.* status=sent" % qid)
        assert r.conns[0].tls
        assert "is not used by this version" not in d.log()
    finally:
        r.close()


def test_obsolete_enforce_tls(facteurd):
    r = Capture(port=free_port())       # no STARTTLS
    try:
        d = relay(facteurd, r.port, smtp_enforce_tls="yes")
        qid = send_far(d, "enforce_tls")
        d.wait_log(r"%s: to=<friend@far\.example>.* status=deferred "
                   r"\(TLS is required, but was not offered" % qid)
        assert r.messages == []
    finally:
        r.close()


def test_note_starttls_offer(facteurd, remote_cert):
    r = CipherCapture(port=free_port(), starttls="tls", tls_cert=remote_cert)
    try:
        d = relay(facteurd, r.port, smtp_tls_note_starttls_offer="yes")
        qid = send_far(d, "note")
        d.wait_log(r"%s: to=<friend@far\.example>.* status=sent" % qid)
        d.wait_log(r"Host offered STARTTLS: \[127\.0\.0\.1\]")
        assert not r.conns[0].tls
    finally:
        r.close()


def test_bad_cipher_grade(facteurd):
    facteurd(start=False, main_cf={
        "smtp_tls_security_level": "may",
        "smtp_tls_ciphers": "bogus"}).start_fails(
        r'bad value for smtp_tls_ciphers: "bogus"')


@pytest.mark.parametrize("level,word", [("may", "Trusted"),
                                        ("encrypt", "Trusted"),
                                        ("verify", "Verified")])
def test_trust_words(facteurd, remote_cert, level, word):
    """A chain that verifies is Trusted at may/encrypt, Verified (name
    checked) at verify, as Postfix logs them."""
    r = CipherCapture(port=free_port(), starttls="tls", tls_cert=remote_cert)
    try:
        d = relay(facteurd, r.port, smtp_tls_security_level=level,
                  smtp_tls_CAfile=remote_cert[0])
        qid = send_far(d, "trust " + level)
        d.wait_log(r"%s: to=<friend@far\.example>.* status=sent" % qid)
        d.wait_log(r"%s TLS connection established to 127\.0\.0\.1"
                   % word)
    finally:
        r.close()


@pytest.mark.parametrize("match,sent", [("", True), ("hostname", True),
                                        ("wrong.example", False)])
def test_verify_cert_match(facteurd, remote_cert, match, sent):
    """smtp_tls_verify_cert_match: the remote certificate names
    127.0.0.1 (the host name of a [127.0.0.1] next hop)."""
    r = CipherCapture(port=free_port(), starttls="tls", tls_cert=remote_cert)
    try:
        cf = {"smtp_tls_security_level": "verify",
              "smtp_tls_CAfile": remote_cert[0]}
        if match:
            cf["smtp_tls_verify_cert_match"] = match
        d = relay(facteurd, r.port, **cf)
        qid = send_far(d, "match " + match)
        if sent:
            d.wait_log(r"%s: to=<friend@far\.example>.* status=sent" % qid)
        else:
            d.wait_log(r"%s: to=<friend@far\.example>.* status=deferred "
                       r"\(Server certificate not verified" % qid)
            assert r.messages == []
    finally:
        r.close()
