"""
test_smtp_tls_policy.py - smtp_tls_policy_maps (Postfix's table format,
keyed by the next hop as written, "[127.0.0.1]:PORT"): a policy asks for
encrypt where the default level is none, "none" switches TLS off where the
default is encrypt, verify with match= accepts or defers on the
certificate's names, secure matches the next hop, fingerprint pins the
certificate by its SHA-256 fingerprint, protocols= limits the
versions (a server below the floor defers, an excluded TLSv1.3 gives
TLSv1.2), and a bad policy value defers with a clear reason. Without a
policy, smtp_tls_mandatory_protocols applies at encrypt and
smtp_tls_protocols at may; a bad value stops the start. The remote is the
capture server doing real TLS with a test certificate.
"""
import re
import ssl

import pytest

from capture import Capture
from harness import free_port, make_msg
from test_smtp_client_tls import certs  # noqa: F401 (fixture)


@pytest.fixture
def tls_remote(certs):
    r = Capture(starttls="tls", tls_cert=certs["good"][1:] + certs["good"][:1])
    yield r
    r.close()


def daemon(new, remote, policy, **extra):
    params = {"relayhost": "[127.0.0.1]:%d" % remote.port,
              "facteur_dns_servers": "127.0.0.1:%d" % free_port(),
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}
    params.update(extra)
    d = new(start=False, main_cf=params)
    d.params["smtp_tls_policy_maps"] = d.table(
        "tls_policy", "# Postfix smtp_tls_policy_maps format\n" + policy)
    d.write_config()
    d.start()
    return d


def key(remote):
    return "[127.0.0.1]:%d" % remote.port


def send(d):
    return d.send("sender@example.net", ["friend@far.example"],
                  make_msg("tls policy", to="friend@far.example"))


def test_encrypt_where_default_is_none(facteurd, tls_remote):
    d = daemon(facteurd, tls_remote, "%s encrypt\n" % key(tls_remote))
    qid = send(d)
    assert len(tls_remote.wait_messages(1)) == 1, d.diagnostics()
    assert tls_remote.conns[0].tls
    d.wait_log(r"(Untrusted|Anonymous) TLS connection established to "
               r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % tls_remote.port)
    d.wait_log(r"%s: to=<friend@far\.example>.*status=sent" % qid)


@pytest.mark.parametrize("policy,extra", [
    # other keys leave the default (none)
    ("[127.0.0.1]:1 encrypt\nfar.example encrypt\n", {}),
    # none overrides the default encrypt
    ("{key} none\n", {"smtp_tls_security_level": "encrypt"}),
], ids=["other_key_leaves_default", "none_overrides_encrypt"])
def test_sent_without_tls(facteurd, tls_remote, policy, extra):
    d = daemon(facteurd, tls_remote, policy.format(key=key(tls_remote)),
               **extra)
    send(d)
    assert len(tls_remote.wait_messages(1)) == 1, d.diagnostics()
    assert "STARTTLS" not in tls_remote.conns[0].commands


def cert_fingerprint(path):
    import hashlib
    der = ssl.PEM_cert_to_DER_cert(open(path).read())
    h = hashlib.sha256(der).hexdigest().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def policy_for(certs, remote, policy):
    """policy with {key} the remote's next hop, {good} / {other} the
    SHA-256 fingerprints of the test certificates."""
    return policy.format(key=key(remote),
                         good=cert_fingerprint(certs["good"][1]),
                         other=cert_fingerprint(certs["other"][1]))


def ca(certs, with_ca):
    """smtp_tls_CAfile for verify; none for fingerprint, so that only the
    digest can make the certificate verified."""
    return {"smtp_tls_CAfile": certs["good"][1]} if with_ca else {}


@pytest.mark.parametrize("policy,with_ca", [
    ("{key} verify match=mx.example.test\n", True),
    # fingerprint pins the certificate (one of the listed digests)
    ("{key} fingerprint match=00:11|{good}\n", False),
], ids=["verify_match", "fingerprint_pins_the_certificate"])
def test_verified_and_sent(facteurd, certs, tls_remote, policy, with_ca):
    d = daemon(facteurd, tls_remote, policy_for(certs, tls_remote, policy),
               **ca(certs, with_ca))
    qid = send(d)
    assert len(tls_remote.wait_messages(1)) == 1, d.diagnostics()
    d.wait_log(r"Verified TLS connection established to 127\.0\.0\.1")
    d.wait_log(r"%s: to=<friend@far\.example>.*status=sent" % qid)


@pytest.mark.parametrize("policy,with_ca,reason", [
    ("{key} verify match=wrong.example:.also-wrong.example\n", True, ""),
    ("{key} fingerprint match={other}\n", False,
     r" \(host 127\.0\.0\.1\[127\.0\.0\.1\]: fingerprint mismatch\)\)"),
], ids=["verify_wrong_name", "fingerprint_mismatch"])
def test_not_verified_defers(facteurd, certs, tls_remote, policy, with_ca,
                             reason):
    d = daemon(facteurd, tls_remote, policy_for(certs, tls_remote, policy),
               **ca(certs, with_ca))
    qid = send(d)
    d.wait_log(r"%s: to=<friend@far\.example>.*status=deferred \(Server "
               r"certificate not verified%s" % (qid, reason))
    assert tls_remote.messages == []


def test_secure_matches_nexthop(facteurd, certs, tls_remote):
    # secure: nexthop (here 127.0.0.1, an IP SAN of the certificate)
    d = daemon(facteurd, tls_remote, "%s secure\n" % key(tls_remote),
               smtp_tls_CAfile=certs["good"][1])
    send(d)
    assert len(tls_remote.wait_messages(1)) == 1, d.diagnostics()
    d.wait_log(r"Verified TLS connection established to 127\.0\.0\.1")


def test_protocols_exclude_tls13(facteurd, tls_remote):
    d = daemon(facteurd, tls_remote, "%s encrypt protocols=!SSLv2:!SSLv3:"
               "!TLSv1.3\n" % key(tls_remote))
    send(d)
    assert len(tls_remote.wait_messages(1)) == 1, d.diagnostics()
    assert tls_remote.conns[0].tls_version == "TLSv1.2"


@pytest.fixture
def tls12_remote(certs):
    """A remote whose TLS stops at TLSv1.2."""
    r = Capture(starttls="tls", tls_cert=(certs["good"][1], certs["good"][0]),
                tls_max=ssl.TLSVersion.TLSv1_2)
    yield r
    r.close()


@pytest.mark.parametrize("policy,extra", [
    # the policy's protocols=
    ("{key} encrypt protocols=>=TLSv1.3\n", {}),
    # no policy: smtp_tls_mandatory_protocols applies at encrypt
    # (smtp_tls_protocols does not)
    ("", {"smtp_tls_security_level": "encrypt",
          "smtp_tls_mandatory_protocols": ">=TLSv1.3",
          "smtp_tls_protocols": "!SSLv2, !SSLv3"}),
], ids=["policy_protocols", "mandatory_protocols_at_encrypt"])
def test_floor_above_server_defers(facteurd, tls12_remote, policy, extra):
    r = tls12_remote
    d = daemon(facteurd, r, policy.format(key=key(r)), **extra)
    qid = send(d)
    d.wait_log(r"Cannot start TLS: handshake failed with 127\.0\.0\.1")
    d.wait_log(r"%s: to=<friend@far\.example>.*status=deferred" % qid)
    assert r.messages == []


def test_bad_policy_defers(facteurd, tls_remote):
    d = daemon(facteurd, tls_remote, "%s bogus\n" % key(tls_remote))
    qid = send(d)
    d.wait_log(r"%s: to=<friend@far\.example>.*status=deferred \(TLS policy "
               r"lookup for %s: invalid TLS security level \"bogus\"\)"
               % (qid, re.escape(key(tls_remote))))
    assert tls_remote.connections == 0


def test_protocols_at_may(facteurd, tls_remote):
    # smtp_tls_protocols applies to opportunistic TLS, the mandatory
    # list (here impossible for this server) does not
    d = daemon(facteurd, tls_remote, "", smtp_tls_security_level="may",
               smtp_tls_protocols="!SSLv2, !SSLv3, !TLSv1.3",
               smtp_tls_mandatory_protocols=">=TLSv1.3")
    send(d)
    assert len(tls_remote.wait_messages(1)) == 1, d.diagnostics()
    assert tls_remote.conns[0].tls_version == "TLSv1.2"


def test_bad_protocols_parameter_is_refused(facteurd, tls_remote):
    with pytest.raises(AssertionError, match=r"smtp_tls_mandatory_protocols: "
                       r"invalid TLS protocol .>=TLSv9."):
        daemon(facteurd, tls_remote, "",
               smtp_tls_mandatory_protocols=">=TLSv9")
