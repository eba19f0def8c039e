"""
test_smtp_client_tls.py - the SMTP client's STARTTLS and AUTH to a
smarthost: facteurd A relays through facteurd B (TLS certificate for
127.0.0.1, SASL passwd-file, relaying only for authenticated clients, AUTH
only after STARTTLS), which hands the mail to a capture server. Checks the
verified TLS log line, AUTH PLAIN and LOGIN as B logs them, and the
deferrals: TLS required but not offered, certificate not verified, wrong
password, no mechanism allowed (Postfix's default noplaintext).
"""
import os
import pathlib
import shutil
import subprocess
import ssl
import tempfile

import pytest

from harness import make_msg
from capture import Capture

USERS = ("relay@example.test:{PLAIN}relay pw:::\n")


@pytest.fixture(scope="module")
def certs():
    # the queue manager reads smtp_tls_CAfile as the mail owner: keep the
    # files outside pytest's private (0700) tmp dir
    d = pathlib.Path(tempfile.mkdtemp(prefix="facteur-clienttls-"))
    os.chmod(str(d), 0o755)
    out = {}
    for name, san in (("good", "IP:127.0.0.1,DNS:mx.example.test"),
                      ("other", "DNS:other.example")):
        key, crt = str(d / (name + ".key")), str(d / (name + ".pem"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                        "-subj", "/CN=" + name, "-addext",
                        "subjectAltName=" + san], check=True,
                       capture_output=True, timeout=60)
        os.chmod(key, 0o644)
        out[name] = (key, crt)
    yield out
    shutil.rmtree(str(d), ignore_errors=True)


@pytest.fixture
def remote():
    r = Capture()
    yield r
    r.close()


def smarthost(facteurd, certs, remote):
    key, crt = certs["good"]
    d = facteurd(start=False, main_cf={
        "smtpd_tls_cert_file": crt, "smtpd_tls_key_file": key,
        "smtpd_tls_security_level": "may",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_passdb": "passwd-file:PLACEHOLDER",
        "smtpd_tls_auth_only": "yes",
        "mynetworks": "127.0.0.2/32",
        "relayhost": "[127.0.0.1]:%d" % remote.port,
        "facteur_dns_servers": "127.0.0.1:9"})
    d.params["smtpd_sasl_passdb"] = d.table("users", USERS, "passwd-file")
    d.write_config()
    d.start()
    return d


def client(facteurd, b, password="relay pw", **extra):
    cf = {"relayhost": "[127.0.0.1]:%d" % b.port,
          "virtual_mailbox_domains": "example.test",
          "facteur_dns_servers": "127.0.0.1:9",
          "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
          "queue_run_delay": "1s",
          "smtp_tls_security_level": "encrypt",
          "smtp_sasl_auth_enable": "yes",
          "smtp_sasl_security_options": "noanonymous"}
    cf.update(extra)
    a = facteurd(start=False, main_cf=cf)
    a.params["smtp_sasl_password_maps"] = a.table(   # Postfix's format
        "sasl_passwd", "# next hop        user:password\n"
        "[127.0.0.1]:%d    relay@example.test:%s\n" % (b.port, password))
    a.write_config()
    a.start()
    return a


def send_far(a, subject):
    """One message to friend@far.example through a; its queue id."""
    return a.send("sender@example.net", ["friend@far.example"],
                  make_msg(subject, to="friend@far.example"))


def deferred(a, qid, reason):
    """a logs qid deferred with a reason starting with reason (a regex)."""
    a.wait_log(r"%s: to=<friend@far\.example>, .*status=deferred \(%s"
               % (qid, reason))


def direct(facteurd, remote, level):
    """A daemon relaying straight to the capture server at TLS level."""
    return facteurd(main_cf={
        "relayhost": "[127.0.0.1]:%d" % remote.port,
        "facteur_dns_servers": "127.0.0.1:9",
        "smtp_tls_security_level": level})


def test_verified_starttls_and_auth_plain(facteurd, certs, remote):
    b = smarthost(facteurd, certs, remote)
    a = client(facteurd, b, smtp_tls_security_level="verify",
               smtp_tls_CAfile=certs["good"][1])
    qid = send_far(a, "via smarthost")
    got = remote.wait_messages(1)
    assert len(got) == 1 and got[0][1] == ["friend@far.example"], (
        a.diagnostics() + b.diagnostics())
    a.wait_log(r"Verified TLS connection established to 127\.0\.0\.1"
               r"\[127\.0\.0\.1\]:%d: TLSv1\.[23] with cipher" % b.port)
    a.wait_log(r"%s: to=<friend@far\.example>, relay=127\.0\.0\.1\[127\.0\.0"
               r"\.1\]:%d, .*dsn=2\.0\.0, status=sent" % (qid, b.port))
    b.wait_log(r"client=\S+, sasl_method=PLAIN, "
               r"sasl_username=relay@example\.test")
    assert "relay pw" not in a.log()


def test_auth_login_with_mechanism_filter(facteurd, certs, remote):
    b = smarthost(facteurd, certs, remote)
    a = client(facteurd, b, smtp_sasl_mechanism_filter="login")
    send_far(a, "login")
    assert len(remote.wait_messages(1)) == 1, a.diagnostics()
    a.wait_log(r"Untrusted TLS connection established to 127\.0\.0\.1")
    b.wait_log(r"client=\S+, sasl_method=LOGIN, "
               r"sasl_username=relay@example\.test")


@pytest.mark.parametrize("client_cf,reason", [
    (lambda certs: {"password": "wrong"},
     r"SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] "
     r"said: 535 5\.7\.8 "),
    # the default smtp_sasl_security_options (noplaintext, noanonymous)
    # leaves no mechanism the smarthost offers over TLS
    (lambda certs: {"smtp_sasl_security_options": None},
     r"SASL authentication failed; cannot authenticate to server "
     r"127\.0\.0\.1\[127\.0\.0\.1\]: no mechanism available\)"),
    (lambda certs: {"smtp_tls_security_level": "verify",
                    "smtp_tls_CAfile": certs["other"][1]},
     r"Server certificate not verified \(host 127\.0\.0\.1\[127\.0\.0\.1\]"),
], ids=["wrong_password", "default_noplaintext_has_no_mechanism",
        "verify_with_another_ca"])
def test_smarthost_defers(facteurd, certs, remote, client_cf, reason):
    b = smarthost(facteurd, certs, remote)
    a = client(facteurd, b, **client_cf(certs))
    deferred(a, send_far(a, "deferred"), reason)
    assert remote.messages == []


@pytest.mark.parametrize("mode", [None, "refuse", "break"],
                         ids=["not_offered", "refuse", "break"])
def test_may_falls_back_to_plaintext(facteurd, remote, mode):
    remote.starttls = mode
    a = direct(facteurd, remote, "may")
    qid = send_far(a, "fallback")
    assert len(remote.wait_messages(1)) == 1, a.diagnostics()
    a.wait_log(r"%s: to=<friend@far\.example>, .*status=sent" % qid)
    if mode == "break":
        a.wait_log(r"Cannot start TLS: handshake failed with 127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]")
        assert remote.connections == 2


@pytest.mark.parametrize("mode,reason", [
    (None, r"TLS is required, but was not offered by host 127\.0\.0\.1"
           r"\[127\.0\.0\.1\]\)"),
    ("refuse", r"TLS is required, but host 127\.0\.0\.1"),
    ("break", r"Cannot start TLS"),
], ids=["not_offered", "refuse", "break"])
def test_encrypt_without_tls_defers(facteurd, remote, mode, reason):
    remote.starttls = mode
    a = direct(facteurd, remote, "encrypt")
    deferred(a, send_far(a, "no tls"), reason)
    assert remote.messages == []


@pytest.mark.parametrize("cf,msg", [
    ({"smtp_dns_support_level": "bogus"},
     r"smtp_dns_support_level: unknown value \"bogus\""),
    ({"smtp_tls_security_level": "verify"},
     r"smtp_tls_security_level = verify needs smtp_tls_CAfile"),
    ({"smtp_tls_security_level": "bogus"},
     r"smtp_tls_security_level: unknown level \"bogus\""),
    ({"smtp_sasl_security_options": "noanonymous, nosuch"},
     r"smtp_sasl_security_options: unknown option \"nosuch\""),
])
def test_config_errors(facteurd, cf, msg):
    facteurd(start=False, main_cf=cf).start_fails(msg)


# ---- the client's own certificate (smtp_tls_cert_file / key / chain) ----

class CertCapture(Capture):
    """A capture server whose STARTTLS asks for a client certificate
    (CERT_OPTIONAL, trusting ca) and records what the client presented."""

    def __init__(self, ca, **kw):
        super().__init__(**kw)
        self.ca = ca
        self.peer_certs = []

    def _tls(self, c):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tls_cert[0], self.tls_cert[1])
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(self.ca)
        s = ctx.wrap_socket(c, server_side=True)
        self.peer_certs.append(s.getpeercert())
        return s


@pytest.fixture(scope="module")
def client_cert(certs):
    """A client certificate whose key only root can read (mode 0600): it
    works only if facteurd reads it before dropping privileges."""
    d = os.path.dirname(certs["good"][0])
    key, crt = os.path.join(d, "client.key"), os.path.join(d, "client.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=facteur-client.example"], check=True,
                   capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    chain = os.path.join(d, "client-chain.pem")
    with open(chain, "w") as out:
        for p in (key, crt):
            with open(p) as f:
                out.write(f.read())
    os.chmod(chain, 0o600)
    return key, crt, chain


def _cn(peer):
    for rdn in (peer or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


@pytest.mark.parametrize("how", ["cert_key", "chain_files", "none"])
def test_client_certificate_presented(facteurd, certs, client_cert, how):
    key, crt, chain = client_cert
    remote = CertCapture(crt, starttls="tls",
                         tls_cert=(certs["good"][1], certs["good"][0]))
    try:
        cf = {"relayhost": "[127.0.0.1]:%d" % remote.port,
              "facteur_dns_servers": "127.0.0.1:9",
              "smtp_tls_security_level": "encrypt"}
        if how == "cert_key":
            cf.update(smtp_tls_cert_file=crt, smtp_tls_key_file=key)
        elif how == "chain_files":
            cf.update(smtp_tls_chain_files=chain)
        a = facteurd(main_cf=cf)
        send_far(a, "client cert " + how)
        got = remote.wait_messages(1)
        assert len(got) == 1, a.diagnostics()
        assert remote.conns[0].tls
        assert len(remote.peer_certs) == 1
        if how == "none":
            assert not remote.peer_certs[0]
        else:
            assert _cn(remote.peer_certs[0]) == "facteur-client.example"
        assert "is not used by this version" not in a.log()
    finally:
        remote.close()


def test_client_certificate_key_mismatch(facteurd, certs, client_cert):
    key, crt, chain = client_cert
    d = facteurd(start=False, main_cf={
        "smtp_tls_cert_file": crt,
        "smtp_tls_key_file": certs["other"][0]})
    r = d.cli("check")
    assert r.returncode != 0
    assert b"smtp_tls_cert_file: the private key does not match" in r.stderr
    d.start_fails(r"smtp_tls_cert_file: the private key does not match")
