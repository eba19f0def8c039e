"""
test_user_limits.py - sending limits per SASL-authenticated user:
smtpd_sasl_user_message_rate_limit and _recipient_rate_limit (450 4.7.1
and a warning past them), per-login values from smtpd_sasl_user_limit_maps,
and past smtpd_sasl_user_hold_threshold the user's accepted mail put on
hold (released with `facteur queue release`) with exactly one notice to
the postmaster per hold period. Clients that did not authenticate are not
concerned.
"""
import base64
import re
import time

import pytest

from harness import check, dot_stuff, make_msg

SRC = "127.0.0.3"


def auth_line(user, pw):
    return "AUTH PLAIN " + base64.b64encode(
        ("\0%s\0%s" % (user, pw)).encode()).decode()


def start(facteurd, limits="", **cf):
    main = {"smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_user_message_rate_limit": "2",
            "smtpd_sasl_user_recipient_rate_limit": "4",
            "smtpd_sasl_user_notice_recipient": "postmaster@example.test"}
    main.update(cf)
    d = facteurd(start=False, main_cf=main)
    d.params["smtpd_sasl_passdb"] = d.table(
        "users", "alice@example.test:{PLAIN}alice-pw\n"
        "Bob@example.test:{PLAIN}bob-pw\n", "passwd-file")
    if limits:
        d.params["smtpd_sasl_user_limit_maps"] = d.table("user_limits", limits)
    d.write_config()
    d.start()
    return d


def login(d, user, pw):
    c = d.session(source=SRC)
    check(c.cmd(auth_line(user, pw)), 235, "2.7.0")
    return c


def send(c, rcpts, subject, expect=250):
    """One message; returns the MAIL reply (and sends it if accepted)."""
    r = c.cmd("MAIL FROM:<sender@example.test>")
    if r.code != 250:
        return r
    for rc in rcpts:
        check(c.cmd("RCPT TO:<%s>" % rc), 250)
    check(c.cmd("DATA"), 354)
    c.send(dot_stuff(make_msg(subject, sender="sender@example.test",
                              to=rcpts[0])))
    return check(c.reply(), expect, "2.0.0")


def test_message_limit_450_and_warning(facteurd):
    d = start(facteurd, smtpd_sasl_user_hold_threshold="0")
    with login(d, "alice@example.test", "alice-pw") as c:
        for i in range(2):
            send(c, ["carol@example.test"], "ok %d" % i)
        r = c.cmd("MAIL FROM:<sender@example.test>")
        check(r, 450, "4.7.1",
              r"Error: too much mail from SASL user alice@example\.test$")
        # no transaction is open after the refusal
        check(c.cmd("RCPT TO:<carol@example.test>"), 503)
    d.wait_log(r"warning: Message delivery request rate limit exceeded: 3 "
               r"for SASL user alice@example\.test from "
               r"unknown\[127\.0\.0\.3\] for service")
    d.wait_files("carol@example.test", 2)
    # counted per user across sessions, whatever the client address
    c = d.session(source="127.0.0.2")
    check(c.cmd(auth_line("ALICE@example.test", "alice-pw")), 235)
    check(c.cmd("MAIL FROM:<sender@example.test>"), 450, "4.7.1")
    c.close()
    # another user, and clients without AUTH, are not concerned
    with login(d, "bob@example.test", "bob-pw") as c:
        for i in range(2):
            send(c, ["carol@example.test"], "bob %d" % i)
    with d.session(source=SRC) as c:
        for i in range(3):
            check(c.cmd("MAIL FROM:<x@example.net>"), 250)
            check(c.cmd("RSET"), 250)


def test_recipient_limit(facteurd):
    d = start(facteurd, smtpd_sasl_user_hold_threshold="0")
    with login(d, "alice@example.test", "alice-pw") as c:
        check(c.cmd("MAIL FROM:<sender@example.test>"), 250)
        for u in ("alice", "bob", "carol", "catchall"):
            check(c.cmd("RCPT TO:<%s@example.test>" % u), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 450, "4.7.1",
              r"Error: too many recipients from SASL user "
              r"alice@example\.test$")
    d.wait_log(r"warning: Recipient address rate limit exceeded: 5 for SASL "
               r"user alice@example\.test from")


def test_per_user_values_from_a_table(facteurd):
    d = start(facteurd, limits=(
        "bob@example.test  message_rate_limit=4, recipient_rate_limit=100\n"
        "alice@example.test message_rate_limit=1\n"
        "carol@example.test bogus=3\n"),
        smtpd_sasl_user_hold_threshold="0")
    with login(d, "Bob@Example.test", "bob-pw") as c:
        for i in range(4):
            check(c.cmd("MAIL FROM:<b@example.test>"), 250)
            check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<b@example.test>"), 450, "4.7.1",
              r"SASL user bob@example\.test")
    with login(d, "alice@example.test", "alice-pw") as c:
        check(c.cmd("MAIL FROM:<a@example.test>"), 250)
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<a@example.test>"), 450, "4.7.1")


def test_bad_table_value_is_logged_and_defaults_apply(facteurd):
    d = start(facteurd, limits="alice@example.test message_rate_limit=x\n",
              smtpd_sasl_user_hold_threshold="0")
    with login(d, "alice@example.test", "alice-pw") as c:
        for _ in range(2):
            check(c.cmd("MAIL FROM:<a@example.test>"), 250)
            check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<a@example.test>"), 450, "4.7.1")
    d.wait_log(r"warning: smtpd_sasl_user_limit_maps: SASL user "
               r"alice@example\.test: \"message_rate_limit=x\": bad number: "
               r"using the main\.cf limits")


def test_table_failure_is_451(facteurd):
    d = start(facteurd, smtpd_sasl_user_limit_maps="fail:down")
    with login(d, "alice@example.test", "alice-pw") as c:
        check(c.cmd("MAIL FROM:<a@example.test>"), 451, "4.3.0")
    d.wait_log(r"warning: smtpd_sasl_user_limit_maps: .*down")


def notices(d):
    return [m for m in d.delivered("alice@example.test")
            if (m.header("Subject") or "").startswith("SASL user ")]


def test_hold_past_the_threshold_with_one_notice(facteurd):
    # limit 2 messages per 2s window; more than 2x2 requests: hold
    d = start(facteurd, smtpd_sasl_user_hold_threshold="2x",
              smtpd_sasl_user_rate_time_unit="2s")
    with login(d, "bob@example.test", "bob-pw") as c:
        for i in range(2):
            send(c, ["carol@example.test"], "before %d" % i)
        for _ in range(3):
            check(c.cmd("MAIL FROM:<sender@example.test>"), 450, "4.7.1")
    d.wait_log(r"warning: SASL user bob@example\.test: 5 messages in 2s "
               r"from unknown\[127\.0\.0\.3\] is over 2x the limit of 2: "
               r"its mail is put on hold for 86400s")
    m = d.wait_log(r"smtpd\[\d+\]: (\w+): postmaster notice: SASL user "
                   r"bob@example\.test put on hold")
    notice_id = m.group(1)
    d.wait_files("carol@example.test", 2)
    # the notice reached the postmaster (postmaster@ -> alice), from <>
    deadline = time.time() + 15
    while not notices(d) and time.time() < deadline:
        time.sleep(0.1)
    got = notices(d)
    assert len(got) == 1, d.diagnostics()
    n = got[0]
    assert n.field("Return-Path") == "<>"
    assert n.header("Auto-Submitted") == "auto-generated"
    assert "MAILER-DAEMON@mx.example.test" in n.header("From")
    assert b"bob@example.test" in n.content
    assert b"facteur queue release" in n.content
    assert notice_id

    # a new window (whole seconds: start + unit < now): mail is accepted
    # again, but goes on hold
    time.sleep(3.5)
    with login(d, "bob@example.test", "bob-pw") as c:
        r = check(send(c, ["carol@example.test"], "held one"), 250)
        qid = re.search(r"queued as (\w+)", r.text).group(1)
        # still past the threshold in this window: no second notice
        for _ in range(5):
            c.cmd("MAIL FROM:<sender@example.test>")
            c.cmd("RSET")
    d.wait_log(r"%s: hold: SASL user bob@example\.test is over its sending "
               r"limits" % qid)
    held = d.queue_files(("hold",))
    assert len(held) == 1 and held[0].endswith(qid), held
    time.sleep(0.5)
    assert len(d.files("carol@example.test")) == 2
    assert len(re.findall(r"postmaster notice", d.log())) == 1
    assert len(notices(d)) == 1
    # other users are not held
    with login(d, "alice@example.test", "alice-pw") as c:
        send(c, ["carol@example.test"], "alice free")
    d.wait_files("carol@example.test", 3)
    # the postmaster releases the held message: it is delivered
    r = d.cli("queue", "release", qid)
    assert r.returncode == 0, r
    d.wait_files("carol@example.test", 4)
    assert d.queue_files(("hold",)) == []


def test_hold_threshold_must_be_above_the_limit(facteurd):
    d = facteurd(start=False, main_cf={"smtpd_sasl_user_hold_threshold": "1x"})
    with pytest.raises(AssertionError) as e:
        d.start()
    assert "smtpd_sasl_user_hold_threshold" in str(e.value)


# ---------------------------------------------------------------- LDAP

LBASE = "dc=limits,dc=test"
LREADER = "cn=reader,%s" % LBASE
LENTRIES = """
dn: {b}
objectClass: dcObject
objectClass: organization
dc: limits
o: limits

dn: {r}
objectClass: person
cn: reader
sn: reader
userPassword: reader pw

dn: uid=alice,{b}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
mail: alice@example.test
description: message_rate_limit=1 recipient_rate_limit=10
""".format(b=LBASE, r=LREADER)


@pytest.fixture(scope="module")
def slapd():
    import dirtables
    yield from dirtables.slapd(LBASE, LREADER, LENTRIES)


def test_per_user_values_from_ldap(facteurd, slapd):
    """An ldap: table answers on a worker; the 235 waits for it."""
    d = facteurd(start=False)
    cf = d.table("limits.cf",
                 "server_host = %s\nversion = 3\nbind = yes\n"
                 "bind_dn = %s\nbind_pw = reader pw\nsearch_base = %s\n"
                 "query_filter = (mail=%%s)\nresult_attribute = description\n"
                 % (slapd.url, LREADER, LBASE), "ldap")
    d.params.update({"smtpd_sasl_auth_enable": "yes",
                     "smtpd_sasl_user_message_rate_limit": "5",
                     "smtpd_sasl_user_hold_threshold": "0",
                     "smtpd_sasl_user_limit_maps": cf})
    d.params["smtpd_sasl_passdb"] = d.table(
        "users", "alice@example.test:{PLAIN}alice-pw\n"
        "bob@example.test:{PLAIN}bob-pw\n", "passwd-file")
    d.write_config()
    d.start()
    with d.session(source=SRC) as c:
        # pipelined after AUTH: MAIL waits for the lookup's verdict
        c.send(auth_line("alice@example.test", "alice-pw") + "\r\n"
               "MAIL FROM:<a@example.test>\r\nRSET\r\n"
               "MAIL FROM:<a@example.test>\r\n")
        check(c.reply(), 235)
        check(c.reply(), 250)
        check(c.reply(), 250)
        check(c.reply(), 450, "4.7.1", r"SASL user alice@example\.test")
    # bob is not in the directory: the main.cf limit
    with login(d, "bob@example.test", "bob-pw") as c:
        for _ in range(5):
            check(c.cmd("MAIL FROM:<b@example.test>"), 250)
            check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<b@example.test>"), 450, "4.7.1")
