"""
test_milter.py - smtpd_milters as Postfix has them: a libmilter milter
(python3-milter, started by the test on a loopback port) refuses a
recipient with its own reply, tempfails one, and at the end of the
message adds, inserts and changes headers, replaces the body, adds and
deletes recipients, changes the sender, quarantines (hold), discards and
rejects; the delivered Maildir files show the changes. A milter that is
down gets milter_default_action (tempfail: 451 4.7.1 at the greeting;
accept: mail goes through); a milter that never answers times out into
the default action. A real OpenDKIM in signing mode, listed after the
test milter, signs the mail of an authenticated client as the first
milter changed it, and the delivered message's DKIM-Signature verifies
with the public key (python3-dkim), with relaxed and simple header
canonicalization and a folded Subject.
"""
import base64
import os
import re
import signal
import socket
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from harness import check, dot_stuff, free_port, make_msg, queue_id_of
from milterserver import RawMilter, pkt

PY = sys.executable     # the one running pytest, with python3-milter

MILTER_SRC = r'''
import sys
import Milter

class M(Milter.Base):
    def __init__(self):
        self.id = Milter.uniqueID()
        self.rcpts = []
        self.subject = ""
        self.macros = {}

    @Milter.noreply
    def connect(self, host, family, hostaddr):
        self.macros["j"] = self.getsymval("j")
        self.macros["{daemon_name}"] = self.getsymval("{daemon_name}")
        self.client = hostaddr
        return Milter.CONTINUE

    def hello(self, name):
        if name == "reject.helo.test":
            self.setreply("550", "5.7.1", "HELO refused by milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def envfrom(self, f, *args):
        self.rcpts = []
        self.subject = ""
        self.auth = self.getsymval("{auth_authen}")
        self.mailargs = " ".join(args)
        if "mailreject" in f:
            self.setreply("553", "5.7.1", "Sender refused by milter")
            return Milter.REJECT
        return Milter.CONTINUE

    def envrcpt(self, to, *args):
        if "reject-rcpt" in to:
            self.setreply("550", "5.7.1", "Recipient refused by milter")
            return Milter.REJECT
        if "tempfail-rcpt" in to:
            return Milter.TEMPFAIL
        self.rcpts.append(to)
        return Milter.CONTINUE

    def header(self, name, value):
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    def eom(self):
        s = self.subject
        if "reject-eom" in s:
            self.setreply("554", "5.7.1", "Content refused by milter")
            return Milter.REJECT
        if "tempfail-eom" in s:
            return Milter.TEMPFAIL
        if "discard" in s:
            return Milter.DISCARD
        if "headers" in s:
            self.addheader("X-Milter-Added", "yes")
            self.addheader("X-Milter-First", "top", 0)
            self.chgheader("Subject", 1, "changed by milter")
            self.chgheader("X-Remove-Me", 1, "")
            self.addheader("X-Milter-Macros", "j=%s daemon=%s auth=%s rcpts=%s"
                           % (self.macros.get("j"),
                              self.macros.get("{daemon_name}"),
                              self.auth, ",".join(self.rcpts)))
            self.addheader("X-Milter-Mail-Args", self.mailargs or "none")
        if "body" in s:
            self.replacebody(b"Replaced by the milter.\r\nSecond line.\r\n")
        if "addrcpt" in s:
            self.addrcpt("<bob@example.test>")
        if "delrcpt" in s:
            self.delrcpt("<carol@example.test>")
        if "chgfrom" in s:
            self.chgfrom("<changed@example.net>")
        if "quarantine" in s:
            self.quarantine("held by the milter")
        if "hdrcheck-hold" in s:
            self.addheader("X-Milter-Verdict", "hold-me")
        if "hdrcheck-reject" in s:
            self.addheader("X-Milter-Verdict", "reject-me")
        return Milter.CONTINUE

Milter.factory = M
Milter.set_flags(Milter.ADDHDRS | Milter.CHGHDRS | Milter.CHGBODY |
                 Milter.ADDRCPT | Milter.DELRCPT | Milter.QUARANTINE |
                 Milter.CHGFROM)
sys.stdout.write("ready\n")
sys.stdout.flush()
Milter.runmilter("factest", sys.argv[1], 30)
'''


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nothing listens on port %d" % port)


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def milter(tmp_path_factory):
    d = tmp_path_factory.mktemp("milter")
    script = d / "facteur_test_milter.py"
    script.write_text(MILTER_SRC)
    port = free_port()
    proc = subprocess.Popen([PY, str(script), "inet:%d@127.0.0.1" % port],
                            stdout=subprocess.PIPE,
                            stderr=open(str(d / "milter.err"), "w"))
    try:
        wait_port(port)
        yield port
    finally:
        stop(proc, signal.SIGKILL)     # libmilter lingers on SIGTERM


@pytest.fixture(scope="module")
def mx_milter(milter, build, tmp_path_factory):
    import harness
    pool = harness.Pool(tmp_path_factory.mktemp("mxm"))
    d = pool.new(main_cf={
        "smtpd_milters": "inet:127.0.0.1:%d" % milter,
        "milter_default_action": "tempfail",
        # a value for a macro facteur has none for (no AUTH here)
        "milter_macro_defaults": "auth_authen=anonymous"})
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def send_one(d, subject, rcpts=("alice@example.test",),
             sender="joe@example.net", extra=b"", mail_args=""):
    msg = make_msg(subject, to=rcpts[0], sender=sender,
                   body=b"Original body.\r\n")
    if extra:
        msg = extra + msg
    with d.session() as c:
        check(c.cmd("MAIL FROM:<%s>%s" % (sender, mail_args)), 250)
        for r in rcpts:
            check(c.cmd("RCPT TO:<%s>" % r), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        r = c.reply()
        check(c.cmd("QUIT"), 221)
    return r


def test_rcpt_reject_and_tempfail(mx_milter):
    d = mx_milter
    with d.session() as c:
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice+reject-rcpt@example.test>"), 550, "5.7.1",
              "Recipient refused by milter")
        check(c.cmd("RCPT TO:<alice+tempfail-rcpt@example.test>"), 451, "4.7.1",
              "Service unavailable - try again later")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("RSET"), 250)
        check(c.cmd("MAIL FROM:<mailreject@example.net>"), 553, "5.7.1",
              "Sender refused by milter")
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
    d.wait_log(r"NOQUEUE: milter-reject: RCPT from localhost\[127\.0\.0\.1\]: "
               r"550 5\.7\.1 Recipient refused by milter; "
               r"from=<joe@example\.net> to=<alice\+reject-rcpt@example\.test> "
               r"proto=ESMTP helo=<client\.test>")
    d.wait_log(r"NOQUEUE: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: "
               r"553 5\.7\.1 Sender refused by milter; "
               r"from=<mailreject@example\.net> proto=ESMTP")


def test_helo_reject(mx_milter):
    c = mx_milter.connect()
    try:
        check(c.cmd("EHLO reject.helo.test"), 550, "5.7.1",
              "HELO refused by milter")
        check(c.cmd("EHLO ok.test"), 250)
    finally:
        c.close()


def test_header_changes_and_macros(mx_milter):
    d = mx_milter
    before = len(d.files("alice@example.test"))
    r = send_one(d, "headers please",
                 extra=b"X-Remove-Me: gone\r\n",
                 mail_args=" SIZE=500 BODY=8BITMIME")
    check(r, 250, "2.0.0")
    d.wait_files("alice@example.test", before + 1)
    f = sorted(d.delivered("alice@example.test"),
               key=lambda m: os.path.getmtime(m.path))[-1]
    raw = open(f.path, "rb").read()
    head = raw.split(b"\n\n", 1)[0]
    assert b"X-Milter-Added: yes" in head
    assert b"Subject: changed by milter" in head
    assert b"headers please" not in head
    assert b"X-Remove-Me" not in head
    # inserted at index 0: above our Received: header
    lines = [l for l in head.split(b"\n") if l and l[:1] not in b" \t"]
    names = [l.split(b":")[0] for l in lines]
    assert names.index(b"X-Milter-First") < names.index(b"Received")
    m = re.search(rb"X-Milter-Macros: j=(\S+) daemon=(\S+) auth=(\S+) "
                  rb"rcpts=(\S+)", head)
    assert m, head
    assert m.group(1) == m.group(2) == b"mx.example.test" or \
        m.group(1) == m.group(2)
    assert m.group(3) == b"anonymous"      # milter_macro_defaults
    assert m.group(4) == b"<alice@example.test>"
    assert b"X-Milter-Mail-Args: SIZE=500 BODY=8BITMIME" in head


def test_body_replaced_sender_changed(mx_milter):
    d = mx_milter
    before = len(d.files("alice@example.test"))
    check(send_one(d, "body chgfrom"), 250)
    d.wait_files("alice@example.test", before + 1)
    f = sorted(d.delivered("alice@example.test"),
               key=lambda m: os.path.getmtime(m.path))[-1]
    raw = open(f.path, "rb").read()
    assert raw.startswith(b"Return-Path: <changed@example.net>")
    body = raw.split(b"\n\n", 1)[1]
    assert body == b"Replaced by the milter.\nSecond line.\n"
    assert b"Original body" not in raw


def test_recipients_added_and_deleted(mx_milter):
    d = mx_milter
    nb = len(d.files("bob@example.test"))
    nc = len(d.files("carol@example.test"))
    na = len(d.files("alice@example.test"))
    check(send_one(d, "addrcpt delrcpt",
                   rcpts=("alice@example.test", "carol@example.test")), 250)
    d.wait_files("bob@example.test", nb + 1)
    d.wait_files("alice@example.test", na + 1)
    time.sleep(0.3)
    assert len(d.files("carol@example.test")) == nc


def test_eom_reject_tempfail_discard_quarantine(mx_milter):
    d = mx_milter
    na = len(d.files("alice@example.test"))
    r = send_one(d, "reject-eom")
    check(r, 554, "5.7.1", "Content refused by milter")
    d.wait_log(r"milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: "
               r"5\.7\.1 Content refused by milter; from=<joe@example\.net> "
               r"to=<alice@example\.test> proto=ESMTP helo=<client\.test>")
    check(send_one(d, "tempfail-eom"), 451, "4.7.1")
    r = check(send_one(d, "discard me"), 250, "2.0.0")
    d.wait_log(r"%s: milter-discard: END-OF-MESSAGE" % queue_id_of(r))
    r = check(send_one(d, "quarantine me"), 250, "2.0.0")
    qid = queue_id_of(r)
    d.wait_log(r"%s: milter-hold: END-OF-MESSAGE" % qid)
    held = d.queue_files(states=("hold",))
    assert any(qid in p for p in held), held
    time.sleep(0.3)
    assert len(d.files("alice@example.test")) == na


def test_milter_down_tempfail_and_accept(facteurd):
    port = free_port()      # nothing listens there
    p2, p3, p4 = free_port(), free_port(), free_port()
    # second listener: the milter (down) with the default tempfail; third
    # one: the per-milter settings form with default_action=accept; then
    # quarantine (a milter list that does not parse stops the start:
    # test_check.py)
    d = facteurd(extra_master_cf=(
        "127.0.0.1:%d inet n - n - - smtpd\n"
        "  -o smtpd_milters=inet:127.0.0.1:%d\n"
        "127.0.0.1:%d inet n - n - - smtpd\n"
        "  -o { smtpd_milters = { inet:127.0.0.1:%d, default_action=accept } }\n"
        "127.0.0.1:%d inet n - n - - smtpd\n"
        "  -o smtpd_milters=inet:127.0.0.1:%d\n"
        "  -o milter_default_action=quarantine\n")
        % (p2, port, p3, port, p4, port))
    c = d.connect(banner=False, port=p2)
    try:
        check(c.reply(), 451, "4.7.1", "Service unavailable - try again later")
        check(c.cmd("MAIL FROM:<joe@example.net>"), 503)
    finally:
        c.close()
    d.wait_log(r"warning: connect to Milter service inet:127\.0\.0\.1:%d: "
               r"Connection refused" % port)
    d.wait_log(r"NOQUEUE: milter-reject: CONNECT from localhost\[127\.0\.0\.1\]: "
               r"451 4\.7\.1 Service unavailable - try again later; proto=SMTP")
    c = d.connect(port=p3)
    try:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("down but accepted")))
        check(c.reply(), 250, "2.0.0")
    finally:
        c.close()
    d.wait_files("alice@example.test", 1)
    # quarantine: accepted, and held
    c = d.connect(port=p4)
    try:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("down and held")))
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
    finally:
        c.close()
    d.wait_log(r"%s: milter-hold: END-OF-MESSAGE" % qid)
    assert any(qid in p for p in d.queue_files(states=("hold",)))
    time.sleep(0.3)
    assert d.files("bob@example.test") == []


def test_milter_never_answers(facteurd):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    srv.bind(("127.0.0.1", port))
    srv.listen(8)
    held = []
    stop_ev = threading.Event()

    def acceptor():
        srv.settimeout(0.2)
        while not stop_ev.is_set():
            try:
                held.append(srv.accept()[0])   # read nothing, answer nothing
            except OSError:
                pass
    t = threading.Thread(target=acceptor, daemon=True)
    t.start()
    try:
        d = facteurd(main_cf={"smtpd_milters": "inet:127.0.0.1:%d" % port,
                              "milter_connect_timeout": "1s",
                              "milter_command_timeout": "1s",
                              "milter_default_action": "accept"})
        t0 = time.time()
        qid = d.send("joe@example.net", "alice@example.test",
                     make_msg("silent milter"))
        assert qid
        assert time.time() - t0 >= 0.9
        d.wait_log(r"warning: milter inet:127\.0\.0\.1:%d: can't read "
                   r"SMFIC_OPTNEG reply packet header: Connection timed out"
                   % port)
    finally:
        stop_ev.set()
        t.join(2)
        for s in held:
            s.close()
        srv.close()


# ---- OpenDKIM ----

def which(prog):
    for p in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        if os.access(os.path.join(p, prog), os.X_OK):
            return os.path.join(p, prog)
    raise AssertionError("%s is missing: opendkim and opendkim-tools are "
                         "needed (contrib/install-deps.sh test)" % prog)


@pytest.mark.parametrize("canon", ["relaxed/simple", "simple/simple"])
def test_opendkim_signs_authenticated_mail(facteurd, tmp_path, canon, milter):
    opendkim, genkey = which("opendkim"), which("opendkim-genkey")
    import dkim
    kd = tmp_path / "keys"
    kd.mkdir()
    subprocess.run([genkey, "-b", "1024", "-d", "example.test",
                    "-s", "sel", "-D", str(kd)], check=True)
    port = free_port()
    conf = tmp_path / "opendkim.conf"
    conf.write_text(
        "Domain example.test\nSelector sel\nKeyFile %s/sel.private\n"
        "Mode sv\nSocket inet:%d@127.0.0.1\nCanonicalization %s\n"
        "Syslog no\nBackground no\nPidFile %s/opendkim.pid\n"
        "RequireSafeKeys no\n"
        # not 127.0.0.1: only the SMTP AUTH macros make OpenDKIM sign
        "InternalHosts 192.0.2.1\nExternalIgnoreList 192.0.2.1\n"
        % (kd, port, canon, tmp_path))
    proc = subprocess.Popen([opendkim, "-f", "-x", str(conf)],
                            stderr=open(str(tmp_path / "opendkim.err"), "w"))
    try:
        wait_port(port)
        d = facteurd(start=False, main_cf={
            # the test milter first (it changes the Subject), then
            # OpenDKIM, which must sign what the first one made
            "smtpd_milters": "inet:127.0.0.1:%d, inet:127.0.0.1:%d"
                             % (milter, port),
            "smtpd_sasl_auth_enable": "yes"})
        users = d.confdir + "/users"
        with open(users, "w") as f:
            f.write("alice@example.test:{PLAIN}alice-pw\n")
        d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
        d.write_config()
        d.start()
        # folded and oddly spaced signed headers: simple header
        # canonicalization sees every byte the milter was shown
        msg = make_msg("headers signed by\r\n\topendkim  (%s)" % canon,
                       to="bob@example.test",
                       sender="alice@example.test",
                       body=b"Hello Bob,\r\nthis one is signed.\r\n",
                       extra_headers=b"Cc: <carol@example.test>,\r\n"
                                     b"   <catchall@example.test>\r\n"
                                     b"Reply-To:   Alice \t<alice@example"
                                     b".test>\r\n")
        with d.session() as c:
            check(c.cmd("AUTH PLAIN " + base64.b64encode(
                b"\0alice@example.test\0alice-pw").decode()), 235)
            check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
            check(c.cmd("RCPT TO:<bob@example.test>"), 250)
            check(c.cmd("DATA"), 354)
            c.send(dot_stuff(msg))
            check(c.reply(), 250, "2.0.0")
            check(c.cmd("QUIT"), 221)
        d.wait_files("bob@example.test", 1)
        raw = open(d.files("bob@example.test")[0], "rb").read()
        assert b"DKIM-Signature:" in raw, raw[:2000]
        hlist = re.search(rb"\bh=([^;]*);", raw).group(1).lower()
        assert b"cc" in hlist and b"reply-to" in hlist, hlist
        assert b"Subject: changed by milter" in raw
        assert re.search(rb"X-Milter-Macros: .* auth=alice@example\.test ",
                         raw), raw[:2000]
        txt = (kd / "sel.txt").read_text()
        pub = "".join(re.findall(r'"([^"]*)"', txt))

        def dnsfunc(name, timeout=5):
            assert name in (b"sel._domainkey.example.test.",
                            "sel._domainkey.example.test."), name
            return pub.encode()
        crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert dkim.verify(crlf, dnsfunc=dnsfunc), crlf[:3000]
        # a changed body no longer verifies: the check can fail
        assert not dkim.verify(crlf.replace(b"this one is signed",
                                            b"this one is forged"),
                               dnsfunc=dnsfunc)
        # the same client without AUTH: OpenDKIM does not sign
        d.send("alice@example.test", "bob@example.test",
               make_msg("not signed", sender="alice@example.test"))
        d.wait_files("bob@example.test", 2)
        other = [p for p in d.files("bob@example.test")
                 if b"not signed" in open(p, "rb").read()]
        assert len(other) == 1
        assert b"DKIM-Signature:" not in open(other[0], "rb").read()
    finally:
        stop(proc, signal.SIGKILL)  # libmilter lingers 5 s on SIGTERM


# ---- non_smtpd_milters: mail from sendmail ----

def test_non_smtpd_milters_sendmail(facteurd, milter):
    from test_sendmail import local_daemon, sendmail
    d = local_daemon(facteurd, main_cf={
        "non_smtpd_milters": "inet:127.0.0.1:%d" % milter})
    r = sendmail(d, ["-f", "joe@example.test", "alice"],
                 b"Subject: headers body addrcpt\n\nfrom cron\n")
    assert r.returncode == 0, r.stderr
    raw = d.wait_files("alice@example.test", 1)[0].raw
    head, body = raw.split(b"\n\n", 1)
    assert b"X-Milter-Added: yes" in head
    assert b"Subject: changed by milter" in head
    assert re.search(rb"X-Milter-Macros: j=mx\.example\.test "
                     rb"daemon=mx\.example\.test auth=None "
                     rb"rcpts=<alice@example\.test>", head), head
    assert body == b"Replaced by the milter.\nSecond line.\n"
    assert d.wait_files("bob@example.test", 1)      # ADDRCPT
    # refused at the end of the message: the sendmail command is told
    r = sendmail(d, ["alice"], b"Subject: reject-eom\n\nno\n")
    assert r.returncode == 65, r            # EX_DATAERR
    assert b"554 5.7.1 Content refused by milter" in r.stderr, r.stderr
    d.wait_log(r"cleanup\[\d+\]: [0-9A-F]+: milter-reject: END-OF-MESSAGE "
               r"from localhost\[127\.0\.0\.1\]: 5\.7\.1 Content refused by "
               r"milter; from=<")
    time.sleep(0.3)
    assert len(d.files("alice@example.test")) == 1
    # SMTP mail does not go through non_smtpd_milters
    d.send("joe@example.net", "carol@example.test",
           make_msg("headers via smtp"))
    got = d.wait_files("carol@example.test", 1)[0]
    assert b"X-Milter-Added" not in got.raw


def test_unix_socket_milter(facteurd, tmp_path):
    """unix:/path (and Sendmail's local:/path), the usual way OpenDKIM and
    rspamd are reached on one host."""
    # outside pytest's private (0700) tmp dir: facteurd runs as the mail
    # owner when the tests run as root
    sdir = tempfile.mkdtemp(prefix="facteur-it-milter-")
    os.chmod(sdir, 0o755)
    path = os.path.join(sdir, "m.sock")
    script = tmp_path / "facteur_test_milter.py"
    # the socket must be writable by the mail owner facteurd runs as
    script.write_text("import os\nos.umask(0)\n" + MILTER_SRC)
    proc = subprocess.Popen([PY, str(script), "unix:" + path],
                            stdout=subprocess.PIPE,
                            stderr=open(str(tmp_path / "m.err"), "w"))
    try:
        deadline = time.time() + 10
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.05)
        assert os.path.exists(path)
        for prefix in ("unix:", "local:"):
            d = facteurd(main_cf={"smtpd_milters": prefix + path})
            d.send("joe@example.net", "alice@example.test",
                   make_msg("headers over " + prefix))
            got = d.wait_files("alice@example.test", 1)[0]
            assert b"X-Milter-Added: yes" in got.raw
            assert b"Subject: changed by milter" in got.raw
    finally:
        stop(proc, signal.SIGKILL)
        shutil.rmtree(sdir, True)


OPTNEG_OK = pkt(b"O", (6).to_bytes(4, "big") + (0).to_bytes(4, "big")
                + (0).to_bytes(4, "big"))


def test_misbehaving_milters(facteurd):
    """Garbage lengths, a connection closed in the middle, an unknown
    reply: each milter gets its default action with a log line, and the
    daemon goes on."""
    def huge(cmd, data):        # a 4 GB packet announced
        return b"\xff\xff\xff\xff" if cmd == b"O" else None

    def closes_at_mail(cmd, data):
        if cmd == b"O":
            return OPTNEG_OK
        if cmd == b"M":
            return None
        return b"" if cmd == b"D" else pkt(b"c")

    def unknown_reply(cmd, data):
        if cmd == b"O":
            return OPTNEG_OK
        if cmd == b"R":
            return pkt(b"Z")
        return b"" if cmd == b"D" else pkt(b"c")

    ms = [RawMilter(f) for f in (huge, closes_at_mail, unknown_reply)]
    try:
        p2, p3 = free_port(), free_port()
        d = facteurd(main_cf={
            "smtpd_milters": "{ inet:127.0.0.1:%d, default_action=accept }"
                             % ms[0].port},
            extra_master_cf=("127.0.0.1:%d inet n - n - - smtpd\n"
                             "  -o smtpd_milters=inet:127.0.0.1:%d\n"
                             "127.0.0.1:%d inet n - n - - smtpd\n"
                             "  -o smtpd_milters=inet:127.0.0.1:%d\n"
                             % (p2, ms[1].port, p3, ms[2].port)))
        d.send("joe@example.net", "alice@example.test",
               make_msg("garbage length"))
        d.wait_files("alice@example.test", 1)
        d.wait_log(r"warning: milter inet:127\.0\.0\.1:%d: bad reply "
                   r"packet length" % ms[0].port)
        c = d.connect(port=p2)
        try:
            check(c.cmd("EHLO client.test"), 250)
            check(c.cmd("MAIL FROM:<joe@example.net>"), 451, "4.7.1")
            check(c.cmd("MAIL FROM:<joe@example.net>"), 451, "4.7.1")
        finally:
            c.close()
        d.wait_log(r"warning: milter inet:127\.0\.0\.1:%d: can't read "
                   r"SMFIC_MAIL reply packet header: Unexpected end-of-input"
                   % ms[1].port)
        c = d.connect(port=p3)
        try:
            check(c.cmd("EHLO client.test"), 250)
            check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
            check(c.cmd("RCPT TO:<alice@example.test>"), 451, "4.7.1")
            check(c.cmd("QUIT"), 221)
        finally:
            c.close()
        d.wait_log(r"warning: milter inet:127\.0\.0\.1:%d: unexpected "
                   r"reply 'Z' to SMFIC_RCPT" % ms[2].port)
    finally:
        for m in ms:
            m.close()


def test_milter_host_name(facteurd, milter):
    """inet:localhost:port: the name is looked up off the event loop; an
    unknown name is the default action with a log line."""
    d = facteurd(main_cf={
        "smtpd_milters": "inet:localhost:%d, "
                         "{ inet:no-such-host.invalid:%d, default_action=accept }"
                         % (milter, milter)})
    d.send("joe@example.net", "alice@example.test", make_msg("headers by name"))
    got = d.wait_files("alice@example.test", 1)[0]
    assert b"X-Milter-Added: yes" in got.raw
    d.wait_log(r"warning: connect to Milter service "
               r"inet:no-such-host\.invalid:%d: " % milter)


def test_bdat_goes_through_milters(mx_milter):
    d = mx_milter
    before = len(d.files("catchall@example.test"))
    msg = make_msg("headers by bdat", to="catchall@example.test")
    with d.session() as c:
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<catchall@example.test>"), 250)
        half = len(msg) // 2
        c.send(b"BDAT %d\r\n" % half + msg[:half])
        check(c.reply(), 250)
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
        check(c.reply(), 250, "2.0.0")
        # a refused message by BDAT: the milter's reply to the last chunk
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<catchall@example.test>"), 250)
        bad = make_msg("reject-eom by bdat", to="catchall@example.test")
        c.send(b"BDAT %d LAST\r\n" % len(bad) + bad)
        check(c.reply(), 554, "5.7.1", "Content refused by milter")
        check(c.cmd("QUIT"), 221)
    got = d.wait_files("catchall@example.test", before + 1)
    assert len(d.files("catchall@example.test")) == before + 1
    assert any(b"X-Milter-Added: yes" in g.raw and b"headers by bdat" not in
               g.raw for g in got)


def test_connect_reject(facteurd):
    """A milter that refuses the connection: its reply instead of the
    banner (554 for a plain REJECT), then 503 to all but QUIT."""
    def refuse(cmd, data):
        if cmd == b"O":
            return OPTNEG_OK
        if cmd == b"C":
            return pkt(b"r")
        return b"" if cmd in (b"D", b"A", b"Q") else pkt(b"c")
    m = RawMilter(refuse)
    try:
        p2 = free_port()
        d = facteurd(extra_master_cf=(
            "127.0.0.1:%d inet n - n - - smtpd\n"
            "  -o smtpd_milters=inet:127.0.0.1:%d\n" % (p2, m.port)))
        c = d.connect(banner=False, port=p2)
        try:
            check(c.reply(), 554, "5.7.1", "Command rejected")
            check(c.cmd("EHLO client.test"), 503)
            check(c.cmd("QUIT"), 221)
        finally:
            c.close()
        d.wait_log(r"NOQUEUE: milter-reject: CONNECT from localhost"
                   r"\[127\.0\.0\.1\]: 554 5\.7\.1 Command rejected; "
                   r"proto=SMTP$")
    finally:
        m.close()


def test_client_gone_during_milter_step(facteurd):
    """The client hangs up while a milter thinks about RCPT and the end of
    the message: the session ends cleanly once the milter answered
    (nothing leaked: the ASan build checks). A message whose final dot
    was sent is complete and kept, as Postfix keeps it (the client, not
    having seen the 250, may send it again)."""
    def slow(cmd, data):
        if cmd == b"O":
            return OPTNEG_OK
        if cmd in (b"D", b"A", b"Q", b"L", b"B", b"N"):
            return b"" if cmd in (b"D", b"A", b"Q") else pkt(b"c")
        if cmd in (b"R", b"E"):
            time.sleep(0.5)
        return pkt(b"c")
    m = RawMilter(slow)
    try:
        d = facteurd(main_cf={"smtpd_milters": "inet:127.0.0.1:%d" % m.port})
        c = d.session()
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        c.send(b"RCPT TO:<alice@example.test>\r\n")
        c.close()                       # gone while the milter thinks
        c = d.session()
        check(c.cmd("MAIL FROM:<joe@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("hang up at the end")))
        c.close()                       # gone during END-OF-MESSAGE
        d.wait_files("alice@example.test", 1)
        time.sleep(0.3)
        assert len(d.files("alice@example.test")) == 1
        d.wait_log(r"lost connection after (DATA|END-OF-MESSAGE|RCPT) from "
                   r"localhost\[127\.0\.0\.1\]|disconnect from localhost")
        # the daemon serves the next client as before
        c = d.session()
        check(c.cmd("QUIT"), 221)
        c.close()
    finally:
        m.close()


def test_milter_header_checks(facteurd, milter):
    """milter_header_checks see the lines milters add: REJECT answers the
    end of the message, HOLD keeps it in the hold queue; the message's own
    headers are not checked by it."""
    d = facteurd(start=False)
    checks = d.table("milter_checks",
                     "/^X-Milter-Verdict: hold-me/ HOLD held by checks\n"
                     "/^X-Milter-Verdict: reject-me/ REJECT refused by checks\n"
                     "/^Subject:/ REJECT never: not a milter line\n",
                     kind="regexp")
    d.params["smtpd_milters"] = "inet:127.0.0.1:%d" % milter
    d.params["milter_header_checks"] = checks
    d.write_config()
    d.start()
    r = send_one(d, "hdrcheck-reject")
    check(r, 550, "5.7.1", "refused by checks")
    r = check(send_one(d, "hdrcheck-hold"), 250, "2.0.0")
    qid = queue_id_of(r)
    d.wait_log(r"%s: hold: header X-Milter-Verdict: hold-me" % qid)
    assert any(qid in p for p in d.queue_files(states=("hold",)))
    check(send_one(d, "plain"), 250, "2.0.0")
    d.wait_files("alice@example.test", 1)
    time.sleep(0.3)
    assert len(d.files("alice@example.test")) == 1
