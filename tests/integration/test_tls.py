"""
test_tls.py - TLS in the SMTP server: STARTTLS (RFC 3207) offered with a
certificate, required at security level encrypt (530 before it), state
reset and plaintext-injection protection, implicit TLS (smtps, wrappermode),
protocol policy in Postfix's two syntaxes, session resumption, the
Received: header and the Postfix log line; the seed master.cf lines for
submission and smtps.
"""
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from harness import HOSTNAME, check, dot_stuff, free_port, make_msg, SMTPConn


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    os.chmod(str(d), 0o755)
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + HOSTNAME], check=True,
                   capture_output=True, timeout=60)
    chain = str(d / "chain.pem")
    with open(chain, "w") as f:
        f.write(open(key).read() + open(crt).read())
    return {"key": key, "cert": crt, "chain": chain}


def tls_cf(cert, **extra):
    cf = {"smtpd_tls_cert_file": cert["cert"],
          "smtpd_tls_key_file": cert["key"],
          "smtpd_tls_security_level": "may",
          "smtpd_tls_loglevel": "1"}
    cf.update(extra)
    return cf


def client_ctx(minv=None, maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    return ctx


class TLSConn(SMTPConn):
    """A raw SMTP connection that can switch its socket to TLS."""

    def starttls(self, ctx=None, session=None):
        assert self.buf == b"", "unread input before TLS: %r" % self.buf
        self.sock = (ctx or client_ctx()).wrap_socket(
            self.sock, server_hostname=HOSTNAME, session=session)
        return self.sock


def tls_conn(d, port=None, source=None):
    c = TLSConn(d.host, port or d.port, source=source)
    check(c.reply(), 220)
    return c


def starttls(c, ctx=None, session=None):
    check(c.cmd("STARTTLS"), 220, "2.0.0", "Ready to start TLS")
    return c.starttls(ctx, session)


def ehlo_keywords(reply):
    return [l.split()[0].upper() for l in reply.lines[1:]]


# ---------------------------------------------------------------- STARTTLS

def test_no_certificate_no_starttls(facteurd):
    d = facteurd()
    with d.session() as c:
        r = c.cmd("EHLO client.test")
        assert "STARTTLS" not in ehlo_keywords(r), r
        check(c.cmd("STARTTLS"), 502, "5.5.1")


def test_starttls_delivers_with_esmtps_and_logs(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert, smtpd_tls_received_header="yes"))
    s = smtplib.SMTP(d.host, d.port, timeout=10)
    try:
        code, text = s.ehlo("client.test")
        assert code == 250 and s.has_extn("starttls"), text
        code, text = s.starttls(context=client_ctx())
        assert code == 220 and text == b"2.0.0 Ready to start TLS", text
        code, text = s.ehlo("client.test")
        assert code == 250 and not s.has_extn("starttls"), text
        msg = make_msg(subject="over tls")
        s.sendmail("sender@example.net", ["alice@example.test"], msg)
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        version = s.sock.version()
    finally:
        s.quit()
    got = d.wait_files("alice@example.test", 1)[0]
    rcv = got.field("Received")
    assert re.search(r"\(using %s with cipher \S+ \(\d+/\d+ bits\)\)"
                     % re.escape(version), rcv), rcv
    assert "(No client certificate requested)" in rcv, rcv
    assert re.search(r"with ESMTPS id ", rcv), rcv
    d.wait_log(r"smtpd\[\d+\]: Anonymous TLS connection established from "
               r"localhost\[127\.0\.0\.1\]: %s with cipher \S+ \(\d+/\d+ bits\)"
               % re.escape(version))
    d.wait_log(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=2 starttls=1 "
               r"mail=1 rcpt=1 data=1 quit=1 commands=7")


def test_received_header_without_tls_details(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert))
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        starttls(c)
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg(to="bob@example.test")))
        check(c.reply(), 250, "2.0.0")
    rcv = d.wait_files("bob@example.test", 1)[0].field("Received")
    assert "with ESMTPS id" in rcv and "(using" not in rcv, rcv


def test_starttls_rules(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert))
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("STARTTLS now"), 501, "5.5.4")
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("STARTTLS"), 503, "5.5.1", "transaction in progress")
        check(c.cmd("RSET"), 250)
        starttls(c)
        # RFC 3207 4.2: the client must say EHLO again; nothing is kept.
        r = check(c.cmd("EHLO client.test"), 250)
        assert "STARTTLS" not in ehlo_keywords(r), r
        check(c.cmd("STARTTLS"), 554, "5.5.1", "TLS already active")
        check(c.cmd("QUIT"), 221)


def test_starttls_forgets_the_transaction(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert))
    with tls_conn(d) as c:
        check(c.cmd("HELO client.test"), 250)
        starttls(c)
        check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1",
              "need MAIL")


@pytest.mark.parametrize("injected", [
    b"RSET\r\n",
    b"MAIL FROM:<evil@example.net>\r\nRCPT TO:<alice@example.test>\r\n",
])
def test_starttls_pipelined_plaintext_is_discarded(facteurd, cert, injected):
    d = facteurd(main_cf=tls_cf(cert))
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        c.send(b"STARTTLS\r\n" + injected)
        check(c.reply(), 220, "2.0.0")
        c.starttls()
        # The first reply inside TLS answers our EHLO, not injected input.
        r = check(c.cmd("EHLO client.test"), 250)
        assert r.lines[0] == HOSTNAME, r
        # And no transaction was opened by the injected MAIL.
        check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
        check(c.cmd("QUIT"), 221)
    d.wait_log(r"warning: localhost\[127\.0\.0\.1\]: discarding %d byte\(s\) "
               r"of input pipelined after STARTTLS" % len(injected))


def test_plaintext_after_starttls_fails_the_handshake(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert))
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("STARTTLS"), 220)
        c.send(b"MAIL FROM:<x@example.net>\r\n")
        assert c.expect_closed(10), "plaintext accepted after STARTTLS"
    d.wait_log(r"SSL_accept error from localhost\[127\.0\.0\.1\]")
    # The daemon goes on serving.
    with d.session() as c2:
        check(c2.cmd("NOOP"), 250)


# ---------------------------------------------------------------- encrypt

@pytest.mark.parametrize("cf", [
    {"smtpd_tls_security_level": "encrypt"},
    {"smtpd_tls_security_level": None, "smtpd_enforce_tls": "yes"},
])
def test_encrypt_level_requires_starttls(facteurd, cert, cf):
    d = facteurd(main_cf=tls_cf(cert, **cf))
    with tls_conn(d) as c:
        r = check(c.cmd("EHLO client.test"), 250)
        assert "STARTTLS" in ehlo_keywords(r), r
        check(c.cmd("NOOP"), 250)
        for cmd in ("MAIL FROM:<sender@example.net>",
                    "RCPT TO:<alice@example.test>", "DATA", "BDAT 3 LAST",
                    "VRFY alice@example.test", "HELP"):
            check(c.cmd(cmd), 530, "5.7.0",
                  "Must issue a STARTTLS command first")
        starttls(c)
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")


def test_use_tls_legacy_offers_starttls(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert, smtpd_tls_security_level=None,
                                smtpd_use_tls="yes"))
    with tls_conn(d) as c:
        r = check(c.cmd("EHLO client.test"), 250)
        assert "STARTTLS" in ehlo_keywords(r), r
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)


def test_level_none_hides_starttls(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert, smtpd_tls_security_level="none"))
    with d.session() as c:
        assert "STARTTLS" not in ehlo_keywords(c.cmd("EHLO client.test"))
        check(c.cmd("STARTTLS"), 502, "5.5.1")


def _start_fails(d, pattern):
    d.start_fails(pattern)


def test_encrypt_without_certificate_is_a_config_error(facteurd):
    d = facteurd(start=False, main_cf={"smtpd_tls_security_level": "encrypt"})
    _start_fails(d, r"requires a certificate: set smtpd_tls_cert_file")


def test_bad_protocol_list_is_a_config_error(facteurd, cert):
    d = facteurd(start=False, main_cf=tls_cf(cert,
                                             smtpd_tls_protocols="TLSv9"))
    _start_fails(d, r"smtpd_tls_protocols: unknown TLS protocol \"TLSv9\"")


def test_unreadable_key_is_a_config_error(facteurd, cert, tmp_path):
    d = facteurd(start=False, main_cf=tls_cf(
        cert, smtpd_tls_key_file=str(tmp_path / "missing.pem")))
    _start_fails(d, r"smtpd_tls_key_file: cannot load private key")


def test_chain_files(facteurd, cert):
    d = facteurd(main_cf={"smtpd_tls_chain_files": cert["chain"],
                          "smtpd_tls_security_level": "may"})
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        sock = starttls(c)
        assert sock.getpeercert(binary_form=True)
        check(c.cmd("EHLO client.test"), 250)


# ---------------------------------------------------------------- protocols

def _handshake(d, ctx):
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("STARTTLS"), 220)
        try:
            sock = c.starttls(ctx)
        except (ssl.SSLError, OSError):
            return None
        v = sock.version()
        check(c.cmd("EHLO client.test"), 250)
        return v


@pytest.mark.parametrize("spec,client_max,expect", [
    (">=TLSv1.2", ssl.TLSVersion.TLSv1_1, None),
    (">=TLSv1.2", ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
    (">=TLSv1.3", ssl.TLSVersion.TLSv1_2, None),
    ("!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.3", None, "TLSv1.2"),
    ("TLSv1.2", None, "TLSv1.2"),
    ("<=TLSv1.2", None, "TLSv1.2"),
    (">=TLSv1", None, "TLSv1.3"),
])
def test_protocol_policy(facteurd, cert, spec, client_max, expect):
    d = facteurd(main_cf=tls_cf(cert, smtpd_tls_protocols=spec))
    ctx = client_ctx(minv=ssl.TLSVersion.TLSv1, maxv=client_max)
    assert _handshake(d, ctx) == expect


def test_mandatory_protocols_apply_at_encrypt(facteurd, cert):
    d = facteurd(main_cf=tls_cf(cert, smtpd_tls_security_level="encrypt",
                                smtpd_tls_protocols=">=TLSv1",
                                smtpd_tls_mandatory_protocols=">=TLSv1.3"))
    ctx = client_ctx(maxv=ssl.TLSVersion.TLSv1_2)
    assert _handshake(d, ctx) is None
    assert _handshake(d, client_ctx()) == "TLSv1.3"


@pytest.mark.parametrize("maxv", [ssl.TLSVersion.TLSv1_2,
                                  ssl.TLSVersion.TLSv1_3])
def test_session_resumption(facteurd, cert, maxv):
    d = facteurd(main_cf=tls_cf(cert))
    ctx = client_ctx(maxv=maxv)
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        sock = starttls(c, ctx)
        check(c.cmd("EHLO client.test"), 250)   # TLS 1.3 tickets arrive
        check(c.cmd("NOOP"), 250)
        session = sock.session
        assert not sock.session_reused
    assert session is not None
    with tls_conn(d) as c:
        check(c.cmd("EHLO client.test"), 250)
        sock = starttls(c, ctx, session=session)
        check(c.cmd("EHLO client.test"), 250)
        assert sock.session_reused


# ---------------------------------------------------------------- smtps

def _wrapped(d, port):
    raw = socket.create_connection((d.host, port), timeout=10)
    c = TLSConn.__new__(TLSConn)
    c.sock = client_ctx().wrap_socket(raw, server_hostname=HOSTNAME)
    c.buf = b""
    c.transcript = []
    return c


SEED_MASTER = ("127.0.0.1:{sub} inet n - - - - smtpd\n"
               "  -o smtpd_enforce_tls=yes\n"
               "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
               "127.0.0.1:{smtps} inet n - - - - smtpd\n"
               "  -o smtpd_tls_wrappermode=yes\n")


def test_seed_master_cf_lines(facteurd, cert):
    sub, smtps = free_port(), free_port()
    # As in Postfix, smtpd_tls_security_level (when set) overrides the
    # legacy smtpd_enforce_tls / smtpd_use_tls: leave it empty here.
    d = facteurd(main_cf=tls_cf(cert, smtpd_tls_security_level=None,
                                smtpd_use_tls="yes"),
                 extra_master_cf=SEED_MASTER.format(sub=sub, smtps=smtps))
    # submission: TLS required before anything else.
    with tls_conn(d, port=sub, source="127.0.0.2") as c:
        r = check(c.cmd("EHLO client.test"), 250)
        assert "STARTTLS" in ehlo_keywords(r), r
        check(c.cmd("MAIL FROM:<sender@example.net>"), 530, "5.7.0")
        starttls(c)
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        # Not authenticated: no relaying.
        r = c.cmd("RCPT TO:<someone@elsewhere.test>")
        assert r.code in (454, 554), r
    # smtps: the banner comes inside TLS, and STARTTLS is not offered.
    c = _wrapped(d, smtps)
    try:
        check(c.reply(), 220, None, HOSTNAME)
        r = check(c.cmd("EHLO client.test"), 250)
        assert "STARTTLS" not in ehlo_keywords(r), r
        check(c.cmd("STARTTLS"), 554, "5.5.1")
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg(to="carol@example.test")))
        check(c.reply(), 250, "2.0.0")
        check(c.cmd("QUIT"), 221)
    finally:
        c.close()
    rcv = d.wait_files("carol@example.test", 1)[0].field("Received")
    assert "with ESMTPS id" in rcv, rcv
    # The plain port 25 listener still offers STARTTLS and works.
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)


def test_smtps_plaintext_client_is_dropped(facteurd, cert):
    port = free_port()
    d = facteurd(main_cf=tls_cf(cert), extra_master_cf=(
        "127.0.0.1:%d inet n - - - - smtpd -o smtpd_tls_wrappermode=yes\n"
        % port))
    with SMTPConn(d.host, port) as c:
        c.send(b"EHLO client.test\r\n")
        assert c.expect_closed(10)
        assert not c.buf.startswith(b"220"), c.buf
    d.wait_log(r"SSL_accept error from localhost\[127\.0\.0\.1\]")
