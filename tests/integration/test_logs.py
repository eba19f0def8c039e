"""
test_logs.py - maillog lines in Postfix's format, as pflogsumm, fail2ban
and logwatch parse them: one message's life from connect to removed.
"""
import re

from harness import check, dot_stuff, make_msg, queue_id_of

PREFIX = r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ facteur/(\w+)\[(\d+)\]: "


def lines_for(log, qid):
    return [l for l in log.splitlines() if (" %s: " % qid) in l]


def test_delivered_message_log_lines(mx):
    msg = make_msg("logged", sender="sender@example.net",
                   to="alice@example.test")
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.cmd("QUIT"), 221)
    q = re.escape(qid)
    mx.wait_log(r" %s: removed$" % q)
    mx.wait_log(PREFIX + r"disconnect from \S+\[127\.0\.0\.1\]")
    log = mx.log()
    for line in log.splitlines():
        if " facteur/" in line:
            assert re.match(PREFIX, line), "malformed log line: %r" % line

    def find(rx):
        m = re.search(rx, log, re.M)
        assert m, "no line /%s/ in:\n%s" % (rx, "\n".join(lines_for(log, qid))
                                           or log[-3000:])
        return m

    m = find(PREFIX.replace(r"(\w+)", "smtpd") +
             r"connect from \S+\[127\.0\.0\.1\]$")
    assert int(m.group(1)) > 1
    client = find(PREFIX.replace(r"(\w+)", "smtpd") + q +
                  r": client=\S+\[127\.0\.0\.1\]$")
    frm = find(PREFIX + q + r": from=<sender@example\.net>, size=(\d+), "
               r"nrcpt=1\b")
    assert int(frm.group(3)) >= len(msg.replace(b"\r\n", b"\n"))
    to = find(PREFIX + q + r": to=<alice@example\.test>, relay=virtual, "
              r"delay=[\d.]+, (delays=[\d./]+, )?dsn=2\.0\.0, "
              r"status=sent \(delivered to maildir\)$")
    rm = find(PREFIX + q + r": removed$")
    # In the order the events happened.
    assert client.start() < frm.start() < to.start() < rm.start()


def test_alias_delivery_logs_orig_to(mx):
    msg = make_msg("logged-alias", to="team@example.test")
    qid = mx.send("sender@example.net", "team@example.test", msg)
    q = re.escape(qid)
    mx.wait_log(r" %s: removed$" % q)
    log = mx.log()
    for user in ("alice", "bob"):
        assert re.search(PREFIX + q + r": to=<%s@example\.test>, "
                         r"orig_to=<team@example\.test>, relay=virtual, "
                         r".*status=sent" % user, log, re.M), \
            "\n".join(lines_for(log, qid))


def test_rejected_recipient_is_logged(mx):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<nobody@example.test>"), 550)
        check(c.cmd("QUIT"), 221)
    # Postfix: "NOQUEUE: reject: RCPT from host[addr]: 550 5.1.1 <...>: ...;
    # from=<...> to=<...> proto=ESMTP helo=<...>", which fail2ban matches.
    mx.wait_log(PREFIX.replace(r"(\w+)", "smtpd") +
                r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.1\]: 550 5\.1\.1 "
                r"<nobody@example\.test>: Recipient address rejected: .*; "
                r"from=<sender@example\.net> to=<nobody@example\.test> "
                r"proto=ESMTP helo=<client\.test>")


def test_relay_refusal_is_logged(mx):
    with mx.session(source="127.0.0.2") as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        r = c.cmd("RCPT TO:<user@elsewhere.test>")
        assert r.code >= 400
    mx.wait_log(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.2\]: "
                r"[45]54 [45]\.7\.1 <user@elsewhere\.test>: Relay access "
                r"denied; from=<sender@example\.net> to=<user@elsewhere\.test>")
