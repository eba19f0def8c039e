"""
test_header_checks.py - header_checks and body_checks (regexp: and pcre:)
on mail received over SMTP: REJECT answers 550 at the end of DATA and
keeps nothing, DISCARD answers 250 and keeps nothing, WARN only logs,
HOLD keeps the message in hold/, IGNORE/REPLACE/PREPEND change the
delivered file, and each action is logged as Postfix's cleanup logs it.
"""
import os

import pytest

from harness import check, dot_stuff, make_msg

RCPT = "alice@example.test"


def start(facteurd, header=None, body=None, kind="regexp"):
    d = facteurd(start=False)
    for name, rules in (("header_checks", header), ("body_checks", body)):
        if rules is None:
            continue
        path = os.path.join(d.confdir, name)
        with open(path, "w") as f:
            f.write(rules)
        os.chmod(path, 0o644)
        d.params[name] = "%s:%s" % (kind, path)
    d.write_config()
    d.start()
    return d


def transact(d, msg):
    """One transaction; returns the reply to the end of DATA."""
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<%s>" % RCPT), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        r = c.reply()
        check(c.cmd("QUIT"), 221)
        return r


def test_header_reject(facteurd):
    d = start(facteurd, header="/^Subject: .*cheap pills/ REJECT no spam here\n")
    r = transact(d, make_msg("buy cheap pills"))
    check(r, 550, "5.7.1", r"no spam here")
    assert d.files(RCPT) == []
    assert d.queue_files() == []
    d.wait_log(r"\w+: reject: header Subject: buy cheap pills from "
               r"\S+\[127\.0\.0\.1\]; from=<sender@example\.net> "
               r"to=<alice@example\.test> proto=ESMTP helo=<client\.test>: "
               r"5\.7\.1 no spam here")
    # Other mail still goes through.
    r = transact(d, make_msg("hello"))
    check(r, 250, "2.0.0")
    d.wait_files(RCPT, 1)


@pytest.mark.parametrize("rule,kind,msg,text", [
    # pcre, and REJECT without a text
    ("/^X-Mailer: (spam|junk)tool/ REJECT\n", "pcre",
     make_msg("x", extra_headers=b"X-Mailer: junktool 1.0\r\n"),
     r"message content rejected"),
    # a folded header is matched unfolded
    ("/^Subject: first.*second/ REJECT folded\n", "regexp",
     make_msg("first\r\n\tsecond"), r"folded"),
], ids=["default_text_pcre", "folded_header"])
def test_header_reject_550(facteurd, rule, kind, msg, text):
    d = start(facteurd, header=rule, kind=kind)
    check(transact(d, msg), 550, "5.7.1", text)
    assert d.files(RCPT) == []


def test_discard(facteurd):
    d = start(facteurd, header="/^Subject: drop me/ DISCARD silently\n")
    r = transact(d, make_msg("drop me"))
    check(r, 250, "2.0.0", r"queued as")
    assert d.files(RCPT) == []
    assert d.queue_files() == []
    d.wait_log(r"\w+: discard: header Subject: drop me from \S+; "
               r"from=<sender@example\.net> to=<alice@example\.test> "
               r"proto=ESMTP helo=<client\.test>: silently")


def test_warn_delivers_and_logs(facteurd):
    d = start(facteurd, header="/^Subject: odd/ WARN looks odd\n")
    r = transact(d, make_msg("odd one"))
    check(r, 250, "2.0.0")
    got = d.wait_files(RCPT, 1)
    assert got[0].header("Subject") == "odd one"
    d.wait_log(r"\w+: warning: header Subject: odd one from \S+; "
               r"from=<sender@example\.net> .*: looks odd")


def test_hold(facteurd):
    d = start(facteurd, header="/^Subject: hold/ HOLD review\n")
    r = transact(d, make_msg("hold it"))
    check(r, 250, "2.0.0")
    d.wait_log(r"\w+: hold: header Subject: hold it from .*: review")
    assert len(d.queue_files(("hold",))) == 1
    assert d.files(RCPT) == []


def test_ignore_replace_prepend(facteurd):
    d = start(facteurd, header=(
        "/^X-Secret:/ IGNORE\n"
        "/^Subject: (.*)/ REPLACE Subject: [checked] $1\n"
        "/^Date:/ PREPEND X-Checked: yes\n"), kind="pcre")
    r = transact(d, make_msg("original", extra_headers=(
        b"X-Secret: one\r\n  two\r\nX-Keep: kept\r\n")))
    check(r, 250, "2.0.0")
    got = d.wait_files(RCPT, 1)[0]
    with open(got.path, "rb") as f:
        raw = f.read()
    assert b"X-Secret" not in raw and b"  two" not in raw
    assert got.header("X-Keep") == "kept"
    assert got.header("Subject") == "[checked] original"
    assert raw.count(b"\nSubject: ") == 1
    assert b"\nX-Checked: yes\nDate: " in raw
    assert b"\n\nHello.\n" in raw
    d.wait_log(r"\w+: replace: header Subject: original from .*: "
               r"Subject: \[checked\] original")
    d.wait_log(r"\w+: prepend: header Date: .*: X-Checked: yes")


def test_body_reject(facteurd):
    d = start(facteurd, body="/^click here now/ REJECT 5.7.0 body spam\n")
    r = transact(d, make_msg("fine", body=b"hi\r\nclick here now\r\nbye\r\n"))
    check(r, 550, "5.7.0", r"body spam")
    assert d.files(RCPT) == []
    d.wait_log(r"\w+: reject: body click here now from \S+; "
               r"from=<sender@example\.net> .*: 5\.7\.0 body spam")
    # A header with the same text is not a body line.
    r = transact(d, make_msg("click here now"))
    check(r, 250, "2.0.0")
    d.wait_files(RCPT, 1)


def test_bad_table_type_refused_at_start(facteurd):
    d = facteurd(start=False, main_cf={"header_checks": "nosuchtype:/x"})
    err = d.start_fails(r"header_checks: ")
    assert "nosuchtype" in err, err
