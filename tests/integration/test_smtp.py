"""
test_smtp.py - SMTP engine behaviour that needs more than a dialogue file:
pipelining, CHUNKING (BDAT), size and recipient limits, over-long lines,
timeouts, and real clients (smtplib, swaks).
"""
import smtplib
import subprocess
import time

import pytest

import harness
from harness import check, dot_stuff, make_msg, msgid_of, queue_id_of, to_lf


def test_pipelined_envelope_replies_in_order(mx):
    msg = make_msg("pipelined", to="alice@example.test")
    with mx.session() as c:
        c.send(b"MAIL FROM:<sender@example.net>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        check(c.reply(), 250, "2.1.0")
        check(c.reply(), 250, "2.1.5")
        check(c.reply(), 550, "5.1.1")
        check(c.reply(), 250, "2.1.5")
        check(c.reply(), 354)
        # Content, end of data and QUIT in one write.
        c.send(dot_stuff(msg) + b"QUIT\r\n")
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.reply(), 221, "2.0.0")
        assert c.expect_closed()
    mid = msgid_of(msg)
    for rcpt in ("alice@example.test", "bob@example.test"):
        got = mx.wait_msgid(rcpt, mid)
        assert len(got) == 1
        assert got[0].content.endswith(to_lf(msg))
        assert qid in got[0].field("Received")


def test_pipelined_transactions_back_to_back(mx):
    """Two whole transactions, RSET and NOOP in one write after EHLO."""
    m1 = make_msg("pipe-one", to="carol@example.test")
    m2 = make_msg("pipe-two", to="carol@example.test")
    with mx.session() as c:
        c.send(b"MAIL FROM:<sender@example.net>\r\nRCPT TO:<carol@example.test>"
               b"\r\nDATA\r\n")
        check(c.reply(), 250, "2.1.0")
        check(c.reply(), 250, "2.1.5")
        check(c.reply(), 354)
        c.send(dot_stuff(m1) + b"RSET\r\nNOOP\r\n"
               b"MAIL FROM:<sender@example.net>\r\nRCPT TO:<carol@example.test>"
               b"\r\nDATA\r\n")
        q1 = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.reply(), 250, "2.0.0")
        check(c.reply(), 250, "2.0.0")
        check(c.reply(), 250, "2.1.0")
        check(c.reply(), 250, "2.1.5")
        check(c.reply(), 354)
        c.send(dot_stuff(m2) + b"QUIT\r\n")
        q2 = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.reply(), 221)
    assert q1 != q2
    mx.wait_msgid("carol@example.test", msgid_of(m1))
    mx.wait_msgid("carol@example.test", msgid_of(m2))


# ------------------------------------------------------------------ BDAT

def test_bdat_chunks(mx):
    msg = make_msg("bdat", to="alice@example.test",
                   body=b"first line\r\n.dot line stays as is\r\nlast\r\n")
    a, b = msg[:40], msg[40:]
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250, "2.1.0")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")
        c.send(b"BDAT %d\r\n" % len(a) + a)
        check(c.reply(), 250, "2.0.0")
        c.send(b"BDAT %d LAST\r\n" % len(b) + b)
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.cmd("QUIT"), 221)
    got = mx.wait_msgid("alice@example.test", msgid_of(msg))
    assert len(got) == 1
    # BDAT content is not dot-stuffed: ".dot line" arrives unchanged.
    assert got[0].content == to_lf(msg), got[0].raw
    assert qid in got[0].field("Received")


def test_bdat_reply_counts_the_chunk_octets(mx):
    """"250 2.0.0 Ok: N bytes" reports the octets of that chunk as sent."""
    chunk = b"Subject: count\r\n\r\nab\r\n"       # 22 octets, 3 CRLF
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        check(c.reply(), 250, "2.0.0", r"\b%d bytes" % len(chunk))
        check(c.cmd("RSET"), 250)


def test_bdat_pipelined_with_zero_last(mx):
    """MAIL, RCPT, BDAT n, BDAT 0 LAST and QUIT in one write (RFC 3030)."""
    msg = make_msg("bdat-pipelined", to="bob@example.test")
    with mx.session() as c:
        c.send(b"MAIL FROM:<sender@example.net>\r\nRCPT TO:<bob@example.test>"
               b"\r\nBDAT %d\r\n" % len(msg) + msg + b"BDAT 0 LAST\r\nQUIT\r\n")
        check(c.reply(), 250, "2.1.0")
        check(c.reply(), 250, "2.1.5")
        check(c.reply(), 250, "2.0.0")
        check(c.reply(), 250, "2.0.0", "queued as")
        check(c.reply(), 221)
    got = mx.wait_msgid("bob@example.test", msgid_of(msg))
    assert got[0].content == to_lf(msg)


def test_data_after_bdat_is_refused(mx):
    msg = make_msg("bdat-then-data", to="carol@example.test")
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        c.send(b"BDAT 10\r\n" + msg[:10])
        check(c.reply(), 250, "2.0.0")
        check(c.cmd("DATA"), 503, "5.5.1")
        # The session is still usable and the half message is not delivered.
        check(c.cmd("RSET"), 250, "2.0.0")
        check(c.cmd("NOOP"), 250, "2.0.0")
    time.sleep(0.5)
    assert not [d for d in mx.delivered("carol@example.test")
                if b"bdat-then-data" in d.raw]


def test_bdat_after_data_is_refused(mx):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        # Inside DATA, "BDAT 5" is content; after the message BDAT needs MAIL.
        c.send(dot_stuff(make_msg("data-then-bdat", to="carol@example.test")))
        check(c.reply(), 250, "2.0.0")
        c.send(b"BDAT 5 LAST\r\nhello")
        r = c.reply()
        assert r.code in (503, 554) and r.esc == "5.5.1", r
        check(c.cmd("NOOP"), 250, "2.0.0")


def test_bdat_over_size_limit(mx):
    big = b"x" * 1100000
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        c.send(b"BDAT %d LAST\r\n" % len(big) + big)
        check(c.reply(), 552, "5.3.4", "Message size exceeds fixed limit")
        check(c.cmd("NOOP"), 250, "2.0.0")


# ------------------------------------------------------------------ limits

def test_size_limit_at_mail(mx):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net> SIZE=1048577"), 552,
              "5.3.4", "Message size exceeds fixed limit")
        check(c.cmd("MAIL FROM:<sender@example.net> SIZE=10"), 250, "2.1.0")


def test_size_limit_during_data(mx):
    filler = (b"y" * 998 + b"\r\n") * 1100          # ~1.1 MB of content
    msg = make_msg("too-big", to="bob@example.test", body=filler)
    before = len(mx.files("bob@example.test"))
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 552, "5.3.4", "Message size exceeds fixed limit")
        # The transaction is over, the session is not.
        check(c.cmd("RCPT TO:<bob@example.test>"), 503, "5.5.1")
        small = make_msg("after-too-big", to="bob@example.test")
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(small))
        check(c.reply(), 250, "2.0.0")
    mx.wait_msgid("bob@example.test", msgid_of(small))
    assert not [d for d in mx.delivered("bob@example.test")
                if b"Subject: too-big" in d.raw]
    assert len(mx.files("bob@example.test")) == before + 1


def test_message_under_size_limit_is_delivered(mx):
    filler = (b"z" * 78 + b"\r\n") * 10000          # 800 kB
    msg = make_msg("big-but-ok", to="carol@example.test", body=filler)
    mx.send("sender@example.net", "carol@example.test", msg)
    got = mx.wait_msgid("carol@example.test", msgid_of(msg))
    assert got[0].content == to_lf(msg)


def test_recipient_limit(mx):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        for i in range(50):
            check(c.cmd("RCPT TO:<alice+%d@example.test>" % i), 250, "2.1.5")
        check(c.cmd("RCPT TO:<alice+50@example.test>"), 452, "4.5.3",
              "too many recipients")
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5")


def test_overlong_command_line(mx):
    with mx.session() as c:
        c.send(b"NOOP " + b"a" * 3000 + b"\r\n")
        r = c.reply()
        assert 500 <= r.code < 600, r
        # Either the session goes on in sync, or it is closed cleanly.
        try:
            c.send(b"NOOP\r\n")
            r2 = c.reply(timeout=5)
            check(r2, 250, "2.0.0")
        except (AssertionError, OSError):
            assert c.expect_closed(2)
    with mx.session() as c:
        check(c.cmd("NOOP"), 250)


def test_overlong_mail_line(mx):
    with mx.session() as c:
        r = c.cmd("MAIL FROM:<" + "a" * 3000 + "@example.net>")
        assert 500 <= r.code < 600, r
        try:
            check(c.cmd("RSET"), 250, "2.0.0")
        except (AssertionError, OSError):
            assert c.expect_closed(2)


def test_long_content_line_is_kept(mx):
    """Line length limits apply to commands; a 5000-byte content line is
    delivered whole, as Postfix does for local delivery."""
    line = bytes(b"0123456789abcdef"[i % 16] for i in range(5000))
    msg = make_msg("long-line", to="carol@example.test",
                   body=b"before\r\n" + line + b"\r\nafter\r\n")
    mx.send("sender@example.net", "carol@example.test", msg)
    got = mx.wait_msgid("carol@example.test", msgid_of(msg))
    assert got[0].content == to_lf(msg)


# ------------------------------------------------------------------ timeouts

@pytest.fixture(scope="module")
def slow(build, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("timeout"))
    d = pool.new(main_cf={"smtpd_timeout": "2s"})
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def test_timeout_idle_after_banner(slow):
    with slow.connect() as c:
        t0 = time.time()
        r = c.reply(timeout=8)
        check(r, 421, "4.4.2", r"Error: timeout exceeded")
        assert "mx.example.test" in r.text
        assert c.expect_closed(3)
        assert 1.5 <= time.time() - t0 < 7


def test_timeout_in_data(slow):
    with slow.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(b"Subject: timeout-in-data\r\n\r\nhalf a mess")
        r = c.reply(timeout=8)
        check(r, 421, "4.4.2", r"timeout exceeded")
        assert c.expect_closed(3)
    time.sleep(0.5)
    assert not [d for d in slow.delivered("alice@example.test")
                if b"timeout-in-data" in d.raw]


def test_activity_resets_timeout(slow):
    with slow.session() as c:
        for _ in range(3):
            time.sleep(1.2)
            check(c.cmd("NOOP"), 250)


# ------------------------------------------------------------------ clients

def test_smtplib_client(mx):
    msg = make_msg("smtplib", to="bob@example.test")
    with smtplib.SMTP(mx.host, mx.port, local_hostname="client.test",
                      timeout=10) as s:
        code, caps = s.ehlo()
        assert code == 250
        assert s.has_extn("pipelining") and s.has_extn("chunking")
        assert s.has_extn("size") and s.esmtp_features["size"] == "1048576"
        refused = s.sendmail("sender@example.net", ["bob@example.test"], msg)
        assert refused == {}
    got = mx.wait_msgid("bob@example.test", msgid_of(msg))
    assert got[0].content == to_lf(msg)


def test_swaks_client(mx):
    r = subprocess.run(
        ["swaks", "--server", mx.host, "--port", str(mx.port),
         "--from", "sender@example.net", "--to", "carol@example.test",
         "--helo", "client.test", "--header", "Subject: via swaks",
         "--body", "sent by swaks", "--timeout", "10"],
        capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, out + r.stderr.decode("utf-8", "replace")
    assert "250 2.0.0 Ok: queued as" in out
    deadline = time.time() + 10
    while time.time() < deadline:
        if [d for d in mx.delivered("carol@example.test")
                if d.header("Subject") == "via swaks"]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("swaks message not delivered\n" + mx.diagnostics())


# ------------------------------------------------------------------ robustness

def test_idle_sessions_do_not_block_others(mx):
    idle = [mx.connect() for _ in range(50)]
    try:
        msg = make_msg("among-idle", to="carol@example.test")
        t0 = time.time()
        mx.send("sender@example.net", "carol@example.test", msg)
        assert time.time() - t0 < 5
        mx.wait_msgid("carol@example.test", msgid_of(msg))
        # The idle ones are still served.
        for c in idle[::10]:
            check(c.cmd("NOOP"), 250)
    finally:
        for c in idle:
            c.close()


def test_client_vanishes_mid_data(mx):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<carol@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(b"Subject: vanished-mid-data\r\n\r\nhalf of it\r\n")
    time.sleep(0.5)
    assert not [d for d in mx.delivered("carol@example.test")
                if b"vanished-mid-data" in d.raw]
    with mx.session() as c:
        check(c.cmd("NOOP"), 250)


def test_binary_garbage_does_not_hurt(mx):
    import random
    rnd = random.Random(1234)
    for _ in range(5):
        c = mx.connect()
        try:
            c.send(bytes(rnd.randrange(256) for _ in range(4096)) +
                   b"\x00\r\n\x00QUIT\r\n")
            c.expect_closed(1)
        except OSError:
            pass
        finally:
            c.close()
    with mx.session() as c:
        check(c.cmd("NOOP"), 250)
        c.send(b"NO\x00OP\r\n")
        r = c.reply()
        assert r.code >= 500, r


def test_every_reply_line_is_crlf_terminated(mx):
    import socket as so
    s = so.create_connection((mx.host, mx.port), timeout=5)
    try:
        s.sendall(b"EHLO client.test\r\nHELP\r\nQUIT\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n"), data
    assert all(len(l) <= 512 for l in data.split(b"\r\n"))
