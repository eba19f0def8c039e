"""
test_fail2ban.py - contrib/fail2ban/jail.d/facteur.conf against Debian's
stock fail2ban postfix filter: a real facteurd run produces relay-denied,
unknown-user and SMTP AUTH failure lines from 127.0.0.2 (plus a clean
delivery from 127.0.0.1); fail2ban-regex must match exactly the offender's
lines in each mode, both with the default syslog_name (the jail's _daemon
override) and with syslog_name = postfix (the stock filter as it is); and
fail2ban-client parses the jail file into the two jails on our log.
Must not: start fail2ban-server or touch /etc/fail2ban (a private copy of
the configuration is used).
"""
import base64
import os
import re
import shutil
import subprocess

import pytest

from harness import check, make_msg

HERE = os.path.dirname(os.path.abspath(__file__))
JAIL = os.path.join(HERE, "..", "..", "contrib", "fail2ban", "jail.d",
                    "facteur.conf")
OFFENDER = "127.0.0.2"
F2B_DIRS = ("/etc/fail2ban", "/usr/local/etc/fail2ban")


def f2b_confdir():
    for d in F2B_DIRS:
        if os.path.exists(os.path.join(d, "filter.d", "postfix.conf")):
            return d
    pytest.fail("fail2ban's postfix filter not found in %s: run "
                "`sh contrib/install-deps.sh test`" % " or ".join(F2B_DIRS),
                pytrace=False)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def jail_filters():
    """The `filter = ...` values of the shipped jail file, by jail name."""
    out, jail = {}, None
    with open(JAIL) as f:
        for line in f:
            m = re.match(r"^\[([^\]]+)\]\s*$", line)
            if m:
                jail = m.group(1)
                continue
            m = re.match(r"^filter\s*=\s*(.+?)\s*$", line)
            if m and jail:
                out[jail] = m.group(1)
    return out


def f2b_regex(log, filt):
    """fail2ban-regex LOG FILTER; the list of matched IPs, one per match."""
    exe = shutil.which("fail2ban-regex")
    assert exe, "fail2ban-regex not installed: run `sh contrib/install-deps.sh test`"
    r = subprocess.run([exe, "-o", "ip", log, filt], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "fail2ban-regex %s failed:\n%s%s" % (
        filt, r.stdout.decode(), r.stderr.decode())
    return r.stdout.decode().split()


def offend(d, name):
    """Delivers one message from mynetworks, then misbehaves from OFFENDER:
    a relay attempt, an unknown recipient, two failed AUTHs. Returns the
    log once all of it is written (copied, so fail2ban reads a still file)."""
    d.send("sender@example.net", "alice@example.test",
           make_msg("f2b clean", to="alice@example.test"))
    with d.session(source=OFFENDER) as c:
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0wrong")),
              535, "5.7.8")
        check(c.cmd("AUTH LOGIN"), 334)
        check(c.cmd(b64("alice@example.test")), 334)
        check(c.cmd(b64("wrong-again")), 535, "5.7.8")
        check(c.cmd("MAIL FROM:<spammer@example.net>"), 250)
        r = c.cmd("RCPT TO:<victim@elsewhere.test>")
        assert r.code in (454, 554), r
        check(c.cmd("RCPT TO:<nosuchuser@example.test>"), 550, "5.1.1")
        check(c.cmd("QUIT"), 221)
    d.wait_log(r"disconnect from \S+\[127\.0\.0\.2\]")
    d.wait_log(r": removed$")
    log = d.log()
    assert re.search(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ %s/smtpd\[\d+\]: "
                     r"NOQUEUE: reject: RCPT from \S+\[127\.0\.0\.2\]" %
                     re.escape(name), log, re.M), log
    path = os.path.join(d.root, "maillog.%s" % name)
    with open(path, "w") as f:
        f.write(log)
    return path


def f2b_daemon(facteurd, syslog_name=None):
    d = facteurd(start=False, main_cf={"smtpd_sasl_auth_enable": "yes",
                                       "smtpd_tls_auth_only": "no",
                                       "smtpd_sasl_passdb": "x"})
    users = os.path.join(d.confdir, "users")
    with open(users, "w") as f:
        f.write("alice@example.test:{PLAIN}alice-pw\n")
    os.chmod(users, 0o644)
    d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
    if syslog_name:
        d.params["syslog_name"] = syslog_name
    d.write_config()
    d.start()
    return d


@pytest.fixture
def facteur_log(facteurd):
    return offend(f2b_daemon(facteurd), "facteur")


@pytest.fixture
def postfix_log(facteurd):
    return offend(f2b_daemon(facteurd, "postfix"), "postfix")


def only_offender(ips, n, what):
    assert len(ips) == n and set(ips) == {OFFENDER}, (
        "%s: expected %d matches of %s, got %r" % (what, n, OFFENDER, ips))


def test_jail_filters_match_default_syslog_name(facteur_log):
    f2b_confdir()
    filters = jail_filters()
    assert set(filters) == {"facteur", "facteur-sasl"}, filters
    # mode=more: the relay refusal and the unknown recipient.
    only_offender(f2b_regex(facteur_log, filters["facteur"]), 2,
                  "jail [facteur]")
    # mode=auth (postfix-sasl): the PLAIN and the LOGIN failure.
    only_offender(f2b_regex(facteur_log, filters["facteur-sasl"]), 2,
                  "jail [facteur-sasl]")
    # mode=aggressive covers both, plus the disconnect with failed AUTHs.
    aggr = filters["facteur"].replace("mode=more", "mode=aggressive")
    ips = f2b_regex(facteur_log, aggr)
    assert len(ips) >= 4 and set(ips) == {OFFENDER}, ips


def test_stock_filter_needs_the_override(facteur_log):
    # Without _daemon the stock filter ignores "facteur/smtpd" lines: the
    # reason the jail passes it (or syslog_name = postfix is set).
    conf = f2b_confdir()
    assert f2b_regex(facteur_log, "postfix[mode=aggressive]") == []
    assert f2b_regex(facteur_log, os.path.join(
        conf, "filter.d", "postfix.conf")) == []


def test_stock_filter_with_syslog_name_postfix(postfix_log):
    conf = f2b_confdir()
    only_offender(f2b_regex(postfix_log, os.path.join(
        conf, "filter.d", "postfix.conf") + "[mode=more]"), 2, "mode=more")
    only_offender(f2b_regex(postfix_log, "postfix[mode=auth]"), 2,
                  "postfix-sasl (mode=auth)")
    ips = f2b_regex(postfix_log, "postfix[mode=aggressive]")
    assert len(ips) >= 4 and set(ips) == {OFFENDER}, ips


def test_jail_file_loads(tmp_path, facteur_log):
    # fail2ban-client -d reads the whole configuration and prints the
    # commands it would send to the server: our two jails, on our log.
    conf = str(tmp_path / "fail2ban")
    shutil.copytree(f2b_confdir(), conf)
    jd = os.path.join(conf, "jail.d")
    for n in os.listdir(jd):            # the distribution's own jails off
        os.unlink(os.path.join(jd, n))
    with open(JAIL) as f:
        text = f.read()
    text, n = re.subn(r"(?m)^facteur_log = .*$", "facteur_log = " + facteur_log,
                      text)
    assert n == 1
    with open(os.path.join(jd, "facteur.conf"), "w") as f:
        f.write(text)
    exe = shutil.which("fail2ban-client")
    assert exe
    r = subprocess.run([exe, "-c", conf, "-d"], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    for jail in ("facteur", "facteur-sasl"):
        assert "['add', '%s', 'auto']" % jail in out, out
        assert ("['set', '%s', 'addlogpath', '%s', 'head']"
                % (jail, facteur_log)) in out, out
        assert ("['set', '%s', 'addjournalmatch', "
                "'_SYSTEMD_UNIT=facteur.service']" % jail) in out, out
    assert "facteur(?:-\\\\w+)?/\\\\w+" in out, out
    assert "Relay access denied" in out and "SASL" in out
    assert "['add', 'sshd'" not in out
