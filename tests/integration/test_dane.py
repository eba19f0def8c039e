"""
test_dane.py - DANE for the SMTP client (RFC 7672; Postfix's dane and
dane-only levels with smtp_dns_support_level = dnssec). The resolver is
tests/integration/dnssecserver.py: it sets the AD bit for the signed zone
example.net and not for example.org, and answers SERVFAIL for one TLSA
name. Each destination has an MX host resolving to 127.0.0.1; the
transport map sends to the capture server's port (smtp:DOMAIN:PORT, an MX
lookup). The capture server speaks real TLS with a leaf certificate for
the MX names, issued by a test CA, and sends the chain.

Cases (each checks the log and what the capture server received): TLSA
3 1 1 of the leaf's key -> Verified TLS and sent; a wrong
digest -> deferred 4.7.5 and nothing sent (not even in clear); 2 0 1 of
the CA -> Verified; a SERVFAIL TLSA lookup in the signed zone -> deferred
4.7.5; an unsigned zone under dane -> opportunistic TLS (or cleartext
without STARTTLS); dane-only and an unsigned zone -> deferred; PKIX-EE
records only -> TLS required but not authenticated; dane without
smtp_dns_support_level = dnssec -> may with a warning; smtp_tls_policy_maps
"DOMAIN:PORT dane" / "dane-only" per next hop, and a master.cf -o
override; DANE-EE ignores the certificate's names, DANE-TA checks them;
MX hosts that are CNAMEs (the target's TLSA, then the alias's); a
truncated UDP reply asked again over TCP; smtp_dns_support_level =
disabled (no MX lookup) and a bad value (start-up error).
"""
import hashlib
import pathlib
import re
import shutil
import ssl
import subprocess
import tempfile

import pytest

from capture import Capture
from dnssecserver import DnssecServer
from harness import make_msg

MX_NAMES = ["mx.%s" % d for d in (
    "example.net", "bad.example.net", "ta.example.net", "fail.example.net",
    "notlsa.example.net", "pkix.example.net", "example.org")] + [
    "alias.cname2.example.net"]


def _openssl(*args, inp=None):
    return subprocess.run(["openssl"] + list(args), check=True,
                          capture_output=True, timeout=60, input=inp).stdout


@pytest.fixture(scope="module")
def pki():
    """A CA, a leaf for the MX names signed by it, and the chain file
    (leaf then CA) the server presents; the digests TLSA records need."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="facteur-dane-"))
    ca_key, ca = str(d / "ca.key"), str(d / "ca.pem")
    key, csr, leaf = str(d / "mx.key"), str(d / "mx.csr"), str(d / "mx.pem")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=" + ",".join("DNS:" + n
                                                for n in MX_NAMES) + "\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
             ca_key, "-out", ca, "-days", "2", "-subj", "/CN=DANE test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
             "-out", csr, "-subj", "/CN=mx.example.net")
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
             "-CAcreateserial", "-out", leaf, "-days", "2", "-extfile",
             str(ext))
    chain = str(d / "chain.pem")
    with open(chain, "w") as f:
        f.write(open(leaf).read() + open(ca).read())
    spki = _openssl("pkey", "-in", key, "-pubout", "-outform", "DER")
    ca_der = ssl.PEM_cert_to_DER_cert(open(ca).read())
    yield {"chain": chain, "key": key,
           "leaf_spki_sha256": hashlib.sha256(spki).digest(),
           "ca_sha256": hashlib.sha256(ca_der).digest()}
    shutil.rmtree(str(d), ignore_errors=True)


@pytest.fixture(scope="module")
def dns(pki):
    recs = {}
    for dom in ("example.net", "bad.example.net", "ta.example.net",
                "fail.example.net", "notlsa.example.net",
                "pkix.example.net", "example.org"):
        recs[(dom, "MX")] = [(10, "mx." + dom)]
        recs[("mx." + dom, "A")] = ["127.0.0.1"]
    good = pki["leaf_spki_sha256"]
    recs[("_*._tcp.mx.example.net", "TLSA")] = [(3, 1, 1, good)]
    recs[("_*._tcp.mx.bad.example.net", "TLSA")] = [
        (3, 1, 1, hashlib.sha256(b"not the key").digest())]
    recs[("_*._tcp.mx.ta.example.net", "TLSA")] = [(2, 0, 1, pki["ca_sha256"])]
    recs[("_*._tcp.mx.pkix.example.net", "TLSA")] = [(1, 1, 1, good)]
    # unsigned: a TLSA that must not count (no AD)
    recs[("_*._tcp.mx.example.org", "TLSA")] = [
        (3, 1, 1, hashlib.sha256(b"ignored").digest())]
    # MX hosts the certificate does not name
    for dom in ("eename.example.net", "taname.example.net"):
        recs[(dom, "MX")] = [(10, "other." + dom)]
        recs[("other." + dom, "A")] = ["127.0.0.1"]
    recs[("_*._tcp.other.eename.example.net", "TLSA")] = [(3, 1, 1, good)]
    recs[("_*._tcp.other.taname.example.net", "TLSA")] = [
        (2, 0, 1, pki["ca_sha256"])]
    # MX hosts that are CNAMEs (RFC 7672 2.2.2): the target's TLSA
    # (mx.example.net, 3 1 1), or, with none there, the alias's own
    # (2 0 1 of the CA; the certificate names the alias)
    recs[("cname.example.net", "MX")] = [(10, "alias.cname.example.net")]
    recs[("alias.cname.example.net", "CNAME")] = ["mx.example.net"]
    recs[("cname2.example.net", "MX")] = [(10, "alias.cname2.example.net")]
    recs[("alias.cname2.example.net", "CNAME")] = ["target.cname2.example.net"]
    recs[("target.cname2.example.net", "A")] = ["127.0.0.1"]
    recs[("_*._tcp.alias.cname2.example.net", "TLSA")] = [
        (2, 0, 1, pki["ca_sha256"])]
    # a TLSA RRset served over TCP only (truncated over UDP)
    recs[("tcp.example.net", "MX")] = [(10, "mx.tcp.example.net")]
    recs[("mx.tcp.example.net", "A")] = ["127.0.0.1"]
    recs[("_*._tcp.mx.tcp.example.net", "TLSA")] = [(3, 1, 1, good)]
    # an MX that leads nowhere, and an address of the domain itself
    recs[("direct.example.org", "MX")] = [(10, "mx.nowhere.example.org")]
    recs[("direct.example.org", "A")] = ["127.0.0.1"]
    s = DnssecServer(recs, signed=["example.net"],
                     servfail=["_*._tcp.mx.fail.example.net"],
                     tcp_only=["mx.tcp.example.net"])
    yield s
    s.close()


@pytest.fixture
def remote(pki):
    r = Capture(starttls="tls", tls_cert=(pki["chain"], pki["key"]))
    yield r
    r.close()


DOMAINS = ("example.net", "bad.example.net", "ta.example.net",
           "fail.example.net", "notlsa.example.net", "pkix.example.net",
           "example.org", "direct.example.org", "eename.example.net",
           "taname.example.net", "cname.example.net", "cname2.example.net",
           "tcp.example.net")


def daemon(new, dns, remote, policy=None, **extra):
    params = {"facteur_dns_servers": "127.0.0.1:%d" % dns.port,
              "smtp_dns_support_level": "dnssec",
              "smtp_tls_security_level": "dane",
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s", "smtp_connect_timeout": "5s",
              "transport_maps": "inline:{ %s }" % ", ".join(
                  "%s=smtp:%s:%d" % (d, d, remote.port) for d in DOMAINS)}
    params.update({k: v for k, v in extra.items() if v is not None})
    for k in [k for k, v in extra.items() if v is None]:
        params.pop(k, None)
    d = new(start=False, main_cf=params)
    if policy is not None:
        d.params["smtp_tls_policy_maps"] = d.table("tls_policy", policy)
    d.write_config()
    d.start()
    return d


def send(d, dom, local="friend"):
    rcpt = "%s@%s" % (local, dom)
    return rcpt, d.send("sender@example.com", [rcpt],
                        make_msg("dane", to=rcpt))


def relay(dom, remote):
    return r"mx\.%s\[127\.0\.0\.1\]:%d" % (re.escape(dom), remote.port)


def sent(d, remote, dom):
    n = len(remote.messages)
    rcpt, qid = send(d, dom)
    got = remote.wait_messages(n + 1)
    assert len(got) == n + 1 and got[-1][1] == [rcpt], d.diagnostics()
    d.wait_log(r"%s: to=<%s>, relay=%s, .*dsn=2\.0\.0, status=sent"
               % (qid, re.escape(rcpt), relay(dom, remote)))
    return qid


def deferred(d, remote, dom, reason):
    rcpt, qid = send(d, dom)
    m = d.wait_log(r"%s: to=<%s>, relay=\S+, .*dsn=4\.7\.5, "
                   r"status=deferred \(([^\n]*)\)" % (qid, re.escape(rcpt)))
    assert re.search(reason, m.group(1)), m.group(1)
    # nothing was sent, in clear or otherwise
    assert remote.messages == []
    assert not any(c.startswith("MAIL") for conn in remote.conns
                   for c in conn.commands)
    return m.group(1)


def test_dane_ee_verified(facteurd, dns, remote):
    d = daemon(facteurd, dns, remote)
    sent(d, remote, "example.net")
    d.wait_log(r"Verified TLS connection established to %s: TLSv1\.[23]"
               % relay("example.net", remote))
    assert remote.conns[0].tls
    # the lookups asked the resolver for DNSSEC (AD and DO bits)
    tlsa = [q for q in dns.queries if q[1] == "TLSA"
            and q[0] == "_%d._tcp.mx.example.net" % remote.port]
    assert tlsa and all(q[2] and q[3] for q in tlsa)
    mxq = [q for q in dns.queries if q[:2] == ("example.net", "MX")]
    assert mxq and mxq[-1][2] and mxq[-1][3]
    # the parameter is implemented: no "accepted and ignored" notice
    with open(d.stderr_path, errors="replace") as f:
        out = f.read() + d.log()
    assert "smtp_dns_support_level is not used" not in out
    assert "dane is not available" not in out


def test_dane_ee_wrong_digest_deferred(facteurd, dns, remote):
    d = daemon(facteurd, dns, remote)
    why = deferred(d, remote, "bad.example.net",
                   r"TLS is required, but certificate verification failed "
                   r"for host mx\.bad\.example\.net\[127\.0\.0\.1\]: no TLSA "
                   r"record matched")
    # STARTTLS, the handshake, then nothing: never retried without TLS
    assert remote.conns, why
    assert all("STARTTLS" in c.commands for c in remote.conns)


def test_dane_ta_verified(facteurd, dns, remote):
    d = daemon(facteurd, dns, remote)
    sent(d, remote, "ta.example.net")
    d.wait_log(r"Verified TLS connection established to %s"
               % relay("ta.example.net", remote))


def test_tlsa_servfail_deferred(facteurd, dns, remote):
    d = daemon(facteurd, dns, remote)
    deferred(d, remote, "fail.example.net",
             r"TLS is required, but TLSA lookup error for "
             r"mx\.fail\.example\.net:%d" % remote.port)
    # deferred before connecting: no cleartext fallback
    assert remote.conns == []
    d.wait_log(r"warning: TLS policy lookup for fail\.example\.net/"
               r"mx\.fail\.example\.net: TLSA lookup error")


@pytest.mark.parametrize("dom", ["example.org", "notlsa.example.net"],
                         ids=["unsigned_zone", "signed_without_tlsa"])
def test_dane_opportunistic(facteurd, dns, remote, dom):
    d = daemon(facteurd, dns, remote)
    sent(d, remote, dom)
    assert remote.conns[0].tls
    d.wait_log(r"(Untrusted|Anonymous) TLS connection established to %s"
               % relay(dom, remote))
    assert not re.search(r"Verified TLS connection established to mx\.%s"
                         % re.escape(dom), d.log())


def test_dane_unsigned_cleartext_without_starttls(facteurd, dns, pki):
    r = Capture(starttls=None)
    try:
        d = daemon(facteurd, dns, r)
        sent(d, r, "example.org")
        assert not r.conns[0].tls
        assert "STARTTLS" not in r.conns[0].commands
    finally:
        r.close()


def test_dane_signed_without_starttls_deferred(facteurd, dns, pki):
    r = Capture(starttls=None)
    try:
        d = daemon(facteurd, dns, r)
        deferred(d, r, "example.net", r"TLS is required, but was not offered "
                 r"by host mx\.example\.net\[127\.0\.0\.1\]")
    finally:
        r.close()


def test_pkix_only_records_encrypt(facteurd, dns, remote):
    """Secure TLSA records, none usable for SMTP (PKIX-EE): TLS is
    required, the certificate is not checked (Postfix)."""
    d = daemon(facteurd, dns, remote)
    sent(d, remote, "pkix.example.net")
    assert remote.conns[0].tls
    d.wait_log(r"Untrusted TLS connection established to %s"
               % relay("pkix.example.net", remote))


@pytest.mark.parametrize("dom,reason", [
    ("example.org", r"TLS is required, but non DNSSEC destination "
                    r"mx\.example\.org"),
    ("notlsa.example.net", r"TLS is required, but no TLSA records found "
                           r"for mx\.notlsa\.example\.net"),
    ("pkix.example.net", r"TLSA records unusable"),
], ids=["unsigned_zone", "no_tlsa", "unusable"])
def test_dane_only_deferred(facteurd, dns, remote, dom, reason):
    d = daemon(facteurd, dns, remote, smtp_tls_security_level="dane-only")
    deferred(d, remote, dom, reason)
    assert remote.conns == []


def test_dane_only_verified(facteurd, dns, remote):
    d = daemon(facteurd, dns, remote, smtp_tls_security_level="dane-only")
    sent(d, remote, "example.net")
    d.wait_log(r"Verified TLS connection established to %s"
               % relay("example.net", remote))


def test_dane_without_dnssec_support_is_may(facteurd, dns, remote):
    d = daemon(facteurd, dns, remote, smtp_dns_support_level=None)
    sent(d, remote, "bad.example.net")     # the bad TLSA is not looked up
    d.wait_log(r"warning: bad\.example\.net: dane configured with dnssec "
               r"lookups disabled")
    d.wait_log(r"(Untrusted|Anonymous) TLS connection established")


def test_dane_only_without_dnssec_support_defers(facteurd, dns, remote):
    d = daemon(facteurd, dns, remote, smtp_dns_support_level="enabled",
               smtp_tls_security_level="dane-only")
    deferred(d, remote, "example.net", r"client TLS configuration problem")
    d.wait_log(r"warning: example\.net: dane-only configured with dnssec "
               r"lookups disabled")


def test_policy_map_dane_per_next_hop(facteurd, dns, remote):
    """Default none; the policy table asks for dane (example.net) and
    dane-only (example.org) per next hop."""
    policy = ("example.net:%d dane\nexample.org:%d dane-only\n"
              "bad.example.net:%d dane\n" % ((remote.port,) * 3))
    d = daemon(facteurd, dns, remote, policy=policy,
               smtp_tls_security_level="none")
    sent(d, remote, "example.net")
    d.wait_log(r"Verified TLS connection established to %s"
               % relay("example.net", remote))
    rcpt, qid = send(d, "example.org")
    d.wait_log(r"%s: to=<%s>, .*dsn=4\.7\.5, status=deferred \(TLS is "
               r"required, but non DNSSEC destination" % (qid, re.escape(rcpt)))
    rcpt, qid = send(d, "bad.example.net")
    d.wait_log(r"%s: to=<%s>, .*dsn=4\.7\.5, status=deferred \(TLS is "
               r"required, but certificate verification failed"
               % (qid, re.escape(rcpt)))
    # without a policy entry the default (none) stays: cleartext
    sent(d, remote, "ta.example.net")
    assert len(remote.messages) == 2
    assert not remote.conns[-1].tls


def test_bad_dns_support_level_stops_start(facteurd):
    facteurd(start=False, main_cf={"smtp_dns_support_level": "sometimes"}
             ).start_fails(r"smtp_dns_support_level: unknown value "
                           r"\"sometimes\"")


def test_dns_support_disabled_skips_mx(facteurd, dns, remote):
    """smtp_dns_support_level = disabled: no MX lookup, the domain's own
    address (the MX host of direct.example.org has none)."""
    d = daemon(facteurd, dns, remote, smtp_dns_support_level="disabled",
               smtp_tls_security_level="may")
    before = len([q for q in dns.queries if q[0] == "direct.example.org"
                  and q[1] == "MX"])
    rcpt, qid = send(d, "direct.example.org")
    assert len(remote.wait_messages(1)) == 1, d.diagnostics()
    d.wait_log(r"%s: to=<%s>, relay=direct\.example\.org\[127\.0\.0\.1\]"
               r":%d, .*status=sent" % (qid, re.escape(rcpt), remote.port))
    assert len([q for q in dns.queries if q[0] == "direct.example.org"
                and q[1] == "MX"]) == before


def test_dns_support_enabled_uses_mx(facteurd, dns, remote):
    """The same destination with MX lookups: the MX host has no address."""
    d = daemon(facteurd, dns, remote, smtp_dns_support_level="enabled",
               smtp_tls_security_level="may")
    rcpt, qid = send(d, "direct.example.org")
    d.wait_log(r"%s: to=<%s>, .*status=\w+ \(Host or domain name not "
               r"found.*mx\.nowhere\.example\.org" % (qid, re.escape(rcpt)))
    assert remote.messages == []


def test_dane_ee_skips_name_checks(facteurd, dns, remote):
    """RFC 7672 3.1.1: DANE-EE(3) binds the key, whatever the names in
    the certificate (it does not name other.eename.example.net)."""
    d = daemon(facteurd, dns, remote)
    rcpt, qid = send(d, "eename.example.net")
    assert len(remote.wait_messages(1)) == 1, d.diagnostics()
    d.wait_log(r"%s: to=<%s>, .*dsn=2\.0\.0, status=sent"
               % (qid, re.escape(rcpt)))
    d.wait_log(r"Verified TLS connection established to other\.eename\."
               r"example\.net\[127\.0\.0\.1\]:%d" % remote.port)


def test_dane_ta_checks_the_name(facteurd, dns, remote):
    """RFC 7672 3.2.2: with DANE-TA(2) the certificate must name the
    server (TLSA base domain); the CA matches, the name does not."""
    d = daemon(facteurd, dns, remote)
    rcpt, qid = send(d, "taname.example.net")
    m = d.wait_log(r"%s: to=<%s>, .*dsn=4\.7\.5, status=deferred \(TLS is "
                   r"required, but certificate verification failed for host "
                   r"other\.taname\.example\.net" % (qid, re.escape(rcpt)))
    assert remote.messages == [], m.group(0)


def test_dane_per_service_override(facteurd, dns, remote):
    """A master.cf smtp service with -o smtp_dns_support_level=dnssec -o
    smtp_tls_security_level=dane, main.cf without either: mail routed to
    that service is verified by DANE."""
    d = facteurd(start=False, main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dns.port,
        "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
        "queue_run_delay": "1s",
        "transport_maps": "inline:{ example.net=danesmtp:example.net:%d, "
                          "bad.example.net=danesmtp:bad.example.net:%d }"
                          % (remote.port, remote.port)})
    d.master_cf += ("danesmtp unix - - n - - smtp\n"
                    "  -o smtp_dns_support_level=dnssec\n"
                    "  -o smtp_tls_security_level=dane\n")
    d.write_config()
    d.start()
    sent(d, remote, "example.net")
    d.wait_log(r"Verified TLS connection established to %s"
               % relay("example.net", remote))
    rcpt, qid = send(d, "bad.example.net")
    d.wait_log(r"%s: to=<%s>, .*dsn=4\.7\.5, status=deferred \(TLS is "
               r"required, but certificate verification failed"
               % (qid, re.escape(rcpt)))
    assert len(remote.messages) == 1


def test_dane_mx_cname_target_tlsa(facteurd, dns, remote):
    """The MX host is a CNAME: the TLSA RRset of the chain's end is
    used (RFC 7672 2.2.2), here 3 1 1 at mx.example.net."""
    d = daemon(facteurd, dns, remote)
    rcpt, qid = send(d, "cname.example.net")
    assert len(remote.wait_messages(1)) == 1, d.diagnostics()
    d.wait_log(r"Verified TLS connection established to alias\.cname\."
               r"example\.net\[127\.0\.0\.1\]:%d" % remote.port)
    d.wait_log(r"%s: to=<%s>, .*status=sent" % (qid, re.escape(rcpt)))
    assert ("_%d._tcp.mx.example.net" % remote.port, "TLSA", True, True) \
        in dns.queries


def test_dane_mx_cname_falls_back_to_the_alias(facteurd, dns, remote):
    """No TLSA at the CNAME target: the MX host name's own TLSA (2 0 1 of
    the CA) applies, and the certificate naming the alias is accepted."""
    d = daemon(facteurd, dns, remote)
    rcpt, qid = send(d, "cname2.example.net")
    assert len(remote.wait_messages(1)) == 1, d.diagnostics()
    d.wait_log(r"Verified TLS connection established to alias\.cname2\."
               r"example\.net\[127\.0\.0\.1\]:%d" % remote.port)
    names = [q[0] for q in dns.queries if q[1] == "TLSA"]
    p = remote.port
    assert names.index("_%d._tcp.target.cname2.example.net" % p) < \
        names.index("_%d._tcp.alias.cname2.example.net" % p)


def test_dane_truncated_reply_over_tcp(facteurd, dns, remote):
    """The MX host's A RRset comes truncated over UDP: the DNSSEC query
    is asked again over TCP, and its AD bit still counts."""
    d = daemon(facteurd, dns, remote)
    sent(d, remote, "tcp.example.net")
    d.wait_log(r"Verified TLS connection established to %s"
               % relay("tcp.example.net", remote))
    assert ("mx.tcp.example.net", "A") in dns.truncated
