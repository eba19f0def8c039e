"""
test_receive_override.py - receive_override_options on one listener
(master.cf -o, as before or after a content filter), the other listener
of the same daemon keeping the main.cf behaviour: no_address_mappings (no
virtual alias expansion, no automatic BCC; an aliased address is accepted
as it is), no_header_body_checks (header_checks not applied),
no_unknown_recipient_checks (unknown recipients accepted at RCPT). An
unknown option stops the start.
"""
import pytest

import harness
from harness import check, dot_stuff, free_port, make_msg, msgid_of

OVR = "no_address_mappings,no_header_body_checks,no_unknown_recipient_checks"


@pytest.fixture(scope="module")
def ovr(build, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("ovr"))
    port = free_port()
    d = pool.new(start=False, main_cf={"always_bcc": "carol@example.test"},
                 extra_master_cf="127.0.0.1:%d inet n - n - - smtpd\n"
                                 "  -o receive_override_options=%s\n"
                 % (port, OVR))
    d.params["header_checks"] = d.table(
        "header_checks", "/^Subject: spam/ REJECT no spam here\n", "regexp")
    d.write_config()
    d.start()
    d.ovr_port = port
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def send(d, port, rcpts, msg, data_code=250):
    c = d.connect(port=port)
    try:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        for r in rcpts:
            check(c.cmd("RCPT TO:<%s>" % r), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        r = check(c.reply(), data_code)
        check(c.cmd("QUIT"), 221)
        return r
    finally:
        c.close()


def test_no_address_mappings(ovr):
    msg = make_msg("nomap", to="team@example.test")
    mid = msgid_of(msg)
    r = send(ovr, ovr.ovr_port, ["team@example.test", "alice@example.test"],
             msg)
    qid = harness.queue_id_of(r)
    ovr.wait_msgid("alice@example.test", mid)
    # team was kept as it is: the queue has no mailbox for it
    ovr.wait_log(r"%s: to=<team@example\.test>, .*status=bounced" % qid)
    assert ovr.delivered_msgid("bob@example.test", mid) == []
    assert ovr.delivered_msgid("carol@example.test", mid) == []  # no BCC
    # the other listener expands and copies
    msg = make_msg("map", to="team@example.test")
    mid = msgid_of(msg)
    send(ovr, ovr.port, ["team@example.test"], msg)
    for a in ("alice@example.test", "bob@example.test", "carol@example.test"):
        ovr.wait_msgid(a, mid)


def test_no_header_body_checks(ovr):
    msg = make_msg("spam offer", to="alice@example.test")
    mid = msgid_of(msg)
    send(ovr, ovr.ovr_port, ["alice@example.test"], msg)
    ovr.wait_msgid("alice@example.test", mid)
    r = send(ovr, ovr.port, ["alice@example.test"],
             make_msg("spam again", to="alice@example.test"), data_code=550)
    assert "no spam here" in r.text


def test_no_unknown_recipient_checks(ovr):
    with ovr.connect(port=ovr.ovr_port) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<nosuchuser@example.test>"), 250)
        check(c.cmd("QUIT"), 221)
    with ovr.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<nosuchuser@example.test>"), 550, "5.1.1")
        check(c.cmd("QUIT"), 221)


def test_unknown_option_stops_the_start(facteurd):
    facteurd(start=False, main_cf={
        "receive_override_options": "no_address_mappings, bogus"}).start_fails(
            r"receive_override_options: unknown option \"bogus\"")
