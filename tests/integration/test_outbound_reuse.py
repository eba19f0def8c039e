"""
test_outbound_reuse.py - the SMTP client's connection cache and source
address: several queued messages to one next hop are flushed over one
connection (RSET between transactions, conn_use=N in the log lines), with
Postfix's limits (smtp_connection_reuse_count_limit, on-demand caching off,
smtp_connection_cache_destinations, smtp_connection_cache_time_limit,
smtp_destination_recipient_limit splitting one message into transactions
on one connection); a
parked connection the server closed is replaced without losing mail; and
smtp_bind_address sets the source address the remote sees (127.0.0.2), with
smtp_bind_address_enforce deciding what a failed bind does; inet_protocols
decides which address records (A, AAAA) the client looks up.
"""
import re
import time

import pytest

from capture import Capture
from dnsserver import dns_server, host, mx  # noqa: F401 (fixture)
from harness import free_port, make_msg


@pytest.fixture
def remote():
    r = Capture()
    yield r
    r.close()


def daemon(new, remote, start=True, **extra):
    params = {"relayhost": "[127.0.0.1]:%d" % remote.port,
              "facteur_dns_servers": "127.0.0.1:%d" % free_port(),
              "smtp_connect_timeout": "5s",
              "queue_run_delay": "1h",
              "minimal_backoff_time": "1h", "maximal_backoff_time": "2h"}
    params.update(extra)
    return new(start=start, main_cf=params)


def queue_deferred(d, remote, n):
    """n messages, each deferred because the remote greets with 421."""
    remote.greeting = "421 4.3.2 remote.test busy, try later"
    ids = []
    for i in range(n):
        rcpt = "user%d@far.example" % i
        ids.append(d.send("sender@example.net", [rcpt],
                          make_msg("queued %d" % i, to=rcpt)))
    for qid in ids:
        d.wait_log(r"%s: to=<.*status=deferred" % qid)
    remote.greeting = None
    before = remote.connections
    return ids, before


def flush_and_wait(d, remote, n, before):
    r = d.cli("queue", "flush")
    assert r.returncode == 0, r.stderr
    got = remote.wait_messages(n)
    assert len(got) == n, d.diagnostics()
    assert not d.wait_queue_empty(), d.diagnostics()
    return remote.conns[before:]


def test_flush_uses_one_connection(facteurd, remote):
    d = daemon(facteurd, remote, smtp_destination_concurrency_limit="1")
    ids, before = queue_deferred(d, remote, 5)
    conns = flush_and_wait(d, remote, 5, before)
    assert len(conns) == 1, [c.commands for c in conns]
    cmds = conns[0].commands
    assert conns[0].transactions == 5
    # RSET before each later transaction, one EHLO, one QUIT at the end
    assert sum(1 for c in cmds if c.upper().startswith("EHLO")) == 1
    assert sum(1 for c in cmds if c.upper() == "RSET") == 4, cmds
    mails = [i for i, c in enumerate(cmds) if c.upper().startswith("MAIL")]
    for i in mails[1:]:
        assert cmds[i - 1].upper() == "RSET", cmds
    # every message reached its own recipient
    assert sorted(m[1][0] for m in remote.messages) == [
        "user%d@far.example" % i for i in range(5)]
    # Postfix's conn_use=N on the reused deliveries, 2..5
    uses = sorted(int(u) for u in re.findall(r", conn_use=(\d+), delay=",
                                             d.log()))
    assert uses == [2, 3, 4, 5], d.log()
    # the connection is closed with QUIT once the queue is empty
    deadline = time.time() + 5
    while cmds[-1].upper() != "QUIT" and time.time() < deadline:
        time.sleep(0.05)
    assert cmds[-1].upper() == "QUIT"


def test_reuse_count_limit(facteurd, remote):
    d = daemon(facteurd, remote, smtp_destination_concurrency_limit="1",
               smtp_connection_reuse_count_limit="1")
    ids, before = queue_deferred(d, remote, 5)
    conns = flush_and_wait(d, remote, 5, before)
    # reused at most once: two transactions per connection
    assert [c.transactions for c in conns] == [2, 2, 1], \
        [c.commands for c in conns]


def test_reuse_time_limit(facteurd, remote):
    """Each transaction takes 0.6 s; a connection older than 1 s is not
    reused again: at most two transactions per connection."""
    def slow_reply(addr=None):
        time.sleep(0.6)
        return "250 2.0.0 Ok: queued as SLOW"
    d = daemon(facteurd, remote, smtp_destination_concurrency_limit="1",
               smtp_connection_reuse_time_limit="1s")
    ids, before = queue_deferred(d, remote, 4)
    remote.data_reply = slow_reply
    conns = flush_and_wait(d, remote, 4, before)
    assert len(conns) >= 2, [c.commands for c in conns]
    assert max(c.transactions for c in conns) <= 2


def test_no_cache_on_demand_one_connection_each(facteurd, remote):
    d = daemon(facteurd, remote, smtp_destination_concurrency_limit="1",
               smtp_connection_cache_on_demand="no")
    ids, before = queue_deferred(d, remote, 3)
    conns = flush_and_wait(d, remote, 3, before)
    assert [c.transactions for c in conns] == [1, 1, 1]
    assert not any("RSET" in c.commands for c in conns)
    assert "conn_use=" not in d.log()


def test_cache_destinations_keeps_then_quits(facteurd, remote):
    d = daemon(facteurd, remote, smtp_connection_cache_time_limit="4s",
               smtp_connection_cache_destinations="[127.0.0.1]:%d"
               % remote.port)
    d.send("sender@example.net", ["a@far.example"], make_msg("one"))
    assert len(remote.wait_messages(1)) == 1
    time.sleep(0.3)
    q2 = d.send("sender@example.net", ["b@far.example"], make_msg("two"))
    assert len(remote.wait_messages(2)) == 2
    assert remote.connections == 1, [c.commands for c in remote.conns]
    c = remote.conns[0]
    assert c.transactions == 2 and "RSET" in c.commands
    d.wait_log(r"%s: to=<b@far\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
               r":%d, conn_use=2, delay=.*status=sent" % (q2, remote.port))
    # idle longer than smtp_connection_cache_time_limit: QUIT
    assert c.commands[-1].upper() != "QUIT"
    deadline = time.time() + 10
    while c.commands[-1].upper() != "QUIT" and time.time() < deadline:
        time.sleep(0.05)
    assert c.commands[-1].upper() == "QUIT", c.commands


def test_parked_connection_closed_by_server(facteurd, remote):
    """The remote hangs up after each transaction (no 421): the cached
    connection is dropped or its RSET fails; a new one carries the mail."""
    remote.close_after = 1
    d = daemon(facteurd, remote, smtp_connection_cache_destinations="[127.0.0.1]:%d"
               % remote.port)
    ids = []
    for i in range(3):
        ids.append(d.send("sender@example.net", ["u%d@far.example" % i],
                          make_msg("n%d" % i)))
        assert len(remote.wait_messages(i + 1)) == i + 1, d.diagnostics()
        time.sleep(0.2 if i == 0 else 0)
    for qid in ids:
        d.wait_log(r"%s: to=<.*status=sent" % qid)
    assert "status=deferred" not in d.log()
    assert remote.connections == 3
    assert [c.transactions for c in remote.conns] == [1, 1, 1]


def test_bind_address_seen_by_remote(facteurd, remote):
    d = daemon(facteurd, remote, smtp_bind_address="127.0.0.2")
    qid = d.send("sender@example.net", ["far@far.example"], make_msg("bind"))
    assert len(remote.wait_messages(1)) == 1, d.diagnostics()
    assert remote.conns[0].peer[0] == "127.0.0.2"
    d.wait_log(r"%s: to=<far@far\.example>.*status=sent" % qid)


def test_bind_failure_not_enforced_connects_anyway(facteurd, remote):
    # 192.0.2.1 (TEST-NET-1) is on no interface here: bind fails
    d = daemon(facteurd, remote, smtp_bind_address="192.0.2.1")
    qid = d.send("sender@example.net", ["far@far.example"], make_msg("nb"))
    assert len(remote.wait_messages(1)) == 1, d.diagnostics()
    d.wait_log(r"warning: smtp_connect_addr: bind 192\.0\.2\.1: ")
    d.wait_log(r"%s: to=<far@far\.example>.*status=sent" % qid)
    assert remote.conns[0].peer[0] == "127.0.0.1"


def test_bind_failure_enforced_defers(facteurd, remote):
    d = daemon(facteurd, remote, smtp_bind_address="192.0.2.1",
               smtp_bind_address_enforce="yes")
    qid = d.send("sender@example.net", ["far@far.example"], make_msg("nb"))
    d.wait_log(r"%s: to=<far@far\.example>.*status=deferred \(cannot bind "
               r"to the source address 192\.0\.2\.1 \(smtp_bind_address\)"
               % qid)
    assert remote.connections == 0


def test_bind_address_must_be_numeric(facteurd, remote):
    d = daemon(facteurd, remote, start=False)
    d.params["smtp_bind_address"] = "not-an-address"
    d.write_config()
    d.expect_exit = True
    with pytest.raises(AssertionError, match="smtp_bind_address"):
        d.start()


def test_recipient_limit_splits_over_one_connection(facteurd, remote):
    d = daemon(facteurd, remote, smtp_destination_recipient_limit="2",
               smtp_destination_concurrency_limit="1")
    rcpts = ["r%d@far.example" % i for i in range(5)]
    qid = d.send("sender@example.net", rcpts, make_msg("many"))
    got = remote.wait_messages(3)
    assert len(got) == 3, d.diagnostics()
    assert [m[1] for m in got] == [rcpts[0:2], rcpts[2:4], rcpts[4:]]
    assert remote.connections == 1
    for r in rcpts:
        d.wait_log(r"%s: to=<%s>, .*status=sent" % (qid, re.escape(r)))
    d.wait_log(r"%s: removed" % qid)


@pytest.fixture
def dns6(dns_server):
    """dnsmasq: v6only.test MX -> mx6.v6only.test with only an AAAA (::1),
    v4only.test MX -> mx4.v4only.test with only an A (127.0.0.1)."""
    return dns_server(
        mx("v6only.test", "mx6.v6only.test"),
        host("mx6.v6only.test", "::1"),
        mx("v4only.test", "mx4.v4only.test"),
        host("mx4.v4only.test", "127.0.0.1")).port


def test_inet_protocols_selects_address_lookups(facteurd, remote, dns6):
    dead = free_port()
    routes = ("inline:{ v6only.test=smtp:v6only.test:%d, "
              "v4only.test=smtp:v4only.test:%d }" % (dead, remote.port))
    # all: the AAAA record is used (nothing listens there: refused)
    d = daemon(facteurd, remote, facteur_dns_servers="127.0.0.1:%d" % dns6,
               relayhost=None, transport_maps=routes)
    qid = d.send("sender@example.net", ["a@v6only.test"], make_msg("v6"))
    d.wait_log(r"%s: to=<a@v6only\.test>, relay=mx6\.v6only\.test\[::1\]:%d, "
               r".*status=deferred" % (qid, dead))
    # ipv4: no AAAA lookup, so no address for the v6-only MX host (a
    # permanent DNS answer, as Postfix: bounced); the v4-only one is reached
    d2 = daemon(facteurd, remote, facteur_dns_servers="127.0.0.1:%d" % dns6,
                relayhost=None, transport_maps=routes, inet_protocols="ipv4")
    q6 = d2.send("sender@example.net", ["b@v6only.test"], make_msg("v6"))
    q4 = d2.send("sender@example.net", ["c@v4only.test"], make_msg("v4"))
    d2.wait_log(r"%s: to=<b@v6only\.test>, relay=none, .*status=bounced "
                r"\(Host or domain name not found\. Name service error for "
                r"name=mx6\.v6only\.test type=A: Host not found\)" % q6)
    d2.wait_log(r"%s: to=<c@v4only\.test>, relay=mx4\.v4only\.test"
                r"\[127\.0\.0\.1\]:%d, .*status=sent" % (q4, remote.port))
    assert "[::1]" not in d2.log()
