"""
test_quota.py - Maildir++ quota at delivery: a near-full mailbox refuses a
large message (5.2.2 "mailbox full", bounced) and still takes a small one;
virtual_mailbox_limit_maps overrides the default per address;
virtual_mailbox_full_tempfail = yes defers (4.2.2) instead; maildirsize
holds the limits line and one line per delivery, summing to what the
maildir holds. With Dovecot installed, its GETQUOTAROOT agrees.
"""
import os
import re

from harness import check, make_msg, dot_stuff, queue_id_of

FAST_RETRY = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s"}


def send(d, rcpt, size, subject="quota", expect=(250, "2.0.0")):
    """Sends one message; returns its queue ID, or the reply when the
    end of DATA is expected to be refused."""
    body = (b"x" * 70 + b"\r\n") * max(1, size // 72)
    msg = make_msg(subject, to=rcpt, body=body)
    with d.connect() as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<%s>" % rcpt), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        r = check(c.reply(), *expect)
        check(c.cmd("QUIT"), 221)
    return queue_id_of(r) if expect[0] == 250 else r


def maildirsize(d, user):
    with open(os.path.join(d.mail, "example.test", user, "maildirsize")) as f:
        return f.read()


def usage(text):
    lines = text.splitlines()
    b = sum(int(x.split()[0]) for x in lines[1:] if x.strip())
    c = sum(int(x.split()[1]) for x in lines[1:] if x.strip())
    return lines[0], b, c


def on_disk(d, user):
    files = d.files("%s@example.test" % user)
    return sum(os.path.getsize(f) for f in files), len(files)


def test_near_full_refuses_large_accepts_small(facteurd):
    params = {"virtual_mailbox_limit": "6000"}
    params.update(FAST_RETRY)
    d = facteurd(main_cf=params)
    send(d, "alice@example.test", 2000, "first")
    d.wait_files("alice@example.test", 1)
    limits, b, c = usage(maildirsize(d, "alice"))
    assert limits == "6000S"
    assert (b, c) == on_disk(d, "alice")

    # about 2.5 kB in use: a 4 kB message does not fit, and the only
    # mailbox refusing it for good is said at the end of DATA (no bounce)
    r = send(d, "alice@example.test", 4000, "large", expect=(552, "5.2.2"))
    assert "mailbox full" in str(r)
    d.wait_log(r"reject: END-OF-MESSAGE from \S+: 552 5\.2\.2 "
               r"<alice@example\.test>: mailbox full")
    assert len(d.files("alice@example.test")) == 1
    assert d.queue_files() == []

    # a small one still does
    send(d, "alice@example.test", 500, "small")
    d.wait_files("alice@example.test", 2)
    limits, b, c = usage(maildirsize(d, "alice"))
    assert (b, c) == on_disk(d, "alice")
    assert b < 6000 and c == 2


def test_limit_maps_override_and_tempfail(facteurd, tmp_path):
    limits = tmp_path / "limits"
    limits.write_text("bob@example.test 100000\n@example.test 3000\n")
    os.chmod(str(limits), 0o644)
    params = {"virtual_mailbox_limit": "0",
              "virtual_mailbox_limit_maps": "texthash:%s" % limits,
              "virtual_mailbox_full_tempfail": "yes"}
    params.update(FAST_RETRY)
    d = facteurd(main_cf=params)
    # bob's own entry: 10 kB fits
    send(d, "bob@example.test", 10000, "bob")
    d.wait_files("bob@example.test", 1)
    assert maildirsize(d, "bob").startswith("100000S\n")
    # carol falls back to @example.test (3000): deferred, not bounced
    qid = send(d, "carol@example.test", 5000, "carol")
    d.wait_log(r"%s: to=<carol@example\.test>, .*dsn=4\.2\.2, "
               r"status=deferred \(mailbox full" % qid)
    assert d.files("carol@example.test") == []
    assert any(qid in os.path.basename(f) for f in d.queue_files())
    assert not re.search(r"%s: to=<carol@example\.test>.*status=bounced" % qid,
                         d.log())


def test_no_limit_writes_no_maildirsize(facteurd):
    d = facteurd(main_cf={"virtual_mailbox_limit": "0"})
    send(d, "alice@example.test", 3000)
    d.wait_files("alice@example.test", 1)
    assert not os.path.exists(os.path.join(d.mail, "example.test", "alice",
                                           "maildirsize"))


def test_bad_limit_value_defers(facteurd, tmp_path):
    limits = tmp_path / "limits"
    limits.write_text("alice@example.test lots\n")
    os.chmod(str(limits), 0o644)
    params = {"virtual_mailbox_limit_maps": "texthash:%s" % limits}
    params.update(FAST_RETRY)
    d = facteurd(main_cf=params)
    qid = send(d, "alice@example.test", 100)
    d.wait_log(r"%s: to=<alice@example\.test>, .*dsn=4\.3\.5, status=deferred "
               r"\(virtual_mailbox_limit_maps: bad quota" % qid)
    assert d.files("alice@example.test") == []
