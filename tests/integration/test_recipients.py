"""
test_recipients.py - who gets a message: virtual mailboxes, aliases
(fan-out, chains, catch-all, duplicates, loops), recipient_delimiter,
case-insensitivity, unknown users.
"""
import re
import time

import pytest

from harness import check, dot_stuff, make_msg, to_lf


def msgid_of(msg):
    return re.search(rb"(?im)^Message-ID:\s*(\S+)", msg).group(1).decode()


def settle(d):
    """Waits until the queue is empty, so 'not delivered' means it."""
    left = d.wait_queue_empty(timeout=15)
    assert not left, "queue not empty: %r\n%s" % (left, d.diagnostics())


def with_msgid(d, addr, mid):
    return [x for x in d.delivered(addr) if x.header("Message-ID") == mid]


def test_unknown_user_rejected(mx):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1",
              r"<nobody@example\.test>: Recipient address rejected: "
              r"User unknown in virtual mailbox table")


def test_multi_recipient_written_once_per_mailbox(mx):
    msg = make_msg("multi", to="alice@example.test, bob@example.test")
    mx.send("sender@example.net", ["alice@example.test", "bob@example.test"],
            msg)
    mid = msgid_of(msg)
    a = mx.wait_msgid("alice@example.test", mid)
    b = mx.wait_msgid("bob@example.test", mid)
    settle(mx)
    a = with_msgid(mx, "alice@example.test", mid)
    b = with_msgid(mx, "bob@example.test", mid)
    assert len(a) == 1 and len(b) == 1
    assert a[0].field("Delivered-To") == "alice@example.test"
    assert b[0].field("Delivered-To") == "bob@example.test"
    assert a[0].content == b[0].content == to_lf(msg)


def test_alias_fan_out(mx):
    msg = make_msg("team", to="team@example.test")
    mx.send("sender@example.net", "team@example.test", msg)
    mid = msgid_of(msg)
    for user in ("alice", "bob"):
        got = mx.wait_msgid(user + "@example.test", mid)
    settle(mx)
    for user in ("alice", "bob"):
        got = with_msgid(mx, user + "@example.test", mid)
        assert len(got) == 1, user
        assert got[0].field("X-Original-To") == "team@example.test"
        assert got[0].field("Delivered-To") == user + "@example.test"
        assert got[0].content == to_lf(msg)


def test_alias_chain(mx):
    msg = make_msg("chain", to="chain@example.test")
    mx.send("sender@example.net", "chain@example.test", msg)
    mid = msgid_of(msg)
    for user in ("alice", "bob"):
        got = mx.wait_msgid(user + "@example.test", mid)
        assert got[0].field("X-Original-To") == "chain@example.test"


def test_postmaster_alias(mx):
    msg = make_msg("postmaster", to="postmaster@example.test")
    mx.send("sender@example.net", "postmaster@example.test", msg)
    got = mx.wait_msgid("alice@example.test", msgid_of(msg))
    assert got[0].field("X-Original-To") == "postmaster@example.test"
    assert got[0].field("Delivered-To") == "alice@example.test"


def test_catch_all(mx):
    msg = make_msg("catchall", to="whoever@other.test")
    mx.send("sender@example.net", "whoever@other.test", msg)
    got = mx.wait_msgid("catchall@example.test", msgid_of(msg))
    assert got[0].field("X-Original-To") == "whoever@other.test"
    assert got[0].field("Delivered-To") == "catchall@example.test"


def test_plus_tag(mx):
    msg = make_msg("plus-tag", to="alice+lists@example.test")
    mx.send("sender@example.net", "alice+lists@example.test", msg)
    got = mx.wait_msgid("alice@example.test", msgid_of(msg))
    assert len(got) == 1
    assert got[0].field("X-Original-To") == "alice+lists@example.test"
    # virtual(8) writes the recipient with its extension.
    assert got[0].field("Delivered-To").lower() in (
        "alice+lists@example.test", "alice@example.test")
    assert not mx.files("alice+lists@example.test")


def test_plus_tag_on_alias(mx):
    msg = make_msg("plus-tag-alias", to="team+x@example.test")
    mx.send("sender@example.net", "team+x@example.test", msg)
    mid = msgid_of(msg)
    for user in ("alice", "bob"):
        mx.wait_msgid(user + "@example.test", mid)


def test_case_insensitive(mx):
    msg = make_msg("upper", to="ALICE@EXAMPLE.TEST")
    mx.send("sender@example.net", "ALICE@EXAMPLE.TEST", msg)
    got = mx.wait_msgid("alice@example.test", msgid_of(msg))
    assert got[0].field("X-Original-To").lower() == "alice@example.test"
    # virtual(8) writes the recipient as given: only its case may differ.
    assert got[0].field("Delivered-To").lower() == "alice@example.test"
    msg = make_msg("mixed", to="Bob@Example.Test")
    mx.send("sender@example.net", "Bob@Example.Test", msg)
    mx.wait_msgid("bob@example.test", msgid_of(msg))


def test_duplicate_alias_targets_delivered_once(mx):
    msg = make_msg("dup", to="dup@example.test")
    mx.send("sender@example.net", "dup@example.test", msg)
    mid = msgid_of(msg)
    mx.wait_msgid("alice@example.test", mid)
    settle(mx)
    time.sleep(0.3)
    assert len(with_msgid(mx, "alice@example.test", mid)) == 1


def test_same_recipient_twice_delivered_once(mx):
    msg = make_msg("twice", to="bob@example.test")
    mx.send("sender@example.net", ["bob@example.test", "bob@example.test"],
            msg)
    mid = msgid_of(msg)
    mx.wait_msgid("bob@example.test", mid)
    settle(mx)
    time.sleep(0.3)
    assert len(with_msgid(mx, "bob@example.test", mid)) == 1


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
    msg = make_msg("alias-domain", to="bob@alias.test")
    d.send("sender@example.net", "bob@alias.test", msg)
    got = d.wait_msgid("bob@example.test", msgid_of(msg))
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
    msg = make_msg("new-user", to="dave@example.test")
    d.send("sender@example.net", "dave@example.test", msg)
    d.wait_msgid("dave@example.test", msgid_of(msg))


@pytest.mark.parametrize("rcpt", ["", "<>", "<@>", "<@example.test>",
                                  "<alice@exa mple.test>"])
def test_bad_recipient_forms(mx, rcpt):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        r = c.cmd("RCPT TO:" + rcpt)
        assert 500 <= r.code < 600, r
        check(c.cmd("NOOP"), 250)
