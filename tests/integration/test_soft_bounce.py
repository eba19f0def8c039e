"""
test_soft_bounce.py - soft_bounce = yes, Postfix's safety net: what would
be returned to the sender stays queued instead (a 5xx from the next hop,
the error: transport, an unknown mailbox found at delivery) and is logged
status=SOFTBOUNCE with a 4.X.Y code, no bounce message is sent; the SMTP
server answers 4xx where it would have answered 5xx (450 4.1.1 for an
unknown user, 454 4.7.1 for relay access).
"""
import time

import pytest

from capture import Capture
from harness import check, dot_stuff, make_msg, msgid_of


@pytest.fixture
def remote():
    r = Capture()
    r.rcpt_reply = lambda addr: ("550 5.1.1 <%s>: no such user" % addr
                                 if addr.startswith("gone") else "250 2.1.5 Ok")
    yield r
    r.close()


def daemon(facteurd, remote, soft="yes"):
    return facteurd(main_cf={
        "soft_bounce": soft,
        "relayhost": "[127.0.0.1]:%d" % remote.port,
        "transport_maps": "inline:{ dead.example=error:host-is-gone }",
        "minimal_backoff_time": "30s", "maximal_backoff_time": "60s",
        "queue_run_delay": "30s"})


def test_smtpd_5xx_becomes_4xx(facteurd, remote):
    d = daemon(facteurd, remote)
    with d.session(source="127.0.0.2") as c:    # not in mynetworks
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<nosuchuser@example.test>"), 450, "4.1.1")
        check(c.cmd("RCPT TO:<friend@far.example>"), 454, "4.7.1")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("QUIT"), 221)
    d.wait_log(r"NOQUEUE: reject: RCPT from \S+: 450 4\.1\.1 "
               r"<nosuchuser@example\.test>")


def test_delivery_failures_stay_queued(facteurd, remote):
    d = daemon(facteurd, remote)
    msg = make_msg("soft", sender="alice@example.test", to="gone@far.example")
    qid = d.send("alice@example.test", ["gone@far.example", "ok@far.example",
                                        "x@dead.example"], msg)
    d.wait_log(r"%s: to=<gone@far\.example>, relay=127\.0\.0\.1.*dsn=4\.1\.1, "
               r"status=SOFTBOUNCE \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: "
               r"550 5\.1\.1" % qid)
    d.wait_log(r"%s: to=<x@dead\.example>, .*dsn=4\.\d\.\d, "
               r"status=SOFTBOUNCE \(.*host-is-gone\)" % qid)
    d.wait_log(r"%s: to=<ok@far\.example>, .*status=sent" % qid)
    time.sleep(0.5)
    # kept in the queue for the operator; no bounce to alice
    assert any(qid in p for p in d.queue_files(("deferred", "active"))), \
        d.diagnostics()
    assert "status=bounced" not in d.log()
    assert d.files("alice@example.test") == []
    r = d.cli("queue", "list")
    assert qid in r.stdout.decode(), r.stdout


def test_without_soft_bounce_it_bounces(facteurd, remote):
    d = daemon(facteurd, remote, soft="no")
    msg = make_msg("hard", sender="alice@example.test", to="gone@far.example")
    mid = msgid_of(msg)
    d.send("alice@example.test", ["gone@far.example"], msg)
    d.wait_log(r"to=<gone@far\.example>, .*dsn=5\.1\.1, status=bounced")
    d.wait_files("alice@example.test", 1)    # the non-delivery report
    assert mid


def test_unknown_at_delivery_and_full_mailbox(facteurd):
    # list has a stale member (accepted, found unknown by the queue);
    # carol's mailbox takes 100 bytes: a refusal at the end of DATA
    d = facteurd(start=False, main_cf={
        "soft_bounce": "yes",
        "minimal_backoff_time": "30s", "queue_run_delay": "30s"},
        vmailbox="alice@example.test example.test/alice/\n"
                 "carol@example.test example.test/carol/\n",
        valias="list@example.test alice@example.test, ghost@example.test\n")
    d.params["virtual_mailbox_limit_maps"] = d.table(
        "limits", "carol@example.test 100\n")
    d.write_config()
    d.start()
    msg = make_msg("stale member", to="list@example.test")
    mid = msgid_of(msg)
    qid = d.send("sender@example.net", ["list@example.test"], msg)
    d.wait_msgid("alice@example.test", mid)
    d.wait_log(r"%s: to=<ghost@example\.test>, orig_to=<list@example\.test>, "
               r".*dsn=4\.1\.1, status=SOFTBOUNCE" % qid)
    assert "status=bounced" not in d.log()
    assert any(qid in p for p in d.queue_files(("deferred", "active")))
    big = make_msg("big", to="carol@example.test", body=b"x" * 400 + b"\r\n")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(big))
        check(c.reply(), 452, "4.2.2")
        check(c.cmd("QUIT"), 221)
    d.wait_log(r"reject: END-OF-MESSAGE from \S+: 452 4\.2\.2 "
               r"<carol@example\.test>")
    assert d.files("carol@example.test") == []
