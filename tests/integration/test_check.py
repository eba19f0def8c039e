"""
test_check.py - `facteur check` finds every configuration error facteurd
stops on at start-up (and refuses a reload for), in facteurd's own words
and with the file and line of the setting: the limit settings, SASL
mechanisms, the SMTP client's tables and TLS/bind settings, SNI maps,
managesieved, -o overrides in master.cf. For each bad value: facteurd
refuses to start, facteur check exits 1 with the same message, naming
the place; a good configuration passes; check changes nothing on disk.
Beyond facteurd's own refusals: an expired certificate is an error, one
that expires within 30 days a warning; the local submission socket path
and maillog_file's directory.
"""
import os
import re
import signal
import subprocess
import time

import pytest

from harness import SMTPConn, check as check_reply, free_port
from test_tls import cert, tls_cf  # noqa: F401


def out(r):
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def line_of(path, needle):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith(needle):
                return n
    raise AssertionError("%s not in %s" % (needle, path))


def daemon_fatal(d):
    """facteurd's refusal: starts it, expects exit != 0, returns the text
    of its fatal message."""
    p = d.spawn()
    rc = p.wait(15)
    d.expect_exit = True
    text = open(d.stderr_path).read()
    assert rc != 0, "facteurd started on a bad configuration\n" + text
    m = re.findall(r"fatal: (.*)", text)
    assert m, text
    return m[-1].strip()


def users(d):
    return d.table("users", "alice@example.test:{PLAIN}alice-pw\n",
                   "passwd-file")


def auth_cf(d, **extra):
    d.params.update({"smtpd_sasl_auth_enable": "yes",
                     "smtpd_sasl_passdb": users(d)})
    d.params.update(extra)
    d.write_config()


# name, value, extra main.cf; each one stops facteurd at start-up
CASES = [
    ("smtpd_client_event_limit_exceptions", "300.1.2.3/8", {}),
    ("smtpd_sasl_user_hold_threshold", "1x", {}),
    ("smtpd_sasl_user_hold_threshold", "lots", {}),
    ("smtpd_sasl_user_limit_maps", "nosuchtype:/x", {}),
    ("transport_maps", "nosuchtype:/x", {}),
    ("smtp_tls_policy_maps", "nosuchtype:/x", {}),
    ("smtp_sasl_password_maps", "nosuchtype:/x",
     {"smtp_sasl_auth_enable": "yes"}),
    ("smtp_bind_address", "not-an-address", {}),
    ("smtp_bind_address6", "192.0.2.1", {}),
    ("smtp_tls_protocols", "!SSLv2, TLSv9", {}),
    ("smtp_tls_mandatory_protocols", "bogus", {}),
    ("smtp_tls_security_level", "sometimes", {}),
    ("smtp_sasl_security_options", "noanonymous, nosuch", {}),
    ("facteur_dns_servers", "not an address", {}),
    ("facteur_metrics_listen", "localhost:9100", {}),
    ("syslog_facility", "local9", {}),
    ("smtpd_milters", "inet:127.0.0.1", {}),
    ("smtpd_milters", "{ inet:127.0.0.1:9, default_action=sometimes }", {}),
    ("non_smtpd_milters", "tcp:127.0.0.1:9", {}),
]


@pytest.mark.parametrize("name,value,extra", CASES,
                         ids=["%s=%s" % (c[0], c[1]) for c in CASES])
def test_startup_errors_are_check_errors(facteurd, name, value, extra):
    cf = {name: value}
    cf.update(extra)
    d = facteurd(start=False, main_cf=cf)
    n = line_of(os.path.join(d.confdir, "main.cf"), name + " ")
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert r.returncode == 1, out(r)
    assert name in fatal, fatal
    # the same words, with the place of the setting, from both
    assert re.match(r".*main\.cf, line %d: " % n, fatal), fatal
    assert "error: " + fatal in out(r), (fatal, out(r))


def test_sasl_mechanisms(facteurd):
    d = facteurd(start=False)
    auth_cf(d, smtpd_sasl_mechanisms="PLAIN NOSUCHMECH")
    n = line_of(os.path.join(d.confdir, "main.cf"), "smtpd_sasl_mechanisms")
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert "NOSUCHMECH" in fatal.upper(), fatal
    assert r.returncode == 1, out(r)
    assert re.match(r".*main\.cf, line %d: " % n, fatal), fatal
    assert "error: " + fatal in out(r), (fatal, out(r))


def test_passdb_that_cannot_open(facteurd):
    d = facteurd(start=False)
    auth_cf(d, smtpd_sasl_passdb="passwd-file:/nonexistent/users")
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert r.returncode == 1, out(r)
    assert fatal in out(r), (fatal, out(r))


def test_sni_map_entry(facteurd, cert, tmp_path):
    m = str(tmp_path / "sni")
    with open(m, "w") as f:
        f.write("x.test /nonexistent/key.pem\n")
    d = facteurd(start=False, main_cf=tls_cf(
        cert, tls_server_sni_maps="texthash:" + m))
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert "tls_server_sni_maps" in fatal, fatal
    assert r.returncode == 1, out(r)
    n = line_of(os.path.join(d.confdir, "main.cf"), "tls_server_sni_maps")
    assert re.match(r".*main\.cf, line %d: " % n, fatal), fatal
    assert "error: " + fatal in out(r), (fatal, out(r))


def test_key_that_does_not_match(facteurd, cert, tmp_path):
    other = str(tmp_path / "other.pem")
    os.system("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 "
              "-out %s 2>/dev/null" % other)
    d = facteurd(start=False, main_cf=tls_cf(cert, smtpd_tls_key_file=other))
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert r.returncode == 1, out(r)
    assert fatal in out(r), (fatal, out(r))


def test_override_in_master_cf_names_its_line(facteurd):
    port = free_port()
    d = facteurd(start=False, extra_master_cf=(
        "127.0.0.1:%d inet n - n - - smtpd\n"
        "  -o syslog_name=facteur/submission\n"
        "  -o smtpd_sasl_user_hold_threshold=0.5x\n" % port))
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert "smtpd_sasl_user_hold_threshold" in fatal, fatal
    assert r.returncode == 1, out(r)
    # the place of an -o override is its service's line
    n = line_of(os.path.join(d.confdir, "master.cf"),
                "127.0.0.1:%d " % port)
    assert re.match(r".*master\.cf, line %d: " % n, fatal), fatal
    assert "error: " + fatal in out(r), (fatal, out(r))


def test_mua_restrictions_are_used_through_overrides(facteurd):
    """mua_client_restrictions is Postfix's conventional name for a
    submission listener's -o value: no "ignored" notice, its restrictions
    apply on that listener, and a typo in it is caught there."""
    port = free_port()
    d = facteurd(start=False, main_cf={
        "mua_client_restrictions": "permit_sasl_authenticated, reject"},
        extra_master_cf=("127.0.0.1:%d inet n - n - - smtpd\n"
                         "  -o smtpd_client_restrictions="
                         "$mua_client_restrictions\n" % port))
    r = d.cli("check")
    assert r.returncode == 0, out(r)
    assert "mua_client_restrictions" not in out(r), out(r)
    d.start()
    with SMTPConn("127.0.0.1", port) as c:
        check_reply(c.reply(), 220)
        check_reply(c.cmd("EHLO client.test"), 250)
        check_reply(c.cmd("MAIL FROM:<a@example.net>"), 250)
        check_reply(c.cmd("RCPT TO:<alice@example.test>"), 554, "5.7.1")
    d2 = facteurd(start=False, main_cf={
        "mua_client_restrictions": "permit_sasl_authenticatd, reject"},
        extra_master_cf=("127.0.0.1:%d inet n - n - - smtpd\n"
                         "  -o smtpd_client_restrictions="
                         "$mua_client_restrictions\n" % free_port()))
    r = d2.cli("check")
    assert r.returncode == 1, out(r)
    assert "permit_sasl_authenticated" in out(r), out(r)   # the suggestion


def test_managesieved_without_passdb(facteurd):
    d = facteurd(start=False, extra_master_cf=(
        "127.0.0.1:%d inet n - n - - managesieved\n" % free_port()))
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert "managesieved needs smtpd_sasl_passdb" in fatal, fatal
    assert r.returncode == 1, out(r)
    assert fatal in out(r), out(r)


def test_no_smtpd_service(facteurd):
    d = facteurd(start=False, listen=False, extra_master_cf=(
        "pickup unix n - n 60 1 pickup\n"))
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert r.returncode == 1, out(r)
    assert fatal in out(r), out(r)


def test_quota_warning_facteurd_would_ignore(facteurd):
    d = facteurd(start=False, main_cf={
        "virtual_mailbox_quota_warning": "80, 150%, 95"})
    n = line_of(os.path.join(d.confdir, "main.cf"),
                "virtual_mailbox_quota_warning")
    r = d.cli("check")
    assert r.returncode == 1, out(r)
    assert re.search(r"main\.cf, line %d: virtual_mailbox_quota_warning: "
                     r"\"150%%\"" % n, out(r)), out(r)
    d.params["virtual_mailbox_quota_warning"] = "80%, 95"
    d.write_config()
    r = d.cli("check")
    assert r.returncode == 0, out(r)


def test_good_config_with_everything_passes_and_changes_nothing(
        facteurd, cert, tmp_path):
    d = facteurd(start=False, main_cf=tls_cf(cert), extra_master_cf=(
        "127.0.0.1:%d inet n - n - - smtpd\n"
        "  -o smtpd_tls_wrappermode=yes\n"
        "  -o smtpd_sasl_user_hold_threshold=3x\n"
        "127.0.0.1:%d inet n - n - - managesieved\n"
        % (free_port(), free_port())))
    auth_cf(d, smtpd_sasl_user_message_rate_limit="10",
            smtpd_client_event_limit_exceptions="127.0.0.0/8, [::1]",
            transport_maps=d.table("transport", "example.net smtp:[127.0.0.1]:26\n"),
            smtp_tls_policy_maps=d.table("tls_policy", "example.net may\n"),
            smtp_sasl_auth_enable="yes",
            smtp_sasl_password_maps=d.table("sasl_pw", "example.net u:p\n"),
            smtp_bind_address="127.0.0.1", smtp_bind_address6="::1",
            smtp_tls_protocols="!SSLv2, !SSLv3",
            smtp_tls_mandatory_protocols=">=TLSv1.2",
            virtual_mailbox_quota_warning="80 95%")
    before = sorted(os.listdir(d.root))
    r = d.cli("check")
    assert r.returncode == 0, out(r)
    assert "error" not in out(r).lower(), out(r)
    # nothing made: no queue directory, no socket, no cache
    assert sorted(os.listdir(d.root)) == before
    assert not os.path.exists(d.queue)
    # and facteurd starts on it
    d.start()


@pytest.mark.parametrize("where", ["master.cf", "inet_interfaces"])
def test_listen_address_that_does_not_resolve(facteurd, where):
    port = free_port()
    if where == "master.cf":
        d = facteurd(start=False, extra_master_cf=(
            "nosuch.invalid:%d inet n - n - - smtpd\n" % port))
    else:
        d = facteurd(start=False, main_cf={"inet_interfaces": "nosuch.invalid"},
                     extra_master_cf="%d inet n - n - - smtpd\n" % port)
    r = d.cli("check")
    fatal = daemon_fatal(d)
    assert "cannot resolve listen address" in fatal, fatal
    assert r.returncode == 1, out(r)
    assert fatal in out(r), (fatal, out(r))


def test_maillog_file_in_a_missing_directory(facteurd):
    d = facteurd(start=False)
    d.params["maillog_file"] = os.path.join(d.root, "nodir", "maillog")
    d.write_config()
    n = line_of(os.path.join(d.confdir, "main.cf"), "maillog_file")
    r = d.cli("check")
    assert r.returncode == 1, out(r)
    assert re.search(r"main\.cf, line %d: maillog_file: open maillog_file "
                     r".*nodir/maillog: directory .*nodir does not exist" % n,
                     out(r)), out(r)
    d.maillog = d.params["maillog_file"]
    p = d.spawn()
    assert p.wait(15) != 0
    d.expect_exit = True
    assert "open maillog_file" in open(d.stderr_path).read()


def test_queue_directory_too_long_for_the_pickup_socket(facteurd):
    d = facteurd(start=False)
    d.params["queue_directory"] = os.path.join(d.root, "q" * 120)
    d.write_config()
    r = d.cli("check")
    assert r.returncode == 1, out(r)
    assert "path too long for the local submission socket" in out(r), out(r)
    fatal = daemon_fatal(d)
    assert "path too long for the local submission socket" in fatal, fatal


def ca_cert(tmp, name, start, end):
    """A self-signed certificate valid from start to end (YYYYMMDDhhmmssZ)."""
    d = tmp / name
    d.mkdir()
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
        "new_certs_dir = .\nserial = serial\ndefault_md = sha256\n"
        "policy = p\n[p]\ncommonName = supplied\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", "key.pem", "-out", "req.pem",
                    "-subj", "/CN=" + name], cwd=str(d), check=True,
                   capture_output=True, timeout=60)
    subprocess.run(["openssl", "ca", "-batch", "-config", "ca.cnf",
                    "-selfsign", "-keyfile", "key.pem", "-in", "req.pem",
                    "-out", "cert.pem", "-notext", "-startdate", start,
                    "-enddate", end], cwd=str(d), check=True,
                   capture_output=True, timeout=60)
    os.chmod(str(d), 0o755)
    return {"key": str(d / "key.pem"), "cert": str(d / "cert.pem")}


def test_expired_certificate_is_an_error(facteurd, tmp_path):
    old = ca_cert(tmp_path, "old.example.test", "20200101000000Z",
                  "20200201000000Z")
    d = facteurd(start=False, main_cf=tls_cf(old))
    r = d.cli("check")
    assert r.returncode == 1, out(r)
    assert re.search(r"error: .*cert\.pem: certificate \"old\.example\.test\" "
                     r"expired on Feb +1 00:00:00 2020 GMT", out(r)), out(r)


def test_certificate_expiring_soon_is_a_warning(facteurd, tmp_path):
    soon = time.strftime("%Y%m%d%H%M%SZ",
                         time.gmtime(time.time() + 10 * 86400 + 3600))
    c = ca_cert(tmp_path, "soon.example.test", "20240101000000Z", soon)
    d = facteurd(start=False, main_cf=tls_cf(c))
    r = d.cli("check")
    assert r.returncode == 0, out(r)
    assert re.search(r"warning: .*cert\.pem: certificate \"soon\.example\.test"
                     r"\" expires on .* \(in 10 days\)", out(r)), out(r)


def test_reload_refusal_says_what_check_says(facteurd):
    d = facteurd()
    with open(os.path.join(d.confdir, "main.cf"), "a") as f:
        f.write("transport_maps = nosuchtype:/x\n"
                "smtpd_sasl_user_hold_threshold = 1x\n")
    r = d.cli("check")
    assert r.returncode == 1, out(r)
    for name in ("smtpd_sasl_user_hold_threshold", "transport_maps"):
        # the listener is built first: its error refuses the reload; once
        # it is fixed, the queue manager's
        n = line_of(os.path.join(d.confdir, "main.cf"), name + " ")
        os.kill(d.pid, signal.SIGHUP)
        m = d.wait_log(r"warning: reload refused: (.*main\.cf, line %d: "
                       r".*%s.*); the running configuration is kept"
                       % (n, name))
        assert "error: " + m.group(1) + "\n" in out(r), (m.group(1), out(r))
        text = open(os.path.join(d.confdir, "main.cf")).read()
        with open(os.path.join(d.confdir, "main.cf"), "w") as f:
            f.write(text.replace(name + " =", "#" + name + " ="))
    r = d.cli("check")
    assert r.returncode == 0, out(r)
    with d.connect() as c:
        check_reply(c.cmd("EHLO client.test"), 250)


def test_quickstart_passes(tmp_path):
    """contrib/examples/quickstart, placed as run.sh places it."""
    import pwd
    import harness
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        "..", "..", "contrib", "examples", "quickstart")
    run = str(tmp_path / "run")
    user = None
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() == 0:
        user = harness.TEST_MAIL_OWNER
        pw = pwd.getpwnam(user)
        uid, gid = pw.pw_uid, pw.pw_gid
    for sub in ("conf", "queue", "mail"):
        os.makedirs(os.path.join(run, sub))
    for f in ("main.cf", "master.cf", "vmailbox", "valias"):
        text = open(os.path.join(here, f)).read()
        text = text.replace("@RUNDIR@", run).replace(
            "@UID@", str(uid)).replace("@GID@", str(gid))
        if f == "main.cf" and user:
            text += "\nmail_owner = %s\n" % user
        with open(os.path.join(run, "conf", f), "w") as fh:
            fh.write(text)
    if user:
        for sub in ("queue", "mail"):
            os.chown(os.path.join(run, sub), uid, gid)
    r = subprocess.run([harness.bin_path("facteur"), "-c",
                        os.path.join(run, "conf"), "check"],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, out(r)
    assert "error" not in out(r), out(r)
