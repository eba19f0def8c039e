"""
dovecotserver.py - what the tests running a private Dovecot share
(test_dovecot_imap's IMAP server, test_lmtp's LMTP server, test_quota):
the passwd-file passdb and static userdb blocks, starting dovecot -F on
a config that doveconf accepts and waiting until a probe says it
answers, stopping it by its PID, its log for diagnostics, and a fixture
factory that stops every instance a test started.
The instance's directory, config text and probe are the caller's.
Must not: listen on anything but loopback, touch the system's Dovecot
(own base_dir and state_dir), or wait without a bound.
"""
import os
import shutil
import signal
import subprocess
import time

import harness

DOVECOT = "/usr/sbin/dovecot"
DOVECONF = shutil.which("doveconf") or "/usr/bin/doveconf"


def passwd_file_auth(users_file, mail, uid, gid):
    """passdb: {PLAIN} passwords from users_file; userdb: every user
    uid:gid with home mail/DOMAIN/USER."""
    return """\
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%d/%n
}}
""".format(users=users_file, mail=mail, uid=uid, gid=gid)


class DovecotProcess:
    """One dovecot process: self.dir (its files), self.conf and self.log
    set by the subclass; ready() is true once it serves."""

    proc = None

    def ready(self):
        raise NotImplementedError

    def start(self, timeout=15):
        r = subprocess.run([DOVECONF, "-n", "-c", self.conf],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        err = open(os.path.join(self.dir, "stderr"), "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=err,
                                     stderr=err,
                                     preexec_fn=harness._set_pdeathsig)
        err.close()
        harness.LIVE.add(self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, ("dovecot exited:\n"
                                              + self.diagnostics())
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("dovecot did not start:\n" + self.diagnostics())

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        harness.LIVE.discard(self.proc)
        self.proc = None

    def diagnostics(self):
        return (harness.tail(self.log) + "\n"
                + harness.tail(os.path.join(self.dir, "stderr")))


def instances(make):
    """Generator body of a factory fixture: yields a function calling
    make(*args, **kw) (an unstarted instance), starting it and returning
    it; stops every instance at the end."""
    started = []

    def start(*args, **kw):
        dv = make(*args, **kw)
        started.append(dv)
        dv.start()
        return dv
    yield start
    for dv in started:
        dv.stop()
