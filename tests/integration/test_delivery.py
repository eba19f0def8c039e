"""
test_delivery.py - what lands in the maildir, byte for byte: prepended
headers (Return-Path, X-Original-To, Delivered-To, Received), dot-unstuffing,
8-bit content, bare LF / bare CR, ,S= sizes, and SMTP smuggling resistance.
"""
import os
import re
import stat
import time

import pytest

from harness import check, dot_stuff, make_msg, msgid_of, queue_id_of, to_lf

EIGHTBIT = bytes(range(0x80, 0x100))


def send_raw(d, rcpts, wire, sender="sender@example.net", helo="EHLO"):
    """Sends wire bytes (already dot-stuffed, ending in CRLF.CRLF) after
    DATA; returns the queue ID."""
    with d.connect() as c:
        check(c.cmd(helo + " client.test"), 250)
        check(c.cmd("MAIL FROM:<%s>" % sender), 250, "2.1.0")
        for r in rcpts:
            check(c.cmd("RCPT TO:<%s>" % r), 250, "2.1.5")
        check(c.cmd("DATA"), 354)
        c.send(wire)
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.cmd("QUIT"), 221)
    return qid


def test_eightbit_and_dot_lines_are_exact(mx):
    body = (b"plain line\r\n"
            b".\r\n"
            b"..\r\n"
            b".foo\r\n"
            b"...bar\r\n"
            b" .space-dot\r\n"
            b"8bit: " + EIGHTBIT + b"\r\n"
            b"utf-8: caf\xc3\xa9 \xe2\x82\xac\r\n"
            b"\r\n"
            b"\t tabbed\r\n"
            b"last line\r\n")
    msg = make_msg("eightbit", to="alice@example.test", body=body,
                   extra_headers=b"Content-Type: text/plain; charset=latin1\r\n"
                                 b"Content-Transfer-Encoding: 8bit\r\n")
    wire = dot_stuff(msg)
    assert b"\r\n..\r\n" in wire and b"\r\n...\r\n" in wire   # really stuffed
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net> BODY=8BITMIME"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(wire)
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
    got = mx.wait_msgid("alice@example.test", msgid_of(msg))
    assert len(got) == 1
    d = got[0]
    assert d.content == to_lf(msg), "content differs:\n%r\n%r" % (
        d.content, to_lf(msg))
    assert b"\r" not in d.raw
    assert qid in d.field("Received")


def test_prepended_headers(mx):
    msg = make_msg("prepended", to="bob@example.test")
    qid = mx.send("sender@example.net", ["bob@example.test"], msg)
    d = mx.wait_msgid("bob@example.test", msgid_of(msg))[0]
    names = [n.lower() for n, _ in d.prepended]
    assert names == ["return-path", "x-original-to", "delivered-to",
                     "received"], d.raw[:600]
    assert d.field("Return-Path") == "<sender@example.net>"
    assert d.field("X-Original-To") == "bob@example.test"
    assert d.field("Delivered-To") == "bob@example.test"
    rcv = d.field("Received")
    assert rcv.startswith("from client.test ("), rcv
    assert "127.0.0.1" in rcv
    assert re.search(r"\bby mx\.example\.test\b", rcv), rcv
    assert re.search(r"\bwith ESMTP\b", rcv), rcv
    assert re.search(r"\bid %s\b" % qid, rcv), rcv
    assert "<bob@example.test>" in rcv, rcv        # single recipient: "for"
    # RFC 5322 date at the end, after "; ".
    assert re.search(r"; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
                     rcv), rcv
    assert d.content == to_lf(msg)


def test_received_says_smtp_after_helo(mx):
    msg = make_msg("helo-smtp", to="bob@example.test")
    send_raw(mx, ["bob@example.test"], dot_stuff(msg), helo="HELO")
    d = mx.wait_msgid("bob@example.test", msgid_of(msg))[0]
    assert re.search(r"\bwith SMTP\b", d.field("Received")), d.field("Received")


def test_null_sender_return_path(mx):
    msg = make_msg("bounce-like", sender="", to="bob@example.test")
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 250)
    d = mx.wait_msgid("bob@example.test", msgid_of(msg))[0]
    assert d.field("Return-Path") == "<>"


def test_size_tag_and_maildir_layout(mx):
    msg = make_msg("size-tag", to="carol@example.test",
                   body=b"some body\r\n" * 7)
    mx.send("sender@example.net", "carol@example.test", msg)
    d = mx.wait_msgid("carol@example.test", msgid_of(msg))[0]
    assert d.size_tag == os.path.getsize(d.path), d.path
    name = os.path.basename(d.path)
    assert re.match(r"^\d+\.M\d+P\d+.*\..+,S=\d+", name), name
    box = os.path.join(mx.mail, "example.test", "carol")
    for sub in ("tmp", "new", "cur"):
        st = os.stat(os.path.join(box, sub))
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o700, (sub, oct(st.st_mode))
        assert (st.st_uid, st.st_gid) == (mx.vmail_uid, mx.vmail_gid)
    assert stat.S_IMODE(os.stat(box).st_mode) == 0o700
    # Nothing left behind in tmp/.
    assert os.listdir(os.path.join(box, "tmp")) == []


def test_unique_file_names(mx):
    ids = []
    for i in range(5):
        msg = make_msg("unique-%d" % i, to="carol@example.test")
        mx.send("sender@example.net", "carol@example.test", msg)
        ids.append(msgid_of(msg))
    paths = set()
    for mid in ids:
        paths.update(d.path for d in
                     mx.wait_msgid("carol@example.test", mid))
    assert len(paths) == 5


def test_bare_lf_in_content(mx):
    """A line ending in bare LF is a line (Postfix >= 3.9 "normalize")."""
    msg = make_msg("bare-lf", to="alice@example.test",
                   body=b"one\ntwo\r\nthree\n\nfour\r\n")
    wire = msg + b".\r\n"
    send_raw(mx, ["alice@example.test"], wire)
    d = mx.wait_msgid("alice@example.test", msgid_of(msg))[0]
    assert d.content == to_lf(msg), d.content


def test_bare_cr_in_content_is_kept(mx):
    msg = make_msg("bare-cr", to="alice@example.test",
                   body=b"carriage\rreturn\r\nend\r\n")
    send_raw(mx, ["alice@example.test"], dot_stuff(msg))
    d = mx.wait_msgid("alice@example.test", msgid_of(msg))[0]
    assert d.content == to_lf(msg), d.content


@pytest.mark.parametrize("sep", [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"],
                         ids=["LF.LF", "LF.CRLF", "CRLF.LF", "CR.CRLF"])
def test_smtp_smuggling_is_not_possible(mx, sep):
    """Only CRLF.CRLF ends DATA: a second transaction hidden after another
    end-of-data look-alike is never executed (SMTP smuggling)."""
    tag = "smuggle%d" % (time.monotonic_ns() % 10**9)
    mid = "<%s@client.test>" % tag
    first = (b"From: <sender@example.net>\r\nTo: <alice@example.test>\r\n"
             b"Subject: " + tag.encode() + b"\r\nMessage-ID: " + mid.encode() +
             b"\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\nvisible body")
    hidden = (b"MAIL FROM:<evil@elsewhere.test>\r\n"
              b"RCPT TO:<bob@example.test>\r\n"
              b"DATA\r\n"
              b"Subject: smuggled " + tag.encode() + b"\r\n\r\n"
              b"smuggled body\r\n")
    bob_before = len(mx.files("bob@example.test"))
    replies = []
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(first + sep + hidden + b".\r\nQUIT\r\n")
        while True:
            try:
                r = c.reply(timeout=5)
            except (AssertionError, OSError):
                break
            replies.append(r)
            if r.code == 221 or r.code >= 500:
                break
    codes = [r.code for r in replies]
    # Either one message, containing the hidden commands as text, then 221;
    # or the content is refused outright (5xx) and nothing is delivered.
    assert codes in ([250, 221],) or (codes and codes[0] >= 500), replies
    time.sleep(0.5)
    if codes[0] == 250:
        d = mx.wait_msgid("alice@example.test", mid)
        assert len(d) == 1
        assert b"MAIL FROM:<evil@elsewhere.test>" in d[0].content
        assert b"smuggled body" in d[0].content
        assert b"visible body" in d[0].content
    else:
        assert not [x for x in mx.delivered("alice@example.test")
                    if tag.encode() in x.raw]
    assert len(mx.files("bob@example.test")) == bob_before
    assert "evil@elsewhere.test" not in mx.log()
