"""
test_policy_delay_reject.py - smtpd_delay_reject as Postfix has it. With
yes (the default) client, HELO and sender restrictions answer at RCPT;
with no, smtpd_client_restrictions answer when the client connects (the
greeting is the refusal, then "503 5.7.0 Error: access denied" to all but
QUIT), smtpd_helo_restrictions at HELO/EHLO and smtpd_sender_restrictions
at MAIL, each logged as "NOQUEUE: reject: CONNECT|HELO|MAIL from ...".
"""
import time

from harness import check


def daemon(facteurd, delay, **lists):
    d = facteurd(start=False, main_cf={"smtpd_delay_reject": delay})
    for param, (name, text) in lists.items():
        d.params[param] = "check_%s_access %s" % (
            name, d.table(name, text))
    d.write_config()
    if "smtpd_client_restrictions" in lists and delay == "no":
        # the greeting is a refusal: wait for any greeting
        d.spawn()
        deadline = time.time() + 10
        while True:
            try:
                c = d.connect(banner=False)
                c.reply()
                c.close()
                break
            except OSError:
                assert time.time() < deadline, d.diagnostics()
                time.sleep(0.05)
    else:
        d.start()
    return d


def test_client_refused_at_connect(facteurd):
    d = daemon(facteurd, "no", smtpd_client_restrictions=(
        "client", "127.0.0.1 REJECT go away\n"))
    c = d.connect(banner=False)
    check(c.reply(), 554, "5.7.1",
          r"<[^>]*\[127\.0\.0\.1\]>: Client host rejected: go away$")
    check(c.cmd("EHLO client.test"), 503, "5.7.0",
          r"Error: access denied for [^ ]*\[127\.0\.0\.1\]")
    check(c.cmd("MAIL FROM:<a@remote.test>"), 503, "5.7.0")
    check(c.cmd("QUIT"), 221)
    d.wait_log(r"NOQUEUE: reject: CONNECT from [^ ]*\[127\.0\.0\.1\]: 554 "
               r"5\.7\.1 .*Client host rejected: go away; proto=SMTP$")


def test_client_refused_at_rcpt_by_default(facteurd):
    d = daemon(facteurd, "yes", smtpd_client_restrictions=(
        "client", "127.0.0.1 REJECT go away\n"))
    with d.session() as c:
        check(c.cmd("MAIL FROM:<a@remote.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 554, "5.7.1",
              r"Client host rejected: go away")
    d.wait_log(r"NOQUEUE: reject: RCPT from .*Client host rejected")


def test_helo_and_sender_at_their_commands(facteurd):
    d = daemon(facteurd, "no",
               smtpd_helo_restrictions=("helo", "bad.example REJECT\n"),
               smtpd_sender_restrictions=("sender",
                                          "spam@bad.test REJECT\n"))
    c = d.connect()
    check(c.cmd("EHLO bad.example"), 554, "5.7.1",
          r"<bad\.example>: Helo command rejected: Access denied$")
    check(c.cmd("EHLO good.example"), 250)
    check(c.cmd("MAIL FROM:<spam@bad.test>"), 554, "5.7.1",
          r"<spam@bad\.test>: Sender address rejected: Access denied$")
    check(c.cmd("MAIL FROM:<fine@remote.test>"), 250, "2.1.0")
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    check(c.cmd("QUIT"), 221)
    c.close()
    d.wait_log(r"NOQUEUE: reject: HELO from [^ ]*\[127\.0\.0\.1\]: 554 "
               r"5\.7\.1 <bad\.example>: Helo command rejected: Access "
               r"denied; proto=ESMTP helo=<bad\.example>")
    d.wait_log(r"NOQUEUE: reject: MAIL from [^ ]*\[127\.0\.0\.1\]: 554 "
               r"5\.7\.1 <spam@bad\.test>: Sender address rejected: Access "
               r"denied; from=<spam@bad\.test> proto=ESMTP "
               r"helo=<good\.example>")


def test_sender_at_rcpt_by_default(facteurd):
    d = daemon(facteurd, "yes",
               smtpd_helo_restrictions=("helo", "bad.example REJECT\n"),
               smtpd_sender_restrictions=("sender",
                                          "spam@bad.test REJECT\n"))
    with d.session(helo="bad.example") as c:
        check(c.cmd("MAIL FROM:<spam@bad.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 554, "5.7.1",
              r"<bad\.example>: Helo command rejected")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<spam@bad.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 554, "5.7.1",
              r"<spam@bad\.test>: Sender address rejected: Access denied")


def test_bad_value_refused(facteurd):
    d = facteurd(start=False, main_cf={"smtpd_delay_reject": "maybe"})
    r = d.cli("check")
    assert r.returncode != 0
    assert b"smtpd_delay_reject" in r.stderr + r.stdout


def test_stages_on_a_worker(facteurd):
    # "sleep" makes the lists blocking: each stage runs on a worker and the
    # session waits for it (the greeting, the HELO and MAIL replies)
    d = facteurd(start=False, main_cf={"smtpd_delay_reject": "no"})
    d.params["smtpd_client_restrictions"] = "sleep 1"
    d.params["smtpd_helo_restrictions"] = (
        "sleep 1, check_helo_access " + d.table("helo", "bad.example REJECT\n"))
    d.params["smtpd_sender_restrictions"] = (
        "sleep 1, check_sender_access " + d.table("sender",
                                                 "spam@bad.test REJECT\n"))
    d.write_config()
    d.start()
    t0 = time.monotonic()
    c = d.connect()
    assert time.monotonic() - t0 >= 1.0
    # pipelined: each reply waits for its stage, in order
    c.send(b"EHLO bad.example\r\nEHLO good.example\r\n")
    check(c.reply(), 554, "5.7.1", r"<bad\.example>: Helo command rejected")
    check(c.reply(), 250)
    check(c.cmd("MAIL FROM:<spam@bad.test>"), 554, "5.7.1",
          r"Sender address rejected: Access denied")
    t0 = time.monotonic()
    check(c.cmd("MAIL FROM:<fine@remote.test>"), 250, "2.1.0")
    assert time.monotonic() - t0 >= 1.0
    check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    check(c.cmd("QUIT"), 221)
    c.close()
