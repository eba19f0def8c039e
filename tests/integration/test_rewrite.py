"""
test_rewrite.py - address rewriting in Postfix cleanup's order: canonical
maps (sender_/recipient_/canonical_maps with their *_classes), then
masquerade_domains (masquerade_classes, masquerade_exceptions, the
"!sub.domain" exception), then virtual_alias_maps; on the envelope (the
delivered Return-Path / Delivered-To) and on the address headers; headers
of remote clients only with remote_header_rewrite_domain
(local_header_rewrite_clients); local submission (sendmail) too; a map that
cannot answer defers (4xx), never bounces.
"""
import os
import re

from harness import check, dot_stuff
from test_sendmail import sendmail


def msg(headers, body=b"Hello.\r\n"):
    h = "".join("%s: %s\r\n" % kv for kv in headers)
    h += "Subject: t\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    h += "Message-ID: <%d@client.test>\r\n" % os.getpid()
    return h.encode() + b"\r\n" + body


def send(d, sender, rcpts, m, expect=250):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        for r in rcpts:
            check(c.cmd("RCPT TO:<%s>" % r), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(m))
        return check(c.reply(), expect)


def one(d, addr):
    got = d.wait_files(addr, 1)
    assert len(got) == 1, d.diagnostics()
    return got[0]


def test_seed003_canonical_envelope_and_headers(facteurd):
    d = facteurd(start=False)
    # seed 003's canonical table, sender and recipient sides
    d.params["canonical_maps"] = d.table(
        "canonical",
        "fred@thebible.linuxfred.lan     frederic.m@example.test\n"
        "fred@linuxfred.lan              frederic.m@example.test\n"
        "@old.test                       @example.test\n")
    d.params["sender_canonical_maps"] = d.table(
        "sender_canonical", "boss@example.test bob@example.test\n")
    d.vmailbox += "frederic.m@example.test example.test/frederic.m/\n"
    d.write_config()
    d.start()
    send(d, "fred@thebible.linuxfred.lan", ["alice@old.test"],
         msg([("From", "Fred <fred@thebible.linuxfred.lan>"),
              ("To", "Alice <alice@old.test>, \"Fred F.\" <fred@linuxfred.lan>"),
              ("Cc", "boss@example.test (the boss)")]))
    f = one(d, "alice@example.test")
    assert f.field("Return-Path") == "<frederic.m@example.test>"
    assert f.field("X-Original-To") == "alice@old.test"
    assert f.field("Delivered-To") == "alice@example.test"
    assert f.header("From") == "Fred <frederic.m@example.test>"
    assert f.header("To") == ("Alice <alice@example.test>, \"Fred F.\" "
                              "<frederic.m@example.test>")
    # sender_canonical_maps is for sender addresses only
    assert f.header("Cc") == "boss@example.test (the boss)"
    # sender_canonical applies to the envelope sender and From:
    send(d, "boss@example.test", ["alice@example.test"],
         msg([("From", "boss@example.test"), ("To", "alice@example.test")]))
    got = d.wait_files("alice@example.test", 2)
    f2 = [d for d in got if d.field("Return-Path") != "<frederic.m@example.test>"]
    assert f2 and f2[0].field("Return-Path") == "<bob@example.test>"
    assert f2[0].header("From") == "bob@example.test"


def test_canonical_before_virtual_and_classes(facteurd):
    d = facteurd(start=False)
    d.valias += "sales@example.test carol@example.test\n"
    # canonical is applied before virtual_alias_maps (seed 003)
    d.params["recipient_canonical_maps"] = d.table(
        "rcanon", "sales@example.test bob@example.test\n")
    # canonical_classes without envelope_sender: the sender stays
    d.params["canonical_maps"] = d.table(
        "canon", "alice@example.test alice.a@example.test\n")
    d.params["canonical_classes"] = "envelope_recipient, header_sender"
    d.vmailbox += "alice.a@example.test example.test/alice.a/\n"
    d.write_config()
    d.start()
    send(d, "alice@example.test", ["sales@example.test"],
         msg([("From", "alice@example.test"), ("To", "sales@example.test")]))
    f = one(d, "bob@example.test")
    assert d.files("carol@example.test") == []
    assert f.field("Return-Path") == "<alice@example.test>"
    assert f.header("From") == "alice.a@example.test"
    # recipient_canonical_classes default includes header_recipient
    assert f.header("To") == "bob@example.test"
    # envelope_recipient: RCPT alice@ goes to alice.a@
    send(d, "x@remote.test", ["alice@example.test"],
         msg([("From", "x@remote.test"), ("To", "alice@example.test")]))
    f = one(d, "alice.a@example.test")
    assert f.field("X-Original-To") == "alice@example.test"
    assert d.files("alice@example.test") == []


def test_masquerade_seed000(facteurd):
    # seed 000: "foo.example.com example.com" - first match wins (Postfix)
    d = facteurd(main_cf={"masquerade_domains": "foo.example.test example.test",
                          "masquerade_exceptions": "root"})
    send(d, "toto@host.foo.example.test", ["alice@example.test"],
         msg([("From", "toto@host.foo.example.test"),
              ("Reply-To", "toto@foo.example.test"),
              ("Sender", "tata@bar.example.test"),
              ("Errors-To", "root@bar.example.test"),
              ("To", "alice@example.test, bob@mail.example.test")]))
    f = one(d, "alice@example.test")
    assert f.field("Return-Path") == "<toto@foo.example.test>"
    assert f.header("From") == "toto@foo.example.test"
    assert f.header("Reply-To") == "toto@foo.example.test"
    assert f.header("Sender") == "tata@example.test"
    assert f.header("Errors-To") == "root@bar.example.test"   # exception
    # header_recipient is in the default masquerade_classes
    assert f.header("To") == "alice@example.test, bob@example.test"


def test_masquerade_seed000_claim(facteurd):
    # seed 000 says the list "foo.example.com example.com" turns
    # tot@foo.example.com into toto@example.com; Postfix (the reference)
    # stops at the first match, foo.example.com itself (test above). The
    # seed's rewrite is what "masquerade_domains = example.com" does:
    d = facteurd(main_cf={"masquerade_domains": "example.test"})
    send(d, "toto@foo.example.test", ["alice@example.test"],
         msg([("From", "toto@foo.example.test")]))
    f = one(d, "alice@example.test")
    assert f.field("Return-Path") == "<toto@example.test>"
    assert f.header("From") == "toto@example.test"


def test_masquerade_exception_and_envelope_recipient(facteurd):
    d = facteurd(main_cf={
        "masquerade_domains": "!sub.example.test, example.test",
        "masquerade_classes": "envelope_sender, envelope_recipient"})
    send(d, "a@x.sub.example.test", ["bob@mx.example.test"],
         msg([("From", "a@mail.example.test"), ("To", "b@x.example.test")]))
    f = one(d, "bob@example.test")      # envelope_recipient masqueraded
    assert f.field("X-Original-To") == "bob@mx.example.test"
    assert f.field("Return-Path") == "<a@x.sub.example.test>"   # !sub
    # no header class here: the headers stay
    assert f.header("From") == "a@mail.example.test"
    assert f.header("To") == "b@x.example.test"
    send(d, "c@deep.mail.example.test", ["bob@example.test"],
         msg([("From", "c@deep.mail.example.test")]))
    got = d.wait_files("bob@example.test", 2)
    assert sorted(g.field("Return-Path") for g in got) == [
        "<a@x.sub.example.test>", "<c@example.test>"]


def test_remote_clients_headers(facteurd):
    # 127.0.0.1 is one of our interfaces: make it "remote" for the headers
    d = facteurd(start=False, main_cf={
        "local_header_rewrite_clients": "permit_sasl_authenticated",
        "masquerade_domains": "example.test"})
    d.params["sender_canonical_maps"] = d.table(
        "scanon", "fred@old.test fred@example.test\n")
    d.write_config()
    d.start()
    send(d, "fred@old.test", ["alice@example.test"],
         msg([("From", "fred@old.test"), ("To", "alice@mx.example.test")]))
    f = one(d, "alice@example.test")
    # the envelope is rewritten for every client, the headers are not
    assert f.field("Return-Path") == "<fred@example.test>"
    assert f.header("From") == "fred@old.test"
    assert f.header("To") == "alice@mx.example.test"
    # with remote_header_rewrite_domain they are, incomplete ones get it
    d.stop()
    d.params["remote_header_rewrite_domain"] = "domain.invalid"
    d.write_config()
    d.start()
    send(d, "fred@old.test", ["bob@example.test"],
         msg([("From", "fred@old.test"), ("To", "bob, alice@mx.example.test"),
              ("Cc", "undisclosed-recipients:;")]))
    f = one(d, "bob@example.test")
    assert f.header("From") == "fred@example.test"
    assert f.header("To") == "bob@domain.invalid, alice@example.test"
    assert f.header("Cc") == "undisclosed-recipients:;"


def test_local_client_incomplete_headers(facteurd):
    d = facteurd(main_cf={"myorigin": "example.test",
                          "append_dot_mydomain": "yes"})
    send(d, "alice@example.test", ["bob@example.test"],
         msg([("From", "Alice <alice>"), ("To", "bob, carol@mx"),
              ("Subject-Like", "alice")]))
    f = one(d, "bob@example.test")
    assert f.field("Return-Path") == "<alice@example.test>"
    assert f.header("From") == "Alice <alice@example.test>"
    assert f.header("To") == "bob@example.test, carol@mx.example.test"
    assert f.header("Subject-Like") == "alice"


def test_lookup_failure_defers(facteurd):
    d = facteurd(main_cf={"recipient_canonical_maps": "fail:down",
                          "sender_canonical_maps": ""})
    with d.session() as c:
        check(c.cmd("MAIL FROM:<a@remote.test>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 451, "4.3.0")
    d.stop()
    d.params["recipient_canonical_maps"] = ""
    d.params["sender_canonical_maps"] = "fail:down"
    d.write_config()
    d.start()
    r = send(d, "a@remote.test", ["alice@example.test"],
             msg([("From", "a@remote.test")]), expect=451)
    assert "4.3.0" in r.text
    assert d.files("alice@example.test") == []
    assert d.wait_log(r"address rewriting: .*fail:down")


def test_sendmail_local_submission(facteurd):
    d = facteurd(start=False, main_cf={"myorigin": "example.test",
                                       "masquerade_domains": "example.test"})
    d.params["sender_canonical_maps"] = d.table(
        "scanon", "boss@example.test bob@example.test\n")
    d.write_config()
    d.start()
    r = sendmail(d, ["-f", "boss", "-i", "alice"],
                 b"From: boss\nTo: alice, carol@www.example.test\n"
                 b"Subject: local\n\nhi\n")
    assert r.returncode == 0, r.stderr
    f = one(d, "alice@example.test")
    assert f.field("Return-Path") == "<bob@example.test>"
    assert f.header("From") == "bob@example.test"
    assert f.header("To") == "alice@example.test, carol@example.test"


def test_bad_classes_refused_at_start(facteurd):
    d = facteurd(start=False, main_cf={"canonical_classes": "envelope_sender, "
                                       "header_from"})
    r = d.cli("check")
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0
    assert re.search(r"main\.cf, line \d+: canonical_classes: unknown address "
                     r"class \"header_from\"", out), out
    # facteurd refuses to start with it, saying why
    d.start_fails("header_from")


def test_regexp_canonical(facteurd):
    # pattern tables get the whole address (Postfix's canonical(5) regexp
    # form), $1 substitution included
    d = facteurd(start=False)
    d.params["canonical_maps"] = d.table(
        "canonical.regexp",
        "/^(.*)@[a-z0-9]+\\.old\\.test$/ ${1}@example.test\n", "regexp")
    d.write_config()
    d.start()
    send(d, "carol@h1.old.test", ["bob@h2.old.test"],
         msg([("From", "Carol <carol@h1.old.test>"),
              ("To", "bob@h2.old.test")]))
    f = one(d, "bob@example.test")
    assert f.field("Return-Path") == "<carol@example.test>"
    assert f.field("X-Original-To") == "bob@h2.old.test"
    assert f.header("From") == "Carol <carol@example.test>"
    assert f.header("To") == "bob@example.test"
