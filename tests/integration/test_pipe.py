"""
test_pipe.py - master.cf pipe services (pipe(8)): a small script as the
command records its argv and standard input, so the macros and the flags
(F, R, O, D, ".") are checked byte for byte; the exit status decides the
outcome with Postfix's sys_exits table (75 deferred then delivered once it
exits 0, 67 bounced to the sender with 5.1.1), a command that hangs is
killed at NAME_time_limit and the mail deferred; a command line without
${recipient} runs once for several recipients. Configuration errors: a
*_transport naming no service, user= other than the mail owner, and an
unknown transport in transport_maps (a deferral, logged).
"""
import json
import os
import pwd
import re
import stat
import time

from harness import make_msg, to_lf, check, dot_stuff, queue_id_of

SCRIPT = """#!/usr/bin/python3
import json, os, sys, time
d = os.path.dirname(os.path.abspath(sys.argv[0]))
data = sys.stdin.buffer.read()
try:
    with open(os.path.join(d, "exitcode")) as f:
        code = f.read().strip()
except FileNotFoundError:
    code = "0"
n = "%.6f-%d" % (time.time(), os.getpid())
with open(os.path.join(d, "run." + n + ".json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "stdin": data.decode("latin-1")}, f)
if code == "hang":
    time.sleep(60)
print("script says: code " + code)
sys.exit(int(code) if code != "hang" else 0)
"""


def owner():
    if os.geteuid() == 0:
        import harness
        return harness.TEST_MAIL_OWNER
    return pwd.getpwuid(os.getuid()).pw_name


def script_dir(d):
    """A directory the mail owner can write, holding the script."""
    p = os.path.join(d.root, "pipe")
    os.makedirs(p, exist_ok=True)
    os.chmod(p, 0o777)
    path = os.path.join(p, "rec.py")
    with open(path, "w") as f:
        f.write(SCRIPT)
    os.chmod(path, 0o755)
    return p


def set_exit(p, code):
    with open(os.path.join(p, "exitcode"), "w") as f:
        f.write(code)
    os.chmod(os.path.join(p, "exitcode"), 0o644)


def runs(p):
    out = []
    for n in sorted(os.listdir(p)):
        if n.startswith("run.") and n.endswith(".json"):
            with open(os.path.join(p, n)) as f:
                out.append(json.load(f))
    return out


def wait_runs(p, n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = runs(p)
        if len(r) >= n:
            return r
        time.sleep(0.05)
    raise AssertionError("%d pipe run(s), expected %d" % (len(runs(p)), n))


ARGV = ("-f ${sender} -d ${recipient} -u ${user} -e ${extension} "
        "-D ${domain} -n ${nexthop} -s ${size} -q ${queue_id} "
        "-o ${original_recipient} -c ${client_address}")


def pipe_daemon(facteurd, flags="DROF.", argv=ARGV, extra_main=None,
                extra_master=""):
    d = facteurd(start=False)
    p = script_dir(d)
    d.master_cf += ("rec unix - n n - - pipe\n"
                    "  flags=%s user=%s argv=%s/rec.py %s\n"
                    % (flags, owner(), p, argv)) + extra_master
    d.params["transport_maps"] = d.table("transport",
                                         "example.net rec:\n"
                                         "nowhere.example nosuch:\n")
    d.params["rec_time_limit"] = "3s"
    d.params["minimal_backoff_time"] = "1s"
    d.params["maximal_backoff_time"] = "1s"
    d.params["queue_run_delay"] = "1s"
    d.params.update(extra_main or {})
    d.write_config()
    d.start()
    return d, p


def test_pipe_macros_and_flags(facteurd):
    d, p = pipe_daemon(facteurd)
    body = (b"Line one.\r\n.starts with a dot\r\nFrom here on\r\n"
            b"..two dots\r\n")
    msg = make_msg("pipe-flags", body=body, to="alice+tag@example.net")
    qid = d.send("sender@example.net", "Alice+Tag@example.net", msg)
    r = wait_runs(p, 1)[0]
    d.wait_log(r"%s: to=<[Aa]lice\+[Tt]ag@example\.net>, relay=rec, "
               r"delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent "
               r"\(delivered via rec service\)" % qid)
    a = r["argv"]
    opts = dict(zip(a[0::2], a[1::2]))
    rcpt = opts["-d"]
    assert rcpt.lower() == "alice+tag@example.net", a
    assert opts["-f"] == "sender@example.net"
    assert opts["-u"] == "alice", a          # ${user}: folded, no extension
    assert opts["-e"] == rcpt.split("@")[0].split("+")[1], a
    assert opts["-D"] == "example.net"
    assert opts["-n"] == "example.net"        # transport_maps names none
    assert opts["-q"] == qid
    assert opts["-o"].lower() == "alice+tag@example.net"
    assert opts["-c"] == "127.0.0.1"
    stdin = r["stdin"].encode("latin-1")
    lines = stdin.split(b"\n")
    # F: the From_ line, then R, O, D in Postfix's order
    assert re.match(rb"^From sender@example\.net  \w{3} \w{3} [ \d]\d "
                    rb"\d\d:\d\d:\d\d \d{4}$", lines[0]), lines[0]
    assert lines[1] == b"Return-Path: <sender@example.net>"
    assert lines[2].lower() == b"x-original-to: alice+tag@example.net"
    assert lines[3] == b"Delivered-To: alice+tag@example.net"
    rest = b"\n".join(lines[4:])
    # "." dot-stuffing; LF line ends (eol default); the message itself
    # follows our Received: header byte for byte
    want = to_lf(msg).replace(b"\n.", b"\n..")
    assert rest.startswith(b"Received: "), rest[:200]
    assert rest.endswith(want), (rest, want)
    # ${size}: the queued message (Received: header included)
    content = rest.replace(b"\n..", b"\n.")
    assert int(opts["-s"]) == len(content), (opts["-s"], len(content))


def test_pipe_tempfail_then_sent(facteurd):
    d, p = pipe_daemon(facteurd, flags="R")
    set_exit(p, "75")
    msg = make_msg("pipe-75", to="bob@example.net")
    qid = d.send("sender@example.net", "bob@example.net", msg)
    d.wait_log(r"%s: to=<bob@example\.net>, relay=rec, .*dsn=4\.3\.0, "
               r"status=deferred \(Command died with status 75: \"[^\"]*"
               r"rec\.py\" \(temporary failure\)\. Command output: script "
               r"says: code 75\)" % qid)
    assert d.queue_files(("deferred", "active")), "not queued any more"
    set_exit(p, "0")
    d.wait_log(r"%s: to=<bob@example\.net>, relay=rec, .*status=sent "
               r"\(delivered via rec service\)" % qid)
    assert not d.wait_queue_empty(), "still queued"
    r = runs(p)
    assert len(r) >= 2
    assert r[-1]["stdin"].encode("latin-1").endswith(to_lf(msg))


def test_pipe_nouser_bounces(facteurd):
    import email
    d, p = pipe_daemon(facteurd)
    set_exit(p, "67")
    msg = make_msg("pipe-67", sender="alice@example.test",
                   to="nobody@example.net")
    qid = d.send("alice@example.test", "nobody@example.net", msg)
    d.wait_log(r"%s: to=<nobody@example\.net>, relay=rec, .*dsn=5\.1\.1, "
               r"status=bounced \(Command died with status 67: .*user "
               r"unknown" % qid)
    d.wait_files("alice@example.test", 1)
    dsn = email.message_from_bytes(d.delivered("alice@example.test")[0].raw)
    text = dsn.as_string()
    assert re.search(r"Status: 5\.1\.1", text), text
    assert re.search(r"Final-Recipient: rfc822; ?nobody@example\.net", text), text
    assert "script says: code 67" in text


def test_pipe_time_limit(facteurd):
    d, p = pipe_daemon(facteurd)
    set_exit(p, "hang")
    msg = make_msg("pipe-hang", to="carol@example.net")
    t0 = time.time()
    qid = d.send("sender@example.net", "carol@example.net", msg)
    d.wait_log(r"%s: to=<carol@example\.net>, relay=rec, .*status=deferred "
               r"\(Command time limit exceeded: \"[^\"]*rec\.py\"\)" % qid,
               timeout=20)
    assert time.time() - t0 < 15
    set_exit(p, "0")
    d.wait_log(r"%s: to=<carol@example\.net>, relay=rec, .*status=sent" % qid)


def test_pipe_one_run_for_several_recipients(facteurd):
    d, p = pipe_daemon(facteurd, flags="R", argv="${sender} ${nexthop}")
    msg = make_msg("pipe-multi", to="x@example.net")
    qid = d.send("sender@example.net", ["x@example.net", "y@example.net"], msg)
    d.wait_log(r"%s: to=<y@example\.net>, relay=rec, .*status=sent" % qid)
    d.wait_log(r"%s: to=<x@example\.net>, relay=rec, .*status=sent" % qid)
    r = runs(p)
    assert len(r) == 1, r
    assert r[0]["argv"] == ["sender@example.net", "example.net"]


def test_pipe_destination_recipient_limit(facteurd):
    """rec_destination_recipient_limit = 1 (Postfix's dovecot setting):
    one run per recipient even without ${recipient} on the command line."""
    d, p = pipe_daemon(facteurd, flags="R", argv="${sender}",
                       extra_main={"rec_destination_recipient_limit": "1"})
    msg = make_msg("pipe-limit", to="x@example.net")
    qid = d.send("sender@example.net", ["x@example.net", "y@example.net"], msg)
    d.wait_log(r"%s: to=<y@example\.net>, relay=rec, .*status=sent" % qid)
    d.wait_log(r"%s: to=<x@example\.net>, relay=rec, .*status=sent" % qid)
    assert len(runs(p)) == 2


def test_pipe_unknown_transport_defers(facteurd):
    d, p = pipe_daemon(facteurd)
    msg = make_msg("no-such-transport", to="z@nowhere.example")
    qid = d.send("sender@example.net", "z@nowhere.example", msg)
    d.wait_log(r"%s: to=<z@nowhere\.example>: transport_maps names "
               r"transport \"nosuch\", which is neither built in nor "
               r"defined in master\.cf" % qid)
    d.wait_log(r"%s: to=<z@nowhere\.example>, .*dsn=4\.3\.5, status=deferred "
               r"\(mail transport unavailable: transport \"nosuch\"" % qid)


def test_pipe_config_errors(facteurd):
    d = facteurd(start=False)
    d.params["default_transport"] = "nosuch:"
    d.write_config()
    text = d.start_fails(r"main\.cf, line \d+: default_transport: unknown "
                         r"transport \"nosuch\"")
    r = d.cli("check")
    assert r.returncode != 0
    assert re.search(rb"main\.cf, line \d+: default_transport: unknown "
                     rb"transport \"nosuch\"", r.stdout + r.stderr), (
                         r.stdout + r.stderr)
    del text

    # an unusable pipe service that main.cf names stops the start
    d2 = facteurd(start=False)
    d2.master_cf += ("other unix - n n - - pipe user=root "
                     "argv=/bin/cat\n")
    d2.params["default_transport"] = "other"
    d2.write_config()
    d2.start_fails(r"master\.cf, line 2: service \"other\" \(pipe\): "
                   r"user=root: facteur runs pipe commands as the mail "
                   r"owner only .*\(named by default_transport\)")
    r = d2.cli("check")
    assert r.returncode != 0
    assert b"facteur runs pipe commands as the mail owner only" in (
        r.stdout + r.stderr), r.stdout + r.stderr


def test_pipe_unusable_service_unnamed(facteurd):
    """Postfix's stock pipe lines that nothing names (uucp with user=uucp
    and a bare command) do not stop the start: a warning, and mail that
    transport_maps routes there is deferred with the reason."""
    d = facteurd(start=False)
    d.master_cf += (
        "other unix - n n - - pipe user=root argv=/bin/cat\n"
        "uucp unix - n n - - pipe\n"
        "  flags=Fqhu user=uucp argv=uux -r -n -z -a$sender - "
        "$nexthop!rmail ($recipient)\n"
        "ifmail unix - n n - - pipe\n"
        "  flags=F user=ftn argv=/usr/lib/ifmail/ifmail -r $nexthop "
        "($recipient)\n")
    d.params["transport_maps"] = d.table("transport", "example.net other:\n")
    d.write_config()
    d.start()
    d.wait_log(r"master\.cf, line 2: service \"other\" \(pipe\): user=root: "
               r"facteur runs pipe commands as the mail owner only.*; mail "
               r"routed to it is deferred")
    qid = d.send("sender@example.net", "u@example.net",
                 make_msg("unusable", to="u@example.net"))
    d.wait_log(r"%s: to=<u@example\.net>, relay=other, .*dsn=4\.3\.5, "
               r"status=deferred \(mail transport unavailable: \S*master\.cf, "
               r"line 2: service \"other\" \(pipe\): user=root" % qid)


def test_pipe_named_smtp_transport_with_overrides(facteurd):
    """A master.cf smtp service named in transport_maps: delivered by the
    SMTP client to the next hop, the service's maxproc honoured."""
    from capture import Capture
    cap = Capture()
    try:
        d = facteurd(start=False)
        d.master_cf += ("relay2 unix - - n - 1 smtp\n"
                        "  -o syslog_name=postfix/$service_name\n"
                        "  -o smtp_data_done_timeout=1200\n"
                        "  -o smtp_send_xforward_command=yes\n")
        d.params["transport_maps"] = d.table(
            "transport", "example.net relay2:[127.0.0.1]:%d\n" % cap.port)
        d.write_config()
        d.start()
        msg = make_msg("named-smtp", to="a@example.net")
        qid = d.send("sender@example.net", "a@example.net", msg)
        cap.wait_messages(1)
        assert len(cap.messages) == 1
        assert cap.messages[0][1] == ["a@example.net"]
        # -o syslog_name=postfix/$service_name names its log lines
        d.wait_log(r" postfix/relay2/smtp\[\d+\]: %s: to=<a@example\.net>, "
                   r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*status=sent"
                   % (qid, cap.port))
    finally:
        cap.close()


unused = (check, dot_stuff, queue_id_of, stat)


LDA = "/usr/lib/dovecot/dovecot-lda"


def test_pipe_dovecot_lda(facteurd):
    """The real Dovecot LDA behind a pipe service, as hosting set-ups run
    it (flags=DRhu, -f ${sender}; -a ${recipient} with a fixed Maildir:
    -d would need Dovecot's auth server), unprivileged as the mail owner."""
    assert os.access(LDA, os.X_OK), "%s missing: run `make test-deps`" % LDA
    d = facteurd(start=False)
    lda = os.path.join(d.root, "lda")
    os.makedirs(os.path.join(lda, "mail"))
    for sub in ("", "mail"):
        os.chmod(os.path.join(lda, sub), 0o777)
    conf = os.path.join(lda, "dovecot.conf")
    with open(conf, "w") as f:
        f.write("base_dir = {d}/run\nstate_dir = {d}/state\n"
                "log_path = {d}/lda.log\ninfo_log_path = {d}/lda.log\n"
                "ssl = no\nfirst_valid_uid = 1\n"
                "postmaster_address = postmaster@example.test\n"
                "mail_location = maildir:{d}/mail/Maildir\n".format(d=lda))
    os.chmod(conf, 0o644)
    d.master_cf += ("dovecot unix - n n - - pipe\n"
                    "  -o syslog_name=postfix/dovecot\n"
                    "  flags=DRhu user=%s argv=%s -c %s -f ${sender} "
                    "-a ${recipient}\n" % (owner(), LDA, conf))
    d.params["transport_maps"] = d.table("transport", "example.net dovecot:\n")
    d.write_config()
    d.start()
    msg = make_msg("via-lda", to="dora@example.net")
    qid = d.send("sender@example.net", "Dora@Example.NET", msg)
    d.wait_log(r" postfix/dovecot/pipe\[\d+\]: %s: to=<Dora@example\.net>, "
               r"relay=dovecot, .*dsn=2\.0\.0, "
               r"status=sent \(delivered via dovecot service\)" % qid)
    new = os.path.join(lda, "mail", "Maildir", "new")
    files = os.listdir(new)
    assert len(files) == 1, files
    with open(os.path.join(new, files[0]), "rb") as f:
        data = f.read()
    assert data.endswith(to_lf(msg)), data
    # D: Delivered-To in lower case; h folds the domain on the command line
    assert b"Delivered-To: dora@example.net\n" in data, data[:400]
    assert b"Return-Path: <sender@example.net>\n" in data, data[:400]


def test_sender_dependent_transport_and_relayhost(facteurd):
    """sender_dependent_default_transport_maps (sender, then @domain, then
    <> for the null sender) picks the rec pipe service for mail to remote
    domains; sender_dependent_relayhost_maps sends another sender's mail
    to its own relay; transport_maps still wins over both."""
    from capture import Capture
    cap = Capture()
    try:
        d = facteurd(start=False)
        p = script_dir(d)
        d.master_cf += ("rec unix - n n - - pipe\n"
                        "  flags=R user=%s argv=%s/rec.py ${sender} "
                        "${nexthop} ${recipient}\n" % (owner(), p))
        d.params["transport_maps"] = d.table(
            "transport", "forced.example smtp:[127.0.0.1]:%d\n" % cap.port)
        d.params["sender_dependent_default_transport_maps"] = d.table(
            "sdt", "special@example.net rec:\n@pipe.example rec:\n<> rec:\n")
        d.params["sender_dependent_relayhost_maps"] = d.table(
            "sdr", "other@example.net [127.0.0.1]:%d\n" % cap.port)
        d.write_config()
        d.start()
        d.send("special@example.net", "a@far.example",
               make_msg("sdt1", to="a@far.example"))
        d.send("anyone@pipe.example", "b@far.example",
               make_msg("sdt2", to="b@far.example"))
        with d.session() as c:
            check(c.cmd("MAIL FROM:<>"), 250)
            check(c.cmd("RCPT TO:<c@far.example>"), 250)
            check(c.cmd("DATA"), 354)
            c.send(dot_stuff(make_msg("sdt3", to="c@far.example")))
            check(c.reply(), 250)
        r = wait_runs(p, 3)
        got = sorted(tuple(x["argv"]) for x in r)
        assert got == [("", "far.example", "c@far.example"),
                       ("anyone@pipe.example", "far.example", "b@far.example"),
                       ("special@example.net", "far.example",
                        "a@far.example")], got
        qid = d.send("other@example.net", "d@far.example",
                     make_msg("sdr", to="d@far.example"))
        # transport_maps is searched first, whatever the sender
        d.send("special@example.net", "e@forced.example",
               make_msg("forced", to="e@forced.example"))
        cap.wait_messages(2)
        assert sorted(m[1][0] for m in cap.messages) == [
            "d@far.example", "e@forced.example"]
        d.wait_log(r"%s: to=<d@far\.example>, relay=127\.0\.0\.1\[127\.0\.0"
                   r"\.1\]:%d, .*status=sent" % (qid, cap.port))
        assert len(runs(p)) == 3
    finally:
        cap.close()


def test_pipe_service_changes_on_reload(facteurd):
    """A reload applies a changed pipe service (its argv) to the next
    deliveries; the built-in and master.cf names keep resolving."""
    import signal
    d, p = pipe_daemon(facteurd, flags="R", argv="first ${recipient}")
    qid = d.send("sender@example.net", "r1@example.net",
                 make_msg("reload-1", to="r1@example.net"))
    d.wait_log(r"%s: to=<r1@example\.net>, relay=rec, .*status=sent" % qid)
    d.master_cf = d.master_cf.replace("first ${recipient}",
                                      "second ${recipient}")
    d.write_config()
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log(r"reload -- configuration ")
    qid = d.send("sender@example.net", "r2@example.net",
                 make_msg("reload-2", to="r2@example.net"))
    d.wait_log(r"%s: to=<r2@example\.net>, relay=rec, .*status=sent" % qid)
    got = sorted(tuple(r["argv"]) for r in runs(p))
    assert got == [("first", "r1@example.net"),
                   ("second", "r2@example.net")], got


def test_named_lmtp_service_timeout(facteurd):
    """An lmtp master.cf service with -o lmtp_data_done_timeout=2s: an
    LMTP server that never answers the end of data is given up after 2
    seconds (main.cf keeps the default)."""
    from capture import Capture
    cap = Capture(lmtp=True)
    cap.stall_after_data = True
    try:
        d = facteurd(start=False)
        d.master_cf += ("mylmtp unix - - n - - lmtp\n"
                        "  -o lmtp_data_done_timeout=2s\n")
        d.params["transport_maps"] = d.table(
            "transport", "example.net mylmtp:[127.0.0.1]:%d\n" % cap.port)
        d.write_config()
        d.start()
        t0 = time.time()
        qid = d.send("sender@example.net", "l@example.net",
                     make_msg("lmtp-slow", to="l@example.net"))
        d.wait_log(r"%s: to=<l@example\.net>, relay=127\.0\.0\.1\[127\.0\.0"
                   r"\.1\]:%d, .*status=deferred .*timed out"
                   % (qid, cap.port), timeout=15)
        assert time.time() - t0 < 10
    finally:
        cap.close()


def test_pipe_recipient_limit_expands_recipients(facteurd):
    """rec_destination_recipient_limit = 2 with ${recipient}: one run per
    two recipients, ${recipient} one argument each (pipe(8))."""
    d, p = pipe_daemon(facteurd, flags="R", argv="${sender} ${recipient}",
                       extra_main={"rec_destination_recipient_limit": "2"})
    msg = make_msg("pipe-expand", to="x@example.net")
    qid = d.send("sender@example.net",
                 ["x@example.net", "y@example.net", "z@example.net"], msg)
    for u in "xyz":
        d.wait_log(r"%s: to=<%s@example\.net>, relay=rec, .*status=sent"
                   % (qid, u))
    got = sorted(r["argv"] for r in runs(p))
    assert got == [["sender@example.net", "x@example.net", "y@example.net"],
                   ["sender@example.net", "z@example.net"]], got


def test_pipe_success_dsn_action(facteurd):
    """NOTIFY=SUCCESS: a pipe service reports "relayed", one with flag X
    (final delivery) "delivered", as pipe(8)."""
    import email
    d = facteurd(start=False)
    p = script_dir(d)
    d.master_cf += ("rec unix - n n - - pipe flags=R user=%s argv=%s/rec.py\n"
                    "fin unix - n n - - pipe flags=RX user=%s argv=%s/rec.py\n"
                    % (owner(), p, owner(), p))
    d.params["transport_maps"] = d.table(
        "transport", "example.net rec:\nfinal.example fin:\n")
    d.write_config()
    d.start()
    with d.session() as c:
        check(c.cmd("MAIL FROM:<alice@example.test>"), 250)
        check(c.cmd("RCPT TO:<a@example.net> NOTIFY=SUCCESS"), 250)
        check(c.cmd("RCPT TO:<b@final.example> NOTIFY=SUCCESS"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("dsn-action", sender="alice@example.test",
                                  to="a@example.net")))
        check(c.reply(), 250)
    d.wait_files("alice@example.test", 1)
    text = email.message_from_bytes(
        d.delivered("alice@example.test")[0].raw).as_string()
    actions = dict(re.findall(r"Final-Recipient: rfc822; ?(\S+)\s+"
                              r"(?:Original-Recipient: [^\n]*\s+)?"
                              r"Action: (\w+)", text))
    assert actions == {"a@example.net": "relayed",
                       "b@final.example": "delivered"}, text
