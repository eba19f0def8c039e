"""
test_generic_maps.py - smtp_generic_maps (Postfix's generic(5)): mail that
leaves through the SMTP client has its envelope sender, envelope
recipients and address headers rewritten (full address, then @domain
keeping the user); the body and the local copies stay as they were; a
table that cannot answer defers the SMTP delivery (4.3.0) and nothing
leaves unrewritten.
"""
import pytest

from capture import Capture
from harness import make_msg, msgid_of

GENERIC = ("alice@example.test alice.public@public.example\n"
           "old@far.example new@far.example\n"
           "@example.test @public.example\n")


@pytest.fixture
def remote():
    r = Capture()
    yield r
    r.close()


def daemon(facteurd, remote, generic=None):
    d = facteurd(start=False, main_cf={
        "relayhost": "[127.0.0.1]:%d" % remote.port,
        "myorigin": "example.test",
        "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
        "queue_run_delay": "1s"})
    d.params["smtp_generic_maps"] = generic or d.table("generic", GENERIC)
    d.write_config()
    d.start()
    return d


def test_generic_rewrites_envelope_and_headers(facteurd, remote):
    d = daemon(facteurd, remote)
    extra = (b"Cc: Bob <bob@example.test>, friend@far.example\r\n"
             b"Reply-To: carol@example.test\r\n"
             b"Sender: alice@example.test\r\n")
    body = b"Write to alice@example.test, not to bob@example.test.\r\n"
    msg = make_msg("generic", sender="alice@example.test",
                   to="old@far.example", extra_headers=extra, body=body)
    mid = msgid_of(msg)
    d.send("alice@example.test", ["old@far.example", "friend@far.example",
                                  "bob@example.test"], msg)
    got = remote.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    sender, rcpts, data = got[0]
    assert sender == "alice.public@public.example"
    assert sorted(rcpts) == ["friend@far.example", "new@far.example"]
    head, _, rest = data.partition(b"\r\n\r\n")
    head += b"\r\n"
    assert b"From: <alice.public@public.example>\r\n" in head, head
    assert b"To: <new@far.example>\r\n" in head, head
    assert (b"Cc: Bob <bob@public.example>, friend@far.example\r\n"
            in head), head
    assert b"Reply-To: carol@public.example\r\n" in head, head
    assert b"Sender: alice.public@public.example\r\n" in head, head
    unfolded = head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    for line in unfolded.split(b"\r\n"):
        if not line.lower().startswith(b"received:"):
            assert b"@example.test" not in line, line
    assert rest.startswith(body), rest      # the body is not touched
    # the local copy is not rewritten
    local = d.wait_msgid("bob@example.test", mid)[0]
    assert local.field("Return-Path") == "<alice@example.test>"
    assert local.header("From") == "<alice@example.test>"
    assert local.header("Cc") == "Bob <bob@example.test>, friend@far.example"
    d.wait_log(r"to=<old@far\.example>, relay=127\.0\.0\.1.*status=sent")


def test_generic_unmatched_unchanged(facteurd, remote):
    d = daemon(facteurd, remote)
    msg = make_msg("plain", sender="someone@elsewhere.example",
                   to="friend@far.example")
    d.send("someone@elsewhere.example", ["friend@far.example"], msg)
    sender, rcpts, data = remote.wait_messages(1)[0]
    assert sender == "someone@elsewhere.example"
    assert rcpts == ["friend@far.example"]
    assert b"From: <someone@elsewhere.example>\r\n" in data


def test_generic_lookup_failure_defers(facteurd, remote):
    d = daemon(facteurd, remote, generic="fail:generic-down")
    msg = make_msg("down", sender="alice@example.test", to="friend@far.example")
    mid = msgid_of(msg)
    qid = d.send("alice@example.test", ["friend@far.example",
                                        "bob@example.test"], msg)
    d.wait_log(r"%s: to=<friend@far\.example>, .*dsn=4\.3\.0, "
               r"status=deferred \(smtp_generic_maps" % qid)
    d.wait_msgid("bob@example.test", mid)     # local delivery unaffected
    assert remote.messages == []
