"""
test_tls_ccert.py - TLS client certificates in the SMTP server and the
extra server TLS knobs: smtpd_tls_ask_ccert / _req_ccert with
smtpd_tls_CAfile, permit_tls_clientcerts with relay_clientcerts
(certificate and public key fingerprints), permit_tls_all_clientcerts,
check_ccert_access, the Trusted/Untrusted/Anonymous log words, the
Received: header's client certificate comment, the ccert_* policy
attributes; an RSA + ECDSA certificate pair chosen by the client's
signature algorithms, smtpd_tls_dh1024_param_file for DHE, and
tls_ssl_options (NO_TICKET stops resumption; a bad name stops the start).
Certificates are made with openssl in a temp dir.
"""
import hashlib
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading

import pytest

from harness import HOSTNAME, check, dot_stuff, free_port, make_msg, SMTPConn
from milterserver import RawMilter, pkt


def _run(*args):
    subprocess.run(list(args), check=True, capture_output=True, timeout=60)


def _fp(der):
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


@pytest.fixture(scope="module")
def pki():
    """A CA, the server's RSA and EC certificates, two client certificates
    signed by the CA and a self-signed one; fingerprints as facteur and
    Postfix write them (sha256, upper-case hex with colons)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="facteur-ccert-"))
    os.chmod(str(d), 0o755)
    p = lambda n: str(d / n)
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=Test CA", "-keyout", p("ca.key"), "-out", p("ca.pem"),
         "-days", "2")
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=" + HOSTNAME, "-keyout", p("rsa.key"),
         "-out", p("rsa.pem"), "-days", "2")
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=" + HOSTNAME,
         "-keyout", p("ec.key"), "-out", p("ec.pem"), "-days", "2")
    for name in ("client1", "client2"):
        _run("openssl", "req", "-newkey", "rsa:2048", "-nodes",
             "-subj", "/CN=" + name, "-keyout", p(name + ".key"),
             "-out", p(name + ".csr"))
        _run("openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA",
             p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
             "-out", p(name + ".pem"), "-days", "2")
    # an intermediate CA and client3 under it (its file carries the chain)
    with open(p("ca.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:TRUE\n"
                "keyUsage=critical,keyCertSign,cRLSign\n")
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
         "/CN=Test Intermediate", "-keyout", p("inter.key"),
         "-out", p("inter.csr"))
    _run("openssl", "x509", "-req", "-in", p("inter.csr"), "-CA", p("ca.pem"),
         "-CAkey", p("ca.key"), "-CAcreateserial", "-extfile", p("ca.ext"),
         "-out", p("inter.pem"), "-days", "2")
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
         "/CN=client3", "-keyout", p("client3.key"), "-out", p("client3.csr"))
    _run("openssl", "x509", "-req", "-in", p("client3.csr"), "-CA",
         p("inter.pem"), "-CAkey", p("inter.key"), "-CAcreateserial",
         "-out", p("client3.leaf"), "-days", "2")
    with open(p("client3.pem"), "w") as f:
        f.write(open(p("client3.leaf")).read() + open(p("inter.pem")).read())
    # smtpd_tls_CApath: a hashed directory with the CA alone
    os.mkdir(p("capath"))
    shutil.copy(p("ca.pem"), p("capath/ca.pem"))
    _run("openssl", "rehash", p("capath"))
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-subj", "/CN=selfsigned", "-keyout", p("self.key"),
         "-out", p("self.pem"), "-days", "2")
    _run("openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
         "group:ffdhe2048", "-out", p("dh.pem"))
    for f in d.iterdir():
        os.chmod(str(f), 0o755 if f.is_dir() else 0o644)
    out = {"dir": str(d), "ca": p("ca.pem"), "dh": p("dh.pem"),
           "rsa": (p("rsa.pem"), p("rsa.key")), "ec": (p("ec.pem"), p("ec.key"))}
    out["capath"] = p("capath")
    for name in ("client1", "client2", "client3", "self"):
        crt, key = p(name + ".pem"), p(name + ".key")
        der = ssl.PEM_cert_to_DER_cert(open(crt).read())
        pub = subprocess.run(
            "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin "
            "-outform DER" % crt, shell=True, check=True,
            capture_output=True, timeout=60).stdout
        out[name] = {"cert": crt, "key": key, "fp": _fp(der),
                     "pkey_fp": _fp(pub)}
    yield out
    shutil.rmtree(str(d), ignore_errors=True)


def client_ctx(who=None, pki=None, maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maxv:
        ctx.maximum_version = maxv
    if who:
        ctx.load_cert_chain(pki[who]["cert"], pki[who]["key"])
    return ctx


class TLSConn(SMTPConn):
    def starttls(self, ctx, session=None):
        check(self.cmd("STARTTLS"), 220)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=HOSTNAME,
                                    session=session)
        return self.sock


def tls_session(d, who, pki, helo=True):
    c = TLSConn(d.host, d.port)
    check(c.reply(), 220)
    check(c.cmd("EHLO client.test"), 250)
    c.starttls(client_ctx(who, pki))
    if helo:
        check(c.cmd("EHLO client.test"), 250)
    return c


def base_cf(pki, **extra):
    cf = {"smtpd_tls_cert_file": pki["rsa"][0],
          "smtpd_tls_key_file": pki["rsa"][1],
          "smtpd_tls_security_level": "may",
          "smtpd_tls_loglevel": "1",
          "smtpd_tls_ask_ccert": "yes",
          "smtpd_tls_CAfile": pki["ca"],
          "mynetworks": "127.0.0.2/32"}
    cf.update(extra)
    return cf


def relay_rcpt(d, who, pki):
    """The reply to RCPT TO a far address after STARTTLS as who."""
    with tls_session(d, who, pki) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        return c.cmd("RCPT TO:<friend@far.example>")


def test_permit_tls_clientcerts(facteurd, pki):
    d = facteurd(start=False, main_cf=base_cf(
        pki, smtpd_tls_received_header="yes",
        smtpd_relay_restrictions="permit_mynetworks, permit_tls_clientcerts, "
                                 "reject_unauth_destination"))
    # client1 listed by certificate, client2 by public key, and the
    # self-signed one listed too: it must still not relay (not verified)
    d.params["relay_clientcerts"] = d.table(
        "relay_clientcerts", "%s client1\n%s client2\n%s self\n"
        % (pki["client1"]["fp"], pki["client2"]["pkey_fp"],
           pki["self"]["fp"]))
    d.write_config()
    d.start()
    check(relay_rcpt(d, "client1", pki), 250, "2.1.5")
    check(relay_rcpt(d, "client2", pki), 250, "2.1.5")
    check(relay_rcpt(d, None, pki), 554, "5.7.1", "Relay access denied")
    check(relay_rcpt(d, "self", pki), 554, "5.7.1", "Relay access denied")
    d.wait_log(r"Trusted TLS connection established from "
               r"localhost\[127\.0\.0\.1\]: TLSv1\.3 with cipher")
    d.wait_log(r"Untrusted TLS connection established from localhost")
    d.wait_log(r"Anonymous TLS connection established from localhost")
    assert "is not used by this version" not in d.log()
    # the Received: header names the client certificate
    with tls_session(d, "client1", pki) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("ccert")))
        check(c.reply(), 250)
    rcv = d.wait_files("bob@example.test", 1)[0].field("Received")
    assert '(Client CN "client1", Issuer "Test CA" (verified OK))' in rcv, rcv
    with tls_session(d, None, pki) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("no ccert")))
        check(c.reply(), 250)
    got = [f.field("Received") for f in d.wait_files("bob@example.test", 2)]
    assert any("(Client did not present a certificate)" in r for r in got), got


def test_permit_tls_all_clientcerts(facteurd, pki):
    d = facteurd(main_cf=base_cf(
        pki, smtpd_relay_restrictions="permit_tls_all_clientcerts, "
                                      "reject_unauth_destination"))
    check(relay_rcpt(d, "client2", pki), 250, "2.1.5")
    check(relay_rcpt(d, "self", pki), 554, "5.7.1")
    check(relay_rcpt(d, None, pki), 554, "5.7.1")


def test_check_ccert_access(facteurd, pki):
    d = facteurd(start=False, main_cf=base_cf(pki))
    m = d.table("ccert_access",
                "%s OK\n%s REJECT certificate revoked\n%s OK\n"
                % (pki["client1"]["fp"], pki["client2"]["pkey_fp"],
                   pki["self"]["fp"]))
    d.params["smtpd_relay_restrictions"] = (
        "check_ccert_access %s, reject_unauth_destination" % m)
    d.write_config()
    d.start()
    check(relay_rcpt(d, "client1", pki), 250, "2.1.5")
    check(relay_rcpt(d, "client2", pki), 554, "5.7.1",
          r"<localhost\[127\.0\.0\.1\]>: Client certificate rejected: "
          r"certificate revoked")
    # a direct fingerprint match needs no trusted issuer (Postfix)
    check(relay_rcpt(d, "self", pki), 250, "2.1.5")
    check(relay_rcpt(d, None, pki), 554, "5.7.1", "Relay access denied")


class PolicyServer:
    """A one-answer-per-request policy server that records requests."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(8)
        self.requests = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        buf = b""
        with c:
            while True:
                data = c.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n\n" in buf:
                    req, buf = buf.split(b"\n\n", 1)
                    self.requests.append(dict(
                        l.split("=", 1) for l in req.decode().split("\n")
                        if "=" in l))
                    c.sendall(b"action=DUNNO\n\n")


def test_policy_ccert_attributes(facteurd, pki):
    pol = PolicyServer()
    try:
        d = facteurd(main_cf=base_cf(
            pki, smtpd_recipient_restrictions="check_policy_service "
            "inet:127.0.0.1:%d, permit" % pol.port))
        with tls_session(d, "client1", pki) as c:
            check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
            check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        r = pol.requests[-1]
        assert r["ccert_subject"] == "client1"
        assert r["ccert_issuer"] == "Test CA"
        assert r["ccert_fingerprint"] == pki["client1"]["fp"]
        assert r["ccert_pubkey_fingerprint"] == pki["client1"]["pkey_fp"]
        assert r["encryption_protocol"] == "TLSv1.3"
        assert r["encryption_cipher"].startswith("TLS_"), r
        assert int(r["encryption_keysize"]) >= 128, r
        # plaintext: empty TLS attributes
        with d.session() as c:
            check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
            check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        r = pol.requests[-1]
        assert r["encryption_protocol"] == "" and r["ccert_subject"] == ""
        assert r["encryption_keysize"] == "0"
    finally:
        pol.sock.close()


def test_req_ccert(facteurd, pki):
    d = facteurd(main_cf=base_cf(pki, smtpd_tls_security_level="encrypt",
                                 smtpd_tls_ask_ccert="no",
                                 smtpd_tls_req_ccert="yes"))
    with tls_session(d, "client1", pki) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
    c = tls_session(d, None, pki, helo=False)
    check(c.reply(), 421, "4.7.1")
    c.close()
    c = tls_session(d, "self", pki, helo=False)
    check(c.reply(), 421, "4.7.1")
    c.close()
    d.wait_log(r"NOQUEUE: abort: TLS from localhost\[127\.0\.0\.1\]: "
               r"no client certificate")


def _s_client(d, *args):
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
         "-starttls", "smtp", "-tls1_2"] + list(args),
        input=b"QUIT\r\n", capture_output=True, timeout=30)
    return r.stdout.decode(errors="replace")


def test_rsa_and_ecdsa_certificates(facteurd, pki):
    d = facteurd(main_cf=base_cf(pki, smtpd_tls_eccert_file=pki["ec"][0],
                                 smtpd_tls_eckey_file=pki["ec"][1],
                                 smtpd_tls_ask_ccert="no"))
    ec = _s_client(d, "-sigalgs", "ECDSA+SHA256")
    assert "Server public key is 256 bit" in ec, ec
    rsa = _s_client(d, "-sigalgs", "RSA+SHA256:RSA-PSS+SHA256")
    assert "Server public key is 2048 bit" in rsa, rsa


def test_dh_param_file(facteurd, pki):
    d = facteurd(main_cf=base_cf(pki, smtpd_tls_dh1024_param_file=pki["dh"],
                                 smtpd_tls_ask_ccert="no"))
    out = _s_client(d, "-cipher", "DHE-RSA-AES128-GCM-SHA256")
    assert "Cipher is DHE-RSA-AES128-GCM-SHA256" in out, out
    assert "Server Temp Key: DH, 2048 bits" in out, out


def test_bad_dh_param_file(facteurd, pki):
    facteurd(start=False, main_cf=base_cf(
        pki, smtpd_tls_dh1024_param_file=pki["ca"])).start_fails(
        r"smtpd_tls_dh1024_param_file: .* holds no PEM DH parameters")


def _resumed(d, pki):
    ctx = client_ctx(maxv=ssl.TLSVersion.TLSv1_2)
    c = TLSConn(d.host, d.port)
    check(c.reply(), 220)
    check(c.cmd("EHLO client.test"), 250)
    s = c.starttls(ctx)
    check(c.cmd("EHLO client.test"), 250)
    sess = s.session
    c.cmd("QUIT")
    c.close()
    c = TLSConn(d.host, d.port)
    check(c.reply(), 220)
    check(c.cmd("EHLO client.test"), 250)
    s = c.starttls(ctx, session=sess)
    check(c.cmd("EHLO client.test"), 250)
    reused = s.session_reused
    c.close()
    return reused


@pytest.mark.parametrize("opts,reused", [("", True), ("NO_TICKET", False),
                                         ("0x4000", False)])
def test_tls_ssl_options_no_ticket(facteurd, pki, opts, reused):
    d = facteurd(main_cf=base_cf(pki, tls_ssl_options=opts,
                                 smtpd_tls_ask_ccert="no"))
    assert _resumed(d, pki) is reused


def test_tls_ssl_options_bad_name(facteurd, pki):
    facteurd(start=False, main_cf=base_cf(
        pki, tls_ssl_options="NO_TICKET, NO_SUCH_THING")).start_fails(
        r'bad value for tls_ssl_options: "NO_SUCH_THING"')


def test_reload_turns_ccert_on(facteurd, pki):
    """smtpd_tls_ask_ccert and the CA file are read again on SIGHUP, as
    the keys are (as root first, then on reload)."""
    d = facteurd(main_cf=base_cf(
        pki, smtpd_tls_ask_ccert="no",
        smtpd_relay_restrictions="permit_tls_all_clientcerts, "
                                 "reject_unauth_destination"))
    check(relay_rcpt(d, "client1", pki), 554, "5.7.1")    # not asked
    d.params["smtpd_tls_ask_ccert"] = "yes"
    d.write_config()
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log(r"reload -- configuration")
    check(relay_rcpt(d, "client1", pki), 250, "2.1.5")


class MacroMilter(RawMilter):
    """A hand-written milter that continues everything and records the
    macros it is sent ('D' packets) as {name: value}."""

    def __init__(self):
        self.macros = {}
        super().__init__(self._behave)

    def _behave(self, cmd, data):
        if cmd == b"O":
            return pkt(b"O", (6).to_bytes(4, "big") + bytes(8))
        if cmd == b"D":
            parts = data[1:].split(b"\0")
            for k, v in zip(parts[0::2], parts[1::2]):
                self.macros[k.decode()] = v.decode()
            return b""
        if cmd == b"Q":
            return None
        return pkt(b"c")


def test_milter_cert_macros(facteurd, pki):
    m = MacroMilter()
    try:
        d = facteurd(main_cf=base_cf(
            pki, smtpd_milters="inet:127.0.0.1:%d" % m.port))
        with tls_session(d, "client1", pki) as c:
            check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        assert m.macros.get("{cert_subject}") == "client1", m.macros
        assert m.macros.get("{cert_issuer}") == "Test CA", m.macros
    finally:
        m.close()


def test_req_ccert_needs_encrypt(facteurd, pki):
    """At the may level a certificate cannot be required (Postfix): a
    warning, and clients without one go on."""
    d = facteurd(main_cf=base_cf(pki, smtpd_tls_req_ccert="yes",
                                 smtpd_tls_ask_ccert="no"))
    d.wait_log(r"warning: .*smtpd_tls_req_ccert = yes is ignored unless "
               r"smtpd_tls_security_level = encrypt")
    with tls_session(d, None, pki) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)


@pytest.mark.parametrize("depth,relays", [("1", False), ("2", True)])
def test_ccert_verifydepth(facteurd, pki, depth, relays):
    """client3 is issued by an intermediate CA it sends along: depth 1
    (issued by a trusted CA directly) does not verify it, depth 2 does."""
    d = facteurd(main_cf=base_cf(
        pki, smtpd_tls_ccert_verifydepth=depth,
        smtpd_relay_restrictions="permit_tls_all_clientcerts, "
                                 "reject_unauth_destination"))
    check(relay_rcpt(d, "client1", pki), 250, "2.1.5")
    r = relay_rcpt(d, "client3", pki)
    if relays:
        check(r, 250, "2.1.5")
    else:
        check(r, 554, "5.7.1")


def test_ccert_capath(facteurd, pki):
    d = facteurd(main_cf=base_cf(
        pki, smtpd_tls_CAfile="", smtpd_tls_CApath=pki["capath"],
        smtpd_relay_restrictions="permit_tls_all_clientcerts, "
                                 "reject_unauth_destination"))
    check(relay_rcpt(d, "client2", pki), 250, "2.1.5")
    check(relay_rcpt(d, "self", pki), 554, "5.7.1")


def test_chain_files_rsa_and_ecdsa(facteurd, pki):
    """smtpd_tls_chain_files with two key + certificate groups."""
    d = facteurd(main_cf=base_cf(
        pki, smtpd_tls_cert_file=None, smtpd_tls_key_file=None,
        smtpd_tls_ask_ccert="no",
        smtpd_tls_chain_files="%s %s %s %s" % (pki["rsa"][1], pki["rsa"][0],
                                              pki["ec"][1], pki["ec"][0])))
    ec = _s_client(d, "-sigalgs", "ECDSA+SHA256")
    assert "Server public key is 256 bit" in ec, ec
    rsa = _s_client(d, "-sigalgs", "RSA+SHA256:RSA-PSS+SHA256")
    assert "Server public key is 2048 bit" in rsa, rsa


@pytest.mark.parametrize("cf,group", [
    ({}, "X25519"),
    ({"tls_eecdh_auto_curves": "nosuchcurve secp384r1 prime256v1"},
     "secp384r1"),
    ({"smtpd_tls_eecdh_grade": "strong"}, "prime256v1")])
def test_key_exchange_groups(facteurd, pki, cf, group):
    d = facteurd(main_cf=base_cf(pki, smtpd_tls_ask_ccert="no", **cf))
    r = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
         "-starttls", "smtp"], input=b"QUIT\r\n", capture_output=True,
        timeout=30).stdout.decode(errors="replace")
    assert "Server Temp Key: " in r, r
    assert group in r.split("Server Temp Key: ")[1].split("\n")[0], r


def test_bad_eecdh_grade(facteurd, pki):
    facteurd(start=False, main_cf=base_cf(
        pki, smtpd_tls_eecdh_grade="extreme")).start_fails(
        r'bad value for smtpd_tls_eecdh_grade: "extreme"')
