"""
test_data_restrictions.py - smtpd_data_restrictions are evaluated when the
client sends DATA or its first BDAT: a refusal answers DATA (no 354) or the
BDAT chunk (read and discarded), the envelope stays, and nothing is
delivered; an accepting list lets the message through.
"""
import re

from harness import check, dot_stuff, make_msg

RELAY = "permit_mynetworks, reject_unauth_destination"


def test_data_refused_then_envelope_kept(facteurd):
    d = facteurd(main_cf={
        "smtpd_relay_restrictions": RELAY,
        "smtpd_data_restrictions":
            "check_sender_access inline:{ { nodata@example.net = REJECT no "
            "data from you } }, permit"})
    with d.session() as c:
        check(c.cmd("MAIL FROM:<nodata@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        r = c.cmd("DATA")
        check(r, 554, "5.7.1", r"no data from you")
        # The envelope survives a refused DATA: RSET starts over.
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<ok@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        msg = make_msg("data-ok", sender="ok@example.net",
                       to="alice@example.test")
        msgid = re.search(rb"^Message-ID: (.*?)\r?$", msg, re.M | re.I) \
            .group(1).decode()
        c.send(dot_stuff(msg))
        check(c.reply(), 250, "2.0.0")
    got = d.wait_msgid("alice@example.test", msgid)
    assert len(got) == 1
    assert d.wait_log(r"reject: DATA from \S+\[127\.0\.0\.1\]: 554 5\.7\.1 ")
    assert len(d.files("alice@example.test")) == 1


def test_bdat_refused_chunk_discarded(facteurd):
    d = facteurd(main_cf={
        "smtpd_relay_restrictions": RELAY,
        "smtpd_data_restrictions":
            "check_sender_access inline:{ { nodata@example.net = REJECT "
            "no chunks } }"})
    body = b"Subject: x\r\n\r\nhello\r\n"
    with d.session() as c:
        check(c.cmd("MAIL FROM:<nodata@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        c.send(b"BDAT %d LAST\r\n" % len(body) + body)
        check(c.reply(), 554, "5.7.1", r"no chunks")
        # The session is still in step: the chunk was consumed.
        check(c.cmd("NOOP"), 250)
    assert d.files("alice@example.test") == []
