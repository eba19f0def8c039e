"""
test_policy.py - restriction lists as users configure them, against the
real daemon: client/helo/sender lists evaluated at RCPT (smtpd_delay_reject),
access maps with their actions (REJECT text, DISCARD, HOLD, REDIRECT,
PREPEND), check_policy_service against a small Python policy server
(request attributes, action, server down -> 451 4.3.5), and seed 004's
misspelt restriction refused at start-up with file:line and the nearest name.
"""
import time

import harness
from harness import check, dot_stuff, make_msg
from policyserver import PolicyServer

RELAY = "permit_mynetworks, reject_unauth_destination"


def _transaction(d, sender, rcpt, msg=None, helo="client.test"):
    """MAIL/RCPT/DATA; returns (rcpt reply, final reply or None)."""
    with d.session(helo=helo) as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        if r.code != 250:
            return r, None
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg or make_msg(sender=sender, to=rcpt)))
        return r, c.reply()


def test_lists_in_order_at_rcpt(facteurd):
    d = facteurd(main_cf={
        "smtpd_client_restrictions": "permit",
        "smtpd_helo_restrictions": "reject_non_fqdn_helo_hostname",
        "smtpd_sender_restrictions": "reject_non_fqdn_sender",
        "smtpd_relay_restrictions": RELAY})
    with d.session(helo="nodots") as c:
        # MAIL is accepted: the lists are applied at RCPT time
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 504, "5.5.2",
              r"<nodots>: Helo command rejected: need fully-qualified "
              r"hostname")
    with d.session(helo="mx.client.test") as c:
        check(c.cmd("MAIL FROM:<joe@localhost>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 504, "5.5.2",
              r"<joe@localhost>: Sender address rejected: need "
              r"fully-qualified address")
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    assert d.wait_log(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.1\]: "
                      r"504 5\.5\.2 <nodots>")


def test_access_map_actions(facteurd, tmp_path):
    d = facteurd(start=False)
    d.params["smtpd_sender_restrictions"] = "check_sender_access " + d.table(
        "sender_access", "spam.example REJECT No spam here\n"
        "drop.example DISCARD\n"
        "hold.example HOLD\n"
        "tag.example PREPEND X-Policy: tagged\n"
        "redir.example REDIRECT bob@example.test\n")
    d.params["smtpd_relay_restrictions"] = RELAY
    d.write_config()
    d.start()

    r, _ = _transaction(d, "x@spam.example", "alice@example.test")
    check(r, 554, "5.7.1", r"<x@spam.example>: Sender address rejected: "
          r"No spam here")

    r, end = _transaction(d, "x@drop.example", "carol@example.test")
    check(r, 250)
    check(end, 250, "2.0.0", r"queued as")
    time.sleep(0.5)
    assert d.files("carol@example.test") == []
    assert d.wait_log(r"discard: RCPT from .*triggers DISCARD action")

    r, end = _transaction(d, "x@hold.example", "carol@example.test")
    check(end, 250)
    assert any("/hold/" in p for p in d.queue_files(("hold",))), \
        d.queue_files()
    assert d.files("carol@example.test") == []

    msg = make_msg(sender="x@tag.example", to="alice@example.test",
                   subject="tagged")
    r, end = _transaction(d, "x@tag.example", "alice@example.test", msg)
    check(end, 250)
    got = d.wait_files("alice@example.test", 1)
    assert got, "nothing delivered"
    delivered = got[-1]
    assert b"X-Policy: tagged\n" in delivered.raw
    assert delivered.raw.index(b"X-Policy: tagged") < \
        delivered.raw.index(b"\nReceived:")

    r, end = _transaction(d, "x@redir.example", "alice@example.test",
                          make_msg(sender="x@redir.example", subject="redir"))
    check(end, 250)
    assert d.wait_files("bob@example.test", 1), "REDIRECT not delivered"
    assert len(d.files("alice@example.test")) == 1


def test_policy_service(facteurd):
    srv = PolicyServer("DEFER_IF_PERMIT Greylisted, try later")
    try:
        d = facteurd(main_cf={
            "smtpd_recipient_restrictions":
                "check_policy_service inet:127.0.0.1:%d, permit" % srv.port,
            "smtpd_relay_restrictions": RELAY})
        with d.session(helo="mx.client.test") as c:
            check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
            check(c.cmd("RCPT TO:<alice@example.test>"), 450, "4.7.1",
                  r"<alice@example.test>: Recipient address rejected: "
                  r"Greylisted, try later")
        req = srv.requests[-1]
        assert req["request"] == "smtpd_access_policy"
        assert req["protocol_state"] == "RCPT"
        assert req["protocol_name"] == "ESMTP"
        assert req["client_address"] == "127.0.0.1"
        assert req["helo_name"] == "mx.client.test"
        assert req["sender"] == "joe@example.net"
        assert req["recipient"] == "alice@example.test"
        srv.action = "DUNNO"
        with d.session() as c:
            check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
            check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    finally:
        srv.close()


def test_policy_service_down(facteurd):
    port = harness.free_port()
    d = facteurd(main_cf={
        "smtpd_policy_service_timeout": "3s",
        "smtpd_policy_service_try_limit": "1",
        "smtpd_recipient_restrictions":
            "check_policy_service inet:127.0.0.1:%d" % port,
        "smtpd_relay_restrictions": RELAY})
    with d.session() as c:
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 451, "4.3.5",
              r"Server configuration problem")
    assert d.wait_log(r"warning: problem talking to server "
                      r"inet:127\.0\.0\.1")


def test_seed004_typo_refused_at_start(facteurd):
    d = facteurd(start=False, main_cf={
        "smtpd_helo_restrictions": "permit_mynetworks,\n"
        "    permit_sasl_authenticated,\n    reject_non_fqdn_hostname,\n"
        "    reject_invalide_hostname,\n    permit"})
    d.start_fails(r"main\.cf, line \d+: smtpd_helo_restrictions: unknown "
                  r"restriction \"reject_invalide_hostname\" \(did you "
                  r"mean \"reject_invalid_hostname\"\?\)")
