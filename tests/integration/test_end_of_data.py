"""
test_end_of_data.py - smtpd_end_of_data_restrictions run after the end of
the content (DATA's final dot, BDAT LAST) and before the message is
committed: a policy server sees protocol_state=END-OF-MESSAGE with the
size, and its REJECT (or an access map's) answers the dot / last chunk,
is logged as Postfix does ("QUEUEID: reject: END-OF-MESSAGE from
host[ip]: ..."), and nothing is delivered nor left in the queue.
"""
import re
import time

from harness import check, dot_stuff, make_msg
from policyserver import PolicyServer

RELAY = "permit_mynetworks, reject_unauth_destination"
LIMIT = 2000


def size_action(attrs):
    """REJECT at END-OF-MESSAGE when size > LIMIT, else DUNNO."""
    if attrs.get("protocol_state") == "END-OF-MESSAGE" and \
            int(attrs.get("size", "0")) > LIMIT:
        return "REJECT message too big for policy"
    return "DUNNO"


def _msg(tag, size):
    body = (b"x" * 70 + b"\r\n") * (size // 72 + 1)
    return make_msg(tag, body=body, to="alice@example.test")


def _data(d, msg):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        r = c.reply()
        # the session goes on, with a fresh envelope
        check(c.cmd("NOOP"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 503)
        return r


def _bdat(d, msg):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        half = len(msg) // 2
        c.send(b"BDAT %d\r\n" % half + msg[:half])
        check(c.reply(), 250)
        rest = msg[half:]
        c.send(b"BDAT %d LAST\r\n" % len(rest) + rest)
        r = c.reply()
        check(c.cmd("NOOP"), 250)
        return r


def _msgid(msg):
    return re.search(rb"^Message-ID: (.*?)\r?$", msg, re.M | re.I) \
        .group(1).decode()


def _no_trace(d):
    time.sleep(0.5)
    assert d.files("alice@example.test") == []
    assert d.queue_files() == []


def test_policy_rejects_big_message_at_end(facteurd):
    srv = PolicyServer(size_action)
    try:
        d = facteurd(main_cf={
            "smtpd_relay_restrictions": RELAY,
            "smtpd_recipient_restrictions":
                "check_policy_service inet:127.0.0.1:%d" % srv.port,
            "smtpd_end_of_data_restrictions":
                "check_policy_service inet:127.0.0.1:%d" % srv.port})
        big = _msg("eod-big", 5000)
        r = _data(d, big)
        check(r, 554, "5.7.1", r"<END-OF-MESSAGE>: End-of-data rejected: "
              r"message too big for policy")
        assert d.wait_log(r"[0-9A-Za-z]+: reject: END-OF-MESSAGE from "
                          r"\S+\[127\.0\.0\.1\]: 554 5\.7\.1 "
                          r"<END-OF-MESSAGE>: End-of-data rejected: "
                          r"message too big for policy; from=<joe@example\.net>")
        assert not re.search(r"NOQUEUE: reject: END-OF-MESSAGE", d.log())
        _no_trace(d)
        r = _bdat(d, _msg("eod-big-bdat", 5000))
        check(r, 554, "5.7.1", r"End-of-data rejected")
        _no_trace(d)

        small = _msg("eod-small", 500)
        check(_data(d, small), 250, "2.0.0", r"queued as")
        assert len(d.wait_msgid("alice@example.test", _msgid(small))) == 1
        small2 = _msg("eod-small-bdat", 500)
        check(_bdat(d, small2), 250, "2.0.0", r"queued as")
        assert len(d.wait_msgid("alice@example.test", _msgid(small2))) == 1
        eom = [q for q in srv.requests
               if q.get("protocol_state") == "END-OF-MESSAGE"]
        assert len(eom) == 4
        sizes = sorted(int(q["size"]) for q in eom)
        assert sizes[0] > 400 and sizes[1] > 400 and sizes[1] < LIMIT
        assert sizes[2] > LIMIT and sizes[3] > LIMIT
        assert all(q["recipient_count"] == "1" for q in eom)
        assert all(q["sender"] == "joe@example.net" for q in eom)
        assert all(q["queue_id"] for q in eom)
        # one "instance" per transaction: RCPT and END-OF-MESSAGE agree
        states = [q.get("protocol_state") for q in srv.requests]
        assert states == ["RCPT", "END-OF-MESSAGE"] * 4, states
        for i in range(0, 8, 2):
            rq, eq = srv.requests[i], srv.requests[i + 1]
            assert rq["instance"] and rq["instance"] == eq["instance"]
        # the connection is kept and shared by the two lists (Postfix
        # keeps one per policy service): far fewer than one per query
        assert srv.nconn <= 3, srv.nconn
    finally:
        srv.close()


def test_access_map_rejects_at_end(facteurd):
    d = facteurd(start=False)
    d.params["smtpd_relay_restrictions"] = RELAY
    d.params["smtpd_end_of_data_restrictions"] = (
        "check_sender_access " + d.table(
            "eod_access", "spam.example 550 5.7.0 No content from you\n"
            "warn.example WARN looked at\n"))
    d.write_config()
    d.start()
    msg = make_msg("eod-map", sender="x@spam.example", to="alice@example.test")
    for kind in ("DATA", "BDAT"):
        with d.session() as c:
            check(c.cmd("MAIL FROM:<x@spam.example>"), 250)
            check(c.cmd("RCPT TO:<alice@example.test>"), 250)
            if kind == "DATA":
                # DATA itself is accepted: the check waits for the end
                check(c.cmd("DATA"), 354)
                c.send(dot_stuff(msg))
            else:
                c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
            # Postfix's words: the access map names the sender's class
            check(c.reply(), 550, "5.7.0", r"<x@spam\.example>: "
                  r"Sender address rejected: No content from you")
        _no_trace(d)
    assert d.wait_log(r"reject: END-OF-MESSAGE from \S+\[127\.0\.0\.1\]: "
                      r"550 5\.7\.0 ")
    # a WARN goes through and is logged
    qid = d.send("x@warn.example", ["alice@example.test"],
                 make_msg("eod-warn", sender="x@warn.example",
                          to="alice@example.test"))
    assert d.wait_log(r"%s: warn: END-OF-MESSAGE from .*looked at" % qid)
    d.wait_files("alice@example.test", 1)


def test_reject_and_defer_words(facteurd):
    d = facteurd(main_cf={
        "smtpd_relay_restrictions": RELAY,
        "smtpd_end_of_data_restrictions":
            "check_sender_access inline:{ { ok@example.net = OK } }, defer"})
    msg = make_msg("eod-ok", sender="ok@example.net", to="alice@example.test")
    d.send("ok@example.net", ["alice@example.test"], msg)
    d.wait_files("alice@example.test", 1)
    with d.session() as c:
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("eod-defer", to="alice@example.test")))
        check(c.reply(), 450, "4.3.2", r"<END-OF-MESSAGE>: End-of-data "
              r"rejected: Try again later")
    time.sleep(0.5)
    assert len(d.files("alice@example.test")) == 1
    assert d.queue_files() == []


def test_hold_and_discard_at_end(facteurd):
    """HOLD and DISCARD asked at END-OF-MESSAGE apply to that message."""
    d = facteurd(start=False)
    d.params["smtpd_relay_restrictions"] = RELAY
    d.params["smtpd_end_of_data_restrictions"] = (
        "check_sender_access " + d.table(
            "eod_actions", "hold.example HOLD kept for review\n"
            "drop.example DISCARD dropped at the end\n"))
    d.write_config()
    d.start()
    d.send("x@hold.example", ["alice@example.test"],
           make_msg("eod-hold", sender="x@hold.example",
                    to="alice@example.test"))
    assert any("/hold/" in p for p in d.queue_files(("hold",))), \
        d.diagnostics()
    assert d.wait_log(r"hold: END-OF-MESSAGE from .*kept for review")
    d.send("x@drop.example", ["alice@example.test"],
           make_msg("eod-drop", sender="x@drop.example",
                    to="alice@example.test"))
    assert d.wait_log(r"discard: END-OF-MESSAGE from .*dropped at the end")
    time.sleep(0.5)
    assert d.files("alice@example.test") == []


def test_unknown_restriction_is_startup_error(facteurd):
    d = facteurd(start=False)
    d.params["smtpd_relay_restrictions"] = RELAY
    d.params["smtpd_end_of_data_restrictions"] = "permit_mynetwork"
    d.write_config()
    err = d.start_fails(r"smtpd_end_of_data_restrictions: unknown "
                        r"restriction \"permit_mynetwork\"")
    assert "permit_mynetworks" in err
    r = d.cli("check")
    assert r.returncode != 0
    assert "smtpd_end_of_data_restrictions" in (r.stdout + r.stderr).decode()
