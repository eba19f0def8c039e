"""
test_limits_reload.py - a worker job that outlives its session across a
reload: the postmaster notice of a SASL user put on hold is built on a
worker with the listener's resolver (core/smtpd_limits.c). Here the only
worker thread is kept busy by another listener's lookup in an LDAP
server that never answers, so the notice job waits in the pool while
the session that asked for it ends and SIGHUP retires its listener. The
listener must stay until the job is done (smtpd_listener_hold): the
notice is then queued and delivered, and under ASan no use after free
is reported (the fixture fails the test on a sanitizer report).
"""
import base64
import os
import signal
import socket
import threading
import time

from harness import check, free_port


class SilentServer:
    """A TCP server that accepts and never says anything."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.t.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


def auth_line(user, pw):
    return "AUTH PLAIN " + base64.b64encode(
        ("\0%s\0%s" % (user, pw)).encode()).decode()


def test_hold_notice_job_survives_the_reload_of_its_listener(facteurd):
    silent = SilentServer()
    try:
        run(facteurd, silent)
    finally:
        silent.close()


def run(facteurd, silent):
    pb = free_port()
    d = facteurd(start=False, main_cf={
        "facteur_worker_threads": "1",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_user_message_rate_limit": "2",
        "smtpd_sasl_user_hold_threshold": "2x",
        "smtpd_sasl_user_rate_time_unit": "60s",
        "smtpd_sasl_user_notice_recipient": "postmaster@example.test"})
    d.params["smtpd_sasl_passdb"] = d.table(
        "users", "bob@example.test:{PLAIN}bob-pw\n", "passwd-file")
    hung = os.path.join(d.confdir, "hung.cf")
    with open(hung, "w") as f:
        f.write("server_host = ldap://127.0.0.1:%d\n"
                "search_base = dc=hung,dc=test\n"
                "query_filter = (mail=%%s)\n"
                "result_attribute = uid\n"
                "timeout = 3\n" % silent.port)
    # listener B: its RCPT lookup keeps the only worker busy
    d.master_cf += ("127.0.0.1:%d inet n - n - - smtpd\n"
                    "  -o smtpd_recipient_restrictions=check_recipient_access"
                    ",ldap:%s,permit_mynetworks,reject\n" % (pb, hung))
    d.write_config()
    d.start()

    a = d.session(source="127.0.0.3")
    check(a.cmd(auth_line("bob@example.test", "bob-pw")), 235, "2.7.0")
    b = d.connect(port=pb)
    check(b.cmd("EHLO client.test"), 250)
    check(b.cmd("MAIL FROM:<sender@example.net>"), 250)
    b.send("RCPT TO:<alice@example.test>\r\n")     # the worker waits 3s
    time.sleep(0.5)
    # past 2x the limit: bob's mail goes on hold, a notice job is queued
    # behind the busy worker
    t0 = time.time()
    for _ in range(2):
        check(a.cmd("MAIL FROM:<sender@example.test>"), 250)
        check(a.cmd("RSET"), 250)
    for _ in range(3):
        check(a.cmd("MAIL FROM:<sender@example.test>"), 450, "4.7.1")
    d.wait_log(r"SASL user bob@example\.test: 5 messages .* put on hold")
    check(a.cmd("QUIT"), 221)
    a.close()
    # the scenario holds only if all this happened while the worker waited
    assert time.time() - t0 < 2.0, "the worker was not busy: " + d.diagnostics()
    # the listener of the session that asked for the notice is retired
    os.kill(d.proc.pid, signal.SIGHUP)
    d.wait_log(r"reload -- configuration")
    # the hung lookup ends (451), then the notice job runs
    check(b.reply(timeout=30), 451, "4.3.0")
    b.close()
    d.wait_log(r"smtpd\[\d+\]: \w+: postmaster notice: SASL user "
               r"bob@example\.test put on hold")
    deadline = time.time() + 15
    got = []
    while time.time() < deadline:
        got = [m for m in d.delivered("alice@example.test")
               if (m.header("Subject") or "").startswith("SASL user ")]
        if got:
            break
        time.sleep(0.1)
    assert len(got) == 1, d.diagnostics()
    assert d.proc.poll() is None, d.diagnostics()
