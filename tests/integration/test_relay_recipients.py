"""
test_relay_recipients.py - who is a valid recipient, as Postfix's smtpd
decides it after the restrictions: relay_recipient_maps for relay_domains
(backup MX / relay hosting), the unknown_*_reject_code of each address
class, relocated_maps ("User has moved to"), smtpd_reject_unlisted_recipient
(implicit, default yes; = no accepts and lets the queue bounce) next to the
explicit reject_unlisted_recipient, smtpd_reject_unlisted_sender, and a
relay_recipient_maps outage (451 4.3.0, never 5xx).
One daemon for the module; variants are master.cf listeners with -o.
"""
import pytest

import harness
from harness import check, free_port

RELAY_RCPTS = ("known@relay.test OK\n"
               "@wild.test OK\n")
RELOCATED = ("gone@example.test new@elsewhere.test\n"
             "oldrelay@relay.test Call 555-0101\n"
             "olduser new-local@elsewhere.test\n"
             "moved@remote.test new@elsewhere.test\n"
             "gone@aliasdom.test new@elsewhere.test\n")
VALIAS_EXTRA = "aliased@relay.test alice@example.test\n"

VARIANTS = {
    # name: -o overrides
    "codes": {"unknown_relay_recipient_reject_code": "450",
              "unknown_local_recipient_reject_code": "450",
              "unknown_virtual_alias_reject_code": "450",
              "unknown_virtual_mailbox_reject_code": "450"},
    "outage": {"relay_recipient_maps": "fail:down"},
    "nounlisted": {"smtpd_reject_unlisted_recipient": "no"},
    "explicit": {"smtpd_reject_unlisted_recipient": "no",
                 "smtpd_recipient_restrictions":
                     "reject_unlisted_recipient, permit_mynetworks, "
                     "reject_unauth_destination"},
    "sender": {"smtpd_reject_unlisted_sender": "yes"},
    "hide": {"show_user_unknown_table_name": "no"},
}


@pytest.fixture(scope="module")
def d(build, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("relayrcpt"))
    ports = {name: free_port() for name in VARIANTS}
    master = ""
    for name, over in VARIANTS.items():
        master += "127.0.0.1:%d inet n - n - - smtpd\n" % ports[name]
        for k, v in over.items():
            master += "  -o %s=%s\n" % (k, v.replace(" ", ""))
    dm = pool.new(start=False, extra_master_cf=master)
    dm.valias += VALIAS_EXTRA
    dm.params.update({
        "relay_domains": "relay.test, wild.test",
        "relay_recipient_maps": dm.table("relay_rcpts", RELAY_RCPTS),
        "relocated_maps": dm.table("relocated", RELOCATED),
        "mydestination": "localhost, local.test",
        "virtual_alias_domains": "aliasdom.test",
        # relayed mail is not our subject: keep it queued quietly
        "relayhost": "[127.0.0.1]:9",
        # set in main.cf so that `facteur check` would name them
        "smtpd_reject_unlisted_recipient": "yes",
        "smtpd_reject_unlisted_sender": "no",
        "unknown_relay_recipient_reject_code": "550",
        "unknown_local_recipient_reject_code": "550",
        "unknown_virtual_alias_reject_code": "550",
        "show_user_unknown_table_name": "yes",
    })
    dm.write_config()
    dm.start()
    dm.ports = ports
    yield dm
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def rcpt(d, to, variant=None, sender="someone@example.net"):
    port = d.ports[variant] if variant else None
    with d.connect(port=port) as c:
        check(c.cmd("EHLO client.test"), 250)
        r = c.cmd("MAIL FROM:<%s>" % sender)
        if r.code != 250:
            return r
        return c.cmd("RCPT TO:<%s>" % to)


def test_relay_recipient_listed(d):
    check(rcpt(d, "known@relay.test"), 250, "2.1.5")
    check(rcpt(d, "anyone@wild.test"), 250, "2.1.5")   # @domain entry


def test_relay_recipient_unlisted_refused(d):
    r = rcpt(d, "stranger@relay.test")
    check(r, 550, "5.1.1")
    assert r.text == ("5.1.1 <stranger@relay.test>: Recipient address "
                      "rejected: User unknown in relay recipient table"), r


def test_relay_recipient_aliased_is_valid(d):
    # a virtual alias makes the address valid, as in Postfix
    check(rcpt(d, "aliased@relay.test"), 250, "2.1.5")


def test_relay_recipient_code(d):
    r = rcpt(d, "stranger@relay.test", "codes")
    check(r, 450, "4.1.1", "User unknown in relay recipient table")


def test_relay_recipient_outage_defers(d):
    r = rcpt(d, "known@relay.test", "outage")
    check(r, 451, "4.3.0")
    assert r.text == ("4.3.0 <known@relay.test>: Temporary lookup "
                      "failure"), r
    d.wait_log(r"warning: .*known@relay.test.*down", timeout=5)
    # hosted domains do not depend on that table
    check(rcpt(d, "alice@example.test", "outage"), 250)


def test_unknown_local_and_alias_codes(d):
    r = rcpt(d, "nobody@local.test")
    check(r, 550, "5.1.1")
    assert r.text == ("5.1.1 <nobody@local.test>: Recipient address "
                      "rejected: User unknown in local recipient table"), r
    check(rcpt(d, "nobody@local.test", "codes"), 450, "4.1.1",
          "User unknown in local recipient table")
    r = rcpt(d, "nobody@aliasdom.test")
    check(r, 550, "5.1.1", "User unknown in virtual alias table")
    check(rcpt(d, "nobody@aliasdom.test", "codes"), 450, "4.1.1",
          "User unknown in virtual alias table")
    check(rcpt(d, "nobody@example.test", "codes"), 450, "4.1.1",
          "User unknown in virtual mailbox table")


def test_relocated(d):
    r = rcpt(d, "gone@example.test")
    check(r, 550, "5.1.6")
    assert r.text == ("5.1.6 <gone@example.test>: Recipient address "
                      "rejected: User has moved to new@elsewhere.test"), r
    # relay domain, before relay_recipient_maps; local domain, bare user
    check(rcpt(d, "oldrelay@relay.test"), 550, "5.1.6",
          "User has moved to Call 555-0101$")
    check(rcpt(d, "olduser@local.test"), 550, "5.1.6",
          "User has moved to new-local@elsewhere.test$")
    # a relocated user is 550 whatever the unknown_*_reject_code
    check(rcpt(d, "gone@example.test", "codes"), 550, "5.1.6")
    # remote addresses too, as Postfix's resolver (relayed otherwise)
    check(rcpt(d, "moved@remote.test"), 550, "5.1.6",
          "<moved@remote.test>: Recipient address rejected: User has moved "
          "to new@elsewhere.test$")
    check(rcpt(d, "gone@elsewhere.test"), 250, "2.1.5")
    # in a virtual alias domain the code is unknown_virtual_alias_reject_code
    check(rcpt(d, "gone@aliasdom.test"), 550, "5.1.6", "User has moved")
    check(rcpt(d, "gone@aliasdom.test", "codes"), 450, "4.1.6",
          "User has moved to new@elsewhere.test$")


def test_reject_unlisted_recipient_no_accepts_and_bounces(d):
    check(rcpt(d, "stranger@relay.test", "nounlisted"), 250, "2.1.5")
    with d.connect(port=d.ports["nounlisted"]) as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<bob@example.test>"), 250)
        check(c.cmd("RCPT TO:<nobody@example.test>"), 250, "2.1.5")
        check(c.cmd("DATA"), 354)
        check(c.cmd("Subject: x\r\n\r\nbody\r\n."), 250, "2.0.0")
    # the queue bounces it to the sender, with the unknown-user reason
    d.wait_log(r"to=<nobody@example.test>.*status=bounced", timeout=20)
    d.wait_files("bob@example.test", 1, timeout=20)


def test_explicit_reject_unlisted_recipient(d):
    r = rcpt(d, "nobody@example.test", "explicit")
    check(r, 550, "5.1.1")
    assert r.text == ("5.1.1 <nobody@example.test>: Recipient address "
                      "rejected: User unknown in virtual mailbox table"), r
    check(rcpt(d, "stranger@relay.test", "explicit"), 550, "5.1.1",
          "User unknown in relay recipient table")
    check(rcpt(d, "alice@example.test", "explicit"), 250)


def test_reject_unlisted_sender(d):
    r = rcpt(d, "alice@example.test", "sender", sender="ghost@example.test")
    check(r, 550, "5.1.0")
    assert r.text == ("5.1.0 <ghost@example.test>: Sender address "
                      "rejected: User unknown in virtual mailbox table"), r
    check(rcpt(d, "alice@example.test", "sender", sender="bob@example.test"),
          250)
    check(rcpt(d, "alice@example.test", "sender",
               sender="someone@example.net"), 250)
    # default (no): an unknown hosted sender is not checked
    check(rcpt(d, "alice@example.test", sender="ghost@example.test"), 250)


def test_show_user_unknown_table_name_no(d):
    r = rcpt(d, "nobody@example.test", "hide")
    check(r, 550, "5.1.1")
    assert r.text == ("5.1.1 <nobody@example.test>: Recipient address "
                      "rejected: User unknown"), r
    check(rcpt(d, "stranger@relay.test", "hide"), 550, "5.1.1",
          "rejected: User unknown$")
    # other reasons keep their text
    check(rcpt(d, "gone@example.test", "hide"), 550, "5.1.6",
          "User has moved to new@elsewhere.test$")


def test_check_has_no_later_notice(d):
    p = d.cli("check")
    out = p.stdout.decode() + p.stderr.decode()
    for name in ("relay_recipient_maps", "relocated_maps",
                 "smtpd_reject_unlisted_recipient",
                 "smtpd_reject_unlisted_sender",
                 "unknown_relay_recipient_reject_code",
                 "unknown_local_recipient_reject_code",
                 "unknown_virtual_alias_reject_code",
                 "show_user_unknown_table_name"):
        assert "%s is not used" % name not in out, out
        assert "%s only tunes Postfix internals" % name not in out, out
    assert p.returncode == 0, out
