"""
test_outbound_mime.py - 8BITMIME and SMTPUTF8 towards the next hop: a
server that does not announce 8BITMIME gets 8-bit MIME parts converted to
quoted-printable (multipart, message/rfc822 inside it, base64 parts left
alone; the text decodes back to the original), a plain 8-bit message gets
MIME headers; disable_mime_output_conversion = yes sends the bytes as they
are; a server with 8BITMIME gets BODY=8BITMIME and the bytes unchanged; a
message that needs SMTPUTF8 bounces (5.6.7) when the server lacks it.
"""
import email
import email.policy

import pytest

from capture import Capture
from harness import check, dot_stuff, free_port, make_msg, queue_id_of

MULTI = (
    b"From: <sender@example.net>\r\n"
    b"To: <friend@far.example>\r\n"
    b"Subject: 8bit parts\r\n"
    b"Message-ID: <mime-1@client.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"zz\"\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"--zz\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Cr\xc3\xa8me br\xc3\xbbl\xc3\xa9e = dessert\r\n"
    b"--zz\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgc=\r\n"
    b"--zz\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe\r\n"
    b"--zz--\r\n")


def daemon(new, remote, **extra):
    params = {"relayhost": "[127.0.0.1]:%d" % remote.port,
              "facteur_dns_servers": "127.0.0.1:%d" % free_port(),
              "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}
    params.update(extra)
    return new(main_cf=params)


def mail_cmd(remote):
    return [c for conn in remote.conns for c in conn.commands
            if c.upper().startswith("MAIL FROM")]


@pytest.fixture
def seven():
    r = Capture(ext=["SIZE 10000000", "PIPELINING"])
    yield r
    r.close()


def test_multipart_downgraded(facteurd, seven):
    d = daemon(facteurd, seven)
    qid = d.send("sender@example.net", ["friend@far.example"], MULTI)
    got = seven.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    data = got[0][2]
    assert max(data) < 0x80, data
    assert "BODY=" not in mail_cmd(seven)[0].upper()
    m = email.message_from_bytes(data.replace(b"\r\n", b"\n"),
                                 policy=email.policy.default)
    assert m["Content-Transfer-Encoding"] == "7bit"
    text, binary, inner = list(m.iter_parts())
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content() == "Cr\u00e8me br\u00fbl\u00e9e = dessert"
    assert binary["Content-Transfer-Encoding"] == "base64"
    assert binary.get_content() == bytes(range(8))
    assert inner["Content-Transfer-Encoding"] == "7bit"
    nested = inner.get_content()
    assert nested["Subject"] == "inner"
    assert nested["Content-Transfer-Encoding"] == "quoted-printable"
    assert nested.get_content() == "Gr\u00fc\u00dfe"
    # the headers outside the converted parts are as they were
    assert b"Subject: 8bit parts\r\n" in data
    assert b"AAECAwQFBgc=\r\n" in data
    d.wait_log(r"%s: to=<friend@far\.example>, .*status=sent" % qid)


def test_plain_8bit_message_gets_mime_headers(facteurd, seven):
    d = daemon(facteurd, seven)
    msg = make_msg("plain", to="friend@far.example",
                   body=b"na\xc3\xafve caf\xc3\xa9\r\n")
    d.send("sender@example.net", ["friend@far.example"], msg)
    got = seven.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    data = got[0][2]
    assert max(data) < 0x80
    m = email.message_from_bytes(data.replace(b"\r\n", b"\n"),
                                 policy=email.policy.default)
    assert m["MIME-Version"] == "1.0"
    assert m.get_content_type() == "text/plain"
    assert m.get_param("charset") == "utf-8"
    assert m.get_content() == "na\u00efve caf\u00e9\n"


def test_conversion_disabled_sends_as_is(facteurd, seven):
    d = daemon(facteurd, seven, disable_mime_output_conversion="yes")
    d.send("sender@example.net", ["friend@far.example"], MULTI)
    got = seven.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    assert got[0][2].endswith(MULTI)
    assert "BODY=" not in mail_cmd(seven)[0].upper()


def test_8bitmime_server_gets_bytes_unchanged(facteurd):
    r = Capture()           # announces 8BITMIME
    try:
        d = daemon(facteurd, r)
        d.send("sender@example.net", ["friend@far.example"], MULTI)
        got = r.wait_messages(1)
        assert len(got) == 1, d.diagnostics()
        assert got[0][2].endswith(MULTI)
        assert mail_cmd(r)[0].upper().endswith(" BODY=8BITMIME")
    finally:
        r.close()


def test_smtputf8_needed_but_not_offered_bounces(facteurd, seven):
    d = daemon(facteurd, seven)
    rcpt = "j\u00fcrgen@far.example"
    with d.session() as c:
        check(c.cmd("MAIL FROM:<alice@example.test> SMTPUTF8"), 250)
        check(c.cmd("RCPT TO:<%s>" % rcpt), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("utf8", sender="alice@example.test",
                                  to="friend@far.example")))
        qid = queue_id_of(check(c.reply(), 250))
    d.wait_log(r"%s: to=<%s>, .*dsn=5\.6\.7, status=bounced \(SMTPUTF8 is "
               r"required, but was not offered by host 127\.0\.0\.1"
               % (qid, rcpt))
    # the sender gets the notification; the remote never got the message
    d.wait_log(r"%s: sender non-delivery notification: " % qid)
    d.wait_files("alice@example.test", 1)
    assert seven.messages == []
