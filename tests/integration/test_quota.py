"""
test_quota.py - Maildir++ quota at delivery: a near-full mailbox refuses a
large message (5.2.2 "mailbox full", bounced) and still takes a small one;
virtual_mailbox_limit_maps overrides the default per address;
virtual_mailbox_full_tempfail = yes defers (4.2.2) instead; maildirsize
holds the limits line and one line per delivery, summing to what the
maildir holds. A size declared with MAIL FROM SIZE= that cannot fit is
refused at RCPT (552 5.2.2, or 452 4.2.2). Dovecot's maildir quota
(IMAP GETQUOTAROOT, doveadm quota recalc) agrees with maildirsize.
virtual_mailbox_quota_warning sends one warning per threshold crossed.
"""
import os
import re
import shutil
import time

import pytest

from dovecotserver import instances
from harness import check, make_msg, dot_stuff, queue_id_of
from test_dovecot_imap import new_dovecot

DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"


@pytest.fixture
def dovecot_for():
    """test_dovecot_imap's private Dovecot, with quota=True its maildir
    quota plugin (limit from virtual_mailbox_limit) and imap_quota."""
    def make(d, users, quota=False):
        dv = new_dovecot(d, users)
        if quota:
            with open(dv.conf, "a") as f:
                f.write("mail_plugins = $mail_plugins quota\n"
                        "protocol imap {\n"
                        "  mail_plugins = $mail_plugins imap_quota\n}\n"
                        "plugin {\n  quota = maildir:User quota\n"
                        "  quota_rule = *:storage=%sB\n}\n"
                        % d.params.get("virtual_mailbox_limit", "0"))
        return dv
    yield from instances(make)

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


def rcpt_with_size(d, rcpt, size, expect):
    with d.connect() as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net> SIZE=%d" % size), 250)
        r = check(c.cmd("RCPT TO:<%s>" % rcpt), *expect)
        check(c.cmd("QUIT"), 221)
    return r


def test_size_declared_refused_at_rcpt(facteurd, tmp_path):
    limits = tmp_path / "limits"
    limits.write_text("bob@example.test 100000\n")
    os.chmod(str(limits), 0o644)
    params = {"virtual_mailbox_limit": "6000",
              "virtual_mailbox_limit_maps": "texthash:%s" % limits}
    params.update(FAST_RETRY)
    d = facteurd(main_cf=params)
    send(d, "alice@example.test", 2000, "first")
    d.wait_files("alice@example.test", 1)
    # about 2.5 kB used of 6000: SIZE=5000 cannot fit, refused at RCPT
    r = rcpt_with_size(d, "alice@example.test", 5000, (552, "5.2.2"))
    assert "Mailbox full" in str(r)
    d.wait_log(r"NOQUEUE: reject: RCPT from \S+: 552 5\.2\.2 "
               r"<alice@example\.test>: Recipient address rejected: Mailbox full")
    # a declared size that fits, and bob's own larger quota, are accepted
    rcpt_with_size(d, "alice@example.test", 1000, (250,))
    rcpt_with_size(d, "bob@example.test", 5000, (250,))
    # nothing was stored by the refusals
    assert len(d.files("alice@example.test")) == 1


def test_size_declared_tempfail_at_rcpt(facteurd):
    params = {"virtual_mailbox_limit": "3000",
              "virtual_mailbox_full_tempfail": "yes"}
    params.update(FAST_RETRY)
    d = facteurd(main_cf=params)
    r = rcpt_with_size(d, "alice@example.test", 4000, (452, "4.2.2"))
    assert "Mailbox full" in str(r)
    rcpt_with_size(d, "alice@example.test", 1000, (250,))


def kib(n):
    """Dovecot's imap_quota rounds bytes up to KiB."""
    return (n + 1023) // 1024


def test_dovecot_quota_agrees(facteurd, dovecot_for):
    """Dovecot's maildir quota (GETQUOTAROOT), reading and recalculating
    the same maildirsize, reports what facteur counted."""
    import imaplib
    import subprocess
    params = {"virtual_mailbox_limit": "200000"}
    d = facteurd(main_cf=params)
    for i, size in enumerate((3000, 5000, 7000)):
        send(d, "alice@example.test", size, "q%d" % i)
    d.wait_files("alice@example.test", 3)
    limits, b, c = usage(maildirsize(d, "alice"))
    assert limits == "200000S"
    assert (b, c) == on_disk(d, "alice")

    def dovecot_usage(dv):
        con = dv.login("alice@example.test", "pw")
        try:
            typ, data = con.getquotaroot("INBOX")
            assert typ == "OK", data
            text = b" ".join(x if isinstance(x, bytes) else b" ".join(x)
                             for x in data[1]).decode()
            m = re.search(r"STORAGE (\d+) (\d+)", text)
            assert m, text
            m2 = re.search(r"MESSAGE (\d+) (\d+)", text)
            return int(m.group(1)), int(m.group(2)), m2
        finally:
            con.logout()

    dv = dovecot_for(d, {"alice@example.test": "pw"}, quota=True)
    used_kb, limit_kb, _ = dovecot_usage(dv)
    # IMAP QUOTA STORAGE is in units of 1024 octets
    assert (used_kb, limit_kb) == (kib(b), kib(200000)), (used_kb, b)
    # Dovecot's own recalculation from the maildir agrees with ours
    r = subprocess.run([DOVEADM, "-c", dv.conf, "quota", "recalc", "-u",
                        "alice@example.test"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    limits, b2, c2 = usage(maildirsize(d, "alice"))
    assert (b2, c2) == (b, c) == on_disk(d, "alice")
    # facteur goes on appending to the file Dovecot rewrote
    send(d, "alice@example.test", 9000, "after")
    d.wait_files("alice@example.test", 4)
    limits, b3, c3 = usage(maildirsize(d, "alice"))
    assert (b3, c3) == on_disk(d, "alice")
    used_kb, _, _ = dovecot_usage(dv)
    assert used_kb == kib(b3), (used_kb, b3)


def test_quota_warning_once_per_threshold(facteurd):
    params = {"virtual_mailbox_limit": "20000",
              "virtual_mailbox_quota_warning": "80 50"}
    params.update(FAST_RETRY)
    d = facteurd(main_cf=params)

    def warnings():
        out = []
        for f in d.files("alice@example.test"):
            with open(f, "rb") as fh:
                text = fh.read()
            m = re.search(rb"^Subject: Mailbox quota warning: (\d+)% full$",
                          text, re.M)
            if m:
                assert b"\nFrom: Mail Delivery System <MAILER-DAEMON@" in text
                assert b"\nAuto-Submitted: auto-generated\n" in text
                assert text.startswith(b"Return-Path: <>\n")
                out.append(int(m.group(1)))
        return sorted(out)

    send(d, "alice@example.test", 6000, "one")          # ~30%
    d.wait_files("alice@example.test", 1)
    send(d, "alice@example.test", 5000, "two")          # ~57%: crosses 50
    d.wait_files("alice@example.test", 3)
    d.wait_log(r"<alice@example\.test>: quota warning queued: 50% ")
    assert warnings() == [50]
    send(d, "alice@example.test", 1000, "three")        # ~63%: no new one
    d.wait_files("alice@example.test", 4)
    send(d, "alice@example.test", 3500, "four")         # ~82%: crosses 80
    d.wait_files("alice@example.test", 6)
    d.wait_log(r"quota warning queued: 80% ")
    assert warnings() == [50, 80]
    time.sleep(0.5)
    assert len(d.files("alice@example.test")) == 6
    assert len(re.findall(r"quota warning queued", d.log())) == 2
