"""
test_postscreen.py - a master.cf "postscreen" listener against the real
daemon, with a private dnsmasq serving DNSBL answers on a loopback port:
weighted DNSBL scores reaching / not reaching postscreen_dnsbl_threshold
(enforce: 550 at RCPT, drop: 521), reply filters, an allowlist with a
negative weight, the pre-greet test (a client talking before the full
greeting is dropped or rejected), the after-220 tests (pipelining,
non-SMTP commands, bare newlines) with the reconnect Postfix requires,
the access list (cidr: permit/reject), the LMDB cache giving PASS OLD
after a restart, and seed 004's postscreen block loading as written.
Clients use distinct 127.0.0.x source addresses (each has its own cache
entry); 127.0.0.1 is in mynetworks and is allowlisted.
"""
import os
import re
import contextlib
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from dnsserver import dns_server, dnsbl  # noqa: F401 (fixture)
from harness import SMTPConn, check, free_port
from test_tls import TLSConn, cert, starttls, tls_cf  # noqa: F401

RELAY = "permit_mynetworks, reject_unauth_destination"
SEEDS = "/work/shared/seeds/004_ae3664de84f573af.txt"


@pytest.fixture
def dnsmasq(dns_server):
    return dns_server(
        # 127.0.0.20: in zen.test (weight 3): reaches threshold 3
        dnsbl("zen.test", "127.0.0.1"),
        dnsbl("zen.test", "127.0.0.20"),
        # 127.0.0.21: in bl2.test only (weight 2): under the threshold
        dnsbl("bl2.test", "127.0.0.21", "127.0.0.4"),
        # 127.0.0.22: bl2.test (2) + bl3.test (1) = 3
        dnsbl("bl2.test", "127.0.0.22", "127.0.0.4"),
        dnsbl("bl3.test", "127.0.0.22"),
        # 127.0.0.23: zen.test answers 127.0.0.99, outside the filter
        dnsbl("zenf.test", "127.0.0.23", "127.0.0.99"),
        # 127.0.0.24: zen.test (3) but wl.test (-5): allowlisted
        dnsbl("zen.test", "127.0.0.24"),
        dnsbl("wl.test", "127.0.0.24", "127.0.9.2"),
        # 127.0.0.25: wl.test answer outside its filter: not allowlisted
        dnsbl("zen.test", "127.0.0.25"),
        dnsbl("wl.test", "127.0.0.25", "127.0.9.9")).port


class PS:
    """A daemon with a postscreen listener on its own port."""

    def __init__(self, facteurd, dns_port=None, extra_main_cf="", **params):
        self.port = free_port()
        cf = {"smtpd_relay_restrictions": RELAY,
              "postscreen_greet_wait": "1s"}
        if dns_port:
            cf["facteur_dns_servers"] = "127.0.0.1:%d" % dns_port
        cf.update(params)
        self.d = facteurd(main_cf=cf, extra_main_cf=extra_main_cf,
                          extra_master_cf="127.0.0.1:%d inet n - n - 1 "
                                          "postscreen\n" % self.port)

    def conn(self, source):
        return SMTPConn("127.0.0.1", self.port, source=source)

    def log(self):
        return self.d.log()


def teaser_then_full(c, timeout=5):
    """The "220-" teaser, then (after the greet wait) the final 220."""
    first = c.read_line(timeout)
    assert first is not None and first.startswith(b"220-"), first
    t0 = time.time()
    last = c.read_line(timeout)
    assert last is not None and last.startswith(b"220 "), last
    return time.time() - t0


def is_smtpd(c):
    """EHLO answered by the real SMTP engine (it offers PIPELINING)."""
    r = c.cmd("EHLO client.test")
    check(r, 250)
    return "PIPELINING" in r.lines





def rcpt(c, to="alice@example.test", sender="joe@remote.test"):
    check(c.cmd("MAIL FROM:<%s>" % sender), 250)
    return c.cmd("RCPT TO:<%s>" % to)


def test_dnsbl_threshold_enforce(facteurd, dnsmasq):
    ps = PS(facteurd, dnsmasq, postscreen_dnsbl_sites="zen.test*3 bl2.test*2 "
                                                      "bl3.test",
            postscreen_dnsbl_threshold="3", postscreen_dnsbl_action="enforce")
    # 3 from zen.test alone
    with ps.conn("127.0.0.20") as c:
        teaser_then_full(c)
        assert not is_smtpd(c)
        check(rcpt(c), 550, "5.7.1", r"Service unavailable; client "
              r"\[127\.0\.0\.20\] blocked using zen\.test$")
    # 2 + 1 from two lists
    with ps.conn("127.0.0.22") as c:
        teaser_then_full(c)
        check(rcpt(c), 550, "5.7.1", r"blocked using bl2\.test$")
    # 2: under the threshold, goes on to smtpd
    with ps.conn("127.0.0.21") as c:
        teaser_then_full(c)
        assert is_smtpd(c)
        check(rcpt(c), 250)
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.21\]:\d+")
    assert re.search(r"facteur/postscreen\[\d+\]: CONNECT from "
                     r"\[127\.0\.0\.20\]:\d+ to \[127\.0\.0\.1\]:%d" % ps.port,
                     ps.log())
    assert re.search(r"postscreen\[\d+\]: DNSBL rank 3 for "
                     r"\[127\.0\.0\.20\]:\d+", ps.log())
    assert re.search(r"DNSBL rank 3 for \[127\.0\.0\.22\]:\d+", ps.log())
    assert not re.search(r"DNSBL rank \d+ for \[127\.0\.0\.21\]", ps.log())
    assert re.search(r"postscreen\[\d+\]: NOQUEUE: reject: RCPT from "
                     r"\[127\.0\.0\.20\]:\d+: 550 5\.7\.1 Service unavailable; "
                     r"client \[127\.0\.0\.20\] blocked using zen\.test; "
                     r"from=<joe@remote\.test>, to=<alice@example\.test>, "
                     r"proto=ESMTP, helo=<client\.test>", ps.log())
    # a listed client is not cached as passed
    with ps.conn("127.0.0.20") as c:
        teaser_then_full(c)
        check(rcpt(c), 550, "5.7.1")


def test_dnsbl_reply_map_hides_the_secret(facteurd, dnsmasq):
    """postscreen_dnsbl_reply_map: the name asked (with a DQS-style key)
    is not the one shown to the client."""
    ps = PS(facteurd, dnsmasq, postscreen_dnsbl_sites="zen.test*3",
            postscreen_dnsbl_threshold="3", postscreen_dnsbl_action="enforce",
            postscreen_dnsbl_reply_map="inline:{zen.test=zen.example.org}")
    with ps.conn("127.0.0.20") as c:
        teaser_then_full(c)
        check(rcpt(c), 550, "5.7.1", r"blocked using zen\.example\.org$")


def test_dnsbl_drop(facteurd, dnsmasq):
    ps = PS(facteurd, dnsmasq, postscreen_dnsbl_sites="zen.test*3",
            postscreen_dnsbl_threshold="3", postscreen_dnsbl_action="drop")
    with ps.conn("127.0.0.20") as c:
        assert c.read_line(5).startswith(b"220-")
        r = c.reply(5)
        check(r, 521, "5.7.1", r"client \[127\.0\.0\.20\] blocked using "
                               r"zen\.test")
        assert c.expect_closed()
    ps.d.wait_log(r"DISCONNECT \[127\.0\.0\.20\]:\d+")


def test_dnsbl_filter_and_allowlist(facteurd, dnsmasq):
    ps = PS(facteurd, dnsmasq,
            postscreen_dnsbl_sites="zenf.test=127.0.0.[2..11]*3, zen.test*3, "
                                   "wl.test=127.0.[0..255].[1..3]*-5",
            postscreen_dnsbl_threshold="3", postscreen_dnsbl_action="enforce")
    # zenf.test answers 127.0.0.99: outside the filter, not listed
    with ps.conn("127.0.0.23") as c:
        teaser_then_full(c)
        assert is_smtpd(c)
    # zen.test 3 + wl.test -5 = -2
    with ps.conn("127.0.0.24") as c:
        teaser_then_full(c)
        assert is_smtpd(c)
        check(rcpt(c), 250)
    # wl.test answer outside its filter: 3, rejected
    with ps.conn("127.0.0.25") as c:
        teaser_then_full(c)
        check(rcpt(c), 550, "5.7.1", r"blocked using zen\.test")
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.24\]:\d+")
    assert re.search(r"PASS NEW \[127\.0\.0\.23\]:\d+", ps.log())
    assert not re.search(r"DNSBL rank \S+ for \[127\.0\.0\.24\]", ps.log())


def test_allowlist_threshold_skips_tests(facteurd, dnsmasq):
    """A score at or under postscreen_dnsbl_allowlist_threshold skips the
    rest of the greet wait and the after-220 tests."""
    ps = PS(facteurd, dnsmasq,
            postscreen_dnsbl_sites="zen.test*3, "
                                   "wl.test=127.0.[0..255].[1..3]*-5",
            postscreen_dnsbl_threshold="3", postscreen_greet_wait="4s",
            postscreen_dnsbl_allowlist_threshold="-1",
            postscreen_pipelining_enable="yes")
    with ps.conn("127.0.0.24") as c:
        t0 = time.time()
        assert c.read_line(5).startswith(b"220-")
        assert c.read_line(5).startswith(b"220 ")
        assert time.time() - t0 < 3.0, "the greet wait was not cut short"
        assert is_smtpd(c)      # not the dummy engine despite pipelining


def test_pregreet_drop(facteurd):
    ps = PS(facteurd, postscreen_greet_action="drop",
            postscreen_greet_wait="2s")
    with ps.conn("127.0.0.30") as c:
        c.send(b"EHLO ylmf-pc\r\n")
        lines = []
        while True:
            line = c.read_line(5)
            if line is None:
                break
            lines.append(line)
            if line.startswith(b"521"):
                break
        assert lines[-1] == b"521 5.5.1 Protocol error", lines
        assert c.expect_closed()
    ps.d.wait_log(r"postscreen\[\d+\]: PREGREET 14 after [0-9.]+ from "
                  r"\[127\.0\.0\.30\]:\d+: EHLO ylmf-pc\\r\\n")
    assert re.search(r"DISCONNECT \[127\.0\.0\.30\]:\d+", ps.log())
    # no pass remembered for a pre-greet talker
    assert not re.search(r"PASS (NEW|OLD) \[127\.0\.0\.30\]", ps.log())


def test_pipelining_before_greeting_enforce(facteurd):
    """Commands pipelined before the greeting (seed 004's
    postscreen_greet_action = enforce): detected, the client goes on in the
    dummy engine and is refused at RCPT; a polite client reaches smtpd."""
    ps = PS(facteurd, postscreen_greet_action="enforce")
    with ps.conn("127.0.0.31") as c:
        c.send(b"EHLO spam.test\r\nMAIL FROM:<a@spam.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\n")
        assert c.read_line(5).startswith(b"220-")
        check(c.reply(5), 220)
        check(c.reply(5), 250)          # EHLO
        check(c.reply(5), 250)          # MAIL
        check(c.reply(5), 550, "5.5.1", r"Protocol error$")
    ps.d.wait_log(r"PREGREET \d+ after [0-9.]+ from \[127\.0\.0\.31\]:\d+: "
                  r"EHLO spam\.test\\r\\nMAIL FROM")
    ps.d.wait_log(r"NOQUEUE: reject: RCPT from \[127\.0\.0\.31\]:\d+: 550 "
                  r"5\.5\.1 Protocol error; from=<a@spam\.test>, "
                  r"to=<alice@example\.test>")
    with ps.conn("127.0.0.32") as c:
        teaser_then_full(c)
        assert is_smtpd(c)
        check(rcpt(c), 250)


def test_pregreet_ignore_keeps_bytes_for_smtpd(facteurd):
    """With greet_action = ignore the talker is logged and handed to smtpd
    with its early command intact (the test only peeks)."""
    ps = PS(facteurd, postscreen_greet_action="ignore")
    with ps.conn("127.0.0.33") as c:
        c.send(b"EHLO early.test\r\n")
        assert c.read_line(5).startswith(b"220-")
        check(c.reply(5), 220)
        r = c.reply(5)
        check(r, 250)
        assert "PIPELINING" in r.lines
    ps.d.wait_log(r"PREGREET 17 after [0-9.]+ from \[127\.0\.0\.33\]")


def test_deep_tests_pass_then_reconnect(facteurd):
    """After-220 tests: a client that behaves gets 450 4.3.2 at RCPT (it
    must come back, as with Postfix), then PASS OLD straight to smtpd."""
    ps = PS(facteurd, postscreen_pipelining_enable="yes",
            postscreen_non_smtp_command_enable="yes",
            postscreen_bare_newline_enable="yes",
            postscreen_bare_newline_action="enforce")
    with ps.conn("127.0.0.40") as c:
        teaser_then_full(c)
        assert not is_smtpd(c)
        check(rcpt(c), 450, "4.3.2", r"Service currently unavailable$")
        check(c.cmd("QUIT"), 221)
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.40\]:\d+")
    with ps.conn("127.0.0.40") as c:
        r = c.reply(5)                  # no teaser for a known client
        check(r, 220)
        assert is_smtpd(c)
        check(rcpt(c), 250)
    ps.d.wait_log(r"PASS OLD \[127\.0\.0\.40\]:\d+")


def test_deep_pipelining_detected(facteurd):
    ps = PS(facteurd, postscreen_pipelining_enable="yes",
            postscreen_pipelining_action="enforce")
    with ps.conn("127.0.0.41") as c:
        teaser_then_full(c)
        c.send(b"EHLO fast.test\r\nMAIL FROM:<a@fast.test>\r\n"
               b"RCPT TO:<alice@example.test>\r\n")
        check(c.reply(5), 250)
        check(c.reply(5), 250)
        check(c.reply(5), 550, "5.5.1", r"Protocol error$")
    ps.d.wait_log(r"COMMAND PIPELINING from \[127\.0\.0\.41\]:\d+ after "
                  r"EHLO: EHLO fast\.test")
    # not remembered: the next connection is tested again (the pre-greet
    # test passed and is cached: no teaser this time)
    with ps.conn("127.0.0.41") as c:
        check(c.reply(5), 220)
        assert not is_smtpd(c)


def test_non_smtp_command_drop(facteurd):
    ps = PS(facteurd, postscreen_non_smtp_command_enable="yes")
    with ps.conn("127.0.0.42") as c:
        teaser_then_full(c)
        c.send(b"GET / HTTP/1.0\r\n")
        check(c.reply(5), 521, "5.7.0", r"I can break rules, too\. Goodbye\.")
        assert c.expect_closed()
    ps.d.wait_log(r"NON-SMTP COMMAND from \[127\.0\.0\.42\]:\d+ after "
                  r"GET / HTTP/1\.0")


def test_bare_newline_enforce(facteurd):
    ps = PS(facteurd, postscreen_bare_newline_enable="yes",
            postscreen_bare_newline_action="enforce")
    with ps.conn("127.0.0.43") as c:
        teaser_then_full(c)
        c.send(b"EHLO lf.test\n")
        check(c.reply(5), 250)
        check(rcpt(c), 550, "5.5.1", r"Protocol error")
    ps.d.wait_log(r"BARE NEWLINE from \[127\.0\.0\.43\]:\d+")


def test_access_list(facteurd, tmp_path):
    cidr = tmp_path / "postscreen_access.cidr"
    cidr.write_text("127.0.0.50/32 reject\n127.0.0.51/32 permit\n"
                    "127.0.0.52/32 dunno\n")
    ps = PS(facteurd, postscreen_access_list="permit_mynetworks, cidr:%s"
                                             % cidr,
            postscreen_denylist_action="drop")
    with ps.conn("127.0.0.50") as c:
        check(c.reply(5), 521, "5.3.2", r"Service currently unavailable")
        assert c.expect_closed()
    with ps.conn("127.0.0.51") as c:
        check(c.reply(5), 220)          # no teaser, no wait
        assert is_smtpd(c)
    with ps.conn("127.0.0.1") as c:     # mynetworks
        check(c.reply(5), 220)
        assert is_smtpd(c)
    with ps.conn("127.0.0.52") as c:
        teaser_then_full(c)
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.52\]")
    log = ps.log()
    assert re.search(r"DENYLISTED \[127\.0\.0\.50\]:\d+", log)
    assert re.search(r"ALLOWLISTED \[127\.0\.0\.51\]:\d+", log)
    assert re.search(r"ALLOWLISTED \[127\.0\.0\.1\]:\d+", log)


def test_denylist_enforce_uses_blacklist_name(facteurd, tmp_path):
    cidr = tmp_path / "deny.cidr"
    cidr.write_text("127.0.0.53/32 reject\n")
    ps = PS(facteurd, postscreen_access_list="cidr:%s" % cidr,
            postscreen_blacklist_action="enforce")
    with ps.conn("127.0.0.53") as c:
        teaser_then_full(c)
        check(rcpt(c), 550, "5.3.2", r"Service currently unavailable")


def test_cache_pass_old_after_restart(facteurd):
    ps = PS(facteurd, postscreen_greet_wait="3s")
    with ps.conn("127.0.0.60") as c:
        waited = teaser_then_full(c)
        assert waited >= 2.5, "no greet wait for a new client"
        assert is_smtpd(c)
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.60\]")
    ps.d.stop()
    ps.d.start()
    with ps.conn("127.0.0.60") as c:
        t0 = time.time()
        check(c.reply(5), 220)          # straight from smtpd
        assert time.time() - t0 < 2.0   # no greet wait (3s)
        assert is_smtpd(c)
    ps.d.wait_log(r"PASS OLD \[127\.0\.0\.60\]:\d+")
    data = os.path.join(ps.d.queue, "data")
    assert os.path.exists(os.path.join(data, "postscreen_cache.lmdb"))
    # a cache map without a usable type is a start-up error
    ps.d.params["postscreen_cache_map"] = "texthash:/etc/nothing"
    ps.d.write_config()
    ps.d.stop()
    with pytest.raises(AssertionError, match=r"postscreen_cache_map"):
        ps.d.start()


def test_hangup_logged(facteurd):
    ps = PS(facteurd)
    with ps.conn("127.0.0.61") as c:
        assert c.read_line(5).startswith(b"220-")
    ps.d.wait_log(r"HANGUP after [0-9.]+ from \[127\.0\.0\.61\]:\d+ in tests "
                  r"before SMTP handshake")


def test_bad_values_fail_startup(facteurd):
    for k, v, msg in [
            ("postscreen_greet_action", "reject",
             r"postscreen_greet_action: \"reject\" \(expected ignore, "
             r"enforce or drop\)"),
            ("postscreen_dnsbl_sites", "zen.test*x", r"bad weight"),
            ("postscreen_access_list", "permit_nothing",
             r"postscreen_access_list: unknown item"),
            ("postscreen_allowlist_interfaces", "!300.1.2.3, static:all",
             r"postscreen_allowlist_interfaces: .*300\.1\.2\.3"),
            # haproxy works (test_proxy.py); other values do not
            ("postscreen_upstream_proxy_protocol", "nginx",
             r"postscreen_upstream_proxy_protocol = nginx: unsupported")]:
        port = free_port()
        d = facteurd(start=False, main_cf={k: v},
                     extra_master_cf="127.0.0.1:%d inet n - n - 1 "
                                     "postscreen\n" % port)
        d.expect_exit = True
        with pytest.raises(AssertionError, match=msg):
            d.start()
        out = d.cli("check")        # facteur check names it too
        assert out.returncode != 0
        assert re.search(msg, (out.stdout + out.stderr).decode()), out


def _seed_block():
    text = open(SEEDS, encoding="utf-8").read()
    start = text.index("postscreen_access_list = ")
    end = text.index("postscreen_bare_newline_action = enforce")
    return text[start:end] + "postscreen_bare_newline_action = enforce\n"


@pytest.mark.skipif(not os.path.exists(SEEDS), reason="seed 004 not present")
def test_seed004_postscreen_block(facteurd, tmp_path, dnsmasq):
    """Seed 004's postscreen block, as written (its cidr path moved here),
    with its DNSBL names unanswered by our dnsmasq: it loads, warns about
    its typo "postcreen_blacklist_action", and screens."""
    cidr = tmp_path / "postscreen_access.cidr"
    cidr.write_text("127.0.0.70/32 permit\n")
    block = _seed_block().replace("/usr/local/etc/postfix/postscreen_access"
                                  ".cidr", str(cidr))
    assert "zen.spamhaus.org*3" in block
    ps = PS(facteurd, dnsmasq, extra_main_cf=block)
    log = ps.log()
    stderr = open(ps.d.stderr_path).read()
    assert re.search(r"unknown parameter: postcreen_blacklist_action",
                     stderr + log)
    assert "not available yet" not in stderr + log
    with ps.conn("127.0.0.70") as c:    # from the cidr file
        check(c.reply(5), 220)
        assert is_smtpd(c)
    with ps.conn("127.0.0.71") as c:    # tested: deep tests are on
        teaser_then_full(c)
        assert not is_smtpd(c)
        check(rcpt(c), 450, "4.3.2")
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.71\]")
    with ps.conn("127.0.0.71") as c:
        check(c.reply(5), 220)
        assert is_smtpd(c)
    out = ps.d.cli("check")
    assert b"postcreen_blacklist_action" in out.stdout + out.stderr


def test_fail2ban_stock_filter_sees_postscreen(facteurd, dnsmasq):
    """With syslog_name = postfix, Debian's stock fail2ban postfix filter
    (mode=aggressive: its "ddos" part is written for postscreen) bans the
    pre-greet talker and the DNSBL-listed client, not the clean one."""
    exe = shutil.which("fail2ban-regex")
    if exe is None or not os.path.exists("/etc/fail2ban/filter.d/"
                                         "postfix.conf"):
        pytest.skip("fail2ban is not installed")
    ps = PS(facteurd, dnsmasq, syslog_name="postfix",
            postscreen_dnsbl_sites="zen.test*3", postscreen_dnsbl_threshold="3",
            postscreen_dnsbl_action="enforce", postscreen_greet_action="drop")
    with ps.conn("127.0.0.30") as c:         # pre-greet talker
        c.send(b"EHLO spam\r\n")
        assert c.expect_closed()
    with ps.conn("127.0.0.20") as c:         # listed
        teaser_then_full(c)
        check(rcpt(c), 550, "5.7.1")
    with ps.conn("127.0.0.21") as c:         # clean
        teaser_then_full(c)
        assert is_smtpd(c)
        check(c.cmd("QUIT"), 221)
    ps.d.wait_log(r"postfix/smtpd\[\d+\]: disconnect from \S+\[127\.0\.0\.21\]")
    log = os.path.join(ps.d.root, "maillog.copy")
    with open(log, "w") as f:
        f.write(ps.log())
    r = subprocess.run([exe, "-o", "ip", log, "postfix[mode=aggressive]"],
                       capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr.decode()
    ips = r.stdout.decode().split()
    assert "127.0.0.30" in ips, r.stdout.decode()
    assert "127.0.0.20" in ips, r.stdout.decode()
    assert "127.0.0.21" not in ips


def test_postfix_companion_lines(facteurd):
    """Postfix's postscreen master.cf lines as they are: the "smtpd pass"
    line's -o overrides reach the SMTP sessions behind postscreen; dnsblog
    and tlsproxy are built in (a notice, no warning)."""
    port = free_port()
    d = facteurd(main_cf={"postscreen_greet_wait": "1s"},
                 extra_master_cf=(
                     "127.0.0.1:%d inet n - y - 1 postscreen\n"
                     "smtpd pass - - y - - smtpd\n"
                     "  -o { smtpd_banner = $myhostname ESMTP behind-postscreen }\n"
                     "dnsblog unix - - y - 0 dnsblog\n"
                     "tlsproxy unix - - y - 0 tlsproxy\n" % port))
    with SMTPConn("127.0.0.1", port, source="127.0.0.90") as c:
        assert c.read_line(5).startswith(b"220-")
        check(c.reply(5), 220, None, r"ESMTP behind-postscreen$")
        assert is_smtpd(c)
    # the plain smtpd listener keeps its own banner
    with d.connect() as c:
        pass
    out = d.cli("check")
    text = (out.stdout + out.stderr).decode()
    assert re.search(r'service "smtpd" \(smtpd\) is built into facteur\'s '
                     r'postscreen; its -o overrides apply', text), text
    assert re.search(r'service "dnsblog" \(dnsblog\) is built into '
                     r'facteur\'s postscreen: not needed', text), text
    assert "tlsproxy" in text and "warning" not in text.lower(), text


def test_starttls_in_the_dummy_engine(facteurd, cert):
    """Clients that insist on TLS can pass the after-220 tests: the dummy
    engine offers STARTTLS with the listener's certificate (Postfix's
    tlsproxy), and the tests go on inside TLS."""
    ps = PS(facteurd, postscreen_pipelining_enable="yes",
            **tls_cf(cert))
    c = TLSConn("127.0.0.1", ps.port, source="127.0.0.95")
    with c:
        teaser_then_full(c)
        r = c.cmd("EHLO tls.test")
        check(r, 250)
        assert "STARTTLS" in r.lines and "PIPELINING" not in r.lines, r
        starttls(c)
        r = c.cmd("EHLO tls.test")
        check(r, 250)
        assert "STARTTLS" not in r.lines, r
        check(c.cmd("STARTTLS"), 554, "5.5.1")
        check(rcpt(c), 450, "4.3.2")
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.95\]")
    c = TLSConn("127.0.0.1", ps.port, source="127.0.0.95")
    with c:
        check(c.reply(5), 220)
        r = c.cmd("EHLO tls.test")
        assert "PIPELINING" in r.lines and "STARTTLS" in r.lines, r
        starttls(c)
        check(c.cmd("EHLO tls.test"), 250)
        check(rcpt(c), 250)


def test_screening_limits(facteurd):
    """postscreen_pre_queue_limit (clients being screened at once) and
    postscreen_client_connection_count_limit (per client address)."""
    ps = PS(facteurd, postscreen_greet_wait="3s",
            postscreen_pre_queue_limit="2",
            postscreen_client_connection_count_limit="1")
    a = ps.conn("127.0.0.100")
    assert a.read_line(5).startswith(b"220-")
    b = ps.conn("127.0.0.100")          # same client: over its limit
    check(b.reply(5), 421, "4.7.0", r"too many connections from "
                                    r"127\.0\.0\.100$")
    assert b.expect_closed()
    b.close()
    c = ps.conn("127.0.0.101")
    assert c.read_line(5).startswith(b"220-")
    d = ps.conn("127.0.0.102")          # two being screened: full
    check(d.reply(5), 421, "4.3.2", r"All screening ports are busy")
    d.close()
    with ps.conn("127.0.0.1") as e:     # allowlisted: not counted
        check(e.reply(5), 220)
    a.close()
    c.close()
    log = ps.log()
    assert re.search(r"NOQUEUE: reject: CONNECT from \[127\.0\.0\.100\]:\d+: "
                     r"too many connections", log)
    assert re.search(r"NOQUEUE: reject: CONNECT from \[127\.0\.0\.102\]:\d+: "
                     r"all screening ports busy", log)


def test_session_limit_comes_from_the_pass_line(facteurd):
    """The "1" of "smtp inet n - y - 1 postscreen" counts postscreen
    processes in Postfix, not SMTP sessions; the pass line's maxproc limits
    the sessions behind postscreen."""
    ps = PS(facteurd)       # "... inet n - n - 1 postscreen", no pass line
    with ps.conn("127.0.0.1") as a, ps.conn("127.0.0.1") as b:
        check(a.reply(5), 220)
        check(b.reply(5), 220)
        assert is_smtpd(a) and is_smtpd(b)
    port = free_port()
    d = facteurd(extra_master_cf=(
        "127.0.0.1:%d inet n - y - - postscreen\n"
        "smtpd pass - - y - 1 smtpd\n" % port))
    with SMTPConn("127.0.0.1", port) as a, SMTPConn("127.0.0.1", port) as b:
        check(a.reply(5), 220)
        check(b.reply(5), 421, "4.3.2")
    assert d


def test_dummy_engine_helo_required(facteurd):
    ps = PS(facteurd, postscreen_pipelining_enable="yes",
            smtpd_helo_required="yes")
    with ps.conn("127.0.0.96") as c:
        teaser_then_full(c)
        check(c.cmd("MAIL FROM:<a@b.test>"), 503, "5.5.1",
              r"send HELO/EHLO first")
        check(c.cmd("HELO x.test"), 250)
        check(c.cmd("MAIL FROM:<a@b.test>"), 250)


def test_pflogsumm_counts_postscreen_rejects(facteurd, dnsmasq):
    """pflogsumm (which reads postscreen's NOQUEUE lines as smtpd's) counts
    the DNSBL rejection and names the list in its reject detail."""
    exe = shutil.which("pflogsumm")
    if exe is None:
        pytest.skip("pflogsumm is not installed")
    ps = PS(facteurd, dnsmasq, postscreen_dnsbl_sites="zen.test*3",
            postscreen_dnsbl_threshold="3", postscreen_dnsbl_action="enforce")
    with ps.conn("127.0.0.20") as c:
        teaser_then_full(c)
        check(rcpt(c), 550, "5.7.1")
    ps.d.wait_log(r"NOQUEUE: reject: RCPT from \[127\.0\.0\.20\]")
    r = subprocess.run([exe, "--syslog-name=facteur"],
                       input=ps.log().encode(), capture_output=True,
                       timeout=60)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr.decode()
    assert re.search(r"^\s*1\s+rejected", out, re.M), out
    assert "blocked using zen.test" in out, out


def test_reload_keeps_the_cache_and_applies_new_values(facteurd):
    """SIGHUP: the new generation's postscreen shares the LMDB cache (a
    passed client stays PASS OLD) and uses the new postscreen_* values."""
    ps = PS(facteurd, postscreen_greet_action="ignore")
    with ps.conn("127.0.0.110") as c:
        teaser_then_full(c)
        assert is_smtpd(c)
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.110\]")
    ps.d.params["postscreen_greet_action"] = "drop"
    ps.d.write_config()
    os.kill(ps.d.pid, signal.SIGHUP)
    ps.d.wait_log(r"reload -- configuration ")
    with ps.conn("127.0.0.110") as c:
        check(c.reply(5), 220)
        assert is_smtpd(c)
    ps.d.wait_log(r"PASS OLD \[127\.0\.0\.110\]")
    with ps.conn("127.0.0.111") as c:   # the new greet action applies
        c.send(b"HELO x\r\n")
        lines = [c.read_line(5), c.read_line(5)]
        assert lines[-1] == b"521 5.5.1 Protocol error", lines


def test_cache_miss_right_after_a_hit(facteurd):
    """A client not in the cache, accepted right after a cached one, is
    screened: the cache lookup's "not found" must not read the previous
    client's entry (seen as a new pre-greet talker let through to smtpd
    after a reload, under load). The daemon is stopped while both connect,
    so both are accepted in one batch, one after the other."""
    ps = PS(facteurd, postscreen_greet_action="drop")
    with ps.conn("127.0.0.112") as c:
        teaser_then_full(c)
        assert is_smtpd(c)
    ps.d.wait_log(r"PASS NEW \[127\.0\.0\.112\]")
    wrong = []
    for i in range(5):
        new = "127.0.0.%d" % (113 + i)
        os.kill(ps.d.pid, signal.SIGSTOP)
        try:
            old = ps.conn("127.0.0.112")
            c = ps.conn(new)
            c.send(b"HELO x\r\n")
        finally:
            os.kill(ps.d.pid, signal.SIGCONT)
        with old, c:
            check(old.reply(5), 220)
            lines = [c.read_line(5), c.read_line(5)]
            if lines != [b"220-mx.example.test ESMTP facteur",
                         b"521 5.5.1 Protocol error"]:
                wrong.append((new, lines))
    assert not wrong, wrong
    log = ps.log()
    assert not re.search(r"PASS OLD \[127\.0\.0\.11[3-7]\]", log), log
    assert len(re.findall(r"PREGREET 8 after \S+ from "
                          r"\[127\.0\.0\.11[3-7]\]", log)) == 5, log


def test_post_queue_limit(facteurd):
    """postscreen_post_queue_limit: with that many SMTP sessions behind
    the listener, a client that would be handed to smtpd (allowlisted or
    passed) gets Postfix's 421 4.3.2 instead; its pass is still cached."""
    ps = PS(facteurd, postscreen_post_queue_limit="1")
    a = ps.conn("127.0.0.1")            # allowlisted: one SMTP session
    check(a.reply(5), 220)
    assert is_smtpd(a)
    with ps.conn("127.0.0.1") as b:
        check(b.reply(5), 421, "4.3.2", r"All server ports are busy$")
        assert b.expect_closed()
    with ps.conn("127.0.0.119") as c:   # passes the tests, then busy
        first = c.read_line(5)
        assert first is not None and first.startswith(b"220-"), first
        assert c.read_line(5) == b"421 4.3.2 All server ports are busy"
    ps.d.wait_log(r"NOQUEUE: reject: CONNECT from \[127\.0\.0\.119\]:\d+: "
                  r"all server ports busy")
    assert re.search(r"NOQUEUE: reject: CONNECT from \[127\.0\.0\.1\]:\d+: "
                     r"all server ports busy", ps.log())
    check(a.cmd("QUIT"), 221)
    a.close()
    ps.d.wait_log(r"disconnect from .*127\.0\.0\.1\]")
    with ps.conn("127.0.0.119") as c:   # a free place, and cached
        check(c.reply(5), 220)
        assert is_smtpd(c)
    ps.d.wait_log(r"PASS OLD \[127\.0\.0\.119\]")


@contextlib.contextmanager
def slow_dnsbl(delay):
    """A UDP DNS server on loopback that answers every A query with
    127.0.0.2 (listed everywhere), delay seconds late. Yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()
    timers = []

    def answer(q, peer):
        end = q.index(b"\0", 12) + 5          # qname, qtype, qclass
        r = (q[:2] + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + q[12:end] +
             struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) +
             socket.inet_aton("127.0.0.2"))
        if not stop.is_set():
            sock.sendto(r, peer)

    def serve():
        while not stop.is_set():
            try:
                q, peer = sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(q) > 12:
                t = threading.Timer(delay, answer, (q, peer))
                timers.append(t)
                t.start()
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        for t in timers:
            t.cancel()
        th.join(5)
        sock.close()


def test_dnsbl_timeout_ignores_late_answers(facteurd):
    """postscreen_dnsbl_timeout: a list that answers later than that is
    given up (Postfix's "dnsblog reply timeout" warning), even though its
    answer comes within the greet wait."""
    sites = dict(postscreen_greet_wait="3s", postscreen_dnsbl_sites="zen.test*3",
                 postscreen_dnsbl_threshold="3", postscreen_dnsbl_action="drop")
    with slow_dnsbl(1.8) as port:
        # the default (10s): the late listing counts
        ps = PS(facteurd, port, **sites)
        with ps.conn("127.0.0.27") as c:
            assert c.read_line(5).startswith(b"220-")
            check(c.reply(6), 521, "5.7.1", r"blocked using zen\.test$")
        ps = PS(facteurd, port, postscreen_dnsbl_timeout="1s", **sites)
        with ps.conn("127.0.0.26") as c:
            teaser_then_full(c)
            assert is_smtpd(c)
        ps.d.wait_log(r"postscreen\[\d+\]: warning: dnsblog reply timeout 1s "
                      r"for zen\.test$")
        ps.d.wait_log(r"PASS NEW \[127\.0\.0\.26\]")
        assert "DNSBL rank" not in ps.log()


def test_allowlist_interfaces(facteurd):
    """postscreen_allowlist_interfaces: a client that connects to a local
    address not in the list (a backup MX) is screened but never handed to
    smtpd nor cached as passed (ALLOWLIST VETO, 450 at RCPT); once it
    passed on a listed address, it is PASS OLD everywhere."""
    backup, primary = free_port(), free_port()
    d = facteurd(main_cf={"smtpd_relay_restrictions": RELAY,
                          "postscreen_greet_wait": "1s",
                          "postscreen_whitelist_interfaces":
                              "!127.0.0.1, static:all"},
                 extra_master_cf="127.0.0.1:%d inet n - n - 1 postscreen\n"
                                 "127.0.0.2:%d inet n - n - 1 postscreen\n"
                                 % (backup, primary))
    for _ in range(2):                  # not remembered: screened again
        with SMTPConn("127.0.0.1", backup, source="127.0.0.31") as c:
            teaser_then_full(c)
            assert not is_smtpd(c)      # the dummy engine
            check(rcpt(c), 450, "4.3.2", r"Service currently unavailable$")
    log = d.log()
    assert len(re.findall(r"ALLOWLIST VETO \[127\.0\.0\.31\]:\d+", log)) == 2
    assert "PASS NEW [127.0.0.31]" not in log, log
    with SMTPConn("127.0.0.2", primary, source="127.0.0.31") as c:
        teaser_then_full(c)
        assert is_smtpd(c)
    d.wait_log(r"PASS NEW \[127\.0\.0\.31\]")
    with SMTPConn("127.0.0.1", backup, source="127.0.0.31") as c:
        check(c.reply(5), 220)
        assert is_smtpd(c)
    d.wait_log(r"PASS OLD \[127\.0\.0\.31\]")
    assert len(re.findall(r"ALLOWLIST VETO", d.log())) == 2
    # the mynetworks / access list allowlist is not vetoed
    with SMTPConn("127.0.0.1", backup) as c:
        check(c.reply(5), 220)
        assert is_smtpd(c)
