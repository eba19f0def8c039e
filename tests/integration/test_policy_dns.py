"""
test_policy_dns.py - DNS-based restrictions against the real daemon and a
private dnsmasq on a loopback port (facteur_dns_servers):
reject_unknown_sender_domain / _recipient_domain (MX, A-only, null MX,
NXDOMAIN, DNS down -> 4xx only), reject_unknown_helo_hostname,
reject_unknown_client_hostname / _reverse_client_hostname (PTR and forward
confirmation, from several loopback source addresses), reject_rbl_client
with and without reply filters, reject_rhsbl_sender / _helo, rbl_reply_maps
and reject_unauth_pipelining. Replies and log lines as Postfix gives them.
"""
import os

import pytest

from dnsserver import (dns_server, dnsbl, host, mx,  # noqa: F401 (fixture)
                       null_mx, ptr)
from harness import check, free_port

RELAY = "permit_mynetworks, reject_unauth_destination"


@pytest.fixture
def dnsmasq(dns_server):
    return dns_server(
        mx("known.test", "mx.known.test"),
        host("mx.known.test", "127.0.0.1"),
        host("aonly.test", "127.0.0.5"),
        null_mx("nullmx.test"),
        # 127.0.0.1 <-> host.known.test both ways; 127.0.0.3 has a PTR
        # whose name does not resolve; 127.0.0.4 has no PTR at all.
        host("host.known.test", "127.0.0.1"),
        ptr("127.0.0.3", "forged.known.test"),
        # DNSBLs: 127.0.0.1 listed (127.0.0.2) with a TXT reason
        dnsbl("bl.test", "127.0.0.1", "127.0.0.2", "Listed for testing"),
        # RHSBL: spammer.test listed
        dnsbl("dbl.test", "spammer.test", "127.0.1.2", "Spam domain"),
        local=("test", "in-addr.arpa")).port


def _daemon(facteurd, dns_port, **params):
    cf = {"facteur_dns_servers": "127.0.0.1:%d" % dns_port,
          "smtpd_relay_restrictions": RELAY}
    cf.update(params)
    return facteurd(main_cf=cf)


def _rcpt(d, sender, rcpt="alice@example.test", helo="client.test",
          source=None):
    with d.session(helo=helo, source=source) as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        return c.cmd("RCPT TO:<%s>" % rcpt)


def test_unknown_sender_domain(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                smtpd_sender_restrictions="reject_unknown_sender_domain")
    check(_rcpt(d, "joe@known.test"), 250)      # MX
    check(_rcpt(d, "joe@aonly.test"), 250)      # A only
    check(_rcpt(d, "joe@example.test"), 250)    # hosted: no lookup
    check(_rcpt(d, "joe@nosuch.test"), 450, "4.1.8",
          r"<joe@nosuch\.test>: Sender address rejected: Domain not found$")
    check(_rcpt(d, "joe@nullmx.test"), 550, "5.7.27",
          r"<joe@nullmx\.test>: Sender address rejected: Domain nullmx\.test "
          r"does not accept mail \(nullMX\)")
    check(_rcpt(d, ""), 250)                    # <> is not checked
    assert d.wait_log(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.1\]: "
                      r"450 4\.1\.8 <joe@nosuch\.test>: Sender address "
                      r"rejected: Domain not found; from=<joe@nosuch\.test> "
                      r"to=<alice@example\.test> proto=ESMTP "
                      r"helo=<client\.test>")


def test_unknown_recipient_domain_and_code(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                unknown_address_reject_code="550",
                smtpd_relay_restrictions="reject_unknown_recipient_domain, "
                                         "permit_mynetworks, "
                                         "reject_unauth_destination")
    check(_rcpt(d, "joe@known.test", rcpt="bob@nosuch.test"), 550, "5.1.2",
          r"<bob@nosuch\.test>: Recipient address rejected: Domain not found")
    check(_rcpt(d, "joe@known.test", rcpt="bob@nullmx.test"), 556, "5.1.10",
          r"Domain nullmx\.test does not accept mail \(nullMX\)")
    # a domain with an MX passes this check; relaying is for mynetworks
    check(_rcpt(d, "joe@known.test", rcpt="bob@known.test"), 250)


def test_dns_down_is_never_5xx(facteurd, dnsmasq):
    dead = free_port()
    d = facteurd(main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dead,
        "smtpd_relay_restrictions": RELAY,
        "smtpd_sender_restrictions": "reject_unknown_sender_domain, "
                                     "reject_rbl_client bl.test"})
    # defer_if_permit: the recipient is deferred, not refused
    check(_rcpt(d, "joe@nosuch.test"), 450, "4.1.8",
          r"<joe@nosuch\.test>: Sender address rejected: Domain not found")
    assert d.wait_log(r"warning: .*RBL lookup error")
    d2 = facteurd(main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dead,
        "unknown_address_tempfail_action": "defer",
        "smtpd_relay_restrictions": RELAY,
        "smtpd_sender_restrictions": "reject_unknown_sender_domain, reject"})
    check(_rcpt(d2, "joe@nosuch.test"), 450, "4.1.8")


def test_defer_if_permit_yields_to_reject(facteurd):
    # A tempfail (defer_if_permit) loses to a later reject.
    dead = free_port()
    d = facteurd(main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dead,
        "smtpd_relay_restrictions": RELAY,
        "smtpd_sender_restrictions": "reject_unknown_sender_domain, reject"})
    check(_rcpt(d, "joe@nosuch.test"), 554, "5.7.1",
          r"Sender address rejected: Access denied")


def test_unknown_helo_hostname(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                smtpd_helo_restrictions="reject_unknown_helo_hostname")
    check(_rcpt(d, "joe@known.test", helo="mx.known.test"), 250)
    check(_rcpt(d, "joe@known.test", helo="[127.0.0.1]"), 250)
    check(_rcpt(d, "joe@known.test", helo="ghost.nosuch.test"), 450, "4.7.1",
          r"<ghost\.nosuch\.test>: Helo command rejected: Host not found$")


def test_unknown_client_hostname(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                smtpd_client_restrictions="reject_unknown_client_hostname",
                smtpd_relay_restrictions="reject_unauth_destination")
    check(_rcpt(d, "joe@known.test", source="127.0.0.1"), 250)
    # no PTR at all: NXDOMAIN is permanent -> unknown_client_reject_code
    # (RFC 7372's 4.7.25, as Postfix)
    check(_rcpt(d, "joe@known.test", source="127.0.0.4"), 450, "4.7.25",
          r"Client host rejected: cannot find your hostname, "
          r"\[127\.0\.0\.4\]$")
    # PTR name does not resolve back
    check(_rcpt(d, "joe@known.test", source="127.0.0.3"), 450, "4.7.25",
          r"cannot find your hostname, \[127\.0\.0\.3\]")
    assert d.wait_log(r"warning: hostname forged\.known\.test does not "
                      r"resolve to address 127\.0\.0\.3")


def test_unknown_reverse_client_hostname(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq, unknown_client_reject_code="550",
                smtpd_client_restrictions="reject_unknown_reverse_client_"
                                          "hostname",
                smtpd_relay_restrictions="reject_unauth_destination")
    # a PTR is enough, even one that does not resolve back
    check(_rcpt(d, "joe@known.test", source="127.0.0.3"), 250)
    check(_rcpt(d, "joe@known.test", source="127.0.0.4"), 550, "5.7.1",
          r"Client host rejected: cannot find your reverse hostname, "
          r"\[127\.0\.0\.4\]$")


def test_rbl_client(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                smtpd_client_restrictions="reject_rbl_client bl.test")
    check(_rcpt(d, "joe@known.test"), 554, "5.7.1",
          r"Service unavailable; Client host \[127\.0\.0\.1\] blocked using "
          r"bl\.test; Listed for testing$")
    assert d.wait_log(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.1\]: 554 "
                      r"5\.7\.1 Service unavailable; Client host "
                      r"\[127\.0\.0\.1\] blocked using bl\.test; Listed for "
                      r"testing; from=<joe@known\.test>")
    # another client is not listed
    check(_rcpt(d, "joe@known.test", source="127.0.0.2"), 250)


def test_rbl_filters_and_reply_maps(facteurd, dnsmasq, tmp_path):
    replies = tmp_path / "rbl_replies"
    replies.write_text("bl.test=127.0.0.[2..11] 550 5.7.1 Go away "
                       "($rbl_what via $rbl_domain)\n")
    os.chmod(str(replies), 0o644)
    os.chmod(str(tmp_path), 0o755)
    # a filter that does not match the answer (127.0.0.2) lets the client in
    d = _daemon(facteurd, dnsmasq,
                smtpd_client_restrictions="reject_rbl_client "
                                          "bl.test=127.0.0.[3..4]")
    check(_rcpt(d, "joe@known.test"), 250)
    d2 = _daemon(facteurd, dnsmasq,
                 rbl_reply_maps="texthash:" + str(replies),
                 smtpd_client_restrictions="reject_rbl_client "
                                           "bl.test=127.0.0.[2..11]")
    check(_rcpt(d2, "joe@known.test"), 550, "5.7.1",
          r"Go away \(127\.0\.0\.1 via bl\.test\)$")


def test_rhsbl(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                smtpd_sender_restrictions="reject_rhsbl_sender dbl.test",
                smtpd_helo_restrictions="reject_rhsbl_helo dbl.test")
    check(_rcpt(d, "joe@spammer.test"), 554, "5.7.1",
          r"Service unavailable; Sender address \[joe@spammer\.test\] "
          r"blocked using dbl\.test; Spam domain$")
    check(_rcpt(d, "joe@known.test", helo="spammer.test"), 554, "5.7.1",
          r"Helo command \[spammer\.test\] blocked using dbl\.test")
    check(_rcpt(d, "joe@known.test"), 250)


def test_unauth_pipelining(facteurd):
    d = facteurd(main_cf={
        "smtpd_relay_restrictions": RELAY,
        "smtpd_client_restrictions": "reject_unauth_pipelining"})
    c = d.connect()
    # HELO (not EHLO) and MAIL sent together: not allowed without PIPELINING
    c.send(b"HELO client.test\r\nMAIL FROM:<joe@known.test>\r\n")
    check(c.reply(), 250)
    check(c.reply(), 250)
    check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.0",
          r"Improper use of SMTP command pipelining")
    c.close()
    # the same commands one at a time are fine
    c = d.connect()
    check(c.cmd("HELO client.test"), 250)
    check(c.cmd("MAIL FROM:<joe@known.test>"), 250)
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    c.close()
