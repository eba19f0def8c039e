"""
test_alias_stale.py - an alias (a list) with one member that does not exist
still takes mail, as in Postfix: RCPT is accepted, the existing members get
the message once, and the sender gets one RFC 3464 report naming the stale
member. An alias whose targets all do not exist is refused at RCPT (550
5.1.1), and so is an address that no alias rewrites.
"""
import email

from harness import check, dot_stuff, make_msg

SENDER = "bob@example.test"


def test_stale_member_is_bounced_list_still_delivered(facteurd):
    d = facteurd(valias="list@example.test alice@example.test, "
                        "gone@example.test\n"
                        "dead@example.test gone@example.test, "
                        "gone2@example.test\n")
    msg = make_msg("list", sender=SENDER, to="list@example.test")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<%s>" % SENDER), 250)
        check(c.cmd("RCPT TO:<list@example.test>"), 250, "2.1.5")
        # every target is unknown: refused now, nothing to bounce later
        check(c.cmd("RCPT TO:<dead@example.test>"), 550, "5.1.1",
              r"User unknown in virtual mailbox table")
        check(c.cmd("RCPT TO:<nosuch@example.test>"), 550, "5.1.1")
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 250, "2.0.0")
    got = d.wait_files("alice@example.test", 1)
    assert got[0].field("X-Original-To") == "list@example.test"
    # the report comes back to the (local) sender
    d.wait_files(SENDER, 1, timeout=20)
    files = d.files(SENDER)
    assert len(files) == 1, d.diagnostics()
    report = email.message_from_bytes(open(files[0], "rb").read())
    assert report.get_content_type() == "multipart/report"
    status = report.get_payload()[1].get_payload()
    finals = [g["Final-Recipient"] for g in status[1:]]
    assert finals == ["rfc822; gone@example.test"]
    assert status[1]["Action"] == "failed"
    assert status[1]["Status"].startswith("5.1.1")
    # alice got it exactly once
    assert len(d.files("alice@example.test")) == 1
