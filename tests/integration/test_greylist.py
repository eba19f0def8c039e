"""
test_greylist.py - the check_greylist restriction against the real daemon:
a new (client /24, sender, recipient) triplet gets 450 4.2.0 with
postgrey's text, an early retry too, a retry after greylist_delay is
accepted and the triplet is remembered across a facteurd restart (LMDB
under data_directory); another address of the same /24 shares the
triplet; mynetworks and SASL-authenticated clients are exempt; a client
network is allowed after greylist_auto_allow_count passes; seed 004's
greylisting with its restriction list order works.
Clients use 127.0.0.x source addresses other than 127.0.0.1 (mynetworks);
the /24 of all of them is 127.0.0, so each test uses its own senders.
"""
import base64
import os
import re
import time

from harness import check

RCPT_LIST = "permit_mynetworks, permit_sasl_authenticated, " \
            "reject_unauth_destination, check_greylist"
OUTSIDE = "127.0.0.80"


def gl_daemon(facteurd, **params):
    cf = {"smtpd_recipient_restrictions": RCPT_LIST,
          "smtpd_relay_restrictions": "",
          "greylist_delay": "2s"}
    cf.update(params)
    return facteurd(main_cf=cf)


def rcpt(d, sender, to="alice@example.test", source=OUTSIDE):
    with d.session(source=source) as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        r = c.cmd("RCPT TO:<%s>" % to)
        c.cmd("QUIT")
        return r


def test_greylist_defer_then_accept_and_restart(facteurd):
    d = gl_daemon(facteurd)
    t0 = time.time()
    check(rcpt(d, "joe@remote.test"), 450, "4.2.0",
          r"^4\.2\.0 <alice@example\.test>: Recipient address rejected: Greylisted, "
          r"see http://postgrey\.schweikert\.ch/help/example\.test\.html$")
    d.wait_log(r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.80\]: 450 4\.2\.0 "
               r"<alice@example\.test>: Recipient address rejected: "
               r"Greylisted, see \S+; from=<joe@remote\.test> "
               r"to=<alice@example\.test> proto=ESMTP helo=<client\.test>")
    # an early retry is still deferred
    check(rcpt(d, "joe@remote.test"), 450, "4.2.0")
    # other sender, other recipient: their own triplets
    check(rcpt(d, "ann@remote.test"), 450, "4.2.0")
    check(rcpt(d, "joe@remote.test", to="bob@example.test"), 450, "4.2.0")
    while time.time() - t0 < 2.3:
        time.sleep(0.1)
    check(rcpt(d, "joe@remote.test"), 250)
    d.wait_log(r"smtpd\[\d+\]: greylist: action=pass, reason=retried in time, "
               r"delay=[23], client_address=127\.0\.0\.80, "
               r"sender=joe@remote\.test, recipient=alice@example\.test$")
    # the same /24 shares the triplet
    check(rcpt(d, "joe@remote.test", source="127.0.0.81"), 250)
    # a whole message goes through
    with d.session(source=OUTSIDE) as c:
        check(c.cmd("MAIL FROM:<joe@remote.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(b"Subject: after greylisting\r\n\r\nhello\r\n.\r\n")
        check(c.reply(), 250)
    d.wait_files("alice@example.test", 1)
    # remembered across a restart; a new triplet is still greylisted
    d.stop()
    d.start()
    check(rcpt(d, "joe@remote.test"), 250)
    check(rcpt(d, "new@remote.test"), 450, "4.2.0")
    assert os.path.exists(os.path.join(d.queue, "data", "greylist.lmdb"))


def test_mynetworks_and_authenticated_exempt(facteurd):
    d = facteurd(start=False, main_cf={
        "greylist_delay": "2s", "smtpd_relay_restrictions": "",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_recipient_restrictions": "check_greylist, permit_mynetworks, "
                                        "permit_sasl_authenticated, "
                                        "reject_unauth_destination"})
    users = os.path.join(d.confdir, "users")
    with open(users, "w") as f:
        f.write("dave@example.test:{PLAIN}dave-pw::::::\n")
    d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
    d.write_config()
    d.start()
    # mynetworks (127.0.0.1): even with check_greylist first in the list
    check(rcpt(d, "me@local.test", source="127.0.0.1"), 250)
    # authenticated, from outside, relaying out
    with d.session(source="127.0.0.82") as c:
        cred = base64.b64encode(b"\0dave@example.test\0dave-pw").decode()
        check(c.cmd("AUTH PLAIN " + cred), 235)
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        check(c.cmd("RCPT TO:<someone@elsewhere.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    # not authenticated, from outside: greylisted
    check(rcpt(d, "dave@example.test", source="127.0.0.82"), 450, "4.2.0")


def test_auto_allow_after_passes(facteurd):
    d = gl_daemon(facteurd, greylist_delay="1s", greylist_auto_allow_count="1",
                  greylist_text="Try again in %s seconds")
    check(rcpt(d, "list@remote.test"), 450, "4.2.0",
          r"Recipient address rejected: Try again in 1 seconds$")
    time.sleep(1.2)
    check(rcpt(d, "list@remote.test"), 250)
    # one pass from 127.0.0.0/24 is enough now: new triplets pass at once
    check(rcpt(d, "other@remote.test", to="bob@example.test"), 250)


def test_retry_window(facteurd):
    d = gl_daemon(facteurd, greylist_delay="1s", greylist_retry_window="1s",
                  greylist_auto_allow_count="0")
    check(rcpt(d, "late@remote.test"), 450, "4.2.0")
    time.sleep(2.3)     # past delay + window: starts over
    check(rcpt(d, "late@remote.test"), 450, "4.2.0")


def test_bad_settings_fail_startup(facteurd):
    d = facteurd(start=False, main_cf={"greylist_delay": "soon",
                                       "smtpd_recipient_restrictions":
                                       RCPT_LIST})
    d.expect_exit = True
    try:
        d.start()
        raise AssertionError("started with greylist_delay = soon")
    except AssertionError as e:
        assert re.search(r"greylist_delay", str(e)), e
    out = d.cli("check")
    assert out.returncode != 0
    assert b"greylist_delay" in out.stdout + out.stderr


def test_misspelt_restriction_is_a_startup_error(facteurd):
    d = facteurd(start=False, main_cf={
        "smtpd_recipient_restrictions": "permit_mynetworks, "
                                        "reject_unauth_destination, "
                                        "check_greylst"})
    d.expect_exit = True
    try:
        d.start()
        raise AssertionError("started with check_greylst")
    except AssertionError as e:
        assert re.search(r'unknown restriction "check_greylst" \(did you '
                         r'mean "check_greylist"\?\)', str(e)), e
