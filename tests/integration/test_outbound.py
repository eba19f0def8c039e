"""
test_outbound.py - mail that leaves: facteurd relays to a small capture SMTP
server on loopback, found through relayhost ([host]:port, no MX lookup) or
through MX records served by a private dnsmasq. Checks the bytes that
arrive, the Postfix-style delivery lines, per-recipient 4xx/5xx handling,
retries after backoff, and the null MX (RFC 7505) bounce.
"""
import os
import time

import pytest

from capture import Capture
from dnsserver import dns_server, host, mx, null_mx  # noqa: F401 (fixture)
from harness import free_port, make_msg, to_lf


@pytest.fixture
def remote():
    r = Capture()
    yield r
    r.close()


@pytest.fixture
def dnsmasq(dns_server):
    """A private dnsmasq for .test names: remote.test MX -> mx.remote.test
    (127.0.0.1), nullmx.test has the null MX."""
    return dns_server(
        mx("remote.test", "mx.remote.test"),
        host("mx.remote.test", "127.0.0.1"),
        null_mx("nullmx.test"),
        mx("deadmx.test", "mx.deadmx.test"),
        host("mx.deadmx.test", "127.0.0.1")).port


def relay_daemon(new, remote_port, dns_port=None, **extra):
    params = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
              "queue_run_delay": "1s", "smtp_connect_timeout": "5s"}
    if dns_port:
        params["facteur_dns_servers"] = "127.0.0.1:%d" % dns_port
        params["transport_maps"] = (
            "inline:{ remote.test=smtp:remote.test:%d, "
            "deadmx.test=smtp:deadmx.test:%d }" % (remote_port,
                                                   free_port()))
    else:
        params["relayhost"] = "[127.0.0.1]:%d" % remote_port
        params["facteur_dns_servers"] = "127.0.0.1:%d" % free_port()
    params.update(extra)
    return new(main_cf=params)


def send(d, rcpts, msg, sender="sender@example.net"):
    return d.send(sender, rcpts, msg)


def test_relayhost_sent_bytes_identical(facteurd, remote):
    d = relay_daemon(facteurd, remote.port)
    body = (b"line one\r\n.\r\n..two dots\r\n.leading dot\r\n"
            b"8bit: caf\xc3\xa9\r\nlast\r\n")
    msg = make_msg("outbound", to="friend@far.example", body=body)
    qid = send(d, ["friend@far.example"], msg)
    got = remote.wait_messages(1)
    assert len(got) == 1, d.diagnostics()
    sender, rcpts, data = got[0]
    assert sender == "sender@example.net"
    assert rcpts == ["friend@far.example"]
    # what left is the queued message (LF -> CRLF, dots unstuffed again)
    unstuffed = b"".join(l[1:] if l.startswith(b".") else l
                         for l in data.splitlines(keepends=True))
    # only a Received: header is added in front
    assert to_lf(unstuffed).endswith(to_lf(msg))
    assert to_lf(unstuffed).startswith(b"Received: ")
    assert b"\r\n...two dots\r\n" in data    # stuffed on the wire
    m = d.wait_log(r"%s: to=<friend@far\.example>, relay=127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d, delay=[0-9.]+, delays=[0-9.]+/"
                   r"[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, status=sent "
                   r"\(250 2\.0\.0 Ok: queued as CAFE1\)" % (qid, remote.port))
    line = [l for l in d.log().splitlines() if m.group(0) in l][0]
    assert "/smtp[" in line, line
    d.wait_log(r"%s: removed" % qid)
    assert not d.wait_queue_empty()


def test_4xx_deferred_then_sent(facteurd, remote):
    state = {"n": 0}

    def rcpt_reply(a):
        state["n"] += 1
        return "451 4.3.0 try again later" if state["n"] == 1 else "250 Ok"
    remote.rcpt_reply = rcpt_reply
    d = relay_daemon(facteurd, remote.port)
    msg = make_msg("retry", to="later@far.example")
    qid = send(d, ["later@far.example"], msg)
    d.wait_log(r"%s: to=<later@far\.example>, relay=\S+, .*dsn=4\.3\.0, "
               r"status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: "
               r"451 4\.3\.0 try again later \(in reply to RCPT TO command\)\)"
               % qid)
    d.wait_log(r"%s: to=<later@far\.example>, .*status=sent" % qid)
    assert len(remote.wait_messages(1)) == 1
    assert not d.wait_queue_empty()


def test_5xx_for_one_of_two(facteurd, remote):
    remote.rcpt_reply = lambda a: ("550 5.1.1 <%s>: Recipient address "
                                   "rejected: User unknown" % a
                                   if a.startswith("nobody") else "250 Ok")
    d = relay_daemon(facteurd, remote.port)
    msg = make_msg("half", to="ok@far.example")
    qid = send(d, ["ok@far.example", "nobody@far.example"], msg)
    d.wait_log(r"%s: to=<nobody@far\.example>, .*dsn=5\.1\.1, "
               r"status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 "
               % qid)
    d.wait_log(r"%s: to=<ok@far\.example>, .*status=sent" % qid)
    d.wait_log(r"%s: removed" % qid)
    got = remote.wait_messages(1)
    assert len(got) == 1 and got[0][1] == ["ok@far.example"]
    time.sleep(1.5)          # no retry of the bounced recipient
    # besides it, only the non-delivery notification to the sender (from <>)
    assert [(m[0], m[1]) for m in remote.messages] == [
        ("sender@example.net", ["ok@far.example"]),
        ("", ["sender@example.net"])]


def test_mx_lookup_via_dnsmasq(facteurd, remote, dnsmasq):
    d = relay_daemon(facteurd, remote.port, dns_port=dnsmasq)
    msg = make_msg("via mx", to="user@remote.test")
    qid = send(d, ["user@remote.test"], msg)
    got = remote.wait_messages(1)
    assert len(got) == 1 and got[0][1] == ["user@remote.test"], d.diagnostics()
    d.wait_log(r"%s: to=<user@remote\.test>, relay=mx\.remote\.test"
               r"\[127\.0\.0\.1\]:%d, .*status=sent" % (qid, remote.port))


def test_null_mx_bounces(facteurd, remote, dnsmasq):
    d = relay_daemon(facteurd, remote.port, dns_port=dnsmasq)
    qid = send(d, ["user@nullmx.test"], make_msg("nullmx", to="user@nullmx.test"))
    d.wait_log(r"%s: to=<user@nullmx\.test>, relay=none, .*dsn=5\.1\.10, "
               r"status=bounced \(Domain nullmx\.test does not accept mail "
               r"\(nullMX\)\)" % qid)
    d.wait_log(r"%s: removed" % qid)
    assert remote.connections == 0


def test_connection_refused_defers(facteurd, remote, dnsmasq):
    d = relay_daemon(facteurd, remote.port, dns_port=dnsmasq)
    qid = send(d, ["user@deadmx.test"], make_msg("dead", to="user@deadmx.test"))
    d.wait_log(r"connect to mx\.deadmx\.test\[127\.0\.0\.1\]:\d+: "
               r"Connection refused")
    d.wait_log(r"%s: to=<user@deadmx\.test>, relay=mx\.deadmx\.test"
               r"\[127\.0\.0\.1\]:\d+, .*dsn=4\.4\.1, status=deferred "
               r"\(connect to mx\.deadmx\.test\[127\.0\.0\.1\]:\d+: "
               r"Connection refused\)" % qid)
    deadline = time.time() + 10
    while (os.listdir(os.path.join(d.queue, "deferred")) != [qid]
           and time.time() < deadline):
        time.sleep(0.05)
    assert os.listdir(os.path.join(d.queue, "deferred")) == [qid]


def test_local_and_remote_in_one_message(facteurd, remote):
    d = relay_daemon(facteurd, remote.port)
    msg = make_msg("mixed", to="alice@example.test")
    qid = send(d, ["alice@example.test", "friend@far.example"], msg)
    assert len(remote.wait_messages(1)) == 1
    d.wait_files("alice@example.test", 1)
    d.wait_log(r"%s: to=<alice@example\.test>, relay=virtual, .*status=sent"
               % qid)
    d.wait_log(r"%s: to=<friend@far\.example>, .*status=sent" % qid)
    d.wait_log(r"%s: removed" % qid)
