"""
test_fail2ban.py - contrib/fail2ban/jail.d/facteur.conf and
filter.d/postfix.local against Debian's stock fail2ban postfix filter: a
real facteurd run produces relay-denied, unknown-user and SMTP AUTH failure
lines (PLAIN, LOGIN and SCRAM-SHA-256, the last through the SCRAM client of
test_auth_mechs.py) from 127.0.0.2 (plus a clean delivery from 127.0.0.1);
fail2ban-regex must match exactly the offender's lines in each mode, both
with the default syslog_name (the jail's _daemon override) and with
syslog_name = postfix (the stock filter as it is). The stock filter alone
misses the SCRAM failure; with the shipped postfix.local it is matched and
nothing else changes. fail2ban-client parses the jail file into the two
jails on our log.
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
from test_auth_mechs import smtp_scram

HERE = os.path.dirname(os.path.abspath(__file__))
JAIL = os.path.join(HERE, "..", "..", "contrib", "fail2ban", "jail.d",
                    "facteur.conf")
LOCAL = os.path.join(HERE, "..", "..", "contrib", "fail2ban", "filter.d",
                     "postfix.local")
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


def f2b_regex(log, filt, conf=None):
    """fail2ban-regex LOG FILTER (with configuration directory conf); the
    list of matched IPs, one per match."""
    exe = shutil.which("fail2ban-regex")
    assert exe, "fail2ban-regex not installed: run `sh contrib/install-deps.sh test`"
    r = subprocess.run([exe, "-o", "ip"] + (["-c", conf] if conf else [])
                       + [log, filt], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "fail2ban-regex %s failed:\n%s%s" % (
        filt, r.stdout.decode(), r.stderr.decode())
    return r.stdout.decode().split()


@pytest.fixture
def local_conf(tmp_path):
    """A private copy of the fail2ban configuration with our postfix.local
    installed in filter.d, as the jail file's header says."""
    conf = str(tmp_path / "fail2ban-local")
    shutil.copytree(f2b_confdir(), conf)
    shutil.copy(LOCAL, os.path.join(conf, "filter.d", "postfix.local"))
    return conf


@pytest.fixture
def stock_conf(tmp_path):
    """A private copy of the configuration without any postfix.local."""
    conf = str(tmp_path / "fail2ban-stock")
    shutil.copytree(f2b_confdir(), conf)
    local = os.path.join(conf, "filter.d", "postfix.local")
    if os.path.exists(local):
        os.unlink(local)
    return conf


def offend(d, name):
    """Delivers one message from mynetworks, then misbehaves from OFFENDER:
    three failed AUTHs (PLAIN, LOGIN, SCRAM-SHA-256), a relay attempt, an
    unknown recipient. Returns the log once all of it is written (copied,
    so fail2ban reads a still file)."""
    d.send("sender@example.net", "alice@example.test",
           make_msg("f2b clean", to="alice@example.test"))
    with d.session(source=OFFENDER) as c:
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0wrong")),
              535, "5.7.8")
        check(c.cmd("AUTH LOGIN"), 334)
        check(c.cmd(b64("alice@example.test")), 334)
        check(c.cmd(b64("wrong-again")), 535, "5.7.8")
        r, _ = smtp_scram(c, "alice@example.test", "wrong-scram")
        check(r, 535, "5.7.8")
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
    assert re.search(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ %s/smtpd\[\d+\]: "
                     r"warning: \S+\[127\.0\.0\.2\]: SASL SCRAM-SHA-256 "
                     r"authentication failed: " % re.escape(name), log, re.M), log
    path = os.path.join(d.root, "maillog.%s" % name)
    with open(path, "w") as f:
        f.write(log)
    return path


def scram_only(path):
    """The log's SCRAM lines alone, in a file of their own."""
    with open(path) as f:
        lines = [l for l in f if "SCRAM-SHA-256" in l]
    assert len(lines) >= 1, lines
    out = path + ".scram"
    with open(out, "w") as f:
        f.writelines(lines)
    return out


def f2b_daemon(facteurd, syslog_name=None):
    d = facteurd(start=False, main_cf={"smtpd_sasl_auth_enable": "yes",
                                       "smtpd_tls_auth_only": "no",
                                       "smtpd_sasl_mechanisms":
                                       "plain login scram-sha-256",
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


def test_jail_filters_match_default_syslog_name(facteur_log, local_conf):
    filters = jail_filters()
    assert set(filters) == {"facteur", "facteur-sasl"}, filters
    # mode=more: the relay refusal and the unknown recipient.
    only_offender(f2b_regex(facteur_log, filters["facteur"], local_conf), 2,
                  "jail [facteur]")
    # mode=auth (postfix-sasl): the PLAIN, LOGIN and SCRAM failures.
    only_offender(f2b_regex(facteur_log, filters["facteur-sasl"], local_conf),
                  3, "jail [facteur-sasl]")
    only_offender(f2b_regex(scram_only(facteur_log), filters["facteur-sasl"],
                            local_conf), 1, "jail [facteur-sasl], SCRAM")
    # mode=aggressive covers both, plus the disconnect with failed AUTHs.
    aggr = filters["facteur"].replace("mode=more", "mode=aggressive")
    ips = f2b_regex(facteur_log, aggr, local_conf)
    assert len(ips) >= 5 and set(ips) == {OFFENDER}, ips


def test_stock_filter_misses_scram_without_the_local(facteur_log,
                                                     stock_conf):
    # Debian's postfix.conf alone: PLAIN and LOGIN, not SCRAM-SHA-256 (the
    # reason contrib/fail2ban ships filter.d/postfix.local).
    conf = stock_conf
    filters = jail_filters()
    only_offender(f2b_regex(facteur_log, filters["facteur-sasl"], conf), 2,
                  "stock filter, mode=auth")
    assert f2b_regex(scram_only(facteur_log), filters["facteur-sasl"],
                     conf) == []
    # the other modes are the same with and without the local file
    only_offender(f2b_regex(facteur_log, filters["facteur"], conf), 2,
                  "stock filter, mode=more")


def test_stock_filter_needs_the_override(facteur_log):
    # Without _daemon the stock filter ignores "facteur/smtpd" lines: the
    # reason the jail passes it (or syslog_name = postfix is set).
    conf = f2b_confdir()
    assert f2b_regex(facteur_log, "postfix[mode=aggressive]") == []
    assert f2b_regex(facteur_log, os.path.join(
        conf, "filter.d", "postfix.conf")) == []


def test_stock_filter_with_syslog_name_postfix(postfix_log, local_conf,
                                               stock_conf):
    conf = stock_conf
    only_offender(f2b_regex(postfix_log, os.path.join(
        conf, "filter.d", "postfix.conf") + "[mode=more]"), 2, "mode=more")
    only_offender(f2b_regex(postfix_log, "postfix[mode=auth]", conf), 2,
                  "postfix-sasl (mode=auth), stock: no SCRAM")
    ips = f2b_regex(postfix_log, "postfix[mode=aggressive]", conf)
    assert len(ips) >= 4 and set(ips) == {OFFENDER}, ips
    # Debian's own [postfix-sasl] jail with postfix.local installed
    only_offender(f2b_regex(postfix_log, "postfix[mode=auth]", local_conf), 3,
                  "postfix-sasl (mode=auth) with postfix.local")
    only_offender(f2b_regex(scram_only(postfix_log), "postfix[mode=auth]",
                            local_conf), 1, "postfix-sasl, SCRAM")
    only_offender(f2b_regex(postfix_log, "postfix[mode=more]", local_conf), 2,
                  "mode=more with postfix.local")


def test_jail_file_loads(tmp_path, facteur_log):
    # fail2ban-client -d reads the whole configuration and prints the
    # commands it would send to the server: our two jails, on our log.
    conf = str(tmp_path / "fail2ban")
    shutil.copytree(f2b_confdir(), conf)
    shutil.copy(LOCAL, os.path.join(conf, "filter.d", "postfix.local"))
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
    # the filter the jails get includes postfix.local's SCRAM names
    assert "SCRAM-SHA-" in out, out
    assert "['add', 'sshd'" not in out
