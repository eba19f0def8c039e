"""
test_init.py - `facteur init`: the four classic modes write a configuration
that `facteur check` accepts, and facteurd started on it does what the mode
intends (internet-site / smarthost / local-only: mail for the domain goes
into maildirs; local-only refuses other domains; satellite keeps no mail).
Also: nothing is overwritten, missing flags without a terminal are usage
errors, bad names are refused.
Must not: write outside the test's temporary directories.
"""
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import harness

MODES = ["internet-site", "smarthost", "satellite", "local-only"]


def facteur(*args, stdin=subprocess.DEVNULL):
    return subprocess.run([harness.bin_path("facteur")] + list(args),
                          capture_output=True, text=True, stdin=stdin,
                          timeout=30)


@pytest.fixture
def tree():
    # World-traversable, as the mail owner must reach it when run as root.
    d = tempfile.mkdtemp(prefix="facteur-init-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def owner():
    return harness.TEST_MAIL_OWNER if os.geteuid() == 0 else \
        pwd.getpwuid(os.getuid()).pw_name


def init(tree, mode, port=None, extra=()):
    args = ["init", "--mode", mode, "--domain", "example.org",
            "--hostname", "mx.example.org", "--root", tree,
            "--mail-owner", owner()]
    if mode in ("smarthost", "satellite"):
        args += ["--relayhost", "[smtp.example.net]:587"]
    if port:
        args += ["--listen", "127.0.0.1:%d" % port]
    args += list(extra) + [os.path.join(tree, "etc")]
    return facteur(*args)


@pytest.mark.parametrize("mode", MODES)
def test_mode_passes_check(build, tree, mode):
    r = init(tree, mode)
    assert r.returncode == 0, r.stderr
    etc = os.path.join(tree, "etc")
    for f in ("main.cf", "master.cf", "valias", "passwd"):
        assert os.path.exists(os.path.join(etc, f)), f
    assert os.path.exists(os.path.join(etc, "vmailbox")) == (mode != "satellite")
    assert oct(os.stat(os.path.join(etc, "passwd")).st_mode & 0o777) == "0o640"
    r = facteur("-c", etc, "check")
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr and "unknown parameter" not in r.stderr, r.stderr
    r = facteur("-c", etc, "conf", "-n")
    conf = dict(l.split(" = ", 1) for l in r.stdout.splitlines() if " = " in l)
    assert conf["mydomain"] == "example.org"
    assert conf["myhostname"] == "mx.example.org"
    assert conf["queue_directory"] == tree + "/var/spool/facteur"
    if mode in ("smarthost", "satellite"):
        assert conf["relayhost"] == "[smtp.example.net]:587"
    else:
        assert "relayhost" not in conf
    if mode in ("satellite", "local-only"):
        assert conf["inet_interfaces"] == "loopback-only"
    if mode == "satellite":
        assert "virtual_mailbox_domains" not in conf
    else:
        assert conf["virtual_mailbox_base"] == tree + "/var/vmail"
        st = os.stat(tree + "/var/vmail")
        assert st.st_uid == pwd.getpwnam(owner()).pw_uid


def test_refuses_to_overwrite(build, tree):
    etc = os.path.join(tree, "etc")
    os.makedirs(etc)
    with open(os.path.join(etc, "valias"), "w") as f:
        f.write("keep me\n")
    r = init(tree, "internet-site")
    assert r.returncode == 1
    assert "valias exists" in r.stderr
    # Nothing at all was written, and the existing file is untouched.
    assert sorted(os.listdir(etc)) == ["valias"]
    with open(os.path.join(etc, "valias")) as f:
        assert f.read() == "keep me\n"


@pytest.mark.parametrize("args,msg", [
    (["--domain", "example.org"], "--mode is required"),
    (["--mode", "internet-site"], "--domain is required"),
    (["--mode", "mailhub", "--domain", "example.org"], "unknown mode"),
    (["--mode", "smarthost", "--domain", "example.org"], "needs --relayhost"),
    (["--mode", "internet-site", "--domain", "example.org",
      "--relayhost", "x.example"], "does not apply"),
    (["--mode", "internet-site", "--domain", "exa mple.org"],
     "not a valid domain"),
    (["--mode", "internet-site", "--domain", "example.org",
      "--hostname", "mx"], "not a fully qualified"),
    (["--mode", "smarthost", "--domain", "example.org",
      "--relayhost", "[smtp.example.net:587"], "not a relay host"),
    (["--mode", "internet-site", "--domain", "example.org",
      "--backend", "ldap"], "only \"file\""),
    (["--mode", "internet-site", "--domain", "example.org", "--bogus", "1"],
     "unknown option"),
])
def test_usage_errors(build, tree, args, msg):
    r = facteur("init", *args, os.path.join(tree, "etc"))
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr
    assert not os.path.exists(os.path.join(tree, "etc", "main.cf"))


def test_prompts_when_flags_missing(build, tree):
    """Answers come from stdin; with a terminal they are asked for.
    Without one, the same answers are refused (flags needed)."""
    # script(1) gives the command a terminal.
    if shutil.which("script") is None:
        pytest.skip("script(1) not installed")
    etc = os.path.join(tree, "etc")
    cmd = "%s init --root %s --mail-owner %s %s" % (
        harness.bin_path("facteur"), tree, owner(), etc)
    answers = "smarthost\nexample.org\nmx.example.org\n[relay.example.net]\n"
    r = subprocess.run(["script", "-qec", cmd, "/dev/null"], input=answers,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Mode [internet-site]" in r.stdout
    r = facteur("-c", etc, "conf", "-h", "relayhost", "mydomain")
    assert r.stdout.split() == ["[relay.example.net]", "example.org"]


def start(etc, tree):
    err = open(os.path.join(tree, "facteurd.stderr"), "w+b")
    p = subprocess.Popen([harness.bin_path("facteurd"), "-f", "-c", etc],
                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                         start_new_session=True)
    harness.LIVE.add(p)
    return p, err


def stop(p, err):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(harness.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    harness.LIVE.discard(p)
    err.seek(0)
    text = err.read().decode("utf-8", "replace")
    err.close()
    return p.returncode, text


def connect(p, port, err):
    deadline = time.time() + harness.START_TIMEOUT
    while time.time() < deadline:
        assert p.poll() is None, "facteurd exited: %s" % stop(p, err)[1]
        try:
            c = harness.SMTPConn("127.0.0.1", port, timeout=5)
            harness.check(c.reply(), 220, text="mx.example.org")
            return c
        except OSError:
            time.sleep(0.05)
    raise AssertionError("facteurd not listening: %s" % stop(p, err)[1])


@pytest.mark.parametrize("mode", MODES)
def test_mode_daemon_behaviour(build, tree, mode):
    port = harness.free_port()
    assert init(tree, mode, port=port).returncode == 0
    etc = os.path.join(tree, "etc")
    p, err = start(etc, tree)
    try:
        c = connect(p, port, err)
        with c:
            harness.check(c.cmd("EHLO client.example.net"), 250)
            harness.check(c.cmd("MAIL FROM:<someone@example.net>"), 250)
            if mode == "satellite":
                # No mailboxes: mail from this machine goes to the relay host.
                harness.check(c.cmd("RCPT TO:<bob@example.com>"), 250)
                harness.check(c.cmd("RSET"), 250)
                return
            harness.check(c.cmd("RCPT TO:<nobody-here@example.org>"), 550,
                          "5.1.1")
            if mode == "local-only":
                harness.check(c.cmd("RCPT TO:<bob@example.com>"), 554, "5.7.1")
            harness.check(c.cmd("RCPT TO:<abuse@example.org>"), 250)
            harness.check(c.cmd("DATA"), 354)
            c.send(harness.dot_stuff(harness.make_msg(
                "init " + mode, to="abuse@example.org")))
            harness.check(c.reply(), 250, text="queued as")
            harness.check(c.cmd("QUIT"), 221)
        got = []
        deadline = time.time() + harness.DELIVERY_TIMEOUT
        while not got and time.time() < deadline:
            got = harness.maildir_files(tree + "/var/vmail",
                                        "postmaster@example.org")
            time.sleep(0.05)
        assert got, "not delivered to postmaster's maildir"
        d = harness.Delivered(got[0])
        assert d.field("X-Original-To") == "abuse@example.org"
    finally:
        rc, text = stop(p, err)
        assert rc == 0, text
        for pat in ("AddressSanitizer", "runtime error:", "LeakSanitizer"):
            assert pat not in text, text
