"""
test_relay.py - relay control. A client outside mynetworks (127.0.0.2 with
mynetworks = 127.0.0.1/32) may only send to hosted domains: every trick
that names a foreign destination is refused at RCPT, and nothing it sent
is ever queued for, delivered to or logged as sent to elsewhere.test.
A client in mynetworks may relay.
"""
import socket

import pytest

from harness import check, dot_stuff, make_msg

OUTSIDER = "127.0.0.2"

RELAY_TRICKS = [
    "user@elsewhere.test",
    "USER@ELSEWHERE.TEST",
    "user@elsewhere.test.",
    '"user@elsewhere.test"@example.test',
    "user%elsewhere.test@example.test",
    "user!elsewhere.test@example.test",
    "elsewhere.test!user@example.test",
    "@example.test:user@elsewhere.test",
    "@example.test,@other.test:user@elsewhere.test",
    "user@elsewhere.test@example.test",
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    '"user%elsewhere.test"@example.test',
    "user%elsewhere.test@other.test.elsewhere.test",
    "user@example.test.elsewhere.test",
]


def _outsider_ok():
    s = socket.socket()
    try:
        s.bind((OUTSIDER, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


@pytest.fixture(scope="module", autouse=True)
def _need_outsider_address():
    # Linux routes all of 127/8 to lo; elsewhere, 127.0.0.2 must be added.
    assert _outsider_ok(), ("cannot bind %s: add it to the loopback "
                            "interface to run the relay tests" % OUTSIDER)


@pytest.mark.parametrize("rcpt", RELAY_TRICKS)
def test_outsider_cannot_relay(mx, rcpt):
    with mx.session(source=OUTSIDER) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250, "2.1.0")
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        assert 400 <= r.code < 600, "relay accepted for <%s>:\n%s" % (rcpt, r)
        assert r.esc and r.esc[0] == str(r.code)[0], r
        # Nothing to send the message to.
        r = c.cmd("DATA")
        assert r.code in (503, 554), r
        check(c.cmd("RSET"), 250)


def test_outsider_relay_denied_reply(mx):
    with mx.session(source=OUTSIDER) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        r = c.cmd("RCPT TO:<user@elsewhere.test>")
        assert (r.code, r.esc) in ((454, "4.7.1"), (554, "5.7.1")), r
        assert "<user@elsewhere.test>: Relay access denied" in r.text, r


def test_outsider_mixed_recipients_only_local_delivered(mx):
    msg = make_msg("outsider-mixed", to="alice@example.test")
    with mx.session(source=OUTSIDER) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
        for rcpt in RELAY_TRICKS[:10]:
            r = c.cmd("RCPT TO:<%s>" % rcpt)
            assert r.code >= 400, r
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 250, "2.0.0")
    mid = [l for l in msg.split(b"\r\n")
           if l.startswith(b"Message-ID:")][0].split(b" ", 1)[1].decode()
    got = mx.wait_msgid("alice@example.test", mid)
    assert len(got) == 1
    left = mx.wait_queue_empty(timeout=15)
    assert not left, "outsider's message still queued: %r" % left
    log = mx.log()
    # Only the NOQUEUE reject lines may name the foreign recipients.
    for line in log.splitlines():
        if "elsewhere.test" in line:
            assert "NOQUEUE: reject: RCPT from" in line, line
    assert "relay=virtual" in log


def test_outsider_can_send_to_hosted_domains(mx):
    msg = make_msg("outsider-local", to="bob@example.test")
    mx.send("sender@example.net", ["bob@example.test", "x@other.test"], msg,
            source=OUTSIDER)
    mid = [l for l in msg.split(b"\r\n")
           if l.startswith(b"Message-ID:")][0].split(b" ", 1)[1].decode()
    mx.wait_msgid("bob@example.test", mid)
    mx.wait_msgid("catchall@example.test", mid)


def test_outsider_claiming_local_identity_cannot_relay(mx):
    """HELO and MAIL FROM are the client's words: they grant nothing."""
    with mx.connect(source=OUTSIDER) as c:
        check(c.cmd("EHLO localhost"), 250)
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        r = c.cmd("RCPT TO:<user@elsewhere.test>")
        assert 400 <= r.code < 600, r
    with mx.connect(source=OUTSIDER) as c:
        check(c.cmd("EHLO [127.0.0.1]"), 250)
        check(c.cmd("MAIL FROM:<>"), 250)
        r = c.cmd("RCPT TO:<user@elsewhere.test>")
        assert 400 <= r.code < 600, r


def test_outsider_vrfy_runs_relay_checks(mx):
    """VRFY applies the recipient restrictions, as Postfix does."""
    with mx.session(source=OUTSIDER) as c:
        r = c.cmd("VRFY user@elsewhere.test")
        assert 400 <= r.code < 600, r


def test_mynetworks_client_may_relay(mx):
    with mx.session() as c:                      # from 127.0.0.1
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<user@elsewhere.test>"), 250, "2.1.5")
        check(c.cmd("RSET"), 250)


def test_mynetworks_is_what_decides(facteurd):
    """With mynetworks = 127.0.0.2/32 the roles swap."""
    d = facteurd(main_cf={"mynetworks": "127.0.0.2/32"})
    with d.session(source=OUTSIDER) as c:
        check(c.cmd("MAIL FROM:<a@example.test>"), 250)
        check(c.cmd("RCPT TO:<user@elsewhere.test>"), 250)
    with d.session() as c:
        check(c.cmd("MAIL FROM:<a@example.test>"), 250)
        r = c.cmd("RCPT TO:<user@elsewhere.test>")
        assert 400 <= r.code < 600, r


def test_explicit_reject_unauth_destination(facteurd):
    d = facteurd(main_cf={"smtpd_relay_restrictions":
                          "permit_mynetworks, reject_unauth_destination"})
    with d.session(source=OUTSIDER) as c:
        check(c.cmd("MAIL FROM:<a@example.net>"), 250)
        check(c.cmd("RCPT TO:<user@elsewhere.test>"), 554, "5.7.1",
              "Relay access denied")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
