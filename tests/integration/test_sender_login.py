"""
test_sender_login.py - smtpd_sender_login_maps with the
*_sender_login_mismatch restrictions: an authenticated client sends only as
the addresses its login owns, and an address listed in the map cannot be
used without logging in; the refusal comes at RCPT, with Postfix's reply
and log line.
"""

from harness import check, dot_stuff, make_msg
from test_auth import auth_daemon, b64, tls_session, users_text  # noqa: F401
from test_tls import cert  # noqa: F401

LOGINS = ("alice@example.test  alice@example.test\n"
          "dave@example.test   dave@example.test\n"
          "@shared.test        dave@example.test, alice@example.test\n")


def login_daemon(facteurd, cert, users_text, restrictions):
    d = auth_daemon(facteurd, cert, users_text,
                    smtpd_sender_restrictions=restrictions)
    d.stop()
    d.params["smtpd_sender_login_maps"] = d.table("logins", LOGINS)
    d.write_config()
    d.start()
    return d


def dave(d):
    c, _ = tls_session(d)
    check(c.cmd("AUTH PLAIN " + b64("\0dave@example.test\0dave pw")), 235)
    return c


def test_authenticated_sender_must_be_owned(facteurd, cert, users_text):
    d = login_daemon(facteurd, cert, users_text,
                     "reject_authenticated_sender_login_mismatch, "
                     "reject_unauthenticated_sender_login_mismatch")
    with dave(d) as c:
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 553, "5.7.1",
              "<alice@example.test>: Sender address rejected: not owned by "
              "user dave@example.test")
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<nobody@elsewhere.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 553, "5.7.1",
              "not owned by user dave@example.test")
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<anyone@shared.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<Dave@Example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg(sender="dave@example.test")))
        check(c.reply(), 250, "2.0.0")
    assert len(d.wait_files("alice@example.test", 1)) == 1
    d.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 553 "
               r"5\.7\.1 <alice@example\.test>: Sender address rejected: not "
               r"owned by user dave@example\.test; from=<alice@example\.test> "
               r"to=<alice@example\.test>")


def test_known_sender_needs_login(facteurd, cert, users_text):
    d = login_daemon(facteurd, cert, users_text,
                     "reject_unauthenticated_sender_login_mismatch")
    c, _ = tls_session(d)
    with c:
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 553, "5.7.1",
              "<alice@example.test>: Sender address rejected: not logged in")
        check(c.cmd("RSET"), 250)
        # Not in the map: no owner to log in as.
        check(c.cmd("MAIL FROM:<someone@elsewhere.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    # Logged in, any sender passes this restriction.
    with dave(d) as c:
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)


def test_known_sender_mismatch(facteurd, cert, users_text):
    d = login_daemon(facteurd, cert, users_text,
                     "reject_known_sender_login_mismatch")
    with dave(d) as c:
        check(c.cmd("MAIL FROM:<nobody@elsewhere.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 553, "5.7.1",
              "not owned by user dave@example.test")


def test_map_outage_is_4xx(facteurd, cert, users_text):
    d = auth_daemon(facteurd, cert, users_text,
                    smtpd_sender_restrictions="reject_sender_login_mismatch",
                    smtpd_sender_login_maps="fail:down")
    with dave(d) as c:
        check(c.cmd("MAIL FROM:<dave@example.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 451, "4.3.0",
              "<dave@example.test>: Temporary lookup failure")
