"""
test_sendmail.py - local submission and the queue CLI, as users see them.

sendmail runs as an unprivileged local user (nobody when the tests run as
root) and hands messages to facteurd over $queue_directory/public/pickup:
-t, -f, -F, unqualified addresses, added headers, dot handling, refusal of
unknown users (EX_NOUSER) and EX_TEMPFAIL when facteurd is down. The queue
commands (facteur queue list|hold|release|requeue|delete|flush, sendmail
-bp, mailq) are checked on a message deferred to an unreachable relayhost.
"""
import atexit
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time

import harness

LOCAL_USER = "nobody"
EX_USAGE, EX_DATAERR, EX_NOUSER, EX_TEMPFAIL = 64, 65, 67, 75


def _user():
    if os.geteuid() == 0:
        return pwd.getpwnam(LOCAL_USER)
    return pwd.getpwuid(os.getuid())


def _drop():
    if os.geteuid() == 0:
        pw = pwd.getpwnam(LOCAL_USER)
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)


_local_bin = None


def local_bin(prog):
    """build/bin/PROG as a path the local user can execute. As root the
    build tree may lie under a directory nobody cannot enter (a fresh clone
    in /root, mode 0700), so sendmail is copied once into a 0755 directory
    of its own, with mailq linked to it as in build/bin."""
    global _local_bin
    if os.geteuid() != 0:
        return harness.bin_path(prog)
    if _local_bin is None:
        d = tempfile.mkdtemp(prefix="facteur-it-bin-")
        os.chmod(d, 0o755)
        shutil.copy2(harness.bin_path("sendmail"), os.path.join(d, "sendmail"))
        os.symlink("sendmail", os.path.join(d, "mailq"))
        atexit.register(shutil.rmtree, d, True)
        _local_bin = d
    return os.path.join(_local_bin, prog)


def sendmail(d, args, data=b"", prog="sendmail", timeout=20):
    """Runs build/bin/sendmail (or mailq) as the local user."""
    return subprocess.run([local_bin(prog), "-C", d.confdir] + args,
                          input=data, capture_output=True, timeout=timeout,
                          preexec_fn=_drop, cwd="/")


def local_daemon(facteurd, **kw):
    main_cf = {"myorigin": "example.test"}
    main_cf.update(kw.pop("main_cf", {}))
    return facteurd(main_cf=main_cf, **kw)


def test_sendmail_t_adds_headers_and_removes_bcc(facteurd):
    d = local_daemon(facteurd)
    user = _user()
    msg = (b"To: alice\nCc: Team <team@example.test>\n"
           b"Bcc: carol@example.test\nSubject: cron output\n\n"
           b"line one\n.hidden dot line stays\n")
    r = sendmail(d, ["-t", "-i"], msg)
    assert r.returncode == 0, r.stderr
    got = d.wait_files("alice@example.test", 1)[0]
    assert d.wait_files("carol@example.test", 1)   # Bcc: still a recipient
    assert d.wait_files("bob@example.test", 1)     # team -> alice, bob
    sender = "%s@example.test" % user.pw_name
    assert got.field("Return-Path") == "<%s>" % sender
    assert got.header("From") == sender
    assert got.header("Bcc") is None
    assert re.match(r"<[0-9A-F]{17}@mx\.example\.test>$",
                    got.header("Message-Id") or ""), got.content
    assert re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
                    got.header("Date") or "")
    assert re.match(r"by mx\.example\.test \(facteur, from userid %d\) "
                    r"id [0-9A-F]{17}; \w{3}, " % user.pw_uid,
                    got.field("Received") or ""), got.raw
    assert got.header("Subject") == "cron output"
    assert got.content.endswith(b"\n\nline one\n.hidden dot line stays\n")
    d.wait_log(r"pickup\[\d+\]: [0-9A-F]{17}: uid=%d from=<%s>"
               % (user.pw_uid, re.escape(sender)))
    d.wait_log(r"cleanup\[\d+\]: [0-9A-F]{17}: message-id=<")


def test_sendmail_f_F_unqualified_and_dot(facteurd):
    d = local_daemon(facteurd)
    msg = b"Subject: report\n\nfirst\n.\nnot sent\n"
    r = sendmail(d, ["-f", "boss", "-F", "Big \"B\" Boss", "alice"], msg)
    assert r.returncode == 0, r.stderr
    got = d.wait_files("alice@example.test", 1)[0]
    assert got.field("Return-Path") == "<boss@example.test>"
    assert got.header("From") == '"Big \\"B\\" Boss" <boss@example.test>'
    assert got.content.endswith(b"\n\nfirst\n")
    assert got.field("X-Original-To") == "alice@example.test"
    # a message that has its own headers keeps them untouched
    msg = harness.to_lf(harness.make_msg(subject="own", msgid="<own@x.test>"))
    r = sendmail(d, ["-oi", "-f", "", "bob@example.test"], msg)
    assert r.returncode == 0, r.stderr
    got = d.wait_files("bob@example.test", 1)[0]
    assert got.field("Return-Path") == "<>"
    assert got.header("Message-ID") == "<own@x.test>"
    assert got.header("Date") == "Mon, 1 Jan 2024 00:00:00 +0000"
    assert got.content.count(b"\nDate:") + got.content.startswith(b"Date:") \
        == 1


def test_sendmail_refusals(facteurd):
    d = local_daemon(facteurd)
    r = sendmail(d, ["nosuchuser@example.test"], b"Subject: x\n\nx\n")
    assert r.returncode == EX_NOUSER, r
    assert b"nosuchuser@example.test" in r.stderr
    assert b"User unknown" in r.stderr
    r = sendmail(d, [], b"Subject: x\n\nx\n")
    assert r.returncode == EX_USAGE, r
    r = sendmail(d, ["-t"], b"Subject: no recipients\n\nx\n")
    assert r.returncode == EX_DATAERR, r
    assert b"No recipient addresses found" in r.stderr
    r = sendmail(d, ["alice"], b"x" * 1100000)      # message_size_limit
    assert r.returncode == EX_DATAERR, r
    assert d.queue_files() == [] or not d.wait_queue_empty()
    # nothing was delivered by the refused submissions
    assert d.files("alice@example.test") == []


def test_sendmail_when_facteurd_is_down(facteurd):
    d = local_daemon(facteurd)
    d.kill()            # a crash leaves the socket behind: refused
    assert os.path.exists(os.path.join(d.queue, "public", "pickup"))
    r = sendmail(d, ["alice"], b"Subject: x\n\nx\n")
    assert r.returncode == EX_TEMPFAIL, r
    assert b"facteurd is not running" in r.stderr
    d.start()
    d.stop()            # a clean stop removes it
    d.expect_exit = True
    assert not os.path.exists(os.path.join(d.queue, "public", "pickup"))
    r = sendmail(d, ["alice"], b"Subject: x\n\nx\n")
    assert r.returncode == EX_TEMPFAIL, r
    r = sendmail(d, ["-q"])
    assert r.returncode == 69, r        # EX_UNAVAILABLE, as postqueue -f


def _queue_ids(listing):
    return re.findall(r"^([0-9A-F]{17})([*! ])", listing, re.M)


def test_queue_commands(facteurd):
    port = harness.free_port()      # nothing listens: delivery is deferred
    d = local_daemon(facteurd, main_cf={
        "relayhost": "[127.0.0.1]:%d" % port,
        "minimal_backoff_time": "1h", "maximal_backoff_time": "2h",
        "queue_run_delay": "1h", "smtp_connect_timeout": "2s"})
    r = sendmail(d, ["-f", "someone", "far@remote.test"],
                 b"Subject: stuck\n\nbody\n")
    assert r.returncode == 0, r.stderr
    d.wait_log(r"to=<far@remote\.test>.*status=deferred")
    deadline = time.time() + 10
    while not d.queue_files(("deferred",)) and time.time() < deadline:
        time.sleep(0.05)
    assert len(d.queue_files(("deferred",))) == 1

    r = d.cli("queue", "list")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert out.startswith("-Queue ID-  --Size-- ----Arrival Time---- "
                          "-Sender/Recipient-------\n")
    ids = _queue_ids(out)
    assert len(ids) == 1 and ids[0][1] == " ", out
    qid = ids[0][0]
    assert re.search(r"^%s  +\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d +"
                     r"someone@example\.test$" % qid, out, re.M), out
    assert re.search(r"^ {49}far@remote\.test$", out, re.M), out
    assert out.endswith("-- 1 Kbytes in 1 Request.\n")

    # hold: "!" in mailq as any local user
    r = d.cli("queue", "hold", qid)
    assert r.returncode == 0 and ("%s: placed on hold" % qid).encode() \
        in r.stderr, r
    for prog, args in (("sendmail", ["-bp"]), ("mailq", [])):
        r = sendmail(d, args, prog=prog)
        assert r.returncode == 0, r.stderr
        assert _queue_ids(r.stdout.decode()) == [(qid, "!")], r.stdout
    assert d.queue_files(("deferred",)) == []

    # release and requeue: due now, and the daemon is told
    r = d.cli("queue", "release", qid)
    assert r.returncode == 0, r
    assert b"released from hold" in r.stderr
    assert len(d.queue_files(("deferred", "active"))) == 1
    r = d.cli("queue", "release", qid)     # not on hold any more
    assert r.returncode == 1 and b"no such message" in r.stderr, r
    d.wait_log(r"flush: retrying deferred mail now")
    r = d.cli("queue", "requeue", "ALL")
    assert r.returncode == 0, r

    # flush: another delivery attempt right away
    n = len(re.findall(r"to=<far@remote\.test>.*status=deferred", d.log()))
    deadline = time.time() + 15
    while time.time() < deadline:
        r = sendmail(d, ["-q"])
        assert r.returncode == 0, r.stderr
        if len(re.findall(r"to=<far@remote\.test>.*status=deferred",
                          d.log())) > n:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no new attempt after flush\n" + d.log())
    r = d.cli("queue", "flush")
    assert r.returncode == 0, r

    # delete: gone, and the queue says so
    deadline = time.time() + 10
    while not d.queue_files(("deferred",)) and time.time() < deadline:
        time.sleep(0.05)
    r = d.cli("queue", "delete", "ALL")
    assert r.returncode == 0, r
    assert ("%s: removed" % qid).encode() in r.stderr, r
    assert d.queue_files() == []
    r = d.cli("queue", "list")
    assert r.stdout == b"Mail queue is empty\n", r
    r = d.cli("queue", "delete", "nothex")
    assert r.returncode == 1 and b"bad queue ID" in r.stderr, r


def test_mailq_when_down_as_root(facteurd):
    if os.geteuid() != 0:
        return
    d = local_daemon(facteurd)
    d.stop()
    d.expect_exit = True
    r = subprocess.run([harness.bin_path("mailq"), "-C", d.confdir],
                       capture_output=True, timeout=20)
    assert r.returncode == 0, r
    assert r.stdout == b"Mail queue is empty\n"


def test_sendmail_bs_smtp_on_stdio(facteurd):
    d = local_daemon(facteurd)
    dialogue = (b"EHLO me\r\nMAIL FROM:<robot>\r\nRCPT TO:<alice>\r\nDATA\r\n"
                b"Subject: via -bs\r\n\r\n..dotted\r\n.\r\nQUIT\r\n")
    r = sendmail(d, ["-bs"], dialogue)
    assert r.returncode == 0, r
    codes = re.findall(rb"^(\d{3})[ -]", r.stdout, re.M)
    assert codes == [b"220", b"250", b"250", b"250", b"250", b"354", b"250",
                     b"221"], r.stdout
    got = d.wait_files("alice@example.test", 1)[0]
    assert got.field("Return-Path") == "<robot@example.test>"
    assert got.content.endswith(b"\n\n.dotted\n")
