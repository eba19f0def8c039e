"""
test_recipients.py - who gets a message: virtual mailboxes, aliases
(fan-out, chains, catch-all, duplicates, loops), recipient_delimiter,
case-insensitivity, unknown users.
"""
import time

import pytest

from harness import check, dot_stuff, make_msg, msgid_of, to_lf


def settle(d):
    """Waits until the queue is empty, so 'not delivered' means it."""
    left = d.wait_queue_empty(timeout=15)
    assert not left, "queue not empty: %r\n%s" % (left, d.diagnostics())


def send(d, subject, rcpt, rcpts=None):
    """A message with subject to rcpt (the envelope: rcpts, else rcpt)
    sent to d; returns (message, Message-ID)."""
    msg = make_msg(subject, to=rcpt)
    d.send("sender@example.net", rcpts or rcpt, msg)
    return msg, msgid_of(msg)


def test_unknown_user_rejected(mx):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1",
              r"<nobody@example\.test>: Recipient address rejected: "
              r"User unknown in virtual mailbox table")


def test_multi_recipient_written_once_per_mailbox(mx):
    msg, mid = send(mx, "multi", "alice@example.test, bob@example.test",
                    ["alice@example.test", "bob@example.test"])
    a = mx.wait_msgid("alice@example.test", mid)
    b = mx.wait_msgid("bob@example.test", mid)
    settle(mx)
    a = mx.delivered_msgid("alice@example.test", mid)
    b = mx.delivered_msgid("bob@example.test", mid)
    assert len(a) == 1 and len(b) == 1
    assert a[0].field("Delivered-To") == "alice@example.test"
    assert b[0].field("Delivered-To") == "bob@example.test"
    assert a[0].content == b[0].content == to_lf(msg)


def test_alias_fan_out(mx):
    msg, mid = send(mx, "team", "team@example.test")
    for user in ("alice", "bob"):
        got = mx.wait_msgid(user + "@example.test", mid)
    settle(mx)
    for user in ("alice", "bob"):
        got = mx.delivered_msgid(user + "@example.test", mid)
        assert len(got) == 1, user
        assert got[0].field("X-Original-To") == "team@example.test"
        assert got[0].field("Delivered-To") == user + "@example.test"
        assert got[0].content == to_lf(msg)


def test_alias_chain(mx):
    _, mid = send(mx, "chain", "chain@example.test")
    for user in ("alice", "bob"):
        got = mx.wait_msgid(user + "@example.test", mid)
        assert got[0].field("X-Original-To") == "chain@example.test"


@pytest.mark.parametrize("rcpt,target", [
    ("postmaster@example.test", "alice@example.test"),
    ("whoever@other.test", "catchall@example.test"),    # @other.test
], ids=["postmaster_alias", "catch_all"])
def test_alias_to_one_mailbox(mx, rcpt, target):
    _, mid = send(mx, rcpt.split("@")[0], rcpt)
    got = mx.wait_msgid(target, mid)
    assert got[0].field("X-Original-To") == rcpt
    assert got[0].field("Delivered-To") == target


def test_plus_tag(mx):
    _, mid = send(mx, "plus-tag", "alice+lists@example.test")
    got = mx.wait_msgid("alice@example.test", mid)
    assert len(got) == 1
    assert got[0].field("X-Original-To") == "alice+lists@example.test"
    # virtual(8) writes the recipient with its extension.
    assert got[0].field("Delivered-To").lower() in (
        "alice+lists@example.test", "alice@example.test")
    assert not mx.files("alice+lists@example.test")


def test_plus_tag_on_alias(mx):
    _, mid = send(mx, "plus-tag-alias", "team+x@example.test")
    for user in ("alice", "bob"):
        mx.wait_msgid(user + "@example.test", mid)


def test_case_insensitive(mx):
    _, mid = send(mx, "upper", "ALICE@EXAMPLE.TEST")
    got = mx.wait_msgid("alice@example.test", mid)
    assert got[0].field("X-Original-To").lower() == "alice@example.test"
    # virtual(8) writes the recipient as given: only its case may differ.
    assert got[0].field("Delivered-To").lower() == "alice@example.test"
    _, mid = send(mx, "mixed", "Bob@Example.Test")
    mx.wait_msgid("bob@example.test", mid)


def test_duplicate_alias_targets_delivered_once(mx):
    _, mid = send(mx, "dup", "dup@example.test")
    mx.wait_msgid("alice@example.test", mid)
    settle(mx)
    time.sleep(0.3)
    assert len(mx.delivered_msgid("alice@example.test", mid)) == 1


def test_same_recipient_twice_delivered_once(mx):
    _, mid = send(mx, "twice", "bob@example.test",
                    ["bob@example.test", "bob@example.test"])
    mx.wait_msgid("bob@example.test", mid)
    settle(mx)
    time.sleep(0.3)
    assert len(mx.delivered_msgid("bob@example.test", mid)) == 1


def test_alias_loop_does_not_hang_or_crash(mx):
    """loop1 -> loop2 -> loop1: refused at RCPT or accepted and never
    delivered anywhere; the daemon keeps serving."""
    msg = make_msg("loop", to="loop1@example.test")
    before = {u: len(mx.files(u + "@example.test"))
              for u in ("alice", "bob", "catchall", "carol")}
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        r = c.cmd("RCPT TO:<loop1@example.test>")
        assert r.code == 250 or 400 <= r.code < 600, r
        if r.code == 250:
            check(c.cmd("DATA"), 354)
            c.send(dot_stuff(msg))
            assert c.reply().code in (250, 451, 550, 554)
        check(c.cmd("NOOP"), 250)
    settle(mx)
    after = {u: len(mx.files(u + "@example.test")) for u in before}
    assert after == before
    with mx.session() as c:
        check(c.cmd("NOOP"), 250)


def test_alias_domain(facteurd):
    d = facteurd(main_cf={"virtual_alias_domains": "alias.test"},
                 valias="@alias.test @example.test\n"
                        "postmaster@example.test alice@example.test\n")
    _, mid = send(d, "alias-domain", "bob@alias.test")
    got = d.wait_msgid("bob@example.test", mid)
    assert got[0].field("X-Original-To") == "bob@alias.test"
    assert got[0].field("Delivered-To") == "bob@example.test"


def test_map_change_is_picked_up(facteurd):
    """texthash: is re-read when the file changes, without a restart."""
    d = facteurd()
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<dave@example.test>"), 550, "5.1.1")
    time.sleep(1.1)             # a different mtime, even at 1 s resolution
    with open(d.vmailbox_path, "a") as f:
        f.write("dave@example.test example.test/dave/\n")
    deadline = time.time() + 10
    code = None
    while time.time() < deadline:
        with d.session() as c:
            check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
            code = c.cmd("RCPT TO:<dave@example.test>").code
        if code == 250:
            break
        time.sleep(0.2)
    assert code == 250
    _, mid = send(d, "new-user", "dave@example.test")
    d.wait_msgid("dave@example.test", mid)


@pytest.mark.parametrize("rcpt", ["", "<>", "<@>", "<@example.test>",
                                  "<alice@exa mple.test>"])
def test_bad_recipient_forms(mx, rcpt):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        r = c.cmd("RCPT TO:" + rcpt)
        assert 500 <= r.code < 600, r
        check(c.cmd("NOOP"), 250)
