"""
test_contrib.py - the service files in contrib/ as operators use them.

Shell scripts pass `sh -n` and shellcheck; the systemd unit passes
`systemd-analyze verify`; the FreeBSD rc.d script runs its configtest and
finds facteurd's pid file through a stand-in rc.subr; facteurd without -f
leaves its pid (not its parent's) in the pid file the rc.d script reads;
SIGHUP reopens a rotated maillog_file.
Must not: install anything or touch the system's service manager.
"""
import os
import shutil
import signal
import subprocess
import time

import pytest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONTRIB = os.path.join(ROOT, "contrib")
RCD = os.path.join(CONTRIB, "freebsd", "rc.d", "facteur")
UNIT = os.path.join(CONTRIB, "systemd", "facteur.service")


def shell_scripts():
    out = []
    for d, _, names in os.walk(CONTRIB):
        for n in names:
            p = os.path.join(d, n)
            with open(p, "rb") as f:
                first = f.readline()
            if n.endswith(".sh") or first.startswith(b"#!/bin/sh"):
                out.append(p)
    return sorted(out)


def test_shell_scripts_found():
    scripts = shell_scripts()
    assert RCD in scripts
    assert os.path.join(CONTRIB, "install-deps.sh") in scripts


@pytest.mark.parametrize("script", shell_scripts(),
                         ids=lambda p: os.path.relpath(p, CONTRIB))
def test_sh_syntax(script):
    r = subprocess.run(["sh", "-n", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("script", shell_scripts(),
                         ids=lambda p: os.path.relpath(p, CONTRIB))
def test_shellcheck(script):
    sc = shutil.which("shellcheck")
    assert sc, "shellcheck missing: sh contrib/install-deps.sh test"
    r = subprocess.run([sc, "-s", "sh", script], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_systemd_unit_verifies(tmp_path, build):
    sa = shutil.which("systemd-analyze")
    if sa is None:
        pytest.skip("systemd-analyze not installed (no systemd here)")
    with open(UNIT) as f:
        text = f.read()
    assert "ExecStart=/usr/local/sbin/facteurd -f -c /etc/facteur" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    assert "After=network-online.target" in text
    # verify wants the programs to exist: point it at the build.
    text = text.replace("/usr/local/sbin/facteurd",
                        os.path.join(build, "bin", "facteurd"))
    unit = tmp_path / "facteur.service"
    unit.write_text(text)
    r = subprocess.run([sa, "verify", "--man=no", str(unit)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
    # And it does catch mistakes.
    unit.write_text(text.replace("ProtectHome=yes", "ProtectHome=sometimes"))
    r = subprocess.run([sa, "verify", "--man=no", str(unit)],
                       capture_output=True, text=True)
    assert "sometimes" in r.stderr, r.stderr


# A stand-in for FreeBSD's rc.subr: just enough to run the script's
# commands (load_rc_config, run_rc_command with precmds and *_cmd, err).
FAKE_RC_SUBR = r'''
load_rc_config() { :; }
err() { _code=$1; shift; echo "ERR: $*" >&2; exit "$_code"; }
run_rc_command() {
	case $1 in
	configtest) $configtest_cmd ;;
	start) $start_precmd && echo "START: $command $command_args $facteur_flags" ;;
	showpid) echo "PIDFILE: $pidfile" ;;
	*) echo "unknown $1" >&2; exit 3 ;;
	esac
}
'''


def run_rcd(tmp_path, build, confdir, cmd):
    with open(RCD) as f:
        text = f.read()
    subr = tmp_path / "rc.subr"
    subr.write_text(FAKE_RC_SUBR)
    text = text.replace("/etc/rc.subr", str(subr))
    text = text.replace("/usr/local/sbin/facteurd",
                        os.path.join(build, "bin", "facteurd"))
    text = text.replace("/usr/local/sbin/facteur",
                        os.path.join(build, "bin", "facteur"))
    script = tmp_path / "facteur.rc"
    script.write_text(text)
    env = dict(os.environ, facteur_config=str(confdir))
    return subprocess.run(["sh", str(script), cmd], capture_output=True,
                          text=True, env=env, timeout=30)


def test_rcd_configtest_and_pidfile(facteurd, tmp_path, build):
    d = facteurd(start=False)
    r = run_rcd(tmp_path, build, d.confdir, "configtest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "configuration %s OK" % d.confdir in r.stdout
    r = run_rcd(tmp_path, build, d.confdir, "showpid")
    assert r.stdout.strip() == "PIDFILE: %s/pid/facteurd.pid" % os.path.realpath(d.queue) \
        or r.stdout.strip() == "PIDFILE: %s/pid/facteurd.pid" % d.queue, r.stdout
    r = run_rcd(tmp_path, build, d.confdir, "start")
    assert r.returncode == 0 and "-c %s" % d.confdir in r.stdout, r.stderr
    # A broken map fails configtest; a main.cf that does not load fails start.
    os.unlink(d.vmailbox_path)
    r = run_rcd(tmp_path, build, d.confdir, "configtest")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "configuration check failed" in r.stderr
    with open(os.path.join(d.confdir, "main.cf"), "a") as f:
        f.write("= no name\n")
    r = run_rcd(tmp_path, build, d.confdir, "start")
    assert r.returncode == 1 and "does not load" in r.stderr, r.stderr


def wait_for(pred, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def test_daemon_mode_pidfile_names_the_daemon(facteurd, build):
    """Without -f the parent exits 0 only once the daemon's own pid is in
    the pid file (what rc.d's status/stop and systemd would read)."""
    d = facteurd(start=False)
    pidfile = os.path.join(d.queue, "pid", "facteurd.pid")
    for _ in range(5):
        r = subprocess.run([os.path.join(build, "bin", "facteurd"), "-c",
                            d.confdir], capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 0, r.stderr + d.diagnostics()
        with open(pidfile) as f:
            pid = int(f.read().strip())
        try:
            os.kill(pid, 0)
            with harness.SMTPConn(d.host, d.port) as c:
                assert c.read_line().startswith(b"220")
            # A second one on the same queue is refused, with status 1.
            r2 = subprocess.run([os.path.join(build, "bin", "facteurd"),
                                 "-c", d.confdir], capture_output=True,
                                text=True, timeout=20)
            assert r2.returncode == 1
        finally:
            os.kill(pid, signal.SIGTERM)
        gone = wait_for(lambda: not os.path.exists("/proc/%d" % pid))
        assert gone, "facteurd %d did not stop on SIGTERM" % pid


def test_sighup_reopens_maillog(facteurd):
    d = facteurd()
    d.send("a@example.net", "alice@example.test", harness.make_msg("one"))
    d.wait_log(r"status=sent")
    rotated = d.maillog + ".0"
    os.rename(d.maillog, rotated)
    # As newsyslog / logrotate do: a fresh file for the mail owner.
    with open(d.maillog, "w"):
        pass
    os.chown(d.maillog, d.vmail_uid, d.vmail_gid)
    os.kill(d.pid, signal.SIGHUP)
    assert wait_for(lambda: "reload" in d.log()), harness.tail(rotated)
    d.send("a@example.net", "alice@example.test", harness.make_msg("two"))
    d.wait_log(r"status=sent")
    with open(rotated) as f:
        old = f.read()
    assert old.count("status=sent") == 1
