"""
test_anvil.py - Postfix's anvil limits inside facteurd: connection count
and rate, message, recipient, AUTH and new TLS session rates per client
address, with Postfix's replies and warnings; another client address and
the smtpd_client_event_limit_exceptions ($mynetworks) are not affected.
Also the error limits: smtpd_hard_error_limit (421 and Postfix's log
line), smtpd_soft_error_limit with smtpd_error_sleep_time, and the error
count forgiven after a delivered message.

127.0.0.1 is mynetworks (and the harness's start-up probe comes from it);
the limited clients are 127.0.0.3 and, unaffected, 127.0.0.2.
"""
import base64
import time

import pytest

from harness import check, dot_stuff, free_port, make_msg
from test_tls import cert, starttls, tls_cf, tls_conn  # noqa: F401

LIMITED = "127.0.0.3"
OTHER = "127.0.0.2"


def expect_421_connections(d, source):
    c = d.connect(source=source, banner=False)
    try:
        check(c.reply(), 421, "4.7.0",
              r" mx\.example\.test Error: too many connections from %s$"
              % source.replace(".", r"\."))
        assert c.expect_closed(), c.dump()
    finally:
        c.close()


def test_connection_count_limit(facteurd):
    d = facteurd(main_cf={"smtpd_client_connection_count_limit": "2"})
    open_ = [d.connect(source=LIMITED) for _ in range(2)]
    try:
        expect_421_connections(d, LIMITED)
        d.wait_log(r"warning: Connection concurrency limit exceeded: 3 from "
                   r"unknown\[127\.0\.0\.3\] for service 127\.0\.0\.1:%d$"
                   % d.port)
        # another client, and the exempt mynetworks, are not limited
        others = [d.connect(source=OTHER) for _ in range(2)]
        mine = [d.connect(source="127.0.0.1") for _ in range(3)]
        for c in others + mine:
            check(c.cmd("NOOP"), 250)
            c.close()
        # one of the two leaves: a new session from it is welcome again
        check(open_[0].cmd("QUIT"), 221)
        open_[0].close()
        deadline = time.time() + 5
        while True:
            c = d.connect(source=LIMITED, banner=False)
            r = c.reply()
            c.close()
            if r.code == 220 or time.time() > deadline:
                break
            time.sleep(0.1)
        check(r, 220)
    finally:
        for c in open_:
            c.close()


def test_connection_rate_limit(facteurd):
    d = facteurd(main_cf={"smtpd_client_connection_rate_limit": "2"})
    for _ in range(2):
        with d.connect(source=LIMITED) as c:
            check(c.cmd("QUIT"), 221)
    expect_421_connections(d, LIMITED)
    d.wait_log(r"warning: Connection rate limit exceeded: 3 from "
               r"unknown\[127\.0\.0\.3\] for service 127\.0\.0\.1:%d$" % d.port)
    # another client has its own count, mynetworks has none
    for _ in range(2):
        with d.connect(source=OTHER) as c:
            check(c.cmd("QUIT"), 221)
    for _ in range(4):
        with d.connect(source="127.0.0.1") as c:
            check(c.cmd("QUIT"), 221)


def test_connection_rate_window_ends(facteurd):
    d = facteurd(main_cf={"smtpd_client_connection_rate_limit": "1",
                          "anvil_rate_time_unit": "1s"})
    with d.connect(source=LIMITED) as c:
        check(c.cmd("QUIT"), 221)
    expect_421_connections(d, LIMITED)
    time.sleep(2.2)
    with d.connect(source=LIMITED) as c:
        check(c.cmd("QUIT"), 221)


def test_message_rate_limit(facteurd):
    d = facteurd(main_cf={"smtpd_client_message_rate_limit": "2"})
    with d.session(source=LIMITED) as c:
        for _ in range(2):
            check(c.cmd("MAIL FROM:<a@example.net>"), 250)
            check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<a@example.net>"), 450, "4.7.1",
              r" Error: too much mail from 127\.0\.0\.3$")
        # no transaction was opened
        check(c.cmd("RCPT TO:<alice@example.test>"), 503)
    d.wait_log(r"warning: Message delivery request rate limit exceeded: 3 "
               r"from unknown\[127\.0\.0\.3\] for service 127\.0\.0\.1:%d$"
               % d.port)
    # counted per client across sessions
    with d.session(source=LIMITED) as c:
        check(c.cmd("MAIL FROM:<a@example.net>"), 450, "4.7.1")
    with d.session(source="127.0.0.1") as c:
        for _ in range(4):
            check(c.cmd("MAIL FROM:<a@example.net>"), 250)
            check(c.cmd("RSET"), 250)
    # the other client has its own count: a message goes through
    qid = d.send("a@example.net", "alice@example.test", make_msg("other"),
                 source=OTHER)
    assert qid


def test_recipient_rate_limit(facteurd):
    d = facteurd(main_cf={"smtpd_client_recipient_rate_limit": "3"})
    with d.session(source=LIMITED) as c:
        check(c.cmd("MAIL FROM:<a@example.net>"), 250)
        for u in ("alice", "bob", "carol"):
            check(c.cmd("RCPT TO:<%s@example.test>" % u), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 450, "4.7.1",
              r" Error: too many recipients from 127\.0\.0\.3$")
        # the accepted ones still make a message
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("three")))
        check(c.reply(), 250, "2.0.0")
    d.wait_log(r"warning: Recipient address rate limit exceeded: 4 from "
               r"unknown\[127\.0\.0\.3\] for service 127\.0\.0\.1:%d$" % d.port)
    with d.session(source=OTHER) as c:
        check(c.cmd("MAIL FROM:<a@example.net>"), 250)
        for u in ("alice", "bob", "carol"):
            check(c.cmd("RCPT TO:<%s@example.test>" % u), 250)
    with d.session(source="127.0.0.1") as c:
        check(c.cmd("MAIL FROM:<a@example.net>"), 250)
        for u in ("alice", "bob", "carol", "alice", "bob"):
            check(c.cmd("RCPT TO:<%s@example.test>" % u), 250)


def auth_cf(d):
    users = d.confdir + "/users"
    with open(users, "w") as f:
        f.write("alice@example.test:{PLAIN}alice-pw\n")
    d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
    d.write_config()


def test_auth_rate_limit(facteurd):
    d = facteurd(start=False, main_cf={"smtpd_client_auth_rate_limit": "2",
                                       "smtpd_sasl_auth_enable": "yes"})
    auth_cf(d)
    d.start()
    bad = "AUTH PLAIN " + base64.b64encode(
        b"\0alice@example.test\0wrong").decode()
    good = "AUTH PLAIN " + base64.b64encode(
        b"\0alice@example.test\0alice-pw").decode()
    with d.session(source=LIMITED) as c:
        check(c.cmd(bad), 535, "5.7.8")
        check(c.cmd(bad), 535, "5.7.8")
        check(c.cmd(good), 450, "4.7.1",
              r" Error: too many AUTH commands from 127\.0\.0\.3$")
    d.wait_log(r"warning: AUTH command rate limit exceeded: 3 from "
               r"unknown\[127\.0\.0\.3\] for service 127\.0\.0\.1:%d$" % d.port)
    with d.session(source=OTHER) as c:
        check(c.cmd(bad), 535)
        check(c.cmd(good), 235)


def test_new_tls_session_rate_limit(facteurd, cert):
    d = facteurd(main_cf=tls_cf(
        cert, smtpd_client_new_tls_session_rate_limit="1"))
    c = tls_conn(d, source=LIMITED)
    check(c.cmd("EHLO client.test"), 250)
    starttls(c)
    check(c.cmd("EHLO client.test"), 250)
    check(c.cmd("QUIT"), 221)
    c.close()
    # the second new session is one too many: 421 inside TLS
    c = tls_conn(d, source=LIMITED)
    check(c.cmd("EHLO client.test"), 250)
    starttls(c)
    check(c.reply(), 421, "4.7.0",
          r" mx\.example\.test Error: too many new TLS sessions from "
          r"unknown\[127\.0\.0\.3\]$")
    c.close()
    d.wait_log(r"warning: New TLS session rate limit exceeded: 2 from "
               r"unknown\[127\.0\.0\.3\] for service 127\.0\.0\.1:%d$" % d.port)
    # from then on STARTTLS itself is refused
    c = tls_conn(d, source=LIMITED)
    check(c.cmd("EHLO client.test"), 250)
    check(c.cmd("STARTTLS"), 454, "4.7.0",
          r" Error: too many new TLS sessions from unknown\[127\.0\.0\.3\]$")
    c.close()
    d.wait_log(r"warning: Refusing STARTTLS request from "
               r"unknown\[127\.0\.0\.3\] for service")
    # the other client still has its one new session
    c = tls_conn(d, source=OTHER)
    check(c.cmd("EHLO client.test"), 250)
    starttls(c)
    check(c.cmd("EHLO client.test"), 250)
    c.close()


def test_smtps_refused_after_too_many_new_tls_sessions(facteurd, cert):
    """On an smtps listener the handshake itself is refused (Postfix)."""
    import socket
    import ssl
    from test_tls import client_ctx
    port = free_port()
    d = facteurd(main_cf=tls_cf(
        cert, smtpd_client_new_tls_session_rate_limit="1"), extra_master_cf=(
        "127.0.0.1:%d inet n - - - - smtpd -o smtpd_tls_wrappermode=yes\n"
        % port))

    def smtps(source):
        raw = socket.create_connection((d.host, port), timeout=10,
                                       source_address=(source, 0))
        return client_ctx().wrap_socket(raw, server_hostname="x")

    # two new sessions: the second is over the limit: a 421 inside TLS
    # instead of the greeting
    s = smtps(LIMITED)
    assert s.recv(1000).startswith(b"220 ")
    s.close()
    s = smtps(LIMITED)
    got = b""
    while b"421 " not in got:
        chunk = s.recv(1000)
        if not chunk:
            break
        got += chunk
    assert got.startswith(b"421 4.7.0 mx.example.test Error: too many new "
                          b"TLS sessions from unknown[127.0.0.3]\r\n"), got
    assert b"220 " not in got, got
    s.close()
    # the third is not even given a handshake
    try:
        s = smtps(LIMITED)
        got = s.recv(1000)
        s.close()
    except (ssl.SSLError, OSError):
        got = b""
    assert got == b"", got
    d.wait_log(r"warning: Refusing TLS service request from "
               r"unknown\[127\.0\.0\.3\] for service 127\.0\.0\.1:%d$" % port)
    s = smtps(OTHER)
    assert s.recv(1000).startswith(b"220 ")
    s.close()


def test_exceptions_list(facteurd):
    """An explicit exception list replaces $mynetworks."""
    d = facteurd(main_cf={"smtpd_client_message_rate_limit": "1",
                          "smtpd_client_event_limit_exceptions":
                          "127.0.0.3/32"})
    with d.session(source=LIMITED) as c:
        for _ in range(3):
            check(c.cmd("MAIL FROM:<a@example.net>"), 250)
            check(c.cmd("RSET"), 250)
    with d.session(source="127.0.0.1") as c:
        check(c.cmd("MAIL FROM:<a@example.net>"), 250)
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<a@example.net>"), 450, "4.7.1",
              r"too much mail from 127\.0\.0\.1")


def test_bad_limit_settings_are_startup_errors(facteurd):
    for k, v in (("smtpd_client_event_limit_exceptions", "127.0.0.300/8"),
                 ("smtpd_sasl_user_hold_threshold", "lots")):
        d = facteurd(start=False, main_cf={k: v})
        with pytest.raises(AssertionError) as e:
            d.start()
        assert k in str(e.value), e.value


# ---------------------------------------------------------------- errors

def test_hard_error_limit(facteurd):
    d = facteurd(main_cf={"smtpd_hard_error_limit": "3"})
    with d.session() as c:
        check(c.cmd("FOO"), 500)
        check(c.cmd("RCPT TO:<alice@example.test>"), 503)
        check(c.cmd("BAR"), 500)
        check(c.reply(), 421, "4.7.0",
              r" mx\.example\.test Error: too many errors$")
        assert c.expect_closed()
    # Postfix's words, which fail2ban's postfix filter looks for
    d.wait_log(r"\]: too many errors after UNKNOWN from "
               r"localhost\[127\.0\.0\.1\]$")


def timed(c, line):
    t = time.monotonic()
    r = c.cmd(line)
    return r, time.monotonic() - t


def test_soft_error_limit_sleeps_and_delivery_forgives(facteurd):
    d = facteurd(main_cf={"smtpd_soft_error_limit": "2",
                          "smtpd_error_sleep_time": "1s",
                          "smtpd_hard_error_limit": "20"})
    with d.session() as c:
        r, t = timed(c, "FOO")
        check(r, 500)
        assert t < 0.8, t
        r, t = timed(c, "FOO")
        check(r, 500)
        assert t < 0.8, t
        # two errors: from now on every reply waits
        r, t = timed(c, "NOOP")
        check(r, 250)
        assert t >= 0.9, t
        r, t = timed(c, "MAIL FROM:<a@example.net>")
        check(r, 250)
        assert t >= 0.9, t
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("forgiven")))
        check(c.reply(), 250, "2.0.0")
        # a delivered message resets the count (Postfix)
        r, t = timed(c, "NOOP")
        check(r, 250)
        assert t < 0.8, t


def test_junk_command_limit(facteurd):
    """Past smtpd_junk_command_limit each NOOP/VRFY/RSET is an error (as
    Postfix counts: the limit's next-but-one), other commands are not."""
    d = facteurd(main_cf={"smtpd_junk_command_limit": "1",
                          "smtpd_hard_error_limit": "2"})
    with d.session() as c:
        for _ in range(3):
            check(c.cmd("NOOP"), 250)           # the third is error 1
        check(c.cmd("MAIL FROM:<a@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RSET"), 250)               # error 2
        check(c.reply(), 421, "4.7.0", r"too many errors")
        assert c.expect_closed()
    d.wait_log(r"too many errors after RSET from localhost\[127\.0\.0\.1\]$")


def test_behind_a_proxy_the_real_client_is_counted(facteurd):
    """With smtpd_upstream_proxy_protocol = haproxy the limits go by the
    address in the PROXY header, never by the load balancer's."""
    from harness import SMTPConn
    d = facteurd(start=False, main_cf={
        "smtpd_client_connection_count_limit": "1"})
    port = free_port()
    d.master_cf += ("127.0.0.1:%d inet n - n - - smtpd "
                    "-o smtpd_upstream_proxy_protocol=haproxy\n" % port)
    d.write_config()
    d.start()

    def proxied(src):
        c = SMTPConn(d.host, port, source=LIMITED)
        c.send(("PROXY TCP4 %s 127.0.0.1 40000 25\r\n" % src).encode())
        return c

    a = proxied("198.51.100.1")
    check(a.reply(), 220)
    b = proxied("198.51.100.2")
    check(b.reply(), 220)
    c = proxied("198.51.100.1")
    check(c.reply(), 421, "4.7.0",
          r"too many connections from 198\.51\.100\.1$")
    for x in (a, b, c):
        x.close()
    d.wait_log(r"warning: Connection concurrency limit exceeded: 2 from "
               r"unknown\[198\.51\.100\.1\] for service 127\.0\.0\.1:%d$" % port)
