"""
test_content_filter.py - after-queue content filtering as Postfix's
amavis set-up does it: content_filter = smtp-amavis:[127.0.0.1]:PORT with
a master.cf "smtp-amavis unix ... smtp" transport; the filter is a capture
SMTP server, the test re-injects what it received through a
"127.0.0.1:PORT inet ... smtpd -o content_filter=" listener, and the
message lands in the Maildir exactly once (mail through that listener is
not filtered again, and the SMTP-time Maildir fast path is not taken while
a filter applies). A message queued with a filter keeps it across a
restart even when main.cf no longer names one.
"""
import os
import smtplib
import time

from capture import Capture
from harness import free_port, make_msg, to_lf


def filter_daemon(facteurd, filter_port, start=True):
    reinject = free_port()
    d = facteurd(start=False)
    d.params["content_filter"] = "smtp-amavis:[127.0.0.1]:%d" % filter_port
    d.params["minimal_backoff_time"] = "1s"
    d.params["maximal_backoff_time"] = "1s"
    d.params["queue_run_delay"] = "1s"
    d.master_cf += (
        "smtp-amavis unix - - n - 2 smtp\n"
        "  -o smtp_data_done_timeout=1200\n"
        "  -o smtp_send_xforward_command=yes\n"
        "127.0.0.1:%d inet n - n - - smtpd\n"
        "  -o content_filter=\n"
        "  -o smtpd_client_restrictions=permit_mynetworks,reject\n"
        % reinject)
    d.write_config()
    if start:
        d.start()
    return d, reinject


def test_filter_then_reinjection_delivers_once(facteurd):
    cap = Capture()
    try:
        d, reinject = filter_daemon(facteurd, cap.port)
        msg = make_msg("filtered", to="alice@example.test")
        qid = d.send("sender@example.net", "alice@example.test", msg)
        cap.wait_messages(1)
        assert len(cap.messages) == 1
        sender, rcpts, data = cap.messages[0]
        assert sender == "sender@example.net"
        assert rcpts == ["alice@example.test"]
        assert to_lf(data).endswith(to_lf(msg))
        d.wait_log(r"%s: to=<alice@example\.test>, relay=127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d, .*status=sent" % (qid, cap.port))
        # not delivered to the Maildir before the filter returned it
        assert d.files("alice@example.test") == []
        # the filter re-injects through the unfiltered listener
        with smtplib.SMTP("127.0.0.1", reinject, timeout=10) as s:
            s.ehlo("filter.test")
            s.sendmail(sender, rcpts, data)
        d.wait_files("alice@example.test", 1)
        time.sleep(1.0)
        assert len(cap.messages) == 1, "filtered twice"
        files = d.delivered("alice@example.test")
        assert len(files) == 1
        assert to_lf(files[0].content).endswith(to_lf(msg))
    finally:
        cap.close()


def test_filtered_message_survives_restart(facteurd):
    port = free_port()      # nothing listens yet: the filter is down
    d, reinject = filter_daemon(facteurd, port)
    msg = make_msg("filter-restart", to="bob@example.test")
    qid = d.send("sender@example.net", "bob@example.test", msg)
    d.wait_log(r"%s: to=<bob@example\.test>, relay=.*status=deferred" % qid)
    d.stop()
    qf = [p for p in d.queue_files(("deferred", "active"))
          if os.path.basename(p) == qid]
    assert qf, d.queue_files()
    with open(qf[0], "rb") as f:
        assert (b"\nfilter smtp-amavis:[127.0.0.1]:%d\n" % port) in f.read()
    # main.cf no longer names a filter: the queued message keeps its own
    d.params.pop("content_filter")
    d.write_config()
    cap = Capture(port=port)
    try:
        d.start()
        cap.wait_messages(1)
        assert len(cap.messages) == 1
        assert cap.messages[0][1] == ["bob@example.test"]
        assert to_lf(cap.messages[0][2]).endswith(to_lf(msg))
        d.wait_log(r"%s: to=<bob@example\.test>, relay=127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d, .*status=sent" % (qid, port))
        assert d.files("bob@example.test") == []
        # new mail is not filtered any more: straight to the Maildir
        d.send("sender@example.net", "bob@example.test",
               make_msg("unfiltered", to="bob@example.test"))
        d.wait_files("bob@example.test", 1)
        assert len(cap.messages) == 1
    finally:
        cap.close()


def test_unknown_content_filter_transport_is_an_error(facteurd):
    d = facteurd(start=False)
    d.params["content_filter"] = "amavis:[127.0.0.1]:10024"
    d.write_config()
    d.start_fails(r"main\.cf, line \d+: content_filter: unknown transport "
                  r"\"amavis\"")


def test_transport_override_applies(facteurd):
    """-o smtp_data_done_timeout on the filter's service (the usual amavis
    line) bounds its deliveries (main.cf keeps 600s): a filter that never
    answers the end of data is given up after 2 seconds."""
    cap = Capture()
    cap.stall_after_data = True
    try:
        d = facteurd(start=False)
        d.params["content_filter"] = "slowfilter:[127.0.0.1]:%d" % cap.port
        d.master_cf += ("slowfilter unix - - n - 2 smtp\n"
                        "  -o smtp_data_done_timeout=2s\n")
        d.write_config()
        d.start()
        t0 = time.time()
        qid = d.send("sender@example.net", "alice@example.test",
                     make_msg("slow", to="alice@example.test"))
        d.wait_log(r"%s: to=<alice@example\.test>, relay=127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d, .*status=deferred .*timed out"
                   % (qid, cap.port), timeout=15)
        assert time.time() - t0 < 10
    finally:
        cap.close()


def test_data_done_timeout_is_the_wait_for_the_reply(facteurd):
    """The end-of-data reply is awaited under smtp_data_done_timeout, not
    smtp_data_xfer_timeout (which bounds the transfer): a filter that
    takes 2.5 s to answer the "." is waited for with a 1 s transfer
    timeout and a 20 s done timeout."""
    cap = Capture()
    cap.data_reply = lambda addr=None: (time.sleep(2.5),
                                        "250 2.0.0 Ok: queued as CAFE1")[1]
    try:
        d = facteurd(start=False)
        d.params["content_filter"] = "slowfilter:[127.0.0.1]:%d" % cap.port
        d.master_cf += ("slowfilter unix - - n - 2 smtp\n"
                        "  -o smtp_data_xfer_timeout=1s\n"
                        "  -o smtp_data_done_timeout=20s\n")
        d.write_config()
        d.start()
        qid = d.send("sender@example.net", "alice@example.test",
                     make_msg("thinking", to="alice@example.test"))
        d.wait_log(r"%s: to=<alice@example\.test>, relay=127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d, .*status=sent" % (qid, cap.port),
                   timeout=15)
        assert len(cap.messages) == 1
    finally:
        cap.close()


def test_filter_per_listener(facteurd):
    """-o content_filter on one listener only: its mail goes to the filter,
    mail through the main listener is delivered straight away."""
    cap = Capture()
    try:
        port2 = free_port()
        d = facteurd(start=False)
        d.master_cf += ("smtp-amavis unix - - n - 2 smtp\n"
                        "127.0.0.1:%d inet n - n - - smtpd\n"
                        "  -o content_filter=smtp-amavis:[127.0.0.1]:%d\n"
                        % (port2, cap.port))
        d.write_config()
        d.start()
        with smtplib.SMTP("127.0.0.1", port2, timeout=10) as s:
            s.ehlo("client.test")
            s.sendmail("sender@example.net", ["carol@example.test"],
                       make_msg("via-filter-listener", to="carol@example.test"))
        cap.wait_messages(1)
        assert cap.messages[0][1] == ["carol@example.test"]
        d.send("sender@example.net", "carol@example.test",
               make_msg("direct", to="carol@example.test"))
        d.wait_files("carol@example.test", 1)
        time.sleep(0.5)
        assert len(cap.messages) == 1
        assert len(d.files("carol@example.test")) == 1
    finally:
        cap.close()


def test_filter_applies_to_sendmail(facteurd):
    """Mail submitted with sendmail (pickup) is filtered too, as Postfix's
    pickup applies main.cf's content_filter."""
    from test_sendmail import sendmail
    cap = Capture()
    try:
        d, _ = filter_daemon(facteurd, cap.port, start=False)
        d.params["myorigin"] = "example.test"
        d.write_config()
        d.start()
        r = sendmail(d, ["-f", "bob@example.test", "alice@example.test"],
                     make_msg("via-sendmail", to="alice@example.test"))
        assert r.returncode == 0, r.stderr
        cap.wait_messages(1)
        assert cap.messages[0][1] == ["alice@example.test"]
        assert d.files("alice@example.test") == []
    finally:
        cap.close()


def test_pipe_filter_on_listener(facteurd):
    """FILTER_README's simple filter: a listener with
    -o content_filter=filter:dummy hands its mail to a pipe service
    (${nexthop} is "dummy"); nothing reaches the Maildir directly."""
    from test_pipe import owner, script_dir, wait_runs
    d = facteurd(start=False)
    p = script_dir(d)
    port2 = free_port()
    d.master_cf += ("filter unix - n n - 10 pipe\n"
                    "  flags=Rq user=%s argv=%s/rec.py -f ${sender} -- "
                    "${recipient} ${nexthop}\n"
                    "127.0.0.1:%d inet n - n - - smtpd\n"
                    "  -o content_filter=filter:dummy\n" % (owner(), p, port2))
    d.write_config()
    d.start()
    msg = make_msg("simple-filter", to="carol@example.test")
    with smtplib.SMTP("127.0.0.1", port2, timeout=10) as s:
        s.ehlo("client.test")
        s.sendmail("sender@example.net", ["carol@example.test"], msg)
    r = wait_runs(p, 1)
    assert r[0]["argv"] == ["-f", "sender@example.net", "--",
                            "carol@example.test", "dummy"], r
    assert r[0]["stdin"].encode("latin-1").endswith(to_lf(msg))
    d.wait_log(r"to=<carol@example\.test>, relay=filter, .*status=sent "
               r"\(delivered via filter service\)")
    assert d.files("carol@example.test") == []
