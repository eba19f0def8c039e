"""
test_peername.py - the client's host name, looked up once per session
before the greeting (core/smtpd_peername.c), against a private dnsmasq on
a loopback port serving PTR and A records for 127.0.0.x clients:
a forward-confirmed name in "connect from", "client=", "disconnect from"
and the Received header; a PTR whose name does not resolve back (verified
name unknown, reverse name kept: reject_unknown_client_hostname refuses,
reject_unknown_reverse_client_hostname and
check_reverse_client_hostname_access see the PTR name); check_client_access
by host name, parent domain, then address; the policy service's
client_name / reverse_client_name; a DNS server that never answers (the
greeting comes after facteur_peername_timeout, the status is temporary:
450); smtpd_peername_lookup = no (unknown, no query, no delay); the hosts
file (localhost[127.0.0.1]); a client handed over by postscreen.
"""
import socket
import threading
import time

import pytest

from dnsserver import dns_server, host, ptr  # noqa: F401 (fixture)
from harness import SMTPConn, check, dot_stuff, free_port, make_msg

RELAY = "permit_mynetworks, reject_unauth_destination"


@pytest.fixture
def dnsmasq(dns_server):
    return dns_server(
        # 127.0.0.2 <-> mail.peer.test both ways (PTR + A)
        host("mail.peer.test", "127.0.0.2"),
        # 127.0.0.3: a PTR whose name has no address record
        ptr("127.0.0.3", "forged.peer.test"),
        # 127.0.0.4: no PTR at all (NXDOMAIN)
        # 127.0.0.5 <-> host.sub.peer.test (parent domain matches)
        host("host.sub.peer.test", "127.0.0.5"),
        # 127.0.0.6: a PTR to another address's name
        ptr("127.0.0.6", "mail.peer.test"),
        # 127.0.0.7: a numeric PTR name (never trusted)
        ptr("127.0.0.7", "127.0.0.7"),
        # ::1 <-> v6.peer.test (PTR + AAAA)
        host("v6.peer.test", "::1"),
        local=("test", "in-addr.arpa", "ip6.arpa")).port


class SilentDNS:
    """A UDP "DNS server" that reads queries and never answers."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        deadline = time.time() + 120
        while not self.stop and time.time() < deadline:
            try:
                self.sock.recv(4096)
                self.queries += 1
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop = True
        self.t.join(5)
        self.sock.close()


def _daemon(facteurd, dns_port, **params):
    cf = {"facteur_dns_servers": "127.0.0.1:%d" % dns_port,
          "smtpd_relay_restrictions": RELAY}
    cf.update(params)
    return facteurd(main_cf=cf)


def _rcpt(d, source, rcpt="alice@example.test", sender="joe@remote.test"):
    with d.session(source=source) as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        return c.cmd("RCPT TO:<%s>" % rcpt)


def _greeting_time(d, source):
    """Seconds from connect to the 220, and the connection."""
    t0 = time.time()
    c = SMTPConn(d.host, d.port, source=source, timeout=20)
    r = c.reply(timeout=20)
    check(r, 220)
    return time.time() - t0, c


def test_confirmed_name_everywhere(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq)
    msg = make_msg(subject="named", to="alice@example.test")
    with d.session(source="127.0.0.2", helo="client.test") as c:
        check(c.cmd("MAIL FROM:<joe@remote.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 250)
    d.wait_log(r"smtpd\[\d+\]: connect from mail\.peer\.test\[127\.0\.0\.2\]$")
    d.wait_log(r": client=mail\.peer\.test\[127\.0\.0\.2\]$")
    d.wait_log(r"disconnect from mail\.peer\.test\[127\.0\.0\.2\] ")
    files = d.wait_files("alice@example.test", 1)
    rcv = files[0].field("Received")
    assert rcv.startswith("from client.test (mail.peer.test [127.0.0.2])"), rcv


def test_no_helo_received_uses_name(facteurd, dnsmasq):
    # Postfix: "from NAME (NAME [ADDR])" when the client sent no HELO
    d = _daemon(facteurd, dnsmasq)
    c = SMTPConn(d.host, d.port, source="127.0.0.2")
    check(c.reply(), 220)
    check(c.cmd("MAIL FROM:<joe@remote.test>"), 250)
    check(c.cmd("RCPT TO:<bob@example.test>"), 250)
    check(c.cmd("DATA"), 354)
    c.send(dot_stuff(make_msg(subject="nohelo", to="bob@example.test")))
    check(c.reply(), 250)
    c.cmd("QUIT")
    c.close()
    rcv = d.wait_files("bob@example.test", 1)[0].field("Received")
    assert rcv.startswith("from mail.peer.test (mail.peer.test "
                          "[127.0.0.2])"), rcv


def test_ptr_without_address(facteurd, dnsmasq, tmp_path):
    access = tmp_path / "rev_access"
    access.write_text("forged.peer.test REJECT known by its PTR only\n")
    d = _daemon(facteurd, dnsmasq,
                smtpd_client_restrictions="reject_unknown_reverse_client_"
                "hostname, check_reverse_client_hostname_access texthash:%s"
                % access)
    check(_rcpt(d, "127.0.0.3"), 554, "5.7.1",
          r"<forged\.peer\.test>: Unverified Client host rejected: known by "
          r"its PTR only$")
    d.wait_log(r"warning: hostname forged\.peer\.test does not resolve to "
               r"address 127\.0\.0\.3")
    d.wait_log(r"connect from unknown\[127\.0\.0\.3\]$")
    d.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.3\]: 554 ")
    # no PTR at all: reject_unknown_reverse_client_hostname
    check(_rcpt(d, "127.0.0.4"), 450, "4.7.1",
          r"Client host rejected: cannot find your reverse hostname, "
          r"\[127\.0\.0\.4\]$")
    # confirmed clients pass both
    check(_rcpt(d, "127.0.0.2"), 250)


def test_ptr_to_another_address_and_numeric(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                smtpd_client_restrictions="reject_unknown_client_hostname",
                unknown_client_reject_code="550")
    # mail.peer.test resolves, but to 127.0.0.2 only
    check(_rcpt(d, "127.0.0.6"), 550, "5.7.25",
          r"cannot find your hostname, \[127\.0\.0\.6\]$")
    d.wait_log(r"warning: hostname mail\.peer\.test does not resolve to "
               r"address 127\.0\.0\.6$")
    # a numeric PTR name is never used
    check(_rcpt(d, "127.0.0.7"), 550, "5.7.25",
          r"cannot find your hostname, \[127\.0\.0\.7\]$")
    d.wait_log(r"warning: 127\.0\.0\.7: numeric hostname: 127\.0\.0\.7$")
    d.wait_log(r"connect from unknown\[127\.0\.0\.7\]$")


def test_unknown_client_hostname(facteurd, dnsmasq):
    d = _daemon(facteurd, dnsmasq,
                smtpd_client_restrictions="reject_unknown_client_hostname")
    check(_rcpt(d, "127.0.0.2"), 250)
    # forged (PTR name without the address): unknown_client_reject_code
    check(_rcpt(d, "127.0.0.3"), 450, "4.7.25",
          r"Client host rejected: cannot find your hostname, "
          r"\[127\.0\.0\.3\]$")
    check(_rcpt(d, "127.0.0.4"), 450, "4.7.25",
          r"cannot find your hostname, \[127\.0\.0\.4\]$")
    d2 = _daemon(facteurd, dnsmasq, unknown_client_reject_code="550",
                 smtpd_client_restrictions="reject_unknown_client_hostname")
    check(_rcpt(d2, "127.0.0.3"), 550, "5.7.25")
    check(_rcpt(d2, "127.0.0.4"), 550, "5.7.25")
    check(_rcpt(d2, "127.0.0.2"), 250)


def test_check_client_access_name_parent_address(facteurd, dnsmasq, tmp_path):
    access = tmp_path / "client_access"
    access.write_text("mail.peer.test REJECT host name matched\n"
                      "sub.peer.test REJECT parent domain matched\n"
                      "forged.peer.test REJECT unverified name matched\n"
                      "127.0.0.4 REJECT address matched\n")
    d = _daemon(facteurd, dnsmasq,
                smtpd_client_restrictions="check_client_access texthash:%s"
                % access)
    check(_rcpt(d, "127.0.0.2"), 554, "5.7.1",
          r"<mail\.peer\.test\[127\.0\.0\.2\]>: Client host rejected: "
          r"host name matched$")
    check(_rcpt(d, "127.0.0.5"), 554, "5.7.1",
          r"<host\.sub\.peer\.test\[127\.0\.0\.5\]>: Client host rejected: "
          r"parent domain matched$")
    check(_rcpt(d, "127.0.0.4"), 554, "5.7.1",
          r"<unknown\[127\.0\.0\.4\]>: Client host rejected: address "
          r"matched$")
    # only a verified name is looked up
    check(_rcpt(d, "127.0.0.3"), 250)


def test_policy_service_names(facteurd, dnsmasq):
    from policyserver import PolicyServer
    srv = PolicyServer("DUNNO")
    try:
        d = _daemon(facteurd, dnsmasq, smtpd_recipient_restrictions=
                    "check_policy_service inet:127.0.0.1:%d" % srv.port)
        check(_rcpt(d, "127.0.0.3"), 250)
        req = srv.requests[-1]
        assert req["client_address"] == "127.0.0.3"
        assert req["client_name"] == "unknown"
        assert req["reverse_client_name"] == "forged.peer.test"
        check(_rcpt(d, "127.0.0.2"), 250)
        req = srv.requests[-1]
        assert req["client_name"] == "mail.peer.test"
        assert req["reverse_client_name"] == "mail.peer.test"
        check(_rcpt(d, "127.0.0.4"), 250)
        req = srv.requests[-1]
        assert req["client_name"] == "unknown"
        assert req["reverse_client_name"] == "unknown"
    finally:
        srv.close()


def test_dns_not_answering(facteurd):
    dns = SilentDNS()
    try:
        d = facteurd(main_cf={
            "facteur_dns_servers": "127.0.0.1:%d" % dns.port,
            "facteur_peername_timeout": "2s",
            "unknown_client_reject_code": "550",
            "smtpd_client_restrictions": "reject_unknown_client_hostname",
            "smtpd_relay_restrictions": RELAY})
        took, c = _greeting_time(d, "127.0.0.2")
        assert 1.5 <= took < 4.5, took
        assert dns.queries >= 1
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<joe@remote.test>"), 250)
        # a temporary failure is never a 5xx, whatever the code says
        check(c.cmd("RCPT TO:<alice@example.test>"), 450, "4.7.25",
              r"cannot find your hostname, \[127\.0\.0\.2\]$")
        c.cmd("QUIT")
        c.close()
        d.wait_log(r"connect from unknown\[127\.0\.0\.2\]$")
        d.wait_log(r"warning: 127\.0\.0\.2: no reverse name within "
                   r"facteur_peername_timeout")
        # the hosts file still answers at once
        took, c = _greeting_time(d, "127.0.0.1")
        assert took < 1.0, took
        c.close()
    finally:
        dns.close()


def test_peername_lookup_no(facteurd, dnsmasq):
    dns = SilentDNS()
    try:
        d = facteurd(main_cf={
            "facteur_dns_servers": "127.0.0.1:%d" % dns.port,
            "smtpd_peername_lookup": "no",
            "smtpd_client_restrictions": "reject_unknown_client_hostname",
            "unknown_client_reject_code": "550",
            "smtpd_relay_restrictions": RELAY})
        took, c = _greeting_time(d, "127.0.0.2")
        assert took < 1.0, took
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<joe@remote.test>"), 250)
        # no lookup: a permanent "unknown", as Postfix
        check(c.cmd("RCPT TO:<alice@example.test>"), 550, "5.7.25")
        c.close()
        took, c = _greeting_time(d, "127.0.0.1")
        assert took < 1.0, took
        c.close()
        d.wait_log(r"connect from unknown\[127\.0\.0\.1\]$")
        d.wait_log(r"connect from unknown\[127\.0\.0\.2\]$")
        assert dns.queries == 0
    finally:
        dns.close()


def test_hosts_file_localhost(facteurd):
    # the harness's DNS refuses: only /etc/hosts answers
    d = facteurd(main_cf={
        "smtpd_client_restrictions": "reject_unknown_client_hostname",
        "unknown_client_reject_code": "550",
        "smtpd_relay_restrictions": RELAY})
    check(_rcpt(d, "127.0.0.1"), 250)
    d.wait_log(r"connect from localhost\[127\.0\.0\.1\]$")
    # not in the hosts file, DNS refused: unknown, without delay, and a
    # temporary failure (450 whatever unknown_client_reject_code says)
    took, c = _greeting_time(d, "127.0.0.2")
    assert took < 1.0, took
    check(c.cmd("EHLO client.test"), 250)
    check(c.cmd("MAIL FROM:<joe@remote.test>"), 250)
    check(c.cmd("RCPT TO:<alice@example.test>"), 450, "4.7.25")
    c.close()
    d.wait_log(r"connect from unknown\[127\.0\.0\.2\]$")


def test_postscreen_hands_over_named_client(facteurd, dnsmasq):
    port = free_port()
    d = facteurd(main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dnsmasq,
        "smtpd_relay_restrictions": RELAY,
        "postscreen_greet_wait": "1s"},
        extra_master_cf="127.0.0.1:%d inet n - n - 1 postscreen\n" % port)
    c = SMTPConn("127.0.0.1", port, source="127.0.0.2", timeout=10)
    r = c.reply(timeout=10)
    check(r, 220)
    check(c.cmd("EHLO client.test"), 250)
    c.cmd("QUIT")
    c.close()
    d.wait_log(r"postscreen\[\d+\]: CONNECT from \[127\.0\.0\.2\]")
    d.wait_log(r"smtpd\[\d+\]: connect from mail\.peer\.test\[127\.0\.0\.2\]$")


def _hosts_name(addr):
    """The first name /etc/hosts gives addr, or None."""
    try:
        with open("/etc/hosts") as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if len(fields) >= 2 and fields[0] == addr:
                    return fields[1]
    except OSError:
        pass
    return None


def test_ipv6_client(facteurd, dnsmasq):
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    port = free_port()
    d = facteurd(main_cf={
        "facteur_dns_servers": "127.0.0.1:%d" % dnsmasq,
        "smtpd_relay_restrictions": RELAY,
        "smtpd_client_restrictions": "reject_unknown_client_hostname"},
        extra_master_cf="[::1]:%d inet n - n - - smtpd\n" % port)
    sock = socket.create_connection(("::1", port), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220 ")
    sock.sendall(b"EHLO client.test\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    sock.sendall(b"MAIL FROM:<joe@remote.test>\r\n")
    assert f.readline().startswith(b"250 ")
    sock.sendall(b"RCPT TO:<alice@example.test>\r\n")
    rcpt = f.readline()
    sock.close()
    # the hosts file answers first when it names ::1
    name = _hosts_name("::1") or "v6.peer.test"
    assert rcpt.startswith(b"250 "), rcpt
    d.wait_log(r"smtpd\[\d+\]: connect from %s\[::1\]$"
               % name.replace(".", r"\."))
    # a message from it: the Received header tags the address literal
    with socket.create_connection(("::1", port), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"220 ")
        sock.sendall(b"HELO client.test\r\n")
        assert f.readline().startswith(b"250 ")
        for cmd in (b"MAIL FROM:<joe@remote.test>", b"RCPT TO:<bob@example.test>",
                    b"DATA"):
            sock.sendall(cmd + b"\r\n")
            assert f.readline()[:1] in (b"2", b"3")
        sock.sendall(b"Subject: v6\r\n\r\nhello\r\n.\r\n")
        assert f.readline().startswith(b"250 ")
        sock.sendall(b"QUIT\r\n")
    rcv = d.wait_files("bob@example.test", 1)[0].field("Received")
    assert "(%s [IPv6:::1])" % name in rcv, rcv


def test_client_gone_or_stop_during_lookup(facteurd):
    # a client that leaves while its name is looked up, and a stop with a
    # lookup in flight: no greeting lost in the void, a clean exit
    dns = SilentDNS()
    try:
        d = facteurd(main_cf={
            "facteur_dns_servers": "127.0.0.1:%d" % dns.port,
            "facteur_peername_timeout": "2s"})
        c = SMTPConn(d.host, d.port, source="127.0.0.2")
        c.close()
        d.wait_log(r"connect from unknown\[127\.0\.0\.2\]$", timeout=10)
        d.wait_log(r"disconnect from unknown\[127\.0\.0\.2\]", timeout=10)
        c = SMTPConn(d.host, d.port, source="127.0.0.3")
        time.sleep(0.3)
        t0 = time.time()
        d.expect_exit = True
        status, forced = d.stop()
        c.close()
        assert not forced and status == 0, (status, d.diagnostics())
        assert time.time() - t0 < 5, time.time() - t0
        assert d.sanitizer_report() is None, d.sanitizer_report()
    finally:
        dns.close()


def test_checked_at_connect_without_delay_reject(facteurd, dnsmasq):
    # smtpd_delay_reject = no: the client list runs at connect, after the
    # lookup, so the greeting itself is the refusal
    d = _daemon(facteurd, dnsmasq, smtpd_delay_reject="no",
                unknown_client_reject_code="550",
                smtpd_client_restrictions="reject_unknown_client_hostname")
    c = SMTPConn(d.host, d.port, source="127.0.0.3")
    check(c.reply(), 550, "5.7.25",
          r"Client host rejected: cannot find your hostname, "
          r"\[127\.0\.0\.3\]$")
    c.close()
    d.wait_log(r"NOQUEUE: reject: CONNECT from unknown\[127\.0\.0\.3\]: 550 "
               r"5\.7\.25 Client host rejected")
    c = SMTPConn(d.host, d.port, source="127.0.0.2")
    check(c.reply(), 220)
    check(c.cmd("EHLO client.test"), 250)
    c.close()


def test_reload_changes_dns_servers(facteurd, dnsmasq):
    # a reload that points facteur_dns_servers elsewhere: sessions after
    # it ask the new servers; a lookup in flight across it still ends
    dns = SilentDNS()
    try:
        d = facteurd(main_cf={
            "facteur_dns_servers": "127.0.0.1:%d" % dns.port,
            "facteur_peername_timeout": "2s"})
        pending = SMTPConn(d.host, d.port, source="127.0.0.5", timeout=10)
        time.sleep(0.2)
        d.params["facteur_dns_servers"] = "127.0.0.1:%d" % dnsmasq
        d.write_config()
        r = d.cli("reload")
        assert r.returncode == 0, r.stdout + r.stderr
        d.wait_log(r"facteur/master\[\d+\]: reload -- configuration ")
        with d.session(source="127.0.0.2") as c:
            check(c.cmd("NOOP"), 250)
        d.wait_log(r"connect from mail\.peer\.test\[127\.0\.0\.2\]$")
        check(pending.reply(timeout=10), 220)
        pending.close()
        d.wait_log(r"connect from unknown\[127\.0\.0\.5\]$")
    finally:
        dns.close()
