"""
test_lmtp.py - the LMTP client (RFC 2033): facteurd hands mail to a real
Dovecot LMTP (a private dovecot-lmtpd on a unix socket and on a loopback
high port, Maildir under a temp dir) through virtual_transport and
transport_maps, and to a small capture LMTP server that answers each
recipient on its own after the data (250 / 550 / 450): each recipient is
sent, bounced or deferred alone, and only the deferred one is retried.
"""
import os
import pwd
import re
import shutil
import socket
import tempfile
import time

import pytest

import harness
from capture import Capture
from dovecotserver import (DOVECONF, DOVECOT, DovecotProcess, instances,
                           passwd_file_auth)
from harness import free_port, make_msg, to_lf

LMTP_EXE = "/usr/lib/dovecot/lmtp"


class DovecotLMTP(DovecotProcess):
    """A private dovecot speaking only LMTP: unix socket + 127.0.0.1:port."""

    def __init__(self, users, uid, gid):
        for exe in (DOVECOT, DOVECONF, LMTP_EXE):
            if not os.access(exe, os.X_OK):
                pytest.fail("%s missing: run `make test-deps`" % exe,
                            pytrace=False)
        # world-traversable: facteurd (mail_owner) connects to the socket
        self.dir = tempfile.mkdtemp(prefix="facteur-lmtp-")
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "lmtp")
        self.port = free_port()
        self.mail = os.path.join(self.dir, "mail")
        os.makedirs(self.mail)
        os.chown(self.mail, uid, gid)
        self.log = os.path.join(self.dir, "dovecot.log")
        self.proc = None
        internal = (harness.TEST_MAIL_OWNER if os.geteuid() == 0
                    else pwd.getpwuid(os.getuid()).pw_name)
        with open(os.path.join(self.dir, "users"), "w") as f:
            for u in users:
                f.write("%s:{PLAIN}unused:::\n" % u)
        auth = passwd_file_auth(os.path.join(self.dir, "users"), self.mail,
                                uid, gid)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""\
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = facteur-lmtp-{port}
log_path = {log}
info_log_path = {log}
protocols = lmtp
listen = 127.0.0.1
ssl = no
auth_username_format = %Lu
default_internal_user = {internal}
default_login_user = {internal}
first_valid_uid = 1
postmaster_address = postmaster@example.test
mail_location = maildir:{mail}/%d/%n
mail_home = {mail}/%d/%n
service lmtp {{
  unix_listener {sock} {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
""".format(dir=self.dir, port=self.port, log=self.log, internal=internal,
           mail=self.mail, sock=self.sock) + auth)

    def ready(self):
        socket.create_connection(("127.0.0.1", self.port), 2).close()
        return os.path.exists(self.sock)

    def stop(self):
        super().stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def files(self, addr):
        local, dom = addr.split("@")
        out = []
        for sub in ("new", "cur"):
            p = os.path.join(self.mail, dom, local, sub)
            if os.path.isdir(p):
                out += [os.path.join(p, n) for n in sorted(os.listdir(p))]
        return out

    def wait_files(self, addr, n, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            f = self.files(addr)
            if len(f) >= n:
                return f
            time.sleep(0.05)
        return self.files(addr)


@pytest.fixture
def dovecot_lmtp():
    yield from instances(DovecotLMTP)


@pytest.fixture
def capture_lmtp():
    c = Capture(lmtp=True)
    yield c
    c.close()


RETRY = {"minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
         "queue_run_delay": "1s"}


def vmail_ids():
    """The uid/gid Dovecot stores mail as (the test mail owner as root)."""
    if os.geteuid() == 0:
        pw = pwd.getpwnam(harness.TEST_MAIL_OWNER)
        return pw.pw_uid, pw.pw_gid
    return os.getuid(), os.getgid()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_virtual_transport_unix_socket_to_dovecot(facteurd, dovecot_lmtp):
    # Dovecot knows alice only: bob is refused at RCPT by Dovecot itself
    dv = dovecot_lmtp(["alice@example.test"], *vmail_ids())
    d = facteurd(main_cf=dict(RETRY, virtual_transport="lmtp:unix:" + dv.sock))
    body = b"".join(b"line %d\r\n" % i for i in range(50)) + b".dot line\r\n"
    msg = make_msg("over lmtp", body=body)
    qid = d.send("sender@example.net", ["alice@example.test",
                                        "bob@example.test"], msg)
    files = dv.wait_files("alice@example.test", 1)
    assert len(files) == 1, dv.diagnostics() + d.diagnostics()
    got = read(files[0])
    assert to_lf(got).endswith(to_lf(msg))          # dots unstuffed again
    assert re.search(rb"^Return-Path: <sender@example.net>", got, re.M)
    m = d.wait_log(r"%s: to=<alice@example\.test>, relay=%s, delay=[0-9.]+, "
                   r"delays=[0-9.]+/[0-9.]+/[0-9.]+/[0-9.]+, dsn=2\.0\.0, "
                   r"status=sent \(250 2\.0\.0 <alice@example\.test> "
                   % (qid, re.escape(dv.sock)))
    line = [l for l in d.log().splitlines() if m.group(0) in l][0]
    assert "/lmtp[" in line, line
    d.wait_log(r"%s: to=<bob@example\.test>, relay=%s, .*dsn=5\.1\.1, "
               r"status=bounced \(host %s said: 550 5\.1\.1 "
               r".*\(in reply to RCPT TO command\)\)"
               % (qid, re.escape(dv.sock), re.escape(dv.sock)))
    d.wait_log(r"%s: removed" % qid)
    # nothing went into facteurd's own Maildirs
    assert d.files("alice@example.test") == []


def test_transport_maps_inet_to_dovecot(facteurd, dovecot_lmtp):
    dv = dovecot_lmtp(["alice@example.test", "bob@example.test"],
                      *vmail_ids())
    d = facteurd(main_cf=dict(RETRY, transport_maps=(
        "inline:{ alice@example.test=lmtp:inet:127.0.0.1:%d, "
        "example.test=lmtp:[127.0.0.1]:%d }" % (dv.port, dv.port))))
    qid = d.send("sender@example.net", ["alice@example.test",
                                        "bob@example.test"],
                 make_msg("inet lmtp"))
    assert len(dv.wait_files("alice@example.test", 1)) == 1, dv.diagnostics()
    assert len(dv.wait_files("bob@example.test", 1)) == 1, dv.diagnostics()
    for u in ("alice", "bob"):
        d.wait_log(r"%s: to=<%s@example\.test>, relay=127\.0\.0\.1"
                   r"\[127\.0\.0\.1\]:%d, .*dsn=2\.0\.0, status=sent"
                   % (qid, u, dv.port))
    d.wait_log(r"%s: removed" % qid)


def test_per_recipient_replies_after_data(facteurd, capture_lmtp):
    state = {"carol": 0}

    def data_reply(a):
        if a.startswith("bob@"):
            return "550 5.2.2 <%s> Mailbox full" % a
        if a.startswith("carol@"):
            state["carol"] += 1
            if state["carol"] == 1:
                return "451 4.3.0 <%s> Temporary failure" % a
        return "250 2.0.0 <%s> Saved" % a
    capture_lmtp.data_reply = data_reply
    capture_lmtp.rcpt_reply = (lambda a: "550 5.1.1 <%s> User doesn't exist" % a
                               if a.startswith("nobody@") else "250 2.1.5 Ok")
    d = facteurd(main_cf=dict(
        RETRY, virtual_transport="lmtp:127.0.0.1:%d" % capture_lmtp.port),
        vmailbox="".join("%s@example.test example.test/%s/\n" % (u, u)
                         for u in ("alice", "bob", "carol", "nobody")))
    rcpts = ["alice@example.test", "bob@example.test", "carol@example.test",
             "nobody@example.test"]
    qid = d.send("sender@example.net", rcpts, make_msg("per recipient"))
    relay = r"127\.0\.0\.1\[127\.0\.0\.1\]:%d" % capture_lmtp.port
    d.wait_log(r"%s: to=<alice@example\.test>, relay=%s, .*dsn=2\.0\.0, "
               r"status=sent \(250 2\.0\.0 <alice@example\.test> Saved\)"
               % (qid, relay))
    d.wait_log(r"%s: to=<bob@example\.test>, relay=%s, .*dsn=5\.2\.2, "
               r"status=bounced \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: "
               r"550 5\.2\.2 <bob@example\.test> Mailbox full \(in reply to "
               r"end of DATA command\)\)" % (qid, relay))
    d.wait_log(r"%s: to=<carol@example\.test>, relay=%s, .*dsn=4\.3\.0, "
               r"status=deferred \(host 127\.0\.0\.1\[127\.0\.0\.1\] said: "
               r"451 4\.3\.0 <carol@example\.test> Temporary failure "
               r"\(in reply to end of DATA command\)\)" % (qid, relay))
    d.wait_log(r"%s: to=<nobody@example\.test>, relay=%s, .*dsn=5\.1\.1, "
               r"status=bounced .*\(in reply to RCPT TO command\)\)"
               % (qid, relay))
    # the retry carries carol alone, and then she is delivered
    d.wait_log(r"%s: to=<carol@example\.test>, relay=%s, .*status=sent"
               % (qid, relay))
    d.wait_log(r"%s: removed" % qid)
    tx = capture_lmtp.wait_transactions(2)
    mine = [t for t in tx if t[0] == "sender@example.net"]
    assert [t[1] for t in mine] == [
        ["alice@example.test", "bob@example.test", "carol@example.test"],
        ["carol@example.test"]]
    assert all(g.upper().startswith("LHLO ") for g in capture_lmtp.greetings)
    # bob and nobody get one non-delivery notification to the sender
    d.wait_log(r"%s: sender non-delivery notification: \w+" % qid)


def test_messages_share_one_lmtp_connection(facteurd, capture_lmtp):
    """Queued messages for the LMTP next hop are flushed over one
    connection: one LHLO, RSET between the transactions."""
    capture_lmtp.greeting = "421 4.3.2 busy, try later"
    d = facteurd(main_cf=dict(
        virtual_transport="lmtp:127.0.0.1:%d" % capture_lmtp.port,
        smtp_destination_concurrency_limit="1", queue_run_delay="1h",
        minimal_backoff_time="1h", maximal_backoff_time="2h"))
    ids = [d.send("sender@example.net", ["alice@example.test"],
                  make_msg("lmtp %d" % i)) for i in range(4)]
    for qid in ids:
        d.wait_log(r"%s: to=<alice@example\.test>, .*status=deferred" % qid)
    capture_lmtp.greeting = None
    before = capture_lmtp.connections
    assert d.cli("queue", "flush").returncode == 0
    assert len(capture_lmtp.wait_transactions(4)) == 4, d.diagnostics()
    for qid in ids:
        d.wait_log(r"%s: removed" % qid)
    conns = capture_lmtp.conns[before:]
    assert len(conns) == 1, [c.commands for c in conns]
    cmds = conns[0].commands
    assert sum(1 for c in cmds if c.upper().startswith("LHLO")) == 1
    assert sum(1 for c in cmds if c.upper() == "RSET") == 3
    assert conns[0].transactions == 4


def test_unix_socket_missing_defers(facteurd, tmp_path):
    path = "/tmp/facteur-lmtp-absent-%d.sock" % os.getpid()
    d = facteurd(main_cf=dict(RETRY, virtual_transport="lmtp:unix:" + path))
    qid = d.send("sender@example.net", ["alice@example.test"], make_msg("x"))
    d.wait_log(r"%s: to=<alice@example\.test>, relay=%s, .*dsn=4\.4\.1, "
               r"status=deferred \(connect to %s: No such file or directory\)"
               % (qid, re.escape(path), re.escape(path)))
    assert d.files("alice@example.test") == []
