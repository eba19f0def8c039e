"""
test_verify.py - address verification (reject_unverified_recipient,
reject_unverified_sender; core/verify.c, delivery/smtp_probe.c).

One daemon for the module: relay_domains example.net (and down.test,
slow.test) routed by transport_maps to a capture server (down.test to a
closed port). The capture server answers RCPT per address: bad* 550,
temp* 451, slow* after 2.5 s, else 250. A probe is MAIL FROM the
double-bounce address, RCPT, QUIT: the capture server never sees DATA.
lmtp.test goes to an LMTP capture server (LHLO, no DATA either).
A second listener has -o unverified_recipient_reject_code=550.
Checks: a deliverable address passes and its probe is logged as
deliverable; an undeliverable one gets 450 (550 on the second listener)
with the remote reply; the second RCPT to an address is answered from
the cache (no new probe); a 4xx remote and a closed port give 450 4.1.1
"unverified address" only when the rest of the list would permit
(defer_if_permit: a later REJECT wins; with the tempfail action
"defer", at once, and unverified_recipient_reject_reason as the text);
a slow probe answers "Address
verification in progress" after the poll, then the cached result; at
most half of the workers wait for probes (the others answer at once); a
local mailbox (and an unknown one) is decided without a probe; the
sender is verified the same way (4.1.7), one in another domain through
address_verify_relayhost; a stop with a probe in flight
is clean; the cache survives a restart, and with address_verify_map
empty it does not.
"""
import re
import signal
import threading
import time

import pytest

from capture import Capture
from harness import check, free_port

SENDER = "alice@example.test"    # a local mailbox: verified without a probe


def rcpt_reply(addr):
    local = addr.split("@")[0]
    if local.startswith("bad"):
        return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % addr
    if local.startswith("temp"):
        return "451 4.3.0 <%s>: try again later" % addr
    if local.startswith("slow"):
        time.sleep(2.5)
    return "250 2.1.5 Ok"


@pytest.fixture(scope="module")
def remote():
    r = Capture(port=free_port())
    r.rcpt_reply = rcpt_reply
    yield r
    r.close()


@pytest.fixture(scope="module")
def lmtp_remote():
    r = Capture(lmtp=True, port=free_port())
    r.rcpt_reply = rcpt_reply
    yield r
    r.close()


@pytest.fixture(scope="module")
def env(mx_pool, remote, lmtp_remote):
    port2, port3 = free_port(), free_port()
    d = mx_pool.new(main_cf={
        "relay_domains": "example.net, down.test, slow.test, lmtp.test",
        "transport_maps": "inline:{ example.net=smtp:[127.0.0.1]:%d, "
                          "slow.test=smtp:[127.0.0.1]:%d, "
                          "down.test=smtp:[127.0.0.1]:%d, "
                          "lmtp.test=lmtp:inet:127.0.0.1:%d }"
                          % (remote.port, remote.port, free_port(),
                             lmtp_remote.port),
        "smtpd_recipient_restrictions":
            "reject_unauth_destination, reject_unverified_recipient, "
            "check_recipient_access inline:{ blocked@down.test=REJECT }",
        "smtpd_sender_restrictions": "reject_unverified_sender",
        "address_verify_poll_count": "2",
        "address_verify_poll_delay": "1s",
        "smtp_connect_timeout": "5s",
        "facteur_worker_threads": "4",      # at most 2 queries wait
        # other domains: probes go here (mail would use MX records)
        "address_verify_relayhost": "[127.0.0.1]:%d" % remote.port,
    }, extra_master_cf="127.0.0.1:%d inet n - n - - smtpd "
                       "-o unverified_recipient_reject_code=550\n"
                       "127.0.0.1:%d inet n - n - - smtpd "
                       "-o unverified_recipient_tempfail_action=defer "
                       "-o unverified_recipient_reject_reason=Not_verified\n"
                       % (port2, port3))
    d.port2, d.port3 = port2, port3
    return d


@pytest.fixture(scope="module")
def mx_pool(build, tmp_path_factory):
    import harness
    pool = harness.Pool(tmp_path_factory.mktemp("verify"))
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def probes(remote, addr):
    """Connections of the capture server that asked RCPT TO:<addr>."""
    return [c for c in list(remote.conns)
            if any(re.match(r"(?i)RCPT TO:<%s>" % re.escape(addr), x)
                   for x in c.commands)]


def rcpt(d, addr, sender=SENDER, port=None):
    c = d.connect(port=port)
    check(c.cmd("EHLO client.test"), 250)
    check(c.cmd("MAIL FROM:<%s>" % sender), 250)
    r = c.cmd("RCPT TO:<%s>" % addr)
    c.cmd("QUIT")
    c.close()
    return r


def test_deliverable_address_passes(env, remote):
    check(rcpt(env, "good@example.net"), 250, "2.1.5")
    conns = probes(remote, "good@example.net")
    assert len(conns) == 1, remote.conns
    cmds = conns[0].commands
    assert any(re.match(r"(?i)MAIL FROM:<double-bounce@[^>]+>$", x)
               for x in cmds), cmds
    assert not any(x.upper().startswith("DATA") for x in cmds), cmds
    assert any(x.upper() == "QUIT" for x in cmds), cmds
    env.wait_log(r"to=<good@example\.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
                 r":\d+, .*dsn=2\.1\.5, status=deliverable \(host ")
    # answered from the cache: no second probe
    check(rcpt(env, "good@example.net"), 250, "2.1.5")
    assert len(probes(remote, "good@example.net")) == 1


def test_undeliverable_address_450_with_remote_text(env, remote):
    r = rcpt(env, "bad1@example.net")
    check(r, 450, "4.1.1", r"<bad1@example\.net>: Recipient address "
          r"rejected: undeliverable address: host 127\.0\.0\.1\[127\.0\.0\.1\] "
          r"said: 550 5\.1\.1 <bad1@example\.net>: Recipient address "
          r"rejected: User unknown \(in reply to RCPT TO command\)")
    env.wait_log(r"to=<bad1@example\.net>, .*dsn=5\.1\.1, "
                 r"status=undeliverable \(host ")
    # cached: the same answer without a new probe
    n = len(probes(remote, "bad1@example.net"))
    assert n == 1
    check(rcpt(env, "bad1@example.net"), 450, "4.1.1", "undeliverable address")
    assert len(probes(remote, "bad1@example.net")) == 1


def test_lmtp_next_hop(env, lmtp_remote):
    check(rcpt(env, "u@lmtp.test"), 250, "2.1.5")
    check(rcpt(env, "bad5@lmtp.test"), 450, "4.1.1",
          r"undeliverable address: host 127\.0\.0\.1\[127\.0\.0\.1\] said: "
          r"550 5\.1\.1")
    cmds = [x.upper() for c in lmtp_remote.conns for x in c.commands]
    assert any(x.startswith("LHLO") for x in cmds), cmds
    assert not any(x == "DATA" for x in cmds), cmds
    assert not lmtp_remote.messages
    env.wait_log(r"lmtp\[\d+\]: \w+: to=<u@lmtp\.test>, .*status=deliverable")


def test_reject_code_550_per_listener(env, remote):
    r = rcpt(env, "bad2@example.net", port=env.port2)
    check(r, 550, "5.1.1", r"undeliverable address: host .* said: 550 5\.1\.1")


def test_remote_4xx_defers_if_permit(env, remote):
    r = rcpt(env, "temp1@example.net")
    check(r, 450, "4.1.1", r"<temp1@example\.net>: Recipient address "
          r"rejected: unverified address: host 127\.0\.0\.1\[127\.0\.0\.1\] "
          r"said: 451 4\.3\.0")
    # the 4xx result is cached too (negative refresh time)
    check(rcpt(env, "temp1@example.net"), 450, "4.1.1", "unverified address")
    assert len(probes(remote, "temp1@example.net")) == 1


def test_remote_down_defers_only_if_permitted(env):
    r = rcpt(env, "x@down.test")
    check(r, 450, "4.1.1", r"<x@down\.test>: Recipient address rejected: "
          r"unverified address: connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: "
          r"Connection refused")
    # defer_if_permit: a later REJECT in the list wins over the tempfail
    r = rcpt(env, "blocked@down.test")
    check(r, 554, "5.7.1", "Access denied")
    # unverified_recipient_tempfail_action = defer: the tempfail at once
    r = rcpt(env, "blocked@down.test", port=env.port3)
    # (and unverified_recipient_reject_reason replaces the probe's text)
    check(r, 450, "4.1.1", r"<blocked@down\.test>: Recipient address "
          r"rejected: unverified address: Not_verified$")
    check(rcpt(env, "bad1@example.net", port=env.port3), 450, "4.1.1",
          r"<bad1@example\.net>: Recipient address rejected: "
          r"undeliverable address: Not_verified$")


def test_slow_probe_in_progress_then_cached(env, remote):
    t0 = time.time()
    r = rcpt(env, "slow@slow.test")
    took = time.time() - t0
    check(r, 450, "4.1.1", r"<slow@slow\.test>: Recipient address rejected: "
          r"unverified address: Address verification in progress")
    assert 0.8 <= took < 2.4, took   # (poll_count - 1) x poll_delay
    env.wait_log(r"to=<slow@slow\.test>, .*status=deliverable")
    check(rcpt(env, "slow@slow.test"), 250, "2.1.5")
    assert len(probes(remote, "slow@slow.test")) == 1


def test_waiting_queries_bounded(env, remote):
    """With 4 workers at most 2 queries wait for their probe; a third
    answers "in progress" at once (deliveries keep their workers)."""
    took = {}

    def one(a):
        t0 = time.time()
        r = rcpt(env, a)
        took[a] = (time.time() - t0, r)

    ts = [threading.Thread(target=one, args=("slow%d@slow.test" % i,))
          for i in (3, 4, 5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    assert len(took) == 3, took
    for t, r in took.values():
        check(r, 450, "4.1.1", "Address verification in progress")
    fast = [t for t, r in took.values() if t < 0.6]
    slow = [t for t, r in took.values() if t >= 0.8]
    assert len(fast) == 1 and len(slow) == 2, took
    for i in (3, 4, 5):
        env.wait_log(r"to=<slow%d@slow\.test>, .*status=deliverable" % i)


def test_local_addresses_without_probe(env, remote):
    before = len(remote.conns)
    check(rcpt(env, "bob@example.test"), 250, "2.1.5")
    # an unknown mailbox is undeliverable, said by the resolver (the
    # restriction runs before the unlisted-recipient check, as in Postfix)
    check(rcpt(env, "nobody@example.test"), 450, "4.1.1",
          r"<nobody@example\.test>: Recipient address rejected: "
          r"undeliverable address: User unknown in virtual mailbox table")
    assert len(remote.conns) == before


def test_sender_verification(env, remote):
    r = rcpt(env, "bob@example.test", sender="bad3@example.net")
    check(r, 450, "4.1.7", r"<bad3@example\.net>: Sender address rejected: "
          r"undeliverable address: host 127\.0\.0\.1\[127\.0\.0\.1\] said: "
          r"550 5\.1\.1")
    check(rcpt(env, "bob@example.test", sender="fine@example.net"), 250,
          "2.1.5")
    assert len(probes(remote, "fine@example.net")) == 1
    # a sender elsewhere is probed through address_verify_relayhost
    check(rcpt(env, "bob@example.test", sender="someone@elsewhere.test"),
          250, "2.1.5")
    assert len(probes(remote, "someone@elsewhere.test")) == 1
    check(rcpt(env, "bob@example.test", sender="bad4@elsewhere.test"), 450,
          "4.1.7", r"<bad4@elsewhere\.test>: Sender address rejected: "
          r"undeliverable address: host 127\.0\.0\.1\[127\.0\.0\.1\] "
          r"said: 550 5\.1\.1")
    # the null sender is not verified
    check(rcpt(env, "bob@example.test", sender=""), 250, "2.1.5")


def test_stop_while_probing(env, remote):
    """A stop with a probe in flight: the probe is abandoned (nothing
    leaks, exit 0), and nothing was stored for the address."""
    check(rcpt(env, "slow2@slow.test"), 450, "4.1.1", "in progress")
    rc, forced = env.stop()
    assert rc == 0 and not forced, (rc, forced)
    assert env.sanitizer_report() is None, env.sanitizer_report()
    assert "slow2@slow.test>, " not in env.log()
    env.start()


def test_cache_survives_restart(env, remote):
    check(rcpt(env, "kept@example.net"), 250, "2.1.5")
    assert len(probes(remote, "kept@example.net")) == 1
    env.stop()
    env.start()
    check(rcpt(env, "kept@example.net"), 250, "2.1.5")
    check(rcpt(env, "bad1@example.net"), 450, "4.1.1", "undeliverable")
    assert len(probes(remote, "kept@example.net")) == 1
    assert len(probes(remote, "bad1@example.net")) == 1


def test_reload_warns_verifier_settings(env):
    """The verifier keeps its start-up settings: a reload that changes one
    says a restart is needed (and the per-listener ones apply at once)."""
    env.params["address_verify_negative_cache"] = "no"
    env.params["unverified_recipient_reject_code"] = "550"
    env.write_config()
    env.proc.send_signal(signal.SIGHUP)
    env.wait_log(r"reload: address_verify_negative_cache changed: restart "
                 r"facteurd to apply it")
    env.wait_log(r"reload -- configuration")
    check(rcpt(env, "bad1@example.net"), 550, "5.1.1", "undeliverable")


def test_empty_map_forgets_at_restart(mx_pool, remote):
    """address_verify_map empty (Postfix: in memory only): results are
    used while the daemon runs and forgotten by a restart."""
    d = mx_pool.new(main_cf={
        "relay_domains": "example.net",
        "transport_maps": "inline:{ example.net=smtp:[127.0.0.1]:%d }"
                          % remote.port,
        "smtpd_recipient_restrictions":
            "reject_unauth_destination, reject_unverified_recipient",
        "address_verify_map": "",
        "address_verify_poll_count": "2",
        "address_verify_poll_delay": "1s",
    })
    check(rcpt(d, "mem@example.net"), 250, "2.1.5")
    check(rcpt(d, "mem@example.net"), 250, "2.1.5")
    assert len(probes(remote, "mem@example.net")) == 1
    rc, forced = d.stop()
    assert rc == 0 and not forced
    d.start()
    check(rcpt(d, "mem@example.net"), 250, "2.1.5")
    assert len(probes(remote, "mem@example.net")) == 2


def test_sender_dependent_relayhost_for_probes(mx_pool, remote):
    """Probes look address_verify_sender_dependent_relayhost_maps up with
    their own sender: here the only way to reach the capture server (the
    domain has no DNS)."""
    d = mx_pool.new(main_cf={
        "smtpd_sender_restrictions": "reject_unverified_sender",
        "address_verify_sender_dependent_relayhost_maps":
            "inline:{ double-bounce@mx.example.test=[127.0.0.1]:%d }"
            % remote.port,
        "address_verify_poll_count": "2",
        "address_verify_poll_delay": "1s",
    })
    check(rcpt(d, "bob@example.test", sender="far@far-away.test"), 250,
          "2.1.5")
    assert len(probes(remote, "far@far-away.test")) == 1
