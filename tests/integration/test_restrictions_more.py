"""
test_restrictions_more.py - Postfix restrictions beyond the common ones,
against the real daemon and a private dnsmasq (facteur_dns_servers):
check_{sender,recipient,helo}_{mx,ns,a}_access (MX hosts, name servers
and addresses looked up in cidr:/texthash: maps; DUNNO stops the search;
OK is refused; a DNS failure is DUNNO with a warning), check_sasl_access
after AUTH, permit_auth_destination, permit_mx_backup (+
permit_mx_backup_networks), reject_multi_recipient_bounce (RCPT and
DATA), reject_plaintext_session before/after STARTTLS,
permit_dnswl_client / permit_rhswl_client, permit_inet_interfaces,
reject_rbl / reject_maps_rbl, and `facteur check` accepting the names
while still refusing a typo with a suggestion, and check_relay_domains /
permit_naked_ip_address (removed by Postfix 3.9) with what to use.
"""
import os
import re

import pytest

from dnsserver import dns_server, dnsbl, host, mx  # noqa: F401 (fixture)
from harness import check, free_port
from test_auth import b64, users_text  # noqa: F401 (fixture)
from test_tls import cert, starttls, tls_cf, tls_conn  # noqa: F401


def ns(domain, target):
    """An NS record (dnsmasq --dns-rr, type 2, the name in wire form)."""
    wire = b"".join(bytes([len(lab)]) + lab.encode()
                    for lab in target.split(".")) + b"\0"
    return ["--dns-rr=%s,2,%s" % (domain, wire.hex())]


@pytest.fixture(scope="module")
def dnsmasq_port(tmp_path_factory):
    from dnsserver import running_dnsmasq
    recs = (mx("good.test", "mx.good.test") +
            host("mx.good.test", "192.0.2.10") +
            mx("bogus.test", "mx.bogus.test") +
            host("mx.bogus.test", "127.0.0.1") +
            mx("fine.test", "mx.fine.test") +
            host("mx.fine.test", "127.0.0.1") +
            host("ahost.test", "10.1.2.3") +
            host("okhost.test", "192.0.2.20") +
            ns("evilns.test", "ns1.evil.test") +
            ns("parent.test", "ns1.evil.test") +
            host("sub.parent.test", "192.0.2.77") +   # exists, no NS
            ns("goodns.test", "ns1.good.test") +
            host("ns1.good.test", "192.0.2.53") +
            host("ns1.evil.test", "192.0.2.66") +
            # permit_mx_backup: we are 127.0.0.1 (mx.me.test)
            host("mx.me.test", "127.0.0.1") +
            host("mx.other.test", "192.0.2.25") +
            mx("backup.test", "mx.other.test", 10) +
            mx("backup.test", "mx.me.test", 20) +
            mx("primary.test", "mx.me.test", 10) +
            mx("stranger.test", "mx.other.test", 10) +
            # DNS allowlist: 127.0.0.1 listed
            dnsbl("wl.test", "127.0.0.1", "127.0.0.5") +
            # a client with a verified name (PTR and A agree), whose
            # domain's MX is in 127/8; listed in an RHS allowlist
            host("c6.test", "127.0.0.6") +
            mx("c6.test", "mx.bogus.test") +
            dnsbl("rhswl.test", "c6.test", "127.0.1.3") +
            # a DNSBL for reject_rbl / reject_maps_rbl
            dnsbl("bl.test", "127.0.0.7", "127.0.1.4"))
    # running_dnsmasq takes record lists as separate arguments
    with running_dnsmasq(recs, local=("test", "in-addr.arpa")) as d:
        yield d.port


def _file(d, name, text):
    path = os.path.join(d.confdir, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def _daemon(facteurd, dns_port, tables=(), **params):
    cf = {"facteur_dns_servers": "127.0.0.1:%d" % dns_port}
    cf.update(params)
    d = facteurd(start=False, main_cf=cf)
    for name, text in tables:
        _file(d, name, text)
    for k, v in list(d.params.items()):
        d.params[k] = v.replace("CONF/", d.confdir + "/")
    d.write_config()
    d.start()
    return d


def _rcpt(d, sender, rcpt="alice@example.test", helo="client.test",
          source=None):
    with d.session(helo=helo, source=source) as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        return c.cmd("RCPT TO:<%s>" % rcpt)


BOGUS = ("bogus_mx", "127.0.0.0/8 REJECT Mail server in a private network\n"
                     "10.0.0.0/8 REJECT Mail server in a private network\n")


def test_sender_mx_access_cidr(facteurd, dnsmasq_port):
    d = _daemon(facteurd, dnsmasq_port, tables=[BOGUS],
                smtpd_sender_restrictions="check_sender_mx_access "
                                          "cidr:CONF/bogus_mx")
    check(_rcpt(d, "joe@bogus.test"), 554, "5.7.1",
          r"^\d\.\d\.\d+ <joe@bogus\.test>: Sender address rejected: Mail server in "
          r"a private network$")
    assert d.wait_log(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.1\]: 554 "
                      r"5\.7\.1 <joe@bogus\.test>: Sender address rejected: "
                      r"Mail server in a private network; "
                      r"from=<joe@bogus\.test> to=<alice@example\.test>")
    check(_rcpt(d, "joe@good.test"), 250)
    # a domain without MX is its own mail server (its A record, 10/8)
    check(_rcpt(d, "joe@ahost.test"), 554, "5.7.1",
          r"Sender address rejected: Mail server in a private network$")
    # an address literal is its own mail server
    check(_rcpt(d, "joe@[127.0.0.1]"), 554, "5.7.1")
    # the null sender has no domain: nothing to look up
    check(_rcpt(d, ""), 250)
    # a name nobody knows: DNS says NXDOMAIN -> own server -> no address
    check(_rcpt(d, "joe@nosuch.test"), 250)


def test_mx_access_names_dunno_and_ok(facteurd, dnsmasq_port):
    names = ("mx_names", "mx.fine.test DUNNO\n"
                         "127.0.0.1 REJECT loopback MX\n"
                         "mx.good.test OK\n")
    d = _daemon(facteurd, dnsmasq_port, tables=[names],
                smtpd_sender_restrictions="check_sender_mx_access "
                                          "texthash:CONF/mx_names")
    # the host name matched DUNNO first: its addresses are not looked at
    check(_rcpt(d, "joe@fine.test"), 250)
    check(_rcpt(d, "joe@bogus.test"), 554, "5.7.1",
          r"<joe@bogus\.test>: Sender address rejected: loopback MX$")
    # OK is not allowed (an MX name is not proof of anything)
    check(_rcpt(d, "joe@good.test"), 451, "4.3.5",
          r"Server configuration error")
    assert d.wait_log(r"warning: restriction check_sender_mx_access returns "
                      r"OK for joe@good\.test; this is not allowed")


def test_ns_and_a_access(facteurd, dnsmasq_port):
    nsmap = ("ns_map", "ns1.evil.test REJECT Evil DNS servers\n"
                       "192.0.2.53 REJECT by address\n")
    amap = ("a_map", "10.0.0.0/8 REJECT Private address\n")
    d = _daemon(facteurd, dnsmasq_port, tables=[nsmap, amap],
                smtpd_sender_restrictions="check_sender_ns_access "
                                          "texthash:CONF/ns_map",
                smtpd_helo_restrictions="check_helo_a_access "
                                        "cidr:CONF/a_map",
                smtpd_recipient_restrictions="check_recipient_ns_access "
                                             "texthash:CONF/ns_map, "
                                             "permit_mynetworks, "
                                             "reject_unauth_destination")
    check(_rcpt(d, "joe@evilns.test"), 554, "5.7.1",
          r"^\d\.\d\.\d+ <joe@evilns\.test>: Sender address rejected: Evil DNS servers$")
    # no NS of its own: the nearest parent's
    check(_rcpt(d, "joe@sub.parent.test"), 554, "5.7.1",
          r"<joe@sub\.parent\.test>: Sender address rejected: Evil DNS")
    # NXDOMAIN too (Postfix 3 treats it as "no data": broken servers)
    check(_rcpt(d, "joe@nosuch.parent.test"), 554, "5.7.1",
          r"<joe@nosuch\.parent\.test>: Sender address rejected: Evil DNS")
    # the name server's address
    check(_rcpt(d, "joe@goodns.test"), 554, "5.7.1",
          r"Sender address rejected: by address$")
    check(_rcpt(d, "joe@good.test"), 250)
    check(_rcpt(d, "joe@good.test", helo="ahost.test"), 554, "5.7.1",
          r"^\d\.\d\.\d+ <ahost\.test>: Helo command rejected: Private address$")
    check(_rcpt(d, "joe@good.test", helo="okhost.test"), 250)
    check(_rcpt(d, "joe@good.test", rcpt="x@evilns.test"), 554, "5.7.1",
          r"^\d\.\d\.\d+ <x@evilns\.test>: Recipient address rejected: Evil DNS")


def test_dns_failure_is_dunno(facteurd):
    dead = free_port()
    d = facteurd(start=False, main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dead})
    path = _file(d, "bogus_mx", BOGUS[1])
    d.params["smtpd_sender_restrictions"] = ("check_sender_mx_access cidr:"
                                             + path)
    d.write_config()
    d.start()
    check(_rcpt(d, "joe@bogus.test"), 250)
    assert d.wait_log(r"warning: Unable to look up MX host for bogus\.test")
    # an allowlist that cannot answer turns a later reject into 450
    d2 = facteurd(main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dead,
        "smtpd_client_restrictions": "permit_dnswl_client wl.test, reject"})
    check(_rcpt(d2, "joe@example.test"), 450, "4.7.1",
          r"^4\.7\.1 <127\.0\.0\.1>: Client host rejected: Service "
          r"unavailable$")
    assert d2.wait_log(r"warning: 1\.0\.0\.127\.wl\.test: DNSWL lookup "
                       r"error")


def test_sasl_access(facteurd, cert, users_text):  # noqa: F811
    from test_auth import auth_daemon
    d = auth_daemon(facteurd, cert, users_text)
    path = _file(d, "sasl_access",
                 "alice@example.test REJECT Account suspended\n")
    d.stop()
    d.params["smtpd_sender_restrictions"] = "check_sasl_access texthash:" + path
    d.write_config()
    d.start()

    def try_as(user, pw):
        c = tls_conn(d)
        try:
            check(c.cmd("EHLO client.test"), 250)
            starttls(c)
            check(c.cmd("EHLO client.test"), 250)
            check(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw))), 235)
            check(c.cmd("MAIL FROM:<x@example.test>"), 250)
            return c.cmd("RCPT TO:<bob@example.test>")
        finally:
            c.close()
    check(try_as("alice@example.test", "alice-pw"), 554, "5.7.1",
          r"^\d\.\d\.\d+ <alice@example\.test>: SASL login name rejected: "
          r"Account suspended$")
    check(try_as("dave@example.test", "dave pw"), 250)
    # not logged in: nothing to look up
    check(_rcpt(d, "x@example.test", rcpt="bob@example.test"), 250)


def test_permit_mx_backup(facteurd, dnsmasq_port):
    d = _daemon(facteurd, dnsmasq_port,
                smtpd_relay_restrictions="",
                smtpd_recipient_restrictions="permit_mx_backup, reject")
    out = "127.0.0.2"    # not in mynetworks
    check(_rcpt(d, "joe@good.test", "x@backup.test", source=out), 250)
    # our own domains pass as with permit_auth_destination
    check(_rcpt(d, "joe@good.test", "alice@example.test", source=out), 250)
    # the primary MX is not a backup
    check(_rcpt(d, "joe@good.test", "x@primary.test", source=out), 554,
          "5.7.1", r"^\d\.\d\.\d+ <x@primary\.test>: Recipient address rejected: "
          r"Access denied$")
    check(_rcpt(d, "joe@good.test", "x@stranger.test", source=out), 554)
    d2 = _daemon(facteurd, dnsmasq_port,
                 smtpd_relay_restrictions="",
                 permit_mx_backup_networks="198.51.100.0/24",
                 smtpd_recipient_restrictions="permit_mx_backup, reject")
    check(_rcpt(d2, "joe@good.test", "x@backup.test", source=out), 554)
    d3 = _daemon(facteurd, dnsmasq_port,
                 smtpd_relay_restrictions="",
                 permit_mx_backup_networks="192.0.2.0/24",
                 smtpd_recipient_restrictions="permit_mx_backup, reject")
    check(_rcpt(d3, "joe@good.test", "x@backup.test", source=out), 250)


def test_auth_destination(facteurd, dnsmasq_port):
    d = _daemon(facteurd, dnsmasq_port,
                smtpd_relay_restrictions="",
                smtpd_recipient_restrictions="permit_auth_destination, "
                                             "reject")
    check(_rcpt(d, "joe@good.test", "alice@example.test",
                source="127.0.0.2"), 250)
    check(_rcpt(d, "joe@good.test", "x@good.test", source="127.0.0.2"), 554,
          "5.7.1", r"Recipient address rejected: Access denied$")
    # sender-specified routing through a hosted domain is not ours
    check(_rcpt(d, "joe@good.test", "x%good.test@example.test",
                source="127.0.0.2"), 554, "5.7.1")


def test_multi_recipient_bounce(facteurd):
    d = facteurd(main_cf={
        "smtpd_data_restrictions": "reject_multi_recipient_bounce"})
    with d.session() as c:
        check(c.cmd("MAIL FROM:<>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 550, "5.5.3",
              r"^\d\.\d\.\d+ <DATA>: Data command rejected: Multi-recipient bounce$")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
    with d.session() as c:      # a sender: any number of recipients
        check(c.cmd("MAIL FROM:<joe@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
    d2 = facteurd(main_cf={
        "smtpd_recipient_restrictions": "reject_multi_recipient_bounce, "
                                        "permit_mynetworks, "
                                        "reject_unauth_destination"})
    with d2.session() as c:
        check(c.cmd("MAIL FROM:<>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 550, "5.5.3",
              r"^\d\.\d\.\d+ <bob@example\.test>: Recipient address rejected: "
              r"Multi-recipient bounce$")


def test_plaintext_session(facteurd, cert):  # noqa: F811
    d = facteurd(main_cf=tls_cf(
        cert, smtpd_sender_restrictions="reject_plaintext_session"))
    check(_rcpt(d, "joe@example.test"), 450, "4.7.1",
          r"^\d\.\d\.\d+ Session encryption is required$")
    c = tls_conn(d)
    try:
        check(c.cmd("EHLO client.test"), 250)
        starttls(c)
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<joe@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    finally:
        c.close()
    d2 = facteurd(main_cf=tls_cf(
        cert, plaintext_reject_code="530",
        smtpd_sender_restrictions="reject_plaintext_session"))
    check(_rcpt(d2, "joe@example.test"), 530, "5.7.1",
          r"^\d\.\d\.\d+ Session encryption is required$")


def test_dnswl_and_client_permits(facteurd, dnsmasq_port):
    d = _daemon(facteurd, dnsmasq_port,
                smtpd_relay_restrictions="permit_mynetworks, "
                                         "reject_unauth_destination",
                smtpd_client_restrictions="permit_dnswl_client wl.test, "
                                          "reject")
    check(_rcpt(d, "joe@good.test"), 250)
    check(_rcpt(d, "joe@good.test", source="127.0.0.2"), 554, "5.7.1",
          r"^\d\.\d\.\d+ <unknown\[127\.0\.0\.2\]>: Client host rejected: Access denied$")
    # never lets a listed client relay
    d2 = _daemon(facteurd, dnsmasq_port,
                 smtpd_relay_restrictions="",
                 smtpd_recipient_restrictions="permit_dnswl_client wl.test, "
                                              "reject")
    check(_rcpt(d2, "joe@good.test"), 250)
    check(_rcpt(d2, "joe@good.test", rcpt="x@good.test"), 554, "5.7.1")
    # permit_inet_interfaces: 127.0.0.1 is ours, 127.0.0.2 is not
    d3 = _daemon(facteurd, dnsmasq_port,
                 smtpd_client_restrictions="permit_inet_interfaces, reject")
    check(_rcpt(d3, "joe@good.test"), 250)
    check(_rcpt(d3, "joe@good.test", source="127.0.0.2"), 554, "5.7.1")


def test_client_server_access_and_rhswl(facteurd, dnsmasq_port):
    d = _daemon(facteurd, dnsmasq_port, tables=[BOGUS],
                smtpd_client_restrictions="check_client_mx_access "
                                          "cidr:CONF/bogus_mx")
    check(_rcpt(d, "joe@good.test", source="127.0.0.6"), 554, "5.7.1",
          r"^5\.7\.1 <c6\.test\[127\.0\.0\.6\]>: Client host rejected: "
          r"Mail server in a private network$")
    # a client without a (verified) name: nothing to look up
    check(_rcpt(d, "joe@good.test", source="127.0.0.2"), 250)
    d2 = _daemon(facteurd, dnsmasq_port, tables=[BOGUS],
                 smtpd_client_restrictions="check_reverse_client_a_access "
                                           "cidr:CONF/bogus_mx")
    check(_rcpt(d2, "joe@good.test", source="127.0.0.6"), 554, "5.7.1",
          r"<c6\.test\[127\.0\.0\.6\]>: Unverified Client host rejected")
    d3 = _daemon(facteurd, dnsmasq_port,
                 smtpd_client_restrictions="permit_rhswl_client rhswl.test, "
                                           "reject")
    check(_rcpt(d3, "joe@good.test", source="127.0.0.6"), 250)
    check(_rcpt(d3, "joe@good.test", source="127.0.0.2"), 554, "5.7.1")


def test_obsolete_rbl_names(facteurd, dnsmasq_port):
    d = _daemon(facteurd, dnsmasq_port, maps_rbl_domains="bl.test",
                smtpd_client_restrictions="reject_maps_rbl")
    check(_rcpt(d, "joe@good.test", source="127.0.0.7"), 554, "5.7.1",
          r"Service unavailable; Client host \[127\.0\.0\.7\] blocked "
          r"using bl\.test$")
    check(_rcpt(d, "joe@good.test"), 250)
    assert d.wait_log(r"warning: support for restriction \"reject_maps_rbl\" "
                      r"will be removed")
    d2 = _daemon(facteurd, dnsmasq_port,
                 smtpd_client_restrictions="reject_rbl bl.test")
    check(_rcpt(d2, "joe@good.test", source="127.0.0.7"), 554, "5.7.1",
          r"blocked using bl\.test$")


def test_check_accepts_names_and_refuses_typos(facteurd):
    d = facteurd(start=False, main_cf={
        "smtpd_sender_restrictions":
            "check_sender_mx_access cidr:CONF/empty, "
            "check_sender_ns_access cidr:CONF/empty, "
            "check_sender_a_access cidr:CONF/empty, "
            "check_sasl_access texthash:CONF/empty, "
            "reject_plaintext_session, reject_multi_recipient_bounce",
        "smtpd_client_restrictions":
            "check_client_mx_access cidr:CONF/empty, "
            "check_reverse_client_ns_access cidr:CONF/empty, "
            "permit_dnswl_client wl.test, permit_rhswl_client wl.test, "
            "permit_inet_interfaces, reject_rbl bl.test, reject_maps_rbl",
        "smtpd_recipient_restrictions":
            "permit_mx_backup, permit_auth_destination",
    })
    _file(d, "empty", "")
    for k, v in list(d.params.items()):
        d.params[k] = v.replace("CONF/", d.confdir + "/")
    d.write_config()
    r = d.cli("check")
    assert r.returncode == 0, r
    d.params["smtpd_sender_restrictions"] = "check_sender_mx_acess reject"
    d.write_config()
    r = d.cli("check")
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0, r
    assert re.search(r"smtpd_sender_restrictions: unknown restriction "
                     r"\"check_sender_mx_acess\" \(did you mean "
                     r"\"check_sender_mx_access\"\?\)", out), out
    # removed by Postfix 3.9 (they can make an open relay): refused
    d.params["smtpd_sender_restrictions"] = ""
    for name, instead in (("check_relay_domains", "reject_unauth_destination"),
                          ("permit_naked_ip_address", "permit_mynetworks")):
        d.params["smtpd_recipient_restrictions"] = name
        d.write_config()
        r = d.cli("check")
        out = (r.stdout + r.stderr).decode()
        assert r.returncode != 0, r
        assert re.search(r"smtpd_recipient_restrictions: restriction \"%s\" "
                         r"was removed \(as in Postfix 3\.9\): it can make an "
                         r"open relay; use %s" % (name, instead), out), out
    d.params["smtpd_recipient_restrictions"] = "permit_mynetworks, reject"
    # what is still missing is refused, never passed over
    d.params["smtpd_sender_restrictions"] = "reject_unauth_destination_mx"
    d.write_config()
    r = d.cli("check")
    assert r.returncode != 0 and re.search(
        r"restriction \"reject_unauth_destination_mx\" is not supported",
        (r.stdout + r.stderr).decode()), r
