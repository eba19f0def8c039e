"""
test_policy_vocabulary.py - the restrictions no other test file exercises
against the daemon, each with one accepted and one refused case and the
reply Postfix gives: permit/reject/defer, check_helo_access,
check_recipient_access (text and numeric answers),
check_reverse_client_hostname_access, check_recipient_maps,
defer_if_reject, warn_if_reject, reject_unknown_hostname, reject_non_fqdn_recipient,
reject_unlisted_sender,
reject_unknown_reverse_client_hostname, reject_rhsbl_client /
_reverse_client / _recipient, smtpd_helo_required and
strict_rfc821_envelopes. DNS data comes from a private dnsmasq.
"""

import pytest

from dnsserver import dns_server, dnsbl, host, mx, ptr  # noqa: F401 (fixture)
from harness import check

RELAY = "permit_mynetworks, reject_unauth_destination"


@pytest.fixture
def dns(dns_server):
    return dns_server(
        mx("known.test", "mx.known.test"),
        host("mx.known.test", "127.0.0.1"),
        # 127.0.0.1 <-> host.known.test; 127.0.0.6 <-> spammer.test
        host("host.known.test", "127.0.0.1"),
        host("spammer.test", "127.0.0.6"),
        # 127.0.0.7 has a PTR (badrev.test) whose name does not resolve;
        # 127.0.0.8 has no PTR at all
        ptr("127.0.0.7", "badrev.test"),
        dnsbl("dbl.test", "spammer.test", "127.0.1.2", "Spam domain"),
        dnsbl("dbl.test", "badrev.test", "127.0.1.2"),
        local=("test", "in-addr.arpa")).port


def daemon(facteurd, dns_port=None, maps=None, **params):
    d = facteurd(start=False)
    d.params["smtpd_relay_restrictions"] = RELAY
    if dns_port:
        d.params["facteur_dns_servers"] = "127.0.0.1:%d" % dns_port
    for name, text in (maps or {}).items():
        p = d.table(name, text)
        for k, v in params.items():
            params[k] = v.replace("@" + name, p)
    d.params.update(params)
    d.write_config()
    d.start()
    return d


def rcpt(d, sender="joe@example.net", to="alice@example.test",
         helo="client.test", source=None):
    with d.session(helo=helo, source=source) as c:
        r = c.cmd("MAIL FROM:<%s>" % sender)
        if r.code != 250:
            return r
        return c.cmd("RCPT TO:<%s>" % to)


def test_permit_reject_defer(facteurd):
    d = daemon(facteurd, smtpd_recipient_restrictions="permit_mynetworks, reject")
    check(rcpt(d), 250)
    check(rcpt(d, source="127.0.0.2"), 554, "5.7.1",
          r"<alice@example\.test>: Recipient address rejected: Access denied")
    d.stop()
    d.params["smtpd_recipient_restrictions"] = "permit_mynetworks, defer"
    d.write_config()
    d.start()
    check(rcpt(d), 250)
    check(rcpt(d, source="127.0.0.2"), 450, "4.3.2",
          r"<alice@example\.test>: Recipient address rejected: Try again "
          r"later")
    d.wait_log(r"NOQUEUE: reject: RCPT from [^ ]*\[127\.0\.0\.2\]: 450 4\.3\.2")


def test_check_helo_access(facteurd):
    d = daemon(facteurd, maps={"helo": "bad.example REJECT\n"},
               smtpd_helo_restrictions="check_helo_access @helo")
    check(rcpt(d, helo="good.example"), 250)
    check(rcpt(d, helo="bad.example"), 554, "5.7.1",
          r"<bad\.example>: Helo command rejected: Access denied")


def test_check_recipient_access(facteurd):
    d = daemon(facteurd, maps={"rcpt": "alice@example.test REJECT Not here\n"
                                       "carol@example.test 450 Try later\n"
                                       "example.test OK\n"},
               smtpd_recipient_restrictions="check_recipient_access @rcpt, "
               "reject")
    check(rcpt(d, to="bob@example.test"), 250)       # the domain's OK
    check(rcpt(d), 554, "5.7.1",
          r"<alice@example\.test>: Recipient address rejected: Not here")
    check(rcpt(d, to="carol@example.test"), 450, "4.7.1",
          r"<carol@example\.test>: Recipient address rejected: Try later")


def test_check_reverse_client_hostname_access(facteurd, dns):
    d = daemon(facteurd, dns, maps={"rev": "badrev.test REJECT\n"},
               smtpd_client_restrictions=
               "check_reverse_client_hostname_access @rev")
    check(rcpt(d, source="127.0.0.8"), 250)
    check(rcpt(d, source="127.0.0.7"), 554, "5.7.1",
          r"<badrev\.test>: Unverified Client host rejected: Access denied")


def test_check_recipient_maps(facteurd):
    d = daemon(facteurd, smtpd_recipient_restrictions="check_recipient_maps")
    check(rcpt(d), 250)
    check(rcpt(d, to="nosuch@example.test"), 550, "5.1.1",
          r"<nosuch@example\.test>: Recipient address rejected: User unknown")


def test_defer_if_reject_and_warn_if_reject(facteurd):
    d = daemon(facteurd, smtpd_sender_restrictions=
               "defer_if_reject reject_non_fqdn_sender")
    check(rcpt(d), 250)
    # Postfix: the later refusal becomes this 450
    check(rcpt(d, sender="joe@localhost"), 450, "4.7.0",
          r"<joe@localhost>: Sender address rejected: defer_if_reject "
          r"requested")
    d.stop()
    d.params["smtpd_sender_restrictions"] = (
        "warn_if_reject reject_non_fqdn_sender, reject_non_fqdn_sender")
    d.write_config()
    d.start()
    d2 = rcpt(d, sender="joe@localhost")
    # the warning is logged; the plain restriction after it refuses
    check(d2, 504, "5.5.2", r"need fully-qualified address")
    d.wait_log(r"NOQUEUE: reject_warning: RCPT from [^ ]*\[127\.0\.0\.1\]: "
               r"504 5\.5\.2 <joe@localhost>: Sender address rejected")
    d.stop()
    d.params["smtpd_sender_restrictions"] = (
        "warn_if_reject reject_non_fqdn_sender")
    d.write_config()
    d.start()
    check(rcpt(d, sender="joe@localhost"), 250)


def test_reject_unknown_hostname_old_name(facteurd, dns):
    d = daemon(facteurd, dns,
               smtpd_helo_restrictions="reject_unknown_hostname")
    check(rcpt(d, helo="mx.known.test"), 250)
    check(rcpt(d, helo="nxhost.test"), 450, "4.7.1",
          r"<nxhost\.test>: Helo command rejected: Host not found")


def test_reject_unknown_reverse_client_hostname(facteurd, dns):
    d = daemon(facteurd, dns, smtpd_client_restrictions=
               "reject_unknown_reverse_client_hostname")
    # a PTR is enough (its name need not resolve back)
    check(rcpt(d, source="127.0.0.7"), 250)
    check(rcpt(d, source="127.0.0.8"), 450, "4.7.1",
          r"Client host rejected: cannot find your reverse hostname, "
          r"\[127\.0\.0\.8\]")


def test_rhsbl_client_reverse_client_recipient(facteurd, dns):
    d = daemon(facteurd, dns,
               smtpd_client_restrictions="reject_rhsbl_client dbl.test",
               smtpd_recipient_restrictions=
               "reject_rhsbl_recipient dbl.test, permit_mynetworks, reject")
    # verified name spammer.test (127.0.0.6 <-> spammer.test): listed
    check(rcpt(d, source="127.0.0.6"), 554, "5.7.1",
          r"Service unavailable; Client host \[spammer\.test\] blocked "
          r"using dbl\.test; Spam domain")
    # 127.0.0.7's name is not verified: reject_rhsbl_client skips it
    check(rcpt(d, source="127.0.0.1"), 250)
    check(rcpt(d, to="x@spammer.test"), 554, "5.7.1",
          r"Recipient address \[x@spammer\.test\] blocked using dbl\.test")
    d.stop()
    d.params["smtpd_client_restrictions"] = (
        "reject_rhsbl_reverse_client dbl.test")
    d.params["smtpd_recipient_restrictions"] = "reject_rhsbl_recipient dbl.test"
    d.write_config()
    d.start()
    check(rcpt(d, source="127.0.0.7"), 554, "5.7.1",
          r"Unverified Client host \[badrev\.test\] blocked using dbl\.test")
    check(rcpt(d, source="127.0.0.8"), 250)


def test_helo_required_and_strict_envelopes(facteurd):
    d = daemon(facteurd, smtpd_helo_required="yes",
               strict_rfc821_envelopes="yes")
    c = d.connect()
    check(c.cmd("MAIL FROM:<joe@example.net>"), 503, "5.5.1",
          r"Error: send HELO/EHLO first")
    check(c.cmd("EHLO client.test"), 250)
    check(c.cmd("MAIL FROM:joe@example.net"), 501, "5.1.7",
          r"Bad sender address syntax")
    check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
    check(c.cmd("RCPT TO:alice@example.test"), 501, "5.1.3",
          r"Bad recipient address syntax")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    c.close()


def test_non_fqdn_recipient_and_unlisted_sender(facteurd):
    d = daemon(facteurd, smtpd_recipient_restrictions=
               "reject_non_fqdn_recipient",
               smtpd_sender_restrictions="reject_unlisted_sender")
    check(rcpt(d), 250)
    check(rcpt(d, to="alice@localhost"), 504, "5.5.2",
          r"<alice@localhost>: Recipient address rejected: need "
          r"fully-qualified address")
    # a sender in one of our domains must exist
    check(rcpt(d, sender="bob@example.test"), 250)
    check(rcpt(d, sender="nobody@example.test"), 550, "5.1.0",
          r"<nobody@example\.test>: Sender address rejected: User unknown")
