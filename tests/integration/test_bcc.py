"""
test_bcc.py - always_bcc, sender_bcc_maps and recipient_bcc_maps as
Postfix's cleanup applies them when mail enters the queue: by SMTP (also
on the fast path that writes into the Maildirs before the 250) and by
local submission (sendmail). Each copy arrives exactly once, never shows
in the headers, a remote BCC address leaves through the queue, and a BCC
table that cannot answer refuses the message with 451 4.3.0 instead of
losing the copy.
"""
import pytest

import harness
from capture import Capture
from harness import check, dot_stuff, make_msg, msgid_of
from test_sendmail import sendmail


@pytest.fixture(scope="module")
def bccd(build, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("bcc"))
    d = pool.new(start=False, main_cf={
        "myorigin": "example.test",
        "always_bcc": "carol@example.test",
    })
    # the mail owner reads these (local submission): in the config dir
    d.params["sender_bcc_maps"] = d.table(
        "sender_bcc", "boss@example.net bob@example.test\n")
    # keyed by the original recipient, before virtual aliases
    d.params["recipient_bcc_maps"] = d.table(
        "recipient_bcc", "team@example.test catchall@example.test\n")
    d.write_config()
    d.start()
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def _one(d, addr, mid):
    got = d.wait_msgid(addr, mid)
    assert len(got) == 1, "%s got %d copies of %s" % (addr, len(got), mid)
    return got[0]


def _none(d, addr, mid):
    assert d.delivered_msgid(addr, mid) == [], "%s got %s" % (addr, mid)


def test_always_bcc_copy_once_and_invisible(bccd):
    msg = make_msg("always", to="alice@example.test")
    mid = msgid_of(msg)
    bccd.send("sender@example.net", ["alice@example.test"], msg)
    _one(bccd, "alice@example.test", mid)
    c = _one(bccd, "carol@example.test", mid)
    assert c.field("X-Original-To") == "carol@example.test"
    assert c.field("Delivered-To") == "carol@example.test"
    head = c.content.split(b"\n\n", 1)[0].lower()
    assert b"carol" not in head, head
    assert b"bcc:" not in head
    # nobody else: sender_bcc and recipient_bcc did not match
    _none(bccd, "bob@example.test", mid)
    _none(bccd, "catchall@example.test", mid)


def test_sender_bcc_and_no_duplicate(bccd):
    # carol is a recipient and the always_bcc: one copy
    msg = make_msg("sender", to="alice@example.test", sender="boss@example.net")
    mid = msgid_of(msg)
    bccd.send("boss@example.net", ["alice@example.test",
                                   "carol@example.test"], msg)
    _one(bccd, "alice@example.test", mid)
    _one(bccd, "carol@example.test", mid)
    b = _one(bccd, "bob@example.test", mid)
    assert b.field("X-Original-To") == "bob@example.test"
    assert b"bob@" not in b.content.split(b"\n\n", 1)[0]
    _none(bccd, "catchall@example.test", mid)


def test_recipient_bcc_by_original_recipient(bccd):
    msg = make_msg("recipient", to="team@example.test")
    mid = msgid_of(msg)
    bccd.send("sender@example.net", ["team@example.test"], msg)
    for a in ("alice@example.test", "bob@example.test",
              "catchall@example.test", "carol@example.test"):
        _one(bccd, a, mid)
    # alice (an alias target of team) has no recipient_bcc entry of her own
    msg = make_msg("recipient2", to="alice@example.test")
    mid = msgid_of(msg)
    bccd.send("sender@example.net", ["alice@example.test"], msg)
    _one(bccd, "carol@example.test", mid)
    _none(bccd, "catchall@example.test", mid)


def test_local_submission_gets_bcc(bccd):
    msg = (b"From: boss@example.net\nTo: alice@example.test\n"
           b"Subject: local bcc\nMessage-ID: <local-bcc@client.test>\n\nhi\n")
    r = sendmail(bccd, ["-f", "boss@example.net", "-i", "alice@example.test"],
                 msg)
    assert r.returncode == 0, r.stderr
    mid = "<local-bcc@client.test>"
    _one(bccd, "alice@example.test", mid)
    _one(bccd, "carol@example.test", mid)
    _one(bccd, "bob@example.test", mid)     # sender_bcc_maps
    _none(bccd, "catchall@example.test", mid)


def test_remote_bcc_goes_through_the_queue(facteurd):
    remote = Capture()
    try:
        d = facteurd(main_cf={
            "always_bcc": "archive@far.example",
            "relayhost": "[127.0.0.1]:%d" % remote.port,
            "queue_run_delay": "1s",
        })
        msg = make_msg("remote", to="alice@example.test")
        mid = msgid_of(msg)
        d.send("sender@example.net", ["alice@example.test"], msg)
        _one(d, "alice@example.test", mid)
        got = remote.wait_messages(1)
        assert len(got) == 1, d.diagnostics()
        sender, rcpts, data = got[0]
        assert sender == "sender@example.net"
        assert rcpts == ["archive@far.example"]
        assert mid.encode() in data
        assert b"archive@" not in data.split(b"\r\n\r\n", 1)[0]
        d.wait_log(r"to=<archive@far\.example>, relay=127\.0\.0\.1.*"
                   r"status=sent")
        assert not d.wait_queue_empty()
        assert len(remote.messages) == 1
    finally:
        remote.close()


def test_bcc_lookup_failure_is_451(facteurd):
    d = facteurd(main_cf={"recipient_bcc_maps": "fail:bcc-down"})
    msg = make_msg("tempfail", to="alice@example.test")
    mid = msgid_of(msg)
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 451, "4.3.0")
        check(c.cmd("QUIT"), 221)
    d.wait_log(r"recipient_bcc_maps lookup error")
    assert d.delivered_msgid("alice@example.test", mid) == []
    # nothing kept (the queue may hold the postmaster's resource notice)
    for p in d.queue_files():
        try:
            with open(p, "rb") as f:
                assert mid.encode() not in f.read(), p
        except FileNotFoundError:
            pass


def test_undeliverable_bcc_notifies_nobody(facteurd):
    # the copy is added as NOTIFY=NEVER: its failure never reaches the sender
    d = facteurd(main_cf={"always_bcc": "ghost@example.test"})
    msg = make_msg("ghost", sender="bob@example.test", to="alice@example.test")
    mid = msgid_of(msg)
    qid = d.send("bob@example.test", ["alice@example.test"], msg)
    _one(d, "alice@example.test", mid)
    d.wait_log(r"%s: to=<ghost@example\.test>, .*dsn=5\.1\.1, status=bounced"
               % qid)
    d.wait_log(r"%s: removed" % qid)
    assert d.files("bob@example.test") == []
    assert not d.wait_queue_empty()
