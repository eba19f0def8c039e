"""
test_notify_smtpd.py - notify_classes on the SMTP server side (Postfix's
smtpd_chat_notify): when a session had an error of a listed class
(protocol, policy, resource, bounce ...), the postmaster gets one
transcript of it at the session's end, from double_bounce_sender, with
"Out:"/"In:" lines and never the AUTH data; classes not listed (and the
default "resource, software" for plain rejects) send nothing.
The postmaster is postmaster@example.test (myorigin), an alias of alice.
"""
import base64
import email
import os
import time

from harness import check, dot_stuff, make_msg

OUTSIDER = "127.0.0.2"          # not in mynetworks: relaying is refused
SECRET = "Sup3r-Secret-Pw"


def b64(s):
    return base64.b64encode(s.encode()).decode()


def daemon(facteurd, **cf):
    params = {"myorigin": "example.test"}
    params.update(cf)
    d = facteurd(start=False, main_cf=params)
    users = os.path.join(d.confdir, "users")
    with open(users, "w") as f:
        f.write("dave@example.test:{PLAIN}%s::::::\n" % SECRET)
    d.params["smtpd_sasl_auth_enable"] = "yes"
    d.params["smtpd_tls_auth_only"] = "no"
    d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
    d.write_config()
    d.start()
    return d


def notices(d, addr="alice@example.test", n=1):
    files = d.wait_files(addr, n)
    return [(email.message_from_bytes(open(f.path, "rb").read()),
             open(f.path, "rb").read()) for f in files]


def settle(d):
    left = d.wait_queue_empty(timeout=15)
    assert not left, "queue not empty: %r\n%s" % (left, d.diagnostics())


def no_notice(d):
    # the session's end is logged after any notice would have been queued
    d.wait_log(r"disconnect from ")
    time.sleep(0.3)
    settle(d)
    assert "postmaster notice" not in d.log(), d.log()
    assert d.files("alice@example.test") == []


def test_protocol_error_transcript_without_password(facteurd):
    d = daemon(facteurd, notify_classes="protocol")
    with d.connect() as c:
        check(c.cmd("EHLO client.test"), 250)
        # a failed AUTH is no protocol error, and its data stays out
        check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0" + SECRET
                                        + "x")), 535)
        check(c.cmd("AUTH LOGIN"), 334)
        check(c.cmd(b64("dave@example.test")), 334)
        check(c.cmd(b64(SECRET + "y")), 535)
        check(c.cmd("FROBNICATE now"), 500, "5.5.2")
        check(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1")
        check(c.cmd("QUIT"), 221)
    [(m, raw)] = notices(d)
    if os.environ.get("SHOW_NOTICE"):
        print(raw.decode())
    assert m["Subject"].startswith("facteur SMTP server: errors from ")
    assert m["Subject"].endswith("[127.0.0.1]")
    assert m["Return-Path"] == "<double-bounce@example.test>"
    assert m["From"] == "Mail Delivery System <MAILER-DAEMON@example.test>"
    assert m["To"] == "Postmaster <postmaster@example.test>"
    body = m.get_payload()
    assert body.startswith("Transcript of session follows.\n\n")
    lines = body.splitlines()
    assert lines[2].startswith(" Out: 220 ")
    assert " In:  EHLO client.test" in lines
    assert " Out: 250-mx.example.test" in lines
    assert " In:  AUTH PLAIN ********" in lines
    assert " In:  AUTH LOGIN" in lines
    assert lines.count(" In:  ********") == 2
    assert " Out: 535 5.7.8 Error: authentication failed: " \
           "authentication failure" in lines
    assert " In:  FROBNICATE now" in lines
    assert " Out: 500 5.5.2 Error: command not recognized" in lines
    assert " Out: 503 5.5.1 Error: need MAIL command" in lines
    assert " In:  QUIT" in lines
    assert "For other details, see the local mail logfile" in body
    assert "Session aborted" not in body
    # no password, in clear or in base64, anywhere
    for secret in (SECRET, b64(SECRET + "y"),
                   b64("\0dave@example.test\0" + SECRET + "x")):
        assert secret.encode() not in raw
    d.wait_log(r"postmaster notice \(protocol\): errors from \S+\[127\.0\.0\.1\]")
    # one notice for the session, not one per error
    settle(d)
    assert len(d.files("alice@example.test")) == 1
    assert d.log().count("postmaster notice") == 1


def test_policy_reject_transcript(facteurd):
    d = daemon(facteurd, notify_classes="policy")
    with d.connect(source=OUTSIDER) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
        # defer_unauth_destination (Postfix's default relay restriction)
        check(c.cmd("RCPT TO:<victim@far.example>"), 454, "4.7.1")
        # and hangs up without QUIT
    [(m, raw)] = notices(d)
    assert m["Subject"].endswith("[%s]" % OUTSIDER)
    lines = m.get_payload().splitlines()
    assert " In:  RCPT TO:<victim@far.example>" in lines
    assert " Out: 454 4.7.1 <victim@far.example>: Relay access denied" \
        in lines
    assert "Session aborted, reason: lost connection" in lines
    d.wait_log(r"postmaster notice \(policy\)")


def test_unlisted_classes_send_nothing(facteurd):
    # a policy reject and a protocol error; only "bounce, delay" listed
    d = daemon(facteurd, notify_classes="delay, 2bounce")
    with d.connect(source=OUTSIDER) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("FROBNICATE"), 500)
        check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
        check(c.cmd("RCPT TO:<victim@far.example>"), 454)
        check(c.cmd("QUIT"), 221)
    no_notice(d)


def test_default_classes_ignore_plain_rejects(facteurd):
    # notify_classes = resource, software (Postfix's default)
    d = daemon(facteurd)
    with d.connect(source=OUTSIDER) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
        check(c.cmd("RCPT TO:<victim@far.example>"), 454)
        check(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
        check(c.cmd("BOGUS"), 500)
        check(c.cmd("QUIT"), 221)
    no_notice(d)


def test_bounce_class_goes_to_bounce_notice_recipient(facteurd):
    d = daemon(facteurd, notify_classes="bounce",
               bounce_notice_recipient="bob@example.test")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
        check(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1")
        check(c.cmd("QUIT"), 221)
    [(m, raw)] = notices(d, "bob@example.test")
    assert m["To"] == "Postmaster <bob@example.test>"
    assert " In:  RCPT TO:<nobody@example.test>" in m.get_payload()
    assert d.files("alice@example.test") == []


def test_resource_queue_write_error(facteurd):
    # default classes: a message that cannot be written to the queue (a
    # remote recipient: local ones may be delivered without the queue)
    d = daemon(facteurd, relayhost="[127.0.0.1]:1")
    incoming = os.path.join(d.queue, "incoming")
    mode = os.stat(incoming).st_mode & 0o7777
    msg = make_msg("cannot be queued", to="someone@far.example")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
        check(c.cmd("RCPT TO:<someone@far.example>"), 250)
        check(c.cmd("DATA"), 354)
        os.chmod(incoming, 0o500)       # the mail owner cannot create files
        try:
            c.send(dot_stuff(msg))
            check(c.reply(), 451, "4.3.0", "queue file write error")
        finally:
            os.chmod(incoming, mode)
        check(c.cmd("QUIT"), 221)
    [(m, raw)] = notices(d)
    lines = m.get_payload().splitlines()
    assert " In:  DATA" in lines
    assert " Out: 451 4.3.0 Error: queue file write error" in lines
    # the message content is not part of the transcript
    assert b"cannot be queued" not in raw
    d.wait_log(r"postmaster notice \(resource\)")
    # the refused message is nowhere (the relayhost is unreachable: it
    # would wait in deferred/)
    settle(d)


def test_long_session_keeps_the_last_lines(facteurd):
    # the transcript is bounded: a chatty session keeps its newest lines
    d = daemon(facteurd, notify_classes="protocol",
               smtpd_junk_command_limit="1000")
    with d.session() as c:
        for i in range(300):
            c.send("NOOP %d\r\n" % i)
        for i in range(300):
            check(c.reply(), 250)
        check(c.cmd("X" * 3000), 500, "5.5.2", "line too long")
        check(c.cmd("QUIT"), 221)
    [(m, raw)] = notices(d)
    lines = m.get_payload().splitlines()
    assert len(raw) < 8192, len(raw)
    dropped = [l for l in lines if l.endswith("earlier lines not kept)")]
    assert len(dropped) == 1, lines[:5]
    assert " In:  NOOP 299" in lines
    assert " In:  NOOP 0" not in lines
    assert " Out: 500 5.5.2 Error: line too long" in lines
    assert lines.index(" In:  NOOP 299") < lines.index(
        " Out: 500 5.5.2 Error: line too long")


def test_too_many_errors_is_the_reason(facteurd):
    d = daemon(facteurd, notify_classes="protocol",
               smtpd_hard_error_limit="3", smtpd_soft_error_limit="10")
    with d.session() as c:
        check(c.cmd("BAD1"), 500)
        check(c.cmd("BAD2"), 500)
        check(c.cmd("BAD3"), 500)
        check(c.reply(), 421, "4.7.0", "too many errors")
        assert c.expect_closed()
    [(m, raw)] = notices(d)
    lines = m.get_payload().splitlines()
    assert " In:  BAD3" in lines
    i = lines.index(" Out: 421 4.7.0 mx.example.test Error: too many errors")
    assert lines[i + 1:i + 3] == ["", "Session aborted, reason: too many "
                                  "errors"], lines[i:]
    assert d.log().count("postmaster notice") == 1
