"""
test_mime_checks.py - content inspection through the MIME structure
(core/mime_walk.c + core/cleanup_headers.c), as Postfix's cleanup does it:
mime_header_checks (default $header_checks) on the MIME headers of the
message and on every header of multipart parts, nested_header_checks on
the headers of attached message/rfc822 parts, body_checks on the body
lines of every part but never on part headers; IGNORE inside a part;
disable_mime_input_processing=yes turning the walk off; malformed MIME
(no closing boundary, absurd nesting, a huge part header) delivered or
refused cleanly; and the SMTP client's smtp_header_checks /
smtp_body_checks changing only the copy a relay gets.
"""
import os

import pytest

from capture import Capture
from harness import check, dot_stuff, make_msg, msgid_of

RCPT = "alice@example.test"
EXE_RULE = (r'/^Content-(Disposition|Type).*name\s*=\s*"?(.*\.(exe|scr|bat'
            r'|js|vbs))"?$/ REJECT Attachment type not allowed' "\n")


def write_rules(d, name, rules):
    """Writes a rules file NAME in the daemon's config directory; its path."""
    path = os.path.join(d.confdir, name)
    with open(path, "w") as f:
        f.write(rules)
    return path


def start(facteurd, kind="pcre", params=None, **tables):
    d = facteurd(start=False)
    for name, rules in tables.items():
        path = write_rules(d, name, rules)
        os.chmod(path, 0o644)
        d.params[name] = "%s:%s" % (kind, path)
    d.params.update(params or {})
    d.write_config()
    d.start()
    return d


def transact(d, msg):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<%s>" % RCPT), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        r = c.reply()
        check(c.cmd("QUIT"), 221)
        return r


def multipart(subject, parts, boundary="b1", close=True):
    body = b"This is a MIME message.\r\n"
    for p in parts:
        body += b"--" + boundary.encode() + b"\r\n" + p
    if close:
        body += b"--" + boundary.encode() + b"--\r\n"
    return make_msg(subject, body=body, extra_headers=(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\""
        + boundary.encode() + b"\"\r\n"))


TEXT_PART = (b"Content-Type: text/plain\r\n\r\n"
             b"Content-Disposition: attachment; filename=\"x.exe\"\r\n"
             b"is only text here.\r\n")
EXE_PART = (b"Content-Type: application/octet-stream\r\n"
            b"Content-Disposition: attachment; filename=\"x.exe\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n")


def raw_of(got):
    with open(got.path, "rb") as f:
        return f.read()


def test_attachment_name_rejected_not_body_text(facteurd):
    # the classic recipe in header_checks reaches part headers through
    # mime_header_checks' default ($header_checks)
    d = start(facteurd, header_checks=EXE_RULE)
    r = transact(d, multipart("with exe", [TEXT_PART, EXE_PART]))
    check(r, 550, "5.7.1", r"Attachment type not allowed$")
    assert d.files(RCPT) == []
    d.wait_log(r'\w+: reject: header Content-Disposition: attachment; '
               r'filename="x\.exe" from \S+\[127\.0\.0\.1\]; '
               r'from=<sender@example\.net> to=<alice@example\.test> '
               r'proto=ESMTP helo=<client\.test>: 5\.7\.1 Attachment type '
               r'not allowed$')
    # the same words as body text of a part are not a header
    r = transact(d, multipart("text only", [TEXT_PART]))
    check(r, 250, "2.0.0")
    raw = raw_of(d.wait_files(RCPT, 1)[0])
    assert b'\nContent-Disposition: attachment; filename="x.exe"\nis only' \
        in raw


def test_nested_message_headers(facteurd):
    d = start(facteurd, nested_header_checks=(
        "/^Subject: .*nested secret/ REJECT 5.7.0 Nested message refused\n"))
    inner = (b"From: <inner@example.org>\r\nSubject: the nested secret\r\n"
             b"\r\nInner body.\r\n")
    part = (b"Content-Type: message/rfc822\r\n"
            b"Content-Disposition: attachment\r\n\r\n" + inner)
    check(transact(d, multipart("outer", [TEXT_PART, part])), 550,
          "5.7.0", r"Nested message refused")
    d.wait_log(r"\w+: reject: header Subject: the nested secret from .*"
               r": 5\.7\.0 Nested message refused")
    # the primary headers are header_checks' (none here), not nested ones
    check(transact(d, make_msg("the nested secret")), 250)
    d.wait_files(RCPT, 1)


def test_ignore_and_replace_inside_part(facteurd):
    d = start(facteurd, mime_header_checks=(
        "/^Content-Description:/ IGNORE\n"
        "/^Content-Type: application\\/octet-stream/ "
        "REPLACE Content-Type: application/x-checked\n"),
        body_checks="/^Content-Description:/ REJECT body hit\n")
    part = (b"Content-Type: application/octet-stream\r\n"
            b"Content-Description: secret\r\n  folded too\r\n"
            b"Content-Disposition: attachment; filename=\"a.bin\"\r\n"
            b"\r\nAAAA\r\n")
    check(transact(d, multipart("ignore", [part])), 250, "2.0.0")
    raw = raw_of(d.wait_files(RCPT, 1)[0])
    assert b"Content-Description" not in raw and b"folded too" not in raw
    assert (b"\n--b1\nContent-Type: application/x-checked\n"
            b"Content-Disposition: attachment; filename=\"a.bin\"\n\nAAAA\n"
            b"--b1--\n") in raw, raw
    # the primary MIME headers are mime_header_checks' too, and untouched
    assert b'\nContent-Type: multipart/mixed; boundary="b1"\n' in raw
    d.wait_log(r"\w+: replace: header Content-Type: application/"
               r"octet-stream from .*: Content-Type: application/x-checked")


def test_body_checks_see_part_bodies_not_part_headers(facteurd):
    d = start(facteurd, body_checks=(
        "/^X-Part-Header: yes/ REJECT header seen as body\n"
        "/magic-body-token/ REJECT 5.7.1 body token\n"))
    part = b"Content-Type: text/plain\r\nX-Part-Header: yes\r\n\r\nfine\r\n"
    check(transact(d, multipart("hdr", [part])), 250)
    d.wait_files(RCPT, 1)
    part2 = b"Content-Type: text/plain\r\n\r\nsome magic-body-token\r\n"
    check(transact(d, multipart("body", [TEXT_PART, part2])), 550,
          "5.7.1", r"body token")
    d.wait_log(r"\w+: reject: body some magic-body-token from .*: "
               r"5\.7\.1 body token")


def test_disable_mime_input_processing(facteurd):
    d = start(facteurd, header_checks=EXE_RULE,
              params={"disable_mime_input_processing": "yes"})
    check(transact(d, multipart("with exe", [EXE_PART])), 250, "2.0.0")
    d.wait_files(RCPT, 1)
    assert "disable_mime_input_processing" not in "".join(
        l for l in d.log().splitlines() if "ignored" in l)


def test_malformed_mime(facteurd):
    d = start(facteurd, header_checks=EXE_RULE)
    # no closing boundary: the attachment is still seen
    check(transact(d, multipart("open", [EXE_PART], close=False)), 550,
          "5.7.1", r"Attachment type not allowed")
    # nesting far beyond mime_nesting_limit (100): with header checks
    # configured, refused as Postfix does
    body = b""
    for i in range(150):
        body += (b"--n%03d\r\nContent-Type: multipart/mixed; "
                 b"boundary=n%03d\r\n\r\n" % (i, i + 1))
    body += b"--n150\r\nContent-Type: text/plain\r\n\r\ndeep\r\n"
    deep = make_msg("deep", body=body, extra_headers=(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
        b"boundary=n000\r\n"))
    check(transact(d, deep), 550, "5.6.0",
          r"MIME nesting exceeds safety limit$")
    d.wait_log(r"\w+: reject: mime-error MIME nesting exceeds safety limit: "
               r"n100 from \S+\[127\.0\.0\.1\]; from=<sender@example\.net> "
               r"to=<alice@example\.test>$")
    check(transact(d, make_msg("plain")), 250, "2.0.0")
    d.wait_files(RCPT, 1)
    # a 300 KB folded part header (over header_size_limit): only its first
    # header_size_limit bytes are kept, the rest of the message is intact
    huge = b"Content-Description: x" + b"\r\n y" * 100000 + b"\r\n"
    part = b"Content-Type: text/plain\r\n" + huge + b"\r\nafter huge\r\n"
    check(transact(d, multipart("huge", [part])), 250, "2.0.0")
    got = [g for g in d.wait_files(RCPT, 2) if b"after huge" in raw_of(g)]
    assert len(got) == 1
    raw = raw_of(got[0])
    assert len(raw) < 200000
    assert b"\n\nafter huge\n--b1--\n" in raw
    # and the daemon still answers
    check(transact(d, make_msg("still alive")), 250)
    d.wait_files(RCPT, 3)


def test_deep_nesting_with_body_checks_only(facteurd):
    # Postfix reports nesting only when header or strict checks are set
    d = start(facteurd, body_checks="/^never matches$/ REJECT\n")
    body = b""
    for i in range(120):
        body += (b"--n%03d\r\nContent-Type: multipart/mixed; "
                 b"boundary=n%03d\r\n\r\n" % (i, i + 1))
    msg = make_msg("deep", body=body + b"deep\r\n", extra_headers=(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
        b"boundary=n000\r\n"))
    check(transact(d, msg), 250, "2.0.0")
    d.wait_files(RCPT, 1)


def test_strict_8bitmime(facteurd):
    d = start(facteurd, params={"strict_8bitmime": "yes"})
    # 8-bit body text without MIME information (7bit by default)
    r = transact(d, make_msg("plain", body="d\u00e9j\u00e0 vu\r\n"))
    check(r, 550, "5.6.0", r"improper use of 8-bit data in message body$")
    d.wait_log(r"\w+: reject: mime-error improper use of 8-bit data in "
               r"message body: d\S+ vu from .*to=<alice@example\.test>$")
    # an 8-bit header
    r = transact(d, make_msg("caf\u00e9"))
    check(r, 550, "5.6.0", r"improper use of 8-bit data in message header$")
    # declared 8bit: accepted
    ok = make_msg("declared", body="d\u00e9j\u00e0 vu\r\n", extra_headers=(
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"))
    check(transact(d, ok), 250, "2.0.0")
    d.wait_files(RCPT, 1)


def test_strict_mime_encoding_domain(facteurd):
    d = start(facteurd, params={"strict_mime_encoding_domain": "yes"})
    part = (b"Content-Type: message/rfc822\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogeA==\r\n")
    check(transact(d, multipart("b64 message", [part])), 550, "5.6.0",
          r"invalid message/\* or multipart/\* encoding domain$")
    d.wait_log(r"reject: mime-error invalid message/\* or multipart/\* "
               r"encoding domain: base64 from ")
    check(transact(d, multipart("fine", [TEXT_PART])), 250)


@pytest.fixture
def remote():
    r = Capture()
    yield r
    r.close()


# a fast queue, so that deferred mail is retried within a test
FAST_QUEUE = {"queue_run_delay": "1s", "minimal_backoff_time": "1s",
              "maximal_backoff_time": "2s"}


def relay_cf(remote, **extra):
    """main.cf relaying to the remote capture, with FAST_QUEUE."""
    cf = {"relayhost": "[127.0.0.1]:%d" % remote.port}
    cf.update(FAST_QUEUE)
    cf.update(extra)
    return cf


def start_relay(facteurd, remote, checks, **extra):
    """A daemon relaying to remote with the pcre: rules (name, text) of
    checks as the parameters of those names."""
    d = facteurd(start=False, main_cf=relay_cf(remote, **extra))
    for name, rules in checks:
        d.params[name] = "pcre:" + write_rules(d, name, rules)
    d.write_config()
    d.start()
    return d


def test_smtp_header_and_body_checks(facteurd, remote):
    d = start_relay(facteurd, remote, (
            ("smtp_header_checks",
             "/^Subject: (.*)/ REPLACE Subject: [ext] $1\n"
             "/^X-Internal:/ IGNORE\n"
             "/^X-Reject-Me:/ REJECT not here\n"),
            ("smtp_body_checks", "/^internal-only line/ IGNORE\n")))
    body = b"Hello.\r\ninternal-only line\r\nBye.\r\n"
    msg = make_msg("report", body=body, extra_headers=(
        b"X-Internal: host42\r\nX-Reject-Me: 1\r\n"))
    mid = msgid_of(msg)
    d.send("sender@example.net", ["friend@far.example", RCPT], msg)
    got = remote.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    data = got[0][2]
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"\r\nSubject: [ext] report\r\n" in head, head
    assert b"X-Internal" not in head
    assert head.endswith(b"\r\nX-Reject-Me: 1")     # no REJECT in smtp
    assert rest == b"Hello.\r\nBye.\r\n", rest
    local = d.wait_msgid(RCPT, mid)[0]
    assert local.header("Subject") == "report"
    assert local.header("X-Internal") == "host42"
    assert b"internal-only line" in raw_of(local)
    d.wait_log(r"smtp\[\d+\]: \w+: replace: header Subject: report: "
               r"Subject: \[ext\] report$")
    d.wait_log(r"smtp\[\d+\]: warning: unsupported command in "
               r"smtp_header_checks map: REJECT")
    d.wait_log(r"to=<friend@far\.example>, relay=127\.0\.0\.1.*status=sent")


def test_local_submission_is_checked(facteurd):
    from test_sendmail import sendmail
    d = start(facteurd, header_checks=EXE_RULE + (
        "/^X-Secret:/ IGNORE\n"))
    bad = (b"From: boss@example.net\nTo: alice@example.test\n"
           b"Subject: local exe\nMIME-Version: 1.0\n"
           b"Content-Type: multipart/mixed; boundary=b\n\n--b\n" + EXE_PART
           .replace(b"\r\n", b"\n") + b"--b--\n")
    r = sendmail(d, ["-f", "boss@example.net", "-i", RCPT], bad)
    assert r.returncode != 0
    assert b"Attachment type not allowed" in r.stderr, r.stderr
    d.wait_log(r'\w+: reject: header Content-Disposition: attachment; '
               r'filename="x\.exe" from local; from=<boss@example\.net> '
               r'to=<alice@example\.test>: 5\.7\.1 Attachment type not '
               r'allowed$')
    assert d.files(RCPT) == []
    good = (b"From: boss@example.net\nTo: alice@example.test\n"
            b"Subject: local fine\nX-Secret: 42\n"
            b"Message-ID: <local-fine@client.test>\n\nhi\n")
    r = sendmail(d, ["-f", "boss@example.net", "-i", RCPT], good)
    assert r.returncode == 0, r.stderr
    got = d.wait_msgid(RCPT, "<local-fine@client.test>")[0]
    assert got.header("X-Secret") is None
    assert got.header("Subject") == "local fine"


def test_filter_action(facteurd, remote):
    # FILTER transport:destination: that message goes to the filter from
    # the queue (as content_filter would), the others are delivered
    d = start(facteurd, header_checks=(
        "/^X-Scan: yes/ FILTER smtp:[127.0.0.1]:%d\n"
        "/^X-Scan: bad/ FILTER nocolon\n" % remote.port),
        params=FAST_QUEUE)
    msg = make_msg("scan me", extra_headers=b"X-Scan: yes\r\n")
    check(transact(d, msg), 250, "2.0.0")
    got = remote.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    assert got[0][1] == [RCPT]
    assert b"Subject: scan me" in got[0][2]
    d.wait_log(r"\w+: filter: header X-Scan: yes from .*: "
               r"smtp:\[127\.0\.0\.1\]:\d+$")
    assert d.files(RCPT) == []
    check(transact(d, make_msg("plain", extra_headers=b"X-Scan: bad\r\n")),
          250)
    d.wait_files(RCPT, 1)
    d.wait_log(r'warning: bad FILTER action text "nocolon" in header_checks'
               r' map, need transport:destination')


def test_smtp_checks_per_master_cf_service(facteurd, remote):
    # -o smtp_header_checks on one smtp service replaces main.cf's there
    other = Capture()
    try:
        d = facteurd(start=False, main_cf=relay_cf(remote))
        main_rules = write_rules(
            d, "main_hc", "/^Subject: (.*)/ REPLACE Subject: [ext] $1\n")
        strip_rules = write_rules(d, "strip_hc", "/^Received:/ IGNORE\n")
        d.params["smtp_header_checks"] = "pcre:" + main_rules
        d.params["transport_maps"] = d.table(
            "transport", "other.example strip:[127.0.0.1]:%d\n" % other.port)
        d.master_cf += ("strip unix - - n - - smtp\n"
                        "  -o smtp_header_checks=pcre:%s\n" % strip_rules)
        d.write_config()
        d.start()
        msg = make_msg("split", to="a@far.example")
        d.send("sender@example.net", ["a@far.example", "b@other.example"],
               msg)
        got = remote.wait_messages(1)
        got2 = other.wait_messages(1)
        assert len(got) == 1 and len(got2) == 1, d.diagnostics()
        head = got[0][2].partition(b"\r\n\r\n")[0]
        assert b"\r\nSubject: [ext] split" in head, head
        assert head.startswith(b"Received: "), head
        head2 = got2[0][2].partition(b"\r\n\r\n")[0]
        assert got2[0][1] == ["b@other.example"]
        assert b"Received:" not in head2, head2
        assert b"\r\nSubject: split\r\n" in head2 + b"\r\n", head2
    finally:
        other.close()


def test_smtp_checks_follow_reload(facteurd, remote):
    d = facteurd(start=False, main_cf=relay_cf(remote))
    one = write_rules(d, "one", "/^Subject: (.*)/ REPLACE Subject: [one] $1\n")
    two = write_rules(d, "two", "/^Subject: (.*)/ REPLACE Subject: [two] $1\n")
    d.params["smtp_header_checks"] = "pcre:" + one
    d.write_config()
    d.start()
    d.send("sender@example.net", ["a@far.example"], make_msg("first"))
    assert b"\r\nSubject: [one] first\r\n" in remote.wait_messages(1)[0][2]
    d.params["smtp_header_checks"] = "pcre:" + two
    d.write_config()
    r = d.cli("reload")
    assert r.returncode == 0, r
    d.wait_log(r"facteur/master\[\d+\]: reload -- configuration ")
    d.send("sender@example.net", ["a@far.example"], make_msg("second"))
    got = remote.wait_messages(2)
    assert len(got) == 2, d.diagnostics()
    assert b"\r\nSubject: [two] second\r\n" in got[1][2], got[1][2][:400]


def test_mime_nesting_limit_and_smtp_mime_header_checks(facteurd, remote):
    d = start_relay(facteurd, remote, (
            ("header_checks", "/^X-Never:/ REJECT\n"),
            ("smtp_mime_header_checks", "/^Content-Description:/ IGNORE\n"),
            ("smtp_nested_header_checks",
             "/^Subject: (.*)/ REPLACE Subject: [inner] $1\n")),
        mime_nesting_limit="3")
    # 4 multipart levels are over mime_nesting_limit = 3
    body = b""
    for i in range(4):
        body += (b"--n%d\r\nContent-Type: multipart/mixed; boundary=n%d\r\n"
                 b"\r\n" % (i, i + 1))
    deep = make_msg("deep", to="a@far.example", body=body, extra_headers=(
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
        b"boundary=n0\r\n"))
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<a@far.example>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(deep))
        check(c.reply(), 550, "5.6.0", r"MIME nesting exceeds safety limit")
    # smtp_mime/nested_header_checks change only what leaves by SMTP
    inner = b"Subject: attached\r\nX-A: 1\r\n\r\ninner\r\n"
    msg = multipart("outer", [
        b"Content-Type: text/plain\r\nContent-Description: notes\r\n\r\n"
        b"text\r\n",
        b"Content-Type: message/rfc822\r\n\r\n" + inner],
        boundary="zz").replace(b"To: <alice@example.test>",
                               b"To: <a@far.example>")
    d.send("sender@example.net", ["a@far.example"], msg)
    got = remote.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    data = got[0][2]
    assert b"Content-Description" not in data
    assert b"\r\nSubject: [inner] attached\r\nX-A: 1\r\n" in data, data
    assert b"\r\nSubject: outer\r\n" in data     # primary: not nested
    d.wait_log(r"smtp\[\d+\]: \w+: replace: header Subject: attached: "
               r"Subject: \[inner\] attached$")


def test_lmtp_header_checks(facteurd, remote):
    # lmtp_*_checks for LMTP deliveries, smtp_*_checks stay SMTP's
    lm = Capture(lmtp=True)
    try:
        d = start_relay(facteurd, remote, (
                ("lmtp_header_checks", "/^X-Lmtp:/ IGNORE\n"),
                ("smtp_header_checks", "/^X-Smtp:/ IGNORE\n")),
            virtual_transport="lmtp:127.0.0.1:%d" % lm.port)
        msg = make_msg("both", extra_headers=b"X-Lmtp: 1\r\nX-Smtp: 2\r\n")
        d.send("sender@example.net", [RCPT, "a@far.example"], msg)
        got_l = lm.wait_messages(1)
        got_s = remote.wait_messages(1)
        assert len(got_l) == 1 and len(got_s) == 1, d.diagnostics()
        assert b"X-Lmtp" not in got_l[0][2] and b"X-Smtp: 2" in got_l[0][2]
        assert b"X-Smtp" not in got_s[0][2] and b"X-Lmtp: 1" in got_s[0][2]
    finally:
        lm.close()
