"""
test_proxy.py - smtpd_upstream_proxy_protocol = haproxy on one listener
(master.cf -o), postscreen_upstream_proxy_protocol on a postscreen line:
a small PROXY-speaking client sends v1 and v2 headers before the greeting; the real client address then drives mynetworks
(relay), access maps and the logs. Malformed or missing headers are
logged as "warning: haproxy read: ..." and the connection is closed.
"""
import os
import re
import socket
import struct
import time

import pytest

from dnsserver import dns_server, dnsbl  # noqa: F401 (fixture)
from harness import SMTPConn, check, free_port
from test_postscreen import is_smtpd, teaser_then_full
from test_tls import cert  # noqa: F401 (fixture)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst="127.0.0.1", sport=40000, dport=25, proto="TCP4"):
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2_inet(src, dst="127.0.0.1", sport=40000, dport=25, tlv=b""):
    if ":" in src:
        fam = 0x21
        addrs = (socket.inet_pton(socket.AF_INET6, src) +
                 socket.inet_pton(socket.AF_INET6, dst))
    else:
        fam = 0x11
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport) + tlv
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def v2_local():
    return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", 0)


@pytest.fixture
def lb(facteurd, tmp_path):
    """A daemon with a plain listener (for the harness) and a PROXY one."""
    access = tmp_path / "client_access"
    access.write_text("192.0.2.66 REJECT blocked by the access map\n")
    d = facteurd(start=False, main_cf={
        "mynetworks": "192.0.2.0/24",
        "smtpd_client_restrictions":
            "check_client_access texthash:%s" % access,
        "smtpd_upstream_proxy_timeout": "1s",
    })
    d.proxy_port = free_port()
    d.master_cf += ("127.0.0.1:%d inet n - n - - smtpd "
                    "-o smtpd_upstream_proxy_protocol=haproxy\n" % d.proxy_port)
    d.write_config()
    d.start()
    return d


def proxied(d, header, split=False):
    c = SMTPConn(d.host, d.proxy_port)
    if split:
        c.send(header[:7])
        time.sleep(0.2)
        c.send(header[7:])
    else:
        c.send(header)
    check(c.reply(), 220)
    return c


def relay_reply(c):
    check(c.cmd("EHLO lb-client.test"), 250)
    check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
    return c.cmd("RCPT TO:<user@far-away.example>")


def test_v1_address_in_mynetworks_may_relay(lb):
    with proxied(lb, v1("192.0.2.10")) as c:
        check(relay_reply(c), 250)
        check(c.cmd("QUIT"), 221)
    lb.wait_log(r"facteur/smtpd\[\d+\]: connect from unknown\[192\.0\.2\.10\]")
    lb.wait_log(r"disconnect from unknown\[192\.0\.2\.10\]")


def test_v1_outside_mynetworks_is_refused_relay(lb):
    with proxied(lb, v1("203.0.113.5")) as c:
        r = relay_reply(c)
        assert r.code in (454, 554), r
        assert "Relay access denied" in r.text
    lb.wait_log(r"Relay access denied.*|reject: RCPT from unknown\[203\.0\.113\.5\]")
    assert "unknown[203.0.113.5]" in lb.log()


def test_without_proxy_loopback_is_not_in_mynetworks(lb):
    # Sanity: the load balancer's own address (127.0.0.1) is not trusted.
    with lb.session() as c:
        check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
        r = c.cmd("RCPT TO:<user@far-away.example>")
        assert r.code in (454, 554), r


def test_v2_ipv4_and_tlvs(lb):
    tlv = bytes([0x04, 0x00, 0x03]) + b"abc"      # PP2_TYPE_NOOP
    with proxied(lb, v2_inet("192.0.2.20", tlv=tlv)) as c:
        check(relay_reply(c), 250)
    lb.wait_log(r"connect from unknown\[192\.0\.2\.20\]")


def test_v2_ipv6(lb):
    with proxied(lb, v2_inet("2001:db8::7", dst="2001:db8::1")) as c:
        r = relay_reply(c)
        assert r.code in (454, 554), r
    lb.wait_log(r"connect from unknown\[2001:db8::7\]")


def test_v2_local_uses_connection_address(lb):
    with proxied(lb, v2_local()) as c:
        r = relay_reply(c)
        assert r.code in (454, 554), r
    log = lb.log()
    assert re.search(r"connect from localhost\[127\.0\.0\.1\]", log)


def test_access_map_sees_real_address(lb):
    with proxied(lb, v1("192.0.2.66")) as c:
        check(c.cmd("EHLO x.test"), 250)
        r = c.cmd("MAIL FROM:<someone@example.net>")
        if r.code == 250:
            r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 554 and "blocked by the access map" in r.text, r
    lb.wait_log(r"reject: \w+ from unknown\[192\.0\.2\.66\]")


def test_header_in_pieces_and_pipelined_command(lb):
    # Split across two writes: waited for, not an error.
    with proxied(lb, v1("192.0.2.11"), split=True) as c:
        check(c.cmd("EHLO a.test"), 250)
    # Header and the first command in one write: the command is kept.
    c = SMTPConn(lb.host, lb.proxy_port)
    c.send(v2_inet("192.0.2.12") + b"EHLO b.test\r\n")
    check(c.reply(), 220)
    check(c.reply(), 250)
    c.close()
    lb.wait_log(r"connect from unknown\[192\.0\.2\.12\]")


@pytest.mark.parametrize("junk,why", [
    (b"EHLO client.test\r\n", "not a PROXY protocol header"),
    (b"PROXY TCP4 192.0.2.1 127.0.0.1 99999 25\r\n", "bad source port"),
    (b"PROXY TCP4 300.0.2.1 127.0.0.1 1 25\r\n", "bad source address"),
    (b"PROXY TCP4 192.0.2.1\r\n", "missing fields"),
    (V2_SIG + bytes([0x21, 0x11, 0x00, 0x04]) + b"\x01\x02\x03\x04",
     "short IPv4 address block"),
    (V2_SIG + bytes([0x21, 0x12, 0x00, 0x0c]) + b"\x00" * 12,
     "unsupported address family"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc", "not a PROXY protocol header"),
])
def test_malformed_header_is_logged_and_closed(lb, junk, why):
    c = SMTPConn(lb.host, lb.proxy_port)
    c.send(junk)
    assert c.expect_closed(5), "connection not closed after %r" % junk
    assert b"220" not in c.buf, "greeting sent despite a bad header"
    c.close()
    lb.wait_log(r"facteur/smtpd\[\d+\]: warning: haproxy read: "
                r"(v\d header: )?%s.* from \[127\.0\.0\.1\]$" % re.escape(why))


def test_missing_header_times_out(lb):
    c = SMTPConn(lb.host, lb.proxy_port)
    t0 = time.time()
    assert c.expect_closed(5)
    assert time.time() - t0 >= 0.8
    assert not c.buf
    c.close()
    lb.wait_log(r"warning: haproxy read: time limit exceeded from \[127\.0\.0\.1\]")


def test_bad_protocol_value_is_a_config_error(facteurd):
    d = facteurd(start=False, main_cf={"smtpd_upstream_proxy_protocol": "nginx"})
    r = d.cli("check")
    assert r.returncode == 1
    assert b"smtpd_upstream_proxy_protocol = nginx: unsupported" in r.stderr
    d.spawn()
    rc = d.proc.wait(10)
    d.expect_exit = True
    assert rc != 0
    err = open(d.stderr_path).read() + d.log()
    assert "smtpd_upstream_proxy_protocol = nginx" in err, err


def test_smtpd_proxy_on_a_postscreen_line_is_refused(facteurd):
    # The sessions behind postscreen get the socket after postscreen has
    # read the header: the postscreen_ parameter is the one to set.
    port = free_port()
    d = facteurd(start=False)
    d.master_cf += ("127.0.0.1:%d inet n - n - 1 postscreen "
                    "-o smtpd_upstream_proxy_protocol=haproxy\n" % port)
    d.write_config()
    r = d.cli("check")
    assert r.returncode == 1
    assert b"on a postscreen listener" in r.stderr, r.stderr
    assert b"postscreen_upstream_proxy_protocol" in r.stderr


def test_proxy_before_implicit_tls(facteurd, cert):    # noqa: F811
    # smtps behind a load balancer: the PROXY header comes first, in
    # clear, then the TLS handshake; nothing of the ClientHello is eaten.
    import ssl
    port = free_port()
    d = facteurd(start=False, main_cf={"mynetworks": "192.0.2.0/24",
                                       "smtpd_tls_cert_file": cert["cert"],
                                       "smtpd_tls_key_file": cert["key"]})
    d.master_cf += ("127.0.0.1:%d inet n - n - - smtpd "
                    "-o smtpd_tls_wrappermode=yes "
                    "-o smtpd_upstream_proxy_protocol=haproxy\n" % port)
    d.write_config()
    d.start()
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.sendall(v2_inet("192.0.2.44", dport=465))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(raw)
    f = s.makefile("rwb")
    assert f.readline().startswith(b"220 ")
    f.write(b"EHLO tls.test\r\n")
    f.flush()
    while True:
        line = f.readline()
        assert line.startswith(b"250"), line
        if line[3:4] == b" ":
            break
    f.write(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<x@far-away.example>\r\n")
    f.flush()
    assert f.readline().startswith(b"250")
    assert f.readline().startswith(b"250"), "relay for a mynetworks client"
    f.write(b"QUIT\r\n")
    f.flush()
    s.close()
    d.wait_log(r"connect from unknown\[192\.0\.2\.44\]")


def test_proxy_in_front_of_postscreen(facteurd):
    # postscreen_upstream_proxy_protocol on a postscreen line: the header
    # is read before screening; postscreen and the SMTP session behind it
    # both see the real client.
    port = free_port()
    d = facteurd(start=False, main_cf={"postscreen_greet_wait": "1s",
                                       "mynetworks": "192.0.2.0/24"})
    d.master_cf += ("127.0.0.1:%d inet n - n - 1 postscreen "
                    "-o postscreen_upstream_proxy_protocol=haproxy "
                    "-o postscreen_upstream_proxy_timeout=2s\n" % port)
    d.write_config()
    d.start()
    c = SMTPConn(d.host, port)
    c.send(v1("192.0.2.77", sport=4444, dport=25))
    first = c.read_line(5)
    assert first is not None and first.startswith(b"220"), first
    if first.startswith(b"220-"):
        last = c.read_line(5)
        assert last is not None and last.startswith(b"220 "), last
    r = c.cmd("EHLO lb.test")
    check(r, 250)
    check(c.cmd("MAIL FROM:<a@example.net>"), 250)
    check(c.cmd("RCPT TO:<x@far-away.example>"), 250)   # mynetworks
    c.close()
    d.wait_log(r"facteur/postscreen\[\d+\]: CONNECT from \[192\.0\.2\.77\]:4444")
    d.wait_log(r"facteur/smtpd\[\d+\]: connect from unknown\[192\.0\.2\.77\]")
    # A bad header on that line is postscreen's to log.
    c = SMTPConn(d.host, port)
    c.send(b"HELO x\r\n")
    assert c.expect_closed(5)
    c.close()
    d.wait_log(r"facteur/postscreen\[\d+\]: warning: haproxy read: not a "
               r"PROXY protocol header from \[127\.0\.0\.1\]")


def test_header_pending_across_a_reload(lb):
    # A client accepted before a reload sends its header after it: it is
    # served by the listener that accepted it (old settings), which is
    # freed afterwards.
    c = SMTPConn(lb.host, lb.proxy_port)
    time.sleep(0.1)
    lb.params["smtpd_banner"] = "$myhostname ESMTP after reload"
    lb.write_config()
    r = lb.cli("reload")
    assert r.returncode == 0, r.stderr
    c.send(v1("192.0.2.30"))
    r = c.reply()
    check(r, 220)
    assert "after reload" not in r.text
    check(c.cmd("QUIT"), 221)
    c.close()
    c2 = SMTPConn(lb.host, lb.proxy_port)
    c2.send(v1("192.0.2.32"))
    check(c2.reply(), 220, text="after reload")
    c2.close()
    deadline = time.time() + 5
    while time.time() < deadline:
        st = lb.cli("status").stdout.decode()
        if "listeners_finishing_after_reload" not in st:
            break
        time.sleep(0.1)
    assert "listeners_finishing_after_reload" not in st, st


def test_slow_header_does_not_stretch_the_time_limit(lb):
    # smtpd_upstream_proxy_timeout (1s here) bounds the whole header, not
    # each read: a byte every 0.4s is cut off.
    c = SMTPConn(lb.host, lb.proxy_port)
    header = v1("192.0.2.99")
    t0 = time.time()
    closed = False
    for i in range(len(header) - 2):
        try:
            c.send(header[i:i + 1])
        except OSError:
            closed = True
            break
        if c.expect_closed(0.4):
            closed = True
            break
    assert closed, "a trickled header kept the connection open"
    assert time.time() - t0 < 3.5
    c.close()
    lb.wait_log(r"warning: haproxy read: time limit exceeded from "
                r"\[127\.0\.0\.1\]")
    assert "192.0.2.99" not in lb.log()


def test_pending_headers_count_against_the_session_limit(facteurd):
    port = free_port()
    d = facteurd(start=False)
    d.master_cf += ("127.0.0.1:%d inet n - n - 2 smtpd "
                    "-o smtpd_upstream_proxy_protocol=haproxy\n" % port)
    d.write_config()
    d.start()
    a = SMTPConn(d.host, port)        # sends nothing yet
    b = SMTPConn(d.host, port)
    time.sleep(0.2)
    c = SMTPConn(d.host, port)        # over maxproc 2: closed at once
    assert c.expect_closed(3)
    c.close()
    d.wait_log(r"too many sessions \(0\) and PROXY headers pending \(2\)")
    a.send(v1("192.0.2.1"))
    check(a.reply(), 220)
    a.close()
    b.close()


# ---- postscreen behind a load balancer ----

@pytest.fixture
def ps_lb(facteurd, tmp_path, dns_server):
    """A postscreen line with postscreen_upstream_proxy_protocol: the load
    balancer (127.0.0.1) is in mynetworks, so any screening seen proves
    the header's address is the one screened. drop actions everywhere;
    a cidr access list and a DNSBL (private dnsmasq) on the real client
    addresses of 198.51.100.0/24."""
    dns = dns_server(dnsbl("zen.test", "198.51.100.20"))
    access = tmp_path / "ps_access.cidr"
    access.write_text("198.51.100.66/32 reject\n")
    d = facteurd(start=False, main_cf={
        "mynetworks": "127.0.0.0/8",
        "postscreen_greet_wait": "1s",
        "postscreen_greet_action": "drop",
        "postscreen_denylist_action": "drop",
        "postscreen_access_list": "permit_mynetworks, cidr:%s" % access,
        "facteur_dns_servers": "127.0.0.1:%d" % dns.port,
        "postscreen_dnsbl_sites": "zen.test*3",
        "postscreen_dnsbl_threshold": "3",
        "postscreen_dnsbl_action": "drop",
    })
    d.ps_port = free_port()
    d.master_cf += ("127.0.0.1:%d inet n - n - 1 postscreen "
                    "-o postscreen_upstream_proxy_protocol=haproxy\n"
                    % d.ps_port)
    d.write_config()
    d.start()
    return d


@pytest.mark.parametrize("version", [1, 2])
def test_pregreet_talker_behind_proxy_is_detected(ps_lb, version):
    # The header and a HELO in one segment: the header is the load
    # balancer's and is not pre-greet talk; the HELO is.
    src = "198.51.100.7" if version == 1 else "198.51.100.17"
    hdr = (v1(src, sport=4444) if version == 1
           else v2_inet(src, sport=4444))
    c = SMTPConn(ps_lb.host, ps_lb.ps_port)
    c.send(hdr + b"HELO x\r\n")
    lines = [c.read_line(5), c.read_line(5)]
    c.close()
    assert lines[0] is not None and lines[0].startswith(b"220-"), lines
    assert lines[1] == b"521 5.5.1 Protocol error", lines
    ps_lb.wait_log(r"facteur/postscreen\[\d+\]: PREGREET 8 after \S+ from "
                   r"\[%s\]:4444: HELO x\\r\\n$" % re.escape(src))
    log = ps_lb.log()
    assert re.search(r"CONNECT from \[%s\]:4444 to " % re.escape(src), log)
    assert "PROXY" not in log and "QUIT" not in log, log
    assert "CONNECT from [127.0.0.1]" not in log, log


def test_postscreen_behind_proxy_caches_the_real_client(ps_lb):
    # A silent client passes (PASS NEW under its own address), comes back
    # as PASS OLD; another client behind the same balancer is screened.
    with SMTPConn(ps_lb.host, ps_lb.ps_port) as c:
        c.send(v1("198.51.100.8", sport=4444))
        teaser_then_full(c)
        assert is_smtpd(c)
    ps_lb.wait_log(r"postscreen\[\d+\]: PASS NEW \[198\.51\.100\.8\]:4444")
    ps_lb.wait_log(r"smtpd\[\d+\]: connect from unknown\[198\.51\.100\.8\]")
    with SMTPConn(ps_lb.host, ps_lb.ps_port) as c:
        c.send(v2_inet("198.51.100.8", sport=4445))
        first = c.read_line(5)
        assert first is not None and first.startswith(b"220 "), first
        assert is_smtpd(c)
    ps_lb.wait_log(r"PASS OLD \[198\.51\.100\.8\]:4445")
    with SMTPConn(ps_lb.host, ps_lb.ps_port) as c:
        c.send(v1("198.51.100.9", sport=4446))
        teaser_then_full(c)
    ps_lb.wait_log(r"PASS NEW \[198\.51\.100\.9\]:4446")
    assert "ALLOWLISTED" not in ps_lb.log()


def test_postscreen_behind_proxy_access_list_and_dnsbl(ps_lb):
    # The cidr access list and the DNSBL query use the header's address.
    with SMTPConn(ps_lb.host, ps_lb.ps_port) as c:
        c.send(v1("198.51.100.66", sport=4447))
        assert c.read_line(5) == b"521 5.3.2 Service currently unavailable"
    ps_lb.wait_log(r"DENYLISTED \[198\.51\.100\.66\]:4447")
    with SMTPConn(ps_lb.host, ps_lb.ps_port) as c:
        c.send(v1("198.51.100.20", sport=4448))
        first = c.read_line(5)
        assert first is not None and first.startswith(b"220-"), first
        assert c.read_line(5) == (b"521 5.7.1 Service unavailable; client "
                                  b"[198.51.100.20] blocked using zen.test")
    ps_lb.wait_log(r"DNSBL rank 3 for \[198\.51\.100\.20\]:4448")
    # a v2 LOCAL header (the balancer's health check) keeps the
    # connection's own address: 127.0.0.1, in mynetworks
    with SMTPConn(ps_lb.host, ps_lb.ps_port) as c:
        c.send(v2_local())
        check(c.reply(5), 220)
    ps_lb.wait_log(r"ALLOWLISTED \[127\.0\.0\.1\]:\d+")


def test_allowlist_interfaces_behind_proxy(facteurd):
    # The server address that counts is the one the header names (the
    # balancer's public addresses), and CONNECT logs it, as Postfix does.
    port = free_port()
    d = facteurd(start=False, main_cf={
        "postscreen_greet_wait": "1s",
        "postscreen_allowlist_interfaces": "!203.0.113.9, static:all"})
    d.master_cf += ("127.0.0.1:%d inet n - n - 1 postscreen "
                    "-o postscreen_upstream_proxy_protocol=haproxy\n" % port)
    d.write_config()
    d.start()
    with SMTPConn(d.host, port) as c:
        c.send(v1("198.51.100.31", dst="203.0.113.9", sport=4449, dport=25))
        teaser_then_full(c)
        assert not is_smtpd(c)
    d.wait_log(r"CONNECT from \[198\.51\.100\.31\]:4449 to "
               r"\[203\.0\.113\.9\]:25$")
    d.wait_log(r"ALLOWLIST VETO \[198\.51\.100\.31\]:4449")
    with SMTPConn(d.host, port) as c:
        c.send(v2_inet("198.51.100.31", dst="203.0.113.8", sport=4450))
        teaser_then_full(c)
        assert is_smtpd(c)
    d.wait_log(r"CONNECT from \[198\.51\.100\.31\]:4450 to "
               r"\[203\.0\.113\.8\]:25$")
    d.wait_log(r"PASS NEW \[198\.51\.100\.31\]:4450")
    assert len(re.findall("ALLOWLIST VETO", d.log())) == 1
