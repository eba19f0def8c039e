"""
test_policyd_spf.py - master.cf spawn services (Postfix's spawn(8)) and
Debian's policyd-spf run through one, as Postfix runs it:

  policyd-spf unix - n n - 0 spawn user=policyd-spf argv=/usr/bin/policyd-spf
  smtpd_recipient_restrictions = ..., check_policy_service unix:private/policyd-spf

The spawn mechanism is first proved with a small policy script (one child
per connection with stdin/stdout on the socket, children reaped, the time
limit, maxproc, reload). Then the real /usr/bin/policyd-spf: its SPF
library reads /etc/resolv.conf, so the spawned command is
`unshare -rm sh -c 'mount --bind OUR_RESOLV_CONF /etc/resolv.conf && exec
/usr/bin/policyd-spf CONF'` (a private mount namespace; policyd-spf itself
unchanged) with dnsmasq answering on port 53 of a private 127.x address,
serving the SPF TXT records of the sender domains.
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness import check, dot_stuff, free_port, make_msg

RELAY = "permit_mynetworks, reject_unauth_destination"
PY = "/usr/bin/python3"

POLICY_SCRIPT = r'''
import sys, os, time
mode = sys.argv[1] if len(sys.argv) > 1 else ""
if mode == "hang":
    time.sleep(600)
attrs = {}
for line in sys.stdin:
    line = line.rstrip("\n")
    if line:
        k, _, v = line.partition("=")
        attrs[k] = v
        continue
    if mode == "slow":
        time.sleep(1.5)
    if mode == "fds":
        fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
        act = "REJECT fds %s" % ",".join(map(str, fds))
    elif attrs.get("sender", "").endswith("@bad.example"):
        act = "REJECT spawned says no (pid %d)" % os.getpid()
    else:
        act = "DUNNO"
    sys.stdout.write("action=%s\n\n" % act)
    sys.stdout.flush()
    attrs = {}
'''


def _script(d, mode=""):
    path = os.path.join(d.root, "policy.py")
    with open(path, "w") as f:
        f.write(POLICY_SCRIPT)
    os.chmod(path, 0o755)
    return "argv=%s %s%s" % (PY, path, " " + mode if mode else "")


def _start(facteurd, line, main_cf=None, extra=""):
    d = facteurd(start=False)
    d.params["smtpd_relay_restrictions"] = RELAY
    d.params["smtpd_recipient_restrictions"] = \
        "check_policy_service unix:private/fake-policy"
    d.params.update(main_cf or {})
    d.master_cf += line(d) + "\n" + extra
    d.write_config()
    d.start()
    return d


def _children(pid):
    """(live, zombie) child processes of pid."""
    live = zombie = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            if fields[0] == "Z":
                zombie += 1
            else:
                live += 1
    return live, zombie


def _wait_children(pid, n, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = _children(pid)
        if got == (n, 0):
            return got
        time.sleep(0.1)
    return _children(pid)


def test_spawn_policy_script(facteurd):
    d = _start(facteurd, lambda d: "fake-policy unix - n n - 0 spawn "
               "user=%s %s" % (d.params.get("mail_owner", "nobody"),
                               _script(d)),
               main_cf={"smtpd_policy_service_max_idle": "2s"})
    sock = os.path.join(d.queue, "private", "fake-policy")
    assert os.path.exists(sock)
    pids = []
    with d.session() as c:
        for _ in range(2):
            check(c.cmd("MAIL FROM:<x@bad.example>"), 250)
            r = c.cmd("RCPT TO:<alice@example.test>")
            check(r, 554, "5.7.1", r"spawned says no \(pid \d+\)")
            pids.append(re.search(r"pid (\d+)", r.text).group(1))
            check(c.cmd("RSET"), 250)
        # the connection (and its process) served both queries, as
        # Postfix's smtpd keeps it (smtpd_policy_service_max_idle)
        assert pids[0] == pids[1]
        assert _children(d.pid) == (1, 0)
        check(c.cmd("MAIL FROM:<x@good.example>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("spawn-ok", sender="x@good.example",
                                  to="alice@example.test")))
        check(c.reply(), 250)
    d.wait_files("alice@example.test", 1)
    # idle for max_idle: closed; the child exited and was reaped (no
    # zombie left)
    assert _wait_children(d.pid, 0) == (0, 0)
    assert not re.search(r"warning: .*user=.* is not honoured", d.log())


def test_policy_request_limit(facteurd):
    """smtpd_policy_service_request_limit = 1: a connection per query."""
    d = _start(facteurd, lambda d: "fake-policy unix - n n - 0 spawn "
               + _script(d), main_cf={
                   "smtpd_policy_service_request_limit": "1"})
    pids = set()
    with d.session() as c:
        for _ in range(3):
            check(c.cmd("MAIL FROM:<x@bad.example>"), 250)
            r = c.cmd("RCPT TO:<alice@example.test>")
            check(r, 554, "5.7.1", r"spawned says no \(pid \d+\)")
            pids.add(re.search(r"pid (\d+)", r.text).group(1))
            check(c.cmd("RSET"), 250)
    assert len(pids) == 3
    assert _wait_children(d.pid, 0) == (0, 0)


def test_spawn_user_warning_and_reload(facteurd):
    d = _start(facteurd, lambda d: "fake-policy unix - n n - 0 spawn "
               "user=policyd-spf " + _script(d))
    assert d.wait_log(r"service fake-policy: user=policyd-spf is not "
                      r"honoured: the command runs as mail_owner")
    sock = os.path.join(d.queue, "private", "fake-policy")
    ino = os.stat(sock).st_ino
    d.cli("reload")
    assert d.wait_log(r"reload", timeout=5)
    time.sleep(0.5)
    # the socket survived the reload and still works
    assert os.stat(sock).st_ino == ino
    with d.session() as c:
        check(c.cmd("MAIL FROM:<x@bad.example>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 554, "5.7.1",
              r"spawned says no")
    # the line removed: the socket goes at the next reload
    d.master_cf = "".join(l + "\n" for l in d.master_cf.splitlines()
                          if "fake-policy" not in l)
    d.params["smtpd_recipient_restrictions"] = "permit"
    d.write_config()
    d.cli("reload")
    deadline = time.time() + 10
    while os.path.exists(sock) and time.time() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(sock)


def test_spawn_time_limit(facteurd):
    d = _start(facteurd, lambda d: "fake-policy unix - n n - 0 spawn "
               + _script(d, "hang"),
               main_cf={"fake-policy_time_limit": "2s",
                        "smtpd_policy_service_timeout": "10s"})
    t0 = time.time()
    with d.session() as c:
        check(c.cmd("MAIL FROM:<x@good.example>"), 250)
        r = c.cmd("RCPT TO:<alice@example.test>")
        # the child was killed at 2s: the policy server went away
        check(r, 451, "4.3.5")
    assert time.time() - t0 < 9
    assert d.wait_log(r"fake-policy: process id \d+: command time limit "
                      r"exceeded: killed")
    assert _wait_children(d.pid, 0) == (0, 0)


def test_spawn_maxproc(facteurd):
    """maxproc 1: a second connection waits until the first child ends."""
    d = _start(facteurd, lambda d: "fake-policy unix - n n - 1 spawn "
               + _script(d, "slow"))
    sock = os.path.join(d.queue, "private", "fake-policy")
    req = (b"request=smtpd_access_policy\nprotocol_state=RCPT\n"
           b"sender=a@bad.example\n\n")
    peak = 0
    conns = []
    for _ in range(3):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(15)
        s.connect(sock)
        s.sendall(req)
        conns.append(s)
    t0 = time.time()
    for s in conns:
        peak = max(peak, _children(d.pid)[0])
        data = b""
        while b"\n\n" not in data:
            chunk = s.recv(4096)
            assert chunk, "connection closed without an answer"
            data += chunk
        assert data.startswith(b"action=REJECT spawned says no")
        s.close()
        peak = max(peak, _children(d.pid)[0])
    # one at a time, 1.5 s each
    assert time.time() - t0 >= 3.5
    assert peak <= 1
    assert _wait_children(d.pid, 0) == (0, 0)


def test_spawn_inet(facteurd):
    """An inet spawn line listens on its address."""
    port = free_port()
    d = _start(facteurd, lambda d: "127.0.0.1:%d inet n n n - 0 spawn %s"
               % (port, _script(d)), main_cf={
                   "smtpd_policy_service_max_idle": "1s",
                   "smtpd_recipient_restrictions":
                       "check_policy_service inet:127.0.0.1:%d" % port})
    with d.session() as c:
        check(c.cmd("MAIL FROM:<x@bad.example>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 554, "5.7.1",
              r"spawned says no")
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<x@good.example>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
    assert _wait_children(d.pid, 0) == (0, 0)


def test_spawn_child_descriptors(facteurd):
    """The command gets the connection as stdin/stdout and nothing of the
    daemon's (listeners, queue, log): only 0, 1, 2 (and listdir's own)."""
    d = _start(facteurd, lambda d: "fake-policy unix - n n - 0 spawn "
               + _script(d, "fds"))
    with d.session() as c:
        check(c.cmd("MAIL FROM:<x@good.example>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 554, "5.7.1",
              r"fds 0,1,2,3$")


def test_spawn_line_errors(facteurd):
    d = facteurd(start=False)
    d.master_cf += "bad unix - n n - 0 spawn user=x\n"
    d.write_config()
    assert d.start_fails(r"service \"bad\" \(spawn\): needs "
                         r"argv=/absolute/path")


def test_spawn_missing_command(facteurd):
    """A command that cannot run: a warning at start, and the policy
    query fails as a server that is down does (451 4.3.5)."""
    d = _start(facteurd, lambda d: "fake-policy unix - n n - 0 spawn "
               "argv=/nonexistent/policy-daemon")
    assert d.wait_log(r"service fake-policy: command "
                      r"/nonexistent/policy-daemon: No such file")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<x@good.example>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 451, "4.3.5")
    assert d.wait_log(r"warning: command /nonexistent/policy-daemon exit "
                      r"status 127")


# ---- the real policyd-spf ----

POLICYD_SPF = "/usr/bin/policyd-spf"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def _dns_at_53(workdir, records):
    """dnsmasq on port 53 of a private 127.x address (resolv.conf cannot
    name a port). Returns (process, address)."""
    for _ in range(10):
        addr = "127.53.%d.%d" % (random.randint(1, 250), random.randint(1, 250))
        p = subprocess.Popen(
            [DNSMASQ, "--no-daemon", "--listen-address=" + addr,
             "--bind-interfaces", "--port=53", "--no-resolv", "--no-hosts",
             "--local=/test/", "--local=/example/", "--user=root",
             "--pid-file=", "--log-facility=" + os.path.join(workdir,
                                                             "dnsmasq.log")]
            + records, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 3
        while time.time() < deadline:
            if p.poll() is not None:
                break
            try:
                out = subprocess.run(
                    [PY, "-c", "import socket;s=socket.socket(2,2);"
                     "s.settimeout(0.2);s.sendto(bytes.fromhex("
                     "'123401000001000000000000047465737400000f0001'),"
                     "('%s',53));s.recv(512)" % addr],
                    capture_output=True, timeout=2)
                if out.returncode == 0:
                    return p, addr
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.1)
        p.kill()
        p.wait()
    pytest.skip("cannot run dnsmasq on port 53 of a 127.x address")


def _userns_ok():
    try:
        r = subprocess.run(["runuser", "-u", "nobody", "--", "unshare", "-rm",
                            "true"], capture_output=True, timeout=10)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not os.path.exists(POLICYD_SPF),
                    reason="postfix-policyd-spf-python not installed")
def test_policyd_spf_unchanged(facteurd):
    if os.geteuid() != 0:
        pytest.skip("needs root for dnsmasq on port 53")
    if not _userns_ok():
        pytest.skip("unprivileged mount namespaces are not available")
    d = facteurd(start=False)
    dns, addr = _dns_at_53(d.root, [
        "--txt-record=pass.example,v=spf1 ip4:127.0.0.1 -all",
        "--txt-record=fail.example,v=spf1 ip4:192.0.2.1 -all",
        "--txt-record=soft.example,v=spf1 ip4:192.0.2.1 ~all",
    ])
    try:
        resolv = os.path.join(d.root, "resolv.conf")
        with open(resolv, "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:1\n" % addr)
        conf = os.path.join(d.root, "policyd-spf.conf")
        with open(conf, "w") as f:
            # Debian's file, but 127.0.0.1 is not skipped (our client)
            f.write("debugLevel = 1\nTestOnly = 1\nHELO_reject = Fail\n"
                    "Mail_From_reject = Fail\nPermError_reject = False\n"
                    "TempError_Defer = False\n"
                    "skip_addresses = 198.51.100.7/32\n")
        for p in (resolv, conf):
            os.chmod(p, 0o644)
        d.params["smtpd_relay_restrictions"] = RELAY
        d.params["smtpd_recipient_restrictions"] = (
            "permit_sasl_authenticated, reject_unauth_destination, "
            "check_policy_service unix:private/policyd-spf")
        d.params["policyd-spf_time_limit"] = "3600"
        d.params["smtpd_policy_service_max_idle"] = "1s"
        d.master_cf += (
            "policyd-spf unix - n n - 0 spawn user=policyd-spf "
            "argv=/usr/bin/unshare -rm /bin/sh -c "
            "{ mount --bind %s /etc/resolv.conf && exec %s %s }\n"
            % (resolv, POLICYD_SPF, conf))
        d.write_config()
        d.start()
        # Debian's README line: a known name once the spawn line exists
        assert "policyd-spf_time_limit" not in d.log()
        r = d.cli("check")
        out = (r.stdout + r.stderr).decode()
        assert "policyd-spf" not in out, out
        assert d.wait_log(r"service policyd-spf \(\S+/private/policyd-spf\) "
                          r"runs /usr/bin/unshare, maxproc 100, time limit "
                          r"3600s")

        with d.session(helo="mx.client.test") as c:
            check(c.cmd("MAIL FROM:<joe@fail.example>"), 250)
            r = c.cmd("RCPT TO:<alice@example.test>")
            check(r, 550, "5.7.23", r"SPF fail - not authorized")
        assert d.wait_log(r"reject: RCPT from \S+\[127\.0\.0\.1\]: 550 "
                          r"5\.7\.23 <alice@example\.test>: Recipient "
                          r"address rejected: Message rejected due to: "
                          r"SPF fail")

        msg = make_msg("spf-pass", sender="joe@pass.example",
                       to="alice@example.test")
        with d.session(helo="mx.client.test") as c:
            check(c.cmd("MAIL FROM:<joe@pass.example>"), 250)
            check(c.cmd("RCPT TO:<alice@example.test>"), 250)
            check(c.cmd("DATA"), 354)
            c.send(dot_stuff(msg))
            check(c.reply(), 250)
        got = d.wait_files("alice@example.test", 1)
        head = re.sub(rb"\n[ \t]+", b" ", got[0].raw.split(b"\n\n", 1)[0])
        assert b"Received-SPF: Pass (mailfrom) identity=mailfrom; " \
               b"client-ip=127.0.0.1" in head
        assert b"envelope-from=<joe@pass.example>" in head or \
               b"envelope-from=joe@pass.example" in head
        assert _wait_children(d.pid, 0) == (0, 0)
    finally:
        dns.send_signal(signal.SIGTERM)
        try:
            dns.wait(5)
        except subprocess.TimeoutExpired:
            dns.kill()
