"""
test_reload.py - hot reload (SIGHUP, `facteur reload`): parameters, maps
and listeners change without closing the listening socket or dropping a
session in progress; a broken main.cf is refused with the reason logged
and the old configuration keeps serving; ten reloads under smtp-source
load lose no transaction.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness import check, dot_stuff, make_msg, maildir_files
from test_tls import cert  # noqa: F401 (fixture)
from test_tls_sni import sni_files  # noqa: F401 (fixture)


def smtp_source():
    p = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not os.access(p, os.X_OK):
        pytest.fail("smtp-source (Debian package postfix) is missing",
                    pytrace=False)
    return p


def reload_cli(d):
    r = d.cli("reload")
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def test_reload_applies_parameters_and_maps(facteurd):
    d = facteurd(main_cf={"smtpd_banner": "$myhostname ESMTP before"})
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP before")
    # A session that is open across the reload.
    old = d.session()
    check(old.cmd("MAIL FROM:<early@example.net>"), 250)

    newmap = os.path.join(d.confdir, "vmailbox2")
    with open(newmap, "w") as f:
        f.write("newbie@example.test example.test/newbie/\n"
                "alice@example.test example.test/alice/\n")
    d.params["smtpd_banner"] = "$myhostname ESMTP after"
    d.params["virtual_mailbox_maps"] = "texthash:" + newmap
    d.write_config()
    # Before the reload, the old settings serve.
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP before")
    rc, out = reload_cli(d)
    assert rc == 0, out
    assert "reloaded" in out
    d.wait_log(r"facteur/master\[\d+\]: reload -- configuration ")

    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP after")
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<s@example.net>"), 250)
        check(c.cmd("RCPT TO:<newbie@example.test>"), 250)
        check(c.cmd("RCPT TO:<bob@example.test>"), 550)   # not in the new map
        check(c.cmd("QUIT"), 221)

    # The session opened before the reload completes, on its old settings
    # (bob was a mailbox then).
    check(old.cmd("RCPT TO:<bob@example.test>"), 250)
    check(old.cmd("DATA"), 354)
    old.send(dot_stuff(make_msg("across reload", to="bob@example.test")))
    check(old.reply(), 250, "2.0.0", "queued as")
    check(old.cmd("QUIT"), 221)
    old.close()
    d.wait_files("bob@example.test", 1)

    # The new configuration delivers too.
    d.send("s@example.net", "newbie@example.test", make_msg("to newbie"))
    d.wait_files("newbie@example.test", 1)
    # Once idle, the queue manager and local submission run on the new
    # configuration and the old one is gone.
    deadline = time.time() + 10
    while "configurations_in_use" in d.cli("status").stdout.decode() and \
            time.time() < deadline:
        time.sleep(0.1)
    st = d.cli("status").stdout.decode()
    assert "configurations_in_use" not in st, st
    assert "listeners_finishing_after_reload" not in st, st
    d.send("s@example.net", "newbie@example.test", make_msg("again"))
    d.wait_files("newbie@example.test", 2)


def _sockets(pid):
    """The socket inodes a process holds ("socket:[N]")."""
    fds, out = "/proc/%d/fd" % pid, set()
    for n in os.listdir(fds):
        try:
            link = os.readlink(os.path.join(fds, n))
        except OSError:
            continue        # closed meanwhile (a session ending)
        if link.startswith("socket:"):
            out.add(link)
    return out


def test_sighup_reloads_and_keeps_listening_socket(facteurd):
    d = facteurd()
    socks = _sockets(d.pid)
    d.params["smtpd_banner"] = "$myhostname ESMTP hup"
    d.write_config()
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log(r"reload -- configuration ")
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP hup")
    # The listening socket is the same file (not closed and bound again).
    after = _sockets(d.pid)
    listen_inodes = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A" and int(f[1].split(":")[1], 16) == d.port:
            listen_inodes.add("socket:[%s]" % f[9])
    assert listen_inodes, "no listening socket on port %d" % d.port
    assert listen_inodes <= socks and listen_inodes <= after, (
        "the listening socket changed across the reload")


def test_broken_config_is_refused_and_old_one_serves(facteurd):
    d = facteurd(main_cf={"smtpd_banner": "$myhostname ESMTP good"})
    good = open(os.path.join(d.confdir, "main.cf")).read()
    with open(os.path.join(d.confdir, "main.cf"), "w") as f:
        f.write(good + "message_size_limit = 10x\n")
    rc, out = reload_cli(d)
    assert rc == 1, out
    assert "message_size_limit" in out
    m = d.wait_log(r"facteur/master\[\d+\]: warning: reload refused: "
                   r"(\S+main\.cf), line (\d+): .*message_size_limit.*"
                   r"the running configuration is kept")
    assert m.group(1).endswith("main.cf")
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP good")
    d.send("s@example.net", "alice@example.test", make_msg("still serving"))
    d.wait_files("alice@example.test", 1)

    # A map that cannot be opened is refused too (by SIGHUP: logged).
    with open(os.path.join(d.confdir, "main.cf"), "w") as f:
        f.write(good + "virtual_alias_maps = nosuchtype:/x\n")
    os.kill(d.pid, signal.SIGHUP)
    d.wait_log(r"reload refused: .*nosuchtype")
    # A master.cf error as well.
    with open(os.path.join(d.confdir, "main.cf"), "w") as f:
        f.write(good)
    with open(os.path.join(d.confdir, "master.cf"), "a") as f:
        f.write("submission inet n - n - - smtpd -o\n")
    rc, out = reload_cli(d)
    assert rc == 1, out
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP good")
    # Fixed: the next reload goes through.
    d.write_config()
    d.params["smtpd_banner"] = "$myhostname ESMTP fixed"
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP fixed")
    r = d.cli("status")
    assert re.search(r"^reloads: 1 \(failed: 3,", r.stdout.decode(), re.M), \
        r.stdout.decode()


def test_new_listener_on_reload_and_removed_one(facteurd):
    from harness import free_port
    d = facteurd()
    port2 = free_port()
    d.master_cf += "127.0.0.1:%d inet n - n - - smtpd -o smtpd_banner=second\n" % port2
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    with d.connect(banner=False, port=port2) as c:
        check(c.reply(), 220, text="second")
    # A new address on a port below 1024: facteurd runs as the mail owner
    # by now, so it says a restart is needed and serves the rest.
    low = None
    try:
        unpriv = int(open("/proc/sys/net/ipv4/ip_unprivileged_port_start")
                     .read())
    except (OSError, ValueError):
        unpriv = 1024
    if os.geteuid() == 0 and unpriv > 100:
        low = 99
        d.master_cf += "127.0.0.1:%d inet n - n - - smtpd\n" % low
        d.write_config()
        rc, out = reload_cli(d)
        assert rc == 0, out
        d.wait_log(r"warning: reload: .*127\.0\.0\.1:%d.*not listening "
                   r"there until facteurd restarts" % low)
        with d.connect(banner=False, port=port2) as c:
            check(c.reply(), 220, text="second")
    # Removed again: its socket closes, the first one stays.
    d.master_cf = d.master_cf.split("\n")[0] + "\n"
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    with pytest.raises(OSError):
        d.connect(banner=False, port=port2)
    with d.connect(banner=False) as c:
        check(c.reply(), 220)


def test_reload_under_load_loses_nothing(facteurd):
    d = facteurd(main_cf={"smtpd_banner": "$myhostname ESMTP load"})
    msgs = 6000  # enough load to outlast ten paced reloads on a fast machine
    out = open(os.path.join(d.root, "smtp-source.out"), "wb")
    p = subprocess.Popen([smtp_source(), "-s", "5", "-m", str(msgs), "-l",
                          "2000", "-f", "load@example.net", "-t",
                          "alice@example.test", "127.0.0.1:%d" % d.port],
                         stdout=out, stderr=subprocess.STDOUT)
    try:
        sent = 0
        # Ten reloads while the load runs (the config alternates a
        # parameter, so each reload really builds new listeners).
        time.sleep(0.2)
        for i in range(10):
            time.sleep(0.05)
            d.params["smtpd_banner"] = "$myhostname ESMTP load %d" % i
            d.write_config()
            os.kill(d.pid, signal.SIGHUP)
            sent += 1
        # The reloads happened while the load ran (else make it longer).
        still_running = p.poll() is None
        rc = p.wait(120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        out.close()
    text = open(os.path.join(d.root, "smtp-source.out"), "rb").read().decode(
        "utf-8", "replace")
    assert rc == 0, "smtp-source failed (%s):\n%s" % (rc, text[-3000:])
    assert still_running, "smtp-source ended before the tenth reload"
    assert "fatal" not in text and "error" not in text.lower(), text[-3000:]
    deadline = time.time() + 30
    while d.log().count("reload -- configuration") < sent and \
            time.time() < deadline:
        time.sleep(0.1)
    deadline = time.time() + 60
    while time.time() < deadline:
        n = len(maildir_files(d.mail, "alice@example.test"))
        if n >= msgs:
            break
        time.sleep(0.1)
    assert n == msgs, "%d of %d messages delivered\n%s" % (n, msgs,
                                                          d.diagnostics())
    logtext = d.log()
    assert logtext.count("reload -- configuration") == sent
    assert "reload refused" not in logtext
    # Every transaction succeeded: as many "queued" as messages, no 4xx.
    assert len(re.findall(r"status=sent", logtext)) == msgs
    assert not re.search(r"reject:|lost connection|too many", logtext), \
        [l for l in logtext.splitlines()
         if re.search(r"reject:|lost connection|too many", l)][:5]
    # Old listeners were freed with their last sessions.
    st = d.cli("status").stdout.decode()
    assert "listeners_finishing_after_reload" not in st, st
    assert "configurations_in_use" not in st, st


def _make_cert(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=%s.reload.test" % name], check=True,
                   capture_output=True, timeout=60)
    return open(key).read(), open(crt).read()


def _presented_cert(d):
    import ssl
    from harness import SMTPConn
    c = d.session()
    check(c.cmd("STARTTLS"), 220)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(c.sock)
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def test_reload_certificates(facteurd, tmp_path):
    import ssl
    gen = str(tmp_path / "gen")
    os.makedirs(gen)
    a_key, a_crt = _make_cert(gen, "a")
    b_key, b_crt = _make_cert(gen, "b")
    d = facteurd(start=False)
    # Under the daemon's root: the mail owner can reach it (pytest's
    # tmp_path is root's only).
    certdir = os.path.join(d.root, "certs")
    os.makedirs(certdir)
    os.chmod(certdir, 0o755)
    key, crt = os.path.join(certdir, "key.pem"), os.path.join(certdir, "cert.pem")

    def install(k, c, key_mode=0o644):
        with open(key, "w") as f:
            f.write(k)
        os.chmod(key, key_mode)
        with open(crt, "w") as f:
            f.write(c)
        os.chmod(crt, 0o644)

    install(a_key, a_crt)
    d.params.update({"smtpd_tls_cert_file": crt, "smtpd_tls_key_file": key,
                     "smtpd_tls_security_level": "may"})
    d.write_config()
    d.start()
    der_a = ssl.PEM_cert_to_DER_cert(a_crt)
    der_b = ssl.PEM_cert_to_DER_cert(b_crt)
    assert _presented_cert(d) == der_a
    early = d.session()             # STARTTLS only after the reload

    install(b_key, b_crt)
    rc, out = reload_cli(d)
    assert rc == 0, out
    assert _presented_cert(d) == der_b
    # The session opened before the reload keeps its listener's context.
    check(early.cmd("STARTTLS"), 220)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(early.sock)
    assert s.getpeercert(binary_form=True) == der_a
    s.close()

    # A key only root can read (facteurd runs as mail_owner now): the
    # reload goes through, the certificate loaded before stays, with a
    # warning.
    if os.geteuid() == 0:
        install(a_key, a_crt, key_mode=0o600)
        rc, out = reload_cli(d)
        assert rc == 0, out
        d.wait_log(r"warning: .*reload: .*keeping the certificate and key "
                   r"loaded before")
        assert _presented_cert(d) == der_b
        # Readable again: the new one is loaded.
        os.chmod(key, 0o644)
        rc, out = reload_cli(d)
        assert rc == 0, out
        assert _presented_cert(d) == der_a
    # A certificate that does not match its key is a refused reload.
    install(b_key, a_crt)
    rc, out = reload_cli(d)
    assert rc == 1, out
    d.wait_log(r"reload refused: ")


def test_reload_keeps_a_root_only_passdb(facteurd, tmp_path):
    import base64
    if os.geteuid() != 0:
        pytest.skip("needs root (the file must be unreadable to mail_owner)")
    d = facteurd(start=False)
    users = os.path.join(d.root, "users")
    with open(users, "w") as f:
        f.write("ann@example.test:{PLAIN}secret1::::::\n")
    os.chmod(users, 0o600)          # root's only, as Dovecot's often is
    d.params.update({"smtpd_sasl_auth_enable": "yes",
                     "smtpd_sasl_passdb": "passwd-file:" + users})
    d.write_config()
    d.start()

    def auth_ok():
        with d.session() as c:
            tok = base64.b64encode(b"\0ann@example.test\0secret1").decode()
            return c.cmd("AUTH PLAIN " + tok).code == 235

    assert auth_ok()
    d.params["smtpd_banner"] = "$myhostname ESMTP pass"
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    d.wait_log(r"warning: .*reload: .*keeping the password database opened "
               r"before")
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP pass")
    assert auth_ok()
    # A passdb that is readable but wrong is refused.
    d.params["smtpd_sasl_passdb"] = "nosuchscheme:" + users
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 1, out
    assert auth_ok()


def test_reload_applies_delivery_settings(facteurd):
    # sieve_before is read by the delivery side (deliver_init), which
    # switches once the worker pool is idle after the reload.
    d = facteurd()
    d.send("s@example.net", "alice@example.test", make_msg("before"))
    d.wait_files("alice@example.test", 1)
    script = os.path.join(d.root, "before.sieve")
    with open(script, "w") as f:
        f.write('require "fileinto";\nfileinto "Reloaded";\n')
    os.chmod(script, 0o644)
    d.params["sieve_before"] = script
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    d.send("s@example.net", "alice@example.test", make_msg("after"))
    folder = os.path.join(d.mail, "example.test", "alice", ".Reloaded", "new")
    deadline = time.time() + 15
    while time.time() < deadline and not (os.path.isdir(folder) and
                                           os.listdir(folder)):
        time.sleep(0.05)
    assert os.path.isdir(folder) and len(os.listdir(folder)) == 1, \
        d.diagnostics()
    assert len(d.files("alice@example.test")) == 1   # INBOX: the first one


def test_reload_managesieve_listener(facteurd, cert):   # noqa: F811
    from test_managesieve import Sieve, login, start
    d = start(facteurd, cert)
    a = login(d)                    # open across the reloads
    st, _ = a.cmd("LISTSCRIPTS")
    assert st.startswith("OK"), st
    st2 = d.cli("status").stdout.decode()
    assert re.search(r"^listener: 127\.0\.0\.1:%d addresses=127\.0\.0\.1:%d "
                     r"sessions=1 max=\d+ command=managesieved$"
                     % (d.sieve_port, d.sieve_port), st2, re.M), st2
    # Certificates where the mail owner can read them (the fixture's are
    # under root's pytest directory): the reload builds a new listener.
    import shutil
    for k in ("smtpd_tls_cert_file", "smtpd_tls_key_file"):
        dst = os.path.join(d.root, os.path.basename(d.params[k]))
        shutil.copy(d.params[k], dst)
        os.chmod(dst, 0o644)
        d.params[k] = dst
    d.params["smtpd_banner"] = "$myhostname ESMTP sieve-reload"
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    assert "keeps its previous settings" not in d.log(), d.log()[-2000:]
    b = login(d)                    # the new listener, same socket
    st, _ = b.cmd("LISTSCRIPTS")
    assert st.startswith("OK"), st
    b.cmd("LOGOUT")
    b.close()
    st, _ = a.cmd("LISTSCRIPTS")    # the old one still serves its session
    assert st.startswith("OK"), st
    # managesieved removed from master.cf: its port closes, the session
    # open on it finishes.
    d.master_cf = d.master_cf.split("\n")[0] + "\n"
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    with pytest.raises(OSError):
        Sieve(d.sieve_port)
    st, _ = a.cmd("LISTSCRIPTS")
    assert st.startswith("OK"), st
    a.cmd("LOGOUT")
    a.close()


def test_reload_switches_the_queue_manager(facteurd):
    # relayhost is the queue manager's: after the reload, mail goes to the
    # new one (the qmgr switches once idle; connection caching on).
    from capture import Capture
    a, b = Capture(), Capture()
    try:
        d = facteurd(main_cf={"relayhost": "[127.0.0.1]:%d" % a.port,
                              "facteur_dns_servers": "127.0.0.1:%d"
                              % __import__("harness").free_port(),
                              "smtp_connect_timeout": "5s"})
        d.send("s@example.net", "x@far.example", make_msg("to a",
                                                          to="x@far.example"))
        assert len(a.wait_messages(1)) == 1, d.diagnostics()
        d.params["relayhost"] = "[127.0.0.1]:%d" % b.port
        d.write_config()
        rc, out = reload_cli(d)
        assert rc == 0, out
        d.send("s@example.net", "y@far.example", make_msg("to b",
                                                          to="y@far.example"))
        got = b.wait_messages(1)
        assert len(got) == 1 and got[0][1] == ["y@far.example"], \
            d.diagnostics()
        assert len(a.messages) == 1
        d.wait_log(r"to=<y@far\.example>, relay=127\.0\.0\.1\[127\.0\.0\.1\]"
                   r":%d, .*status=sent" % b.port)
    finally:
        a.close()
        b.close()


def test_reload_keeps_root_only_sni_keys(facteurd, sni_files):
    # tls_server_sni_maps naming keys only root reads: the reload keeps
    # the contexts loaded at start (with a warning) instead of failing.
    from test_tls_sni import subject
    if os.geteuid() != 0:
        pytest.skip("needs root")
    d = facteurd(start=False)
    certdir = os.path.join(d.root, "certs")
    os.makedirs(certdir)
    os.chmod(certdir, 0o755)
    _make_cert(certdir, "default")
    key, crt = (os.path.join(certdir, "default.key"),
                os.path.join(certdir, "default.crt"))
    os.chmod(key, 0o644)
    d.params.update({"smtpd_tls_cert_file": crt, "smtpd_tls_key_file": key,
                     "smtpd_tls_security_level": "may",
                     "tls_server_sni_maps": "texthash:" + sni_files["map"]})
    d.write_config()
    d.start()
    assert subject(d.port, "mail.alpha.test") == "mail.alpha.test"
    rc, out = reload_cli(d)
    assert rc == 0, out
    d.wait_log(r"warning: .*reload: .*keeping the certificate and key "
               r"loaded before")
    assert subject(d.port, "mail.alpha.test") == "mail.alpha.test"
    assert subject(d.port, "other.test") == "default.reload.test"


def test_reload_and_stop_fall_back_to_signals(facteurd):
    # Without the control socket, facteur reload / stop signal the pid
    # of the locked pid file.
    d = facteurd()
    os.unlink(os.path.join(d.queue, "private", "control"))
    d.params["smtpd_banner"] = "$myhostname ESMTP by signal"
    d.write_config()
    rc, out = reload_cli(d)
    assert rc == 0, out
    assert "signal HUP sent to facteurd (pid %d)" % d.pid in out
    d.wait_log(r"reload -- configuration")
    with d.connect(banner=False) as c:
        check(c.reply(), 220, text="ESMTP by signal")
    r = d.cli("stop", timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"facteurd stopped" in r.stdout
    assert d.proc.wait(5) == 0
    d.expect_exit = True
    assert not os.path.exists(os.path.join(d.queue, "pid", "facteurd.pid"))
