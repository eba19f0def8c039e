"""
test_bounce.py - delivery status notifications end to end: a remote 5xx,
an expired message, a delay warning and a NOTIFY=SUCCESS report each come
back to a local sender as an RFC 3464 multipart/report, parsed here with
Python's email package; RET=HDRS returns headers only; NOTIFY=NEVER and a
null sender get none (and no loop). notify_classes: a bounce that cannot
be delivered goes to 2bounce_notice_recipient (whole, from the
double-bounce sender) or is dropped; a postmaster notice that fails is
discarded; "bounce" and "delay" send header copies to
bounce_notice_recipient / delay_notice_recipient. The remote is the capture
server behind relayhost; timers are seconds so the tests stay fast.
"""
import email
import os
import time

from harness import check, make_msg, queue_id_of, dot_stuff
from test_outbound import relay_daemon, remote  # noqa: F401 (fixture)

SENDER = "alice@example.test"


def reject_nobody(a):
    if a.startswith("nobody"):
        return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % a
    return "250 2.1.5 Ok"


def send_dsn(d, sender, rcpts, msg, mail_params=""):
    """One transaction with DSN parameters: rcpts are (addr, params)."""
    with d.session() as c:
        check(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_params)), 250)
        for addr, params in rcpts:
            check(c.cmd("RCPT TO:<%s>%s" % (addr, params)), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.cmd("QUIT"), 221)
        return qid


def notices(d, n=1, timeout=20):
    """The first n messages in the sender's maildir, parsed."""
    d.wait_files(SENDER, n, timeout=timeout)
    files = sorted(d.files(SENDER))
    assert len(files) >= n, d.diagnostics()
    return [email.message_from_bytes(open(p, "rb").read()) for p in files]


def report_parts(m):
    assert m.get_content_type() == "multipart/report"
    assert m.get_param("report-type") == "delivery-status"
    parts = m.get_payload()
    assert len(parts) == 3
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    return parts


def recipients(status_part):
    """Per-message fields, then the per-recipient field groups."""
    groups = status_part.get_payload()
    return groups[0], groups[1:]


def test_5xx_for_one_of_two_returns_a_dsn(facteurd, remote):
    remote.rcpt_reply = reject_nobody
    d = relay_daemon(facteurd, remote.port)
    msg = make_msg("returned", sender=SENDER, to="ok@far.example",
                   body=b"the original body\r\n")
    qid = send_dsn(d, SENDER, [("ok@far.example", ""),
                               ("nobody@far.example",
                                " ORCPT=rfc822;Nobody@far.example")], msg,
                   " ENVID=env42")
    m = d.wait_log(r"%s: sender non-delivery notification: ([0-9A-F]{17})"
                   % qid)
    new = m.group(1)
    assert "/bounce[" in [l for l in d.log().splitlines()
                          if "non-delivery notification" in l][0]
    d.wait_log(r"%s: to=<alice@example\.test>, relay=virtual, .*status=sent"
               % new)
    d.wait_log(r"%s: removed" % qid)
    [n] = notices(d)
    assert n["From"] == "MAILER-DAEMON@mx.example.test (Mail Delivery System)"
    assert n["To"] == SENDER
    assert n["Subject"] == "Undelivered Mail Returned to Sender"
    assert n["Auto-Submitted"] == "auto-replied"
    assert n["Return-Path"] == "<>"
    assert n["Message-Id"].endswith(".%s@mx.example.test>" % new)
    text, status, orig = report_parts(n)
    assert "This is the mail system at host mx.example.test." in \
        text.get_payload()
    assert "<nobody@far.example>: host 127.0.0.1[127.0.0.1] said: 550" in \
        text.get_payload()
    per_msg, rcpts = recipients(status)
    assert per_msg["Reporting-MTA"] == "dns; mx.example.test"
    assert per_msg["X-Postfix-Queue-ID"] == qid
    assert per_msg["X-Postfix-Sender"] == "rfc822; " + SENDER
    assert per_msg["Original-Envelope-Id"] == "env42"
    assert per_msg["Arrival-Date"]
    assert len(rcpts) == 1
    r = rcpts[0]
    assert r["Final-Recipient"] == "rfc822; nobody@far.example"
    assert r["Original-Recipient"] == "rfc822; Nobody@far.example"
    assert r["Action"] == "failed"
    assert r["Status"] == "5.1.1"
    assert r["Remote-MTA"] == "dns; 127.0.0.1"
    assert r["Diagnostic-Code"] == ("smtp; 550 5.1.1 <nobody@far.example>: "
                                    "Recipient address rejected: User unknown")
    # the whole original comes back
    assert orig.get_content_type() == "message/rfc822"
    inner = orig.get_payload()[0]
    assert inner["Subject"] == "returned"
    assert "the original body" in inner.get_payload()
    # the other recipient got it once, and nothing more is sent
    got = remote.wait_messages(1)
    assert [g[1] for g in got] == [["ok@far.example"]]
    assert not d.wait_queue_empty()
    time.sleep(1.5)
    assert len(remote.messages) == 1
    assert len(d.files(SENDER)) == 1


def test_null_sender_gets_no_dsn(facteurd, remote):
    remote.rcpt_reply = reject_nobody
    d = relay_daemon(facteurd, remote.port)
    qid = send_dsn(d, "", [("nobody@far.example", "")],
                   make_msg("bounce of a bounce", sender="",
                            to="nobody@far.example"))
    d.wait_log(r"%s: to=<nobody@far\.example>, .*dsn=5\.1\.1, status=bounced"
               % qid)
    d.wait_log(r"%s: undeliverable mail from the null sender: no "
               r"non-delivery notification" % qid)
    d.wait_log(r"%s: removed" % qid)
    assert not d.wait_queue_empty()
    time.sleep(1.5)
    assert "notification: " not in d.log()
    assert d.queue_files() == []
    assert remote.connections == 1


def test_lifetime_expiry_returns_the_message(facteurd, remote):
    remote.rcpt_reply = lambda a: "451 4.3.0 <%s>: try again later" % a
    d = relay_daemon(facteurd, remote.port, maximal_queue_lifetime="3s")
    qid = send_dsn(d, SENDER, [("slow@far.example", "")],
                   make_msg("expires", sender=SENDER, to="slow@far.example"))
    d.wait_log(r"%s: to=<slow@far\.example>, .*status=deferred" % qid)
    d.wait_log(r"%s: from=<alice@example\.test>, status=expired, returned "
               r"to sender" % qid, timeout=20)
    d.wait_log(r"%s: sender non-delivery notification: " % qid)
    d.wait_log(r"%s: removed" % qid)
    [n] = notices(d)
    assert n["Subject"] == "Undelivered Mail Returned to Sender"
    _, status, orig = report_parts(n)
    _, rcpts = recipients(status)
    assert len(rcpts) == 1
    assert rcpts[0]["Final-Recipient"] == "rfc822; slow@far.example"
    assert rcpts[0]["Action"] == "failed"
    assert rcpts[0]["Status"] == "4.3.0"
    assert "try again later" in rcpts[0]["Diagnostic-Code"]
    assert orig.get_payload()[0]["Subject"] == "expires"
    assert not d.wait_queue_empty()
    assert remote.messages == []


def test_delay_warning_sent_once(facteurd, remote):
    remote.rcpt_reply = lambda a: "451 4.3.0 busy"
    d = relay_daemon(facteurd, remote.port, delay_warning_time="2s")
    qid = send_dsn(d, SENDER, [("slow@far.example", "")],
                   make_msg("delayed", sender=SENDER, to="slow@far.example",
                            body=b"secret body\r\n"))
    m = d.wait_log(r"%s: sender delay notification: ([0-9A-F]{17})" % qid,
                   timeout=20)
    d.wait_log(r"%s: to=<alice@example\.test>, .*status=sent" % m.group(1))
    # several more attempts: still one warning
    attempts = len([l for l in d.log().splitlines()
                    if "%s: to=<slow@far.example>" % qid in l])
    deadline = time.time() + 15
    while time.time() < deadline:
        n_now = len([l for l in d.log().splitlines()
                     if "%s: to=<slow@far.example>" % qid in l])
        if n_now >= attempts + 3:
            break
        time.sleep(0.1)
    assert n_now >= attempts + 3, d.diagnostics()
    assert d.log().count("%s: sender delay notification" % qid) == 1
    [n] = notices(d)
    assert len(d.files(SENDER)) == 1
    assert n["Subject"] == "Delayed Mail (still being retried)"
    text, status, hdrs = report_parts(n)
    assert "THIS IS A WARNING ONLY" in text.get_payload()
    _, rcpts = recipients(status)
    assert rcpts[0]["Action"] == "delayed"
    assert rcpts[0]["Status"] == "4.3.0"
    assert rcpts[0]["Will-Retry-Until"]
    assert hdrs.get_content_type() == "text/rfc822-headers"
    assert "secret body" not in hdrs.as_string()
    # the message itself is still queued
    assert qid in os.listdir(os.path.join(d.queue, "deferred")) + \
        os.listdir(os.path.join(d.queue, "active"))


def test_ret_hdrs_returns_headers_only(facteurd, remote):
    remote.rcpt_reply = reject_nobody
    d = relay_daemon(facteurd, remote.port)
    qid = send_dsn(d, SENDER, [("nobody@far.example", "")],
                   make_msg("headers only", sender=SENDER,
                            to="nobody@far.example",
                            body=b"do not return this body\r\n"),
                   " RET=HDRS")
    d.wait_log(r"%s: sender non-delivery notification: " % qid)
    [n] = notices(d)
    _, _, hdrs = report_parts(n)
    assert hdrs.get_content_type() == "text/rfc822-headers"
    raw = hdrs.get_payload()
    assert "Subject: headers only" in raw
    assert "do not return this body" not in n.as_string()


def test_notify_never_and_success(facteurd, remote):
    remote.rcpt_reply = reject_nobody
    d = relay_daemon(facteurd, remote.port)
    qid = send_dsn(d, SENDER, [("nobody@far.example", " NOTIFY=NEVER"),
                               ("nobody2@far.example", ""),
                               ("nobody3@far.example", " NOTIFY=FAILURE"),
                               ("ok@far.example", " NOTIFY=SUCCESS,FAILURE")],
                   make_msg("notify", sender=SENDER, to="ok@far.example"))
    d.wait_log(r"%s: to=<nobody@far\.example>, .*status=bounced" % qid)
    d.wait_log(r"%s: sender non-delivery notification: " % qid)
    d.wait_log(r"%s: sender delivery status notification: " % qid)
    d.wait_log(r"%s: removed" % qid)
    got = notices(d, 2)
    time.sleep(1)
    assert len(d.files(SENDER)) == 2
    by_subject = {n["Subject"]: n for n in got}
    # the failures, without the NOTIFY=NEVER one
    _, status, _ = report_parts(by_subject["Undelivered Mail Returned to Sender"])
    _, rcpts = recipients(status)
    assert sorted(r["Final-Recipient"] for r in rcpts) == [
        "rfc822; nobody2@far.example", "rfc822; nobody3@far.example"]
    for r in rcpts:
        addr = r["Final-Recipient"].split("; ")[1]
        assert r["Action"] == "failed" and r["Status"] == "5.1.1"
        assert r["Remote-MTA"] == "dns; 127.0.0.1"
        assert r["Diagnostic-Code"] == (
            "smtp; 550 5.1.1 <%s>: Recipient address rejected: User unknown"
            % addr)
    # the success report
    n = by_subject["Successful Mail Delivery Report"]
    _, status, _ = report_parts(n)
    _, rcpts = recipients(status)
    assert [r["Final-Recipient"] for r in rcpts] == ["rfc822; ok@far.example"]
    # handed to a next hop that was not asked for DSNs (RFC 3464 2.3.3)
    assert rcpts[0]["Action"] == "relayed"
    assert rcpts[0]["Status"] == "2.0.0"
    assert rcpts[0]["Remote-MTA"] == "dns; 127.0.0.1"


def pm_daemon(facteurd, remote, **extra):
    # myorigin example.test: "postmaster" is postmaster@example.test, an
    # alias of alice; double-bounce@example.test is the notices' sender
    params = {"myorigin": "example.test"}
    params.update(extra)
    return relay_daemon(facteurd, remote.port, **params)


def test_double_bounce_to_postmaster(facteurd, remote):
    remote.rcpt_reply = reject_nobody
    d = pm_daemon(facteurd, remote, notify_classes="resource, software, 2bounce")
    qid = send_dsn(d, "", [("nobody@far.example", "")],
                   make_msg("a bounce that bounces", sender="",
                            to="nobody@far.example",
                            body=b"the bounced bounce\r\n"))
    m = d.wait_log(r"%s: postmaster non-delivery notification: ([0-9A-F]{17})"
                   % qid)
    d.wait_log(r"%s: to=<\S+@example\.test>, .*status=sent" % m.group(1))
    d.wait_log(r"%s: removed" % qid)
    [n] = notices(d)
    assert n["Subject"] == "Postmaster Copy: Undelivered Mail"
    assert n["To"] == "postmaster@example.test"
    assert n["Return-Path"] == "<double-bounce@example.test>"
    text, status, orig = report_parts(n)
    assert "Enclosed is the mail delivery report that you requested." in \
        text.get_payload()
    per_msg, rcpts = recipients(status)
    assert rcpts[0]["Final-Recipient"] == "rfc822; nobody@far.example"
    assert rcpts[0]["Status"] == "5.1.1"
    # the whole undeliverable bounce is enclosed
    assert orig.get_content_type() == "message/rfc822"
    assert "the bounced bounce" in orig.get_payload()[0].get_payload()
    assert "undeliverable mail from the null sender" not in d.log()


def test_double_bounce_not_deliverable_is_discarded(facteurd, remote):
    """2bounce_notice_recipient itself is rejected: the postmaster notice
    (from double-bounce@) is dropped, nothing loops."""
    remote.rcpt_reply = reject_nobody
    d = pm_daemon(facteurd, remote, notify_classes="2bounce",
                  **{"2bounce_notice_recipient": "nobody-pm@far.example"})
    qid = send_dsn(d, "", [("nobody@far.example", "")],
                   make_msg("bounce", sender="", to="nobody@far.example"))
    m = d.wait_log(r"%s: postmaster non-delivery notification: ([0-9A-F]{17})"
                   % qid)
    new = m.group(1)
    d.wait_log(r"%s: to=<nobody-pm@far\.example>, .*status=bounced" % new)
    d.wait_log(r"%s: discarding undeliverable postmaster notification" % new)
    d.wait_log(r"%s: removed" % new)
    assert not d.wait_queue_empty()
    time.sleep(1.5)
    assert d.log().count("notification: ") == 1
    assert d.queue_files() == []
    # the original and the notice were each tried once, nothing more
    rcpts = [c for conn in remote.conns for c in conn.commands
             if c.upper().startswith("RCPT")]
    assert len(rcpts) == 2, rcpts


def test_bounce_class_sends_header_copy(facteurd, remote):
    remote.rcpt_reply = reject_nobody
    d = pm_daemon(facteurd, remote, notify_classes="bounce",
                  bounce_notice_recipient="bob@example.test")
    qid = send_dsn(d, SENDER, [("nobody@far.example", "")],
                   make_msg("copied", sender=SENDER, to="nobody@far.example",
                            body=b"private body text\r\n"))
    d.wait_log(r"%s: sender non-delivery notification: " % qid)
    d.wait_log(r"%s: postmaster non-delivery notification: " % qid)
    [mine] = notices(d)
    assert mine["Subject"] == "Undelivered Mail Returned to Sender"
    files = d.wait_files("bob@example.test", 1)
    pm = email.message_from_bytes(open(files[0].path, "rb").read())
    assert pm["Subject"] == "Postmaster Copy: Undelivered Mail"
    assert pm["To"] == "bob@example.test"
    assert pm["Return-Path"] == "<double-bounce@example.test>"
    text, status, orig = report_parts(pm)
    # headers only, as Postfix: the body stays private
    assert orig.get_content_type() == "text/rfc822-headers"
    assert "Subject: copied" in orig.get_payload()
    assert b"private body text" not in open(files[0].path, "rb").read()


def test_delay_class_sends_header_copy(facteurd, remote):
    remote.rcpt_reply = lambda a: "451 4.3.0 <%s>: try again later" % a
    d = pm_daemon(facteurd, remote, notify_classes="delay",
                  delay_notice_recipient="bob@example.test",
                  delay_warning_time="2s")
    qid = send_dsn(d, SENDER, [("slow@far.example", "")],
                   make_msg("slow", sender=SENDER, to="slow@far.example",
                            body=b"private body text\r\n"))
    d.wait_log(r"%s: sender delay notification: " % qid, timeout=20)
    d.wait_log(r"%s: postmaster delay notification: " % qid)
    files = d.wait_files("bob@example.test", 1)
    pm = email.message_from_bytes(open(files[0].path, "rb").read())
    assert pm["Subject"] == "Postmaster Warning: Delayed Mail"
    text, status, orig = report_parts(pm)
    assert recipients(status)[1][0]["Action"] == "delayed"
    assert orig.get_content_type() == "text/rfc822-headers"
    assert b"private body text" not in open(files[0].path, "rb").read()
