"""
test_durability.py - the queue's promise under a crash: 10 concurrent
sessions send 200 messages, facteurd is SIGKILLed mid-run (some sessions
are in the middle of DATA), restarted on the same configuration, and every
message that got "250 ... queued as" must then be in a maildir, at least
once, and no delivered file may be truncated. The same for mail that
leaves: SIGKILL while a remote server holds the reply to the data, restart,
every recipient gets the message at least once.
"""
import hashlib
import os
import re
import threading
import time

from capture import Capture
from harness import Delivered, SMTPConn, dot_stuff, free_port, maildir_files

SESSIONS = 10
PER_SESSION = 20
KILL_AFTER_ACKS = 80
KILL_DEADLINE = 10.0
USERS = ["alice@example.test", "bob@example.test"]


def build_message(t, i, rcpt):
    mid = "<dur-%d-%d@client.test>" % (t, i)
    body = b"".join(b"session %d message %d line %03d: %s\r\n"
                    % (t, i, n, b"abcdefghij" * 6) for n in range(60))
    digest = hashlib.sha256(body).hexdigest().encode()
    msg = (b"From: <sender@example.net>\r\nTo: <%s>\r\n"
           b"Subject: durability %d/%d\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000"
           b"\r\nMessage-ID: %s\r\n\r\n" % (rcpt.encode(), t, i, mid.encode())
           + body + b"checksum: " + digest + b"\r\n")
    return mid, msg


def body_is_complete(content):
    """The LF-converted body ends with a checksum line over all lines before."""
    try:
        _, body = content.split(b"\n\n", 1)
    except ValueError:
        return False
    m = re.search(rb"\nchecksum: ([0-9a-f]{64})\n$", b"\n" + body)
    if not m:
        return False
    lines = body[:-(len(m.group(0)) - 1)]
    digest = hashlib.sha256(lines.replace(b"\n", b"\r\n")).hexdigest()
    return digest.encode() == m.group(1)


def sender_thread(d, t, acked, attempted, lock, stop):
    try:
        c = SMTPConn(d.host, d.port, timeout=10)
        if c.reply().code != 220 or c.cmd("EHLO client.test").code != 250:
            return
        for i in range(PER_SESSION):
            if stop.is_set():
                return
            rcpt = USERS[(t + i) % 2]
            mid, msg = build_message(t, i, rcpt)
            with lock:
                attempted[mid] = rcpt
            if c.cmd("MAIL FROM:<sender@example.net>").code != 250:
                return
            if c.cmd("RCPT TO:<%s>" % rcpt).code != 250:
                return
            if c.cmd("DATA").code != 354:
                return
            wire = dot_stuff(msg)
            # Two writes with a pause: some sessions are killed mid-DATA.
            half = len(wire) // 2
            c.send(wire[:half])
            time.sleep(0.002)
            c.send(wire[half:])
            r = c.reply()
            if r.code == 250 and "queued as" in r.text:
                with lock:
                    acked[mid] = rcpt
            else:
                return
    except (OSError, AssertionError):
        return      # the daemon was killed: this session is over


def test_sigkill_mid_run_loses_no_acknowledged_message(facteurd):
    d = facteurd()
    acked, attempted = {}, {}
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=sender_thread,
                                args=(d, t, acked, attempted, lock, stop),
                                daemon=True)
               for t in range(SESSIONS)]
    for th in threads:
        th.start()
    t0 = time.time()
    while time.time() - t0 < KILL_DEADLINE:
        with lock:
            n = len(acked)
        if n >= KILL_AFTER_ACKS:
            break
        time.sleep(0.002)
    d.kill()
    stop.set()
    for th in threads:
        th.join(15)
    assert not any(th.is_alive() for th in threads), "sender threads hung"
    with lock:
        acked_now = dict(acked)
    print("\nacknowledged before SIGKILL: %d of %d attempted (%d sent)"
          % (len(acked_now), len(attempted), SESSIONS * PER_SESSION))
    assert acked_now, "no message acknowledged in %ss\n%s" % (
        KILL_DEADLINE, d.diagnostics())
    assert len(acked_now) < SESSIONS * PER_SESSION, \
        "all messages acknowledged before the kill: the test proved nothing"

    # Restart on the same configuration; the queue must drain by itself.
    d.start()
    deadline = time.time() + 30
    found = {}
    while True:
        left = d.queue_files(("active", "deferred"))
        found = {}
        partial = []
        for user in USERS:
            for path in maildir_files(d.mail, user):
                m = Delivered(path)
                mid = m.header("Message-ID")
                if not body_is_complete(m.content):
                    partial.append(path)
                found.setdefault(mid, []).append(user)
        missing = [mid for mid in acked_now if mid not in found]
        if (not left and not missing) or time.time() > deadline:
            break
        time.sleep(0.1)

    dups = {mid: n for mid, n in ((k, len(v)) for k, v in found.items())
            if n > 1}
    unacked_delivered = [mid for mid in found if mid not in acked_now]
    print("delivered: %d distinct, %d duplicate(s) %s, %d delivered without "
          "acknowledgement" % (len(found), sum(n - 1 for n in dups.values()),
                               sorted(dups), len(unacked_delivered)))
    assert not partial, "truncated/corrupt deliveries: %r" % partial
    assert not missing, ("%d acknowledged message(s) lost after SIGKILL: %r\n%s"
                         % (len(missing), sorted(missing)[:20],
                            d.diagnostics()))
    for mid, users in found.items():
        assert mid in attempted, "unknown message delivered: %r" % mid
        assert set(users) == {attempted[mid]}, (mid, users)
    assert not left, "queue did not drain within 30 s: %r" % left[:10]
    # A message killed before its 250 is never half in the queue either:
    # incoming/ leftovers are cleaned at start-up.
    inc = d.queue_files(("incoming",))
    assert not inc, "leftovers in incoming/ after restart: %r" % inc
    # The restarted daemon still takes mail.
    mid, msg = build_message(99, 0, "alice@example.test")
    d.send("sender@example.net", "alice@example.test", msg)
    d.wait_msgid("alice@example.test", mid)


def test_restart_delivers_queued_message(facteurd):
    """Acknowledged, then SIGKILL at once; delivered after restart, once
    per recipient (or more: reported), complete."""
    d = facteurd()
    mids = []
    for i in range(5):
        mid, msg = build_message(50, i, USERS[i % 2])
        d.send("sender@example.net", USERS[i % 2], msg)
        mids.append((mid, USERS[i % 2]))
    d.kill()
    d.start()
    for mid, user in mids:
        got = d.wait_msgid(user, mid)
        assert all(body_is_complete(g.content) for g in got)
        if len(got) > 1:
            print("duplicate delivery of %s: %d copies" % (mid, len(got)))
    assert not d.wait_queue_empty(timeout=15)


def test_crash_during_recovery(facteurd):
    """SIGKILL again right after the restart, while the queue is being
    worked off; a third start still delivers everything acknowledged."""
    d = facteurd()
    mids = []
    with d.session() as c:
        for i in range(30):
            rcpt = USERS[i % 2]
            mid, msg = build_message(70, i, rcpt)
            assert c.cmd("MAIL FROM:<sender@example.net>").code == 250
            assert c.cmd("RCPT TO:<%s>" % rcpt).code == 250
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(msg))
            r = c.reply()
            assert r.code == 250, r
            mids.append((mid, rcpt))
    d.kill()
    d.start()
    d.kill()
    d.start()
    dups = 0
    for mid, user in mids:
        got = d.wait_msgid(user, mid)
        assert all(body_is_complete(g.content) for g in got), mid
        dups += len(got) - 1
    print("\ncrash during recovery: %d duplicate(s) of %d" % (dups, len(mids)))
    assert not d.wait_queue_empty(timeout=15)


def test_sigkill_during_outbound_delivery(facteurd):
    """The remote has read the data of two messages and does not answer;
    facteurd is SIGKILLed then. After the restart every remote recipient
    gets the message at least once (the remote never said 250), the local
    recipient recorded as delivered before the crash is not delivered
    again, and the log accounts for every recipient: sent, then removed."""
    remote = Capture()
    remote.stall_after_data = True
    try:
        d = facteurd(main_cf={
            "relayhost": "[127.0.0.1]:%d" % remote.port,
            "facteur_dns_servers": "127.0.0.1:%d" % free_port(),
            "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
            "queue_run_delay": "1s", "smtp_data_done_timeout": "60s"})
        far = ["r%d@far.example" % i for i in range(3)]
        mid_a, msg_a = build_message(80, 0, far[0])
        mid_b, msg_b = build_message(80, 1, "solo@far.example")
        qa = d.send("sender@example.net", far + ["alice@example.test"], msg_a)
        deadline = time.time() + 15
        while not remote.stalled.is_set() and time.time() < deadline:
            time.sleep(0.02)
        qb = d.send("sender@example.net", ["solo@far.example"], msg_b)
        # both transactions wait for the reply to the final dot
        while time.time() < deadline and sum(
                1 for c in remote.conns if "DATA" in c.commands) < 2:
            time.sleep(0.02)
        assert sum(1 for c in remote.conns if "DATA" in c.commands) == 2, \
            [c.commands for c in remote.conns]
        d.wait_files("alice@example.test", 1)
        d.wait_log(r"%s: to=<alice@example\.test>, .*status=sent" % qa)
        assert not re.search(r"%s: to=<r\d@far" % qa, d.log())
        d.kill()
        remote.stall_after_data = False
        remote.release()
        before = len(remote.messages)
        d.start()
        got = remote.wait_messages(before + 2)
        for qid, rcpts, mid in ((qa, far, mid_a),
                                (qb, ["solo@far.example"], mid_b)):
            for r in rcpts:
                d.wait_log(r"%s: to=<%s>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
                           r":%d, .*status=sent" % (qid, re.escape(r),
                                                     remote.port))
                assert any(r in m[1] and mid.encode() in m[2] for m in got), r
            d.wait_log(r"%s: removed" % qid)
        # recorded before the crash: not delivered a second time
        assert len(d.files("alice@example.test")) == 1
        assert len(re.findall(r"%s: to=<alice@example\.test>, .*status=sent"
                              % qa, d.log())) == 1
        assert not d.wait_queue_empty(timeout=15)
    finally:
        remote.close()
