"""
test_config.py - configuration as an operator meets it: `facteur conf`,
`facteur check`, errors naming file and line, facteurd refusing a bad
config, master.cf listeners with -o overrides (syslog_name, per-listener
settings) and Postfix service lines that facteur does not need.
"""
import os
import re
import subprocess
import time

import pytest

import harness
from harness import check, make_msg


def out(r):
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def line_of(path, needle):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith(needle):
                return n
    raise AssertionError("%s not in %s" % (needle, path))


@pytest.fixture
def cfg(facteurd):
    """A written, not started, configuration."""
    return facteurd(start=False)


def test_conf_n_lists_exactly_the_set_parameters(cfg):
    r = cfg.cli("conf", "-n")
    assert r.returncode == 0, out(r)
    lines = r.stdout.decode().splitlines()
    got = {}
    for line in lines:
        m = re.match(r"^(\w+) = ?(.*)$", line)
        assert m, "not a 'name = value' line: %r" % line
        got[m.group(1)] = m.group(2)
    assert set(got) == set(cfg.params), (sorted(got), sorted(cfg.params))
    for k, v in cfg.params.items():
        assert " ".join(got[k].split()) == " ".join(v.split()), k


def test_conf_n_is_sorted(cfg):
    r = cfg.cli("conf", "-n")
    names = [l.split(" ", 1)[0] for l in r.stdout.decode().splitlines()]
    assert names == sorted(names)


def test_conf_one_value(cfg):
    r = cfg.cli("conf", "message_size_limit")
    assert r.returncode == 0, out(r)
    assert r.stdout.decode() == "message_size_limit = 1048576\n"


def test_conf_expands_and_knows_defaults(facteurd):
    d = facteurd(start=False, main_cf={"myorigin": "$mydomain"},
                 extra_main_cf="smtpd_banner = ${myhostname} ESMTP"
                               "${disable_vrfy_command?, no vrfy}\n"
                               "virtual_alias_domains = a.test,\n"
                               "    b.test\n"
                               "  c.test\n")
    r = d.cli("conf", "myorigin", "smtpd_banner", "virtual_alias_domains",
              "smtpd_recipient_limit")
    assert r.returncode == 0, out(r)
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "myorigin = example.test"
    assert lines[1] == "smtpd_banner = mx.example.test ESMTP, no vrfy", lines
    assert " ".join(lines[2].split()) == \
        "virtual_alias_domains = a.test, b.test c.test"
    assert lines[3] == "smtpd_recipient_limit = 50"
    r = d.cli("conf", "disable_vrfy_command", "smtpd_timeout")
    assert r.returncode == 0, out(r)
    assert r.stdout.decode().splitlines()[0] == "disable_vrfy_command = no"


def test_check_good_config(cfg):
    r = cfg.cli("check")
    assert r.returncode == 0, out(r)
    assert "error" not in out(r).lower(), out(r)


def test_check_bad_value_names_file_and_line(facteurd):
    d = facteurd(start=False, main_cf={"message_size_limit": "10x"})
    n = line_of(os.path.join(d.confdir, "main.cf"), "message_size_limit")
    r = d.cli("check")
    assert r.returncode != 0
    assert re.search(r"main\.cf, line %d\b.*message_size_limit" % n, out(r)), \
        out(r)


@pytest.mark.parametrize("name,value", [
    ("smtpd_timeout", "5x"),
    ("smtpd_helo_required", "maybe"),
    ("smtpd_recipient_limit", "-3"),
    ("virtual_mailbox_maps", "nosuchtype:/x"),
])
def test_check_other_bad_values(facteurd, name, value):
    d = facteurd(start=False, main_cf={name: value})
    n = line_of(os.path.join(d.confdir, "main.cf"), name + " ")
    r = d.cli("check")
    assert r.returncode != 0, out(r)
    assert re.search(r"main\.cf, line %d\b" % n, out(r)) or \
        (name in out(r) and value.split(":")[0] in out(r)), out(r)


def test_check_malformed_map_line(facteurd):
    d = facteurd(start=False,
                 vmailbox="alice@example.test example.test/alice/\n"
                          "# comment\n"
                          "bob@example.test\n")
    r = d.cli("check")
    assert r.returncode != 0, out(r)
    assert re.search(r"vmailbox, line 3\b", out(r)), out(r)


def test_check_unknown_parameter_is_a_warning(facteurd):
    d = facteurd(start=False, extra_main_cf="no_such_parameter = 1\n")
    n = line_of(os.path.join(d.confdir, "main.cf"), "no_such_parameter")
    r = d.cli("check")
    assert r.returncode == 0, out(r)
    assert re.search(r"warning: .*main\.cf, line %d\b.*no_such_parameter" % n,
                     out(r)), out(r)


def test_check_postfix_internal_parameters_accepted(facteurd):
    d = facteurd(start=False, extra_main_cf="compatibility_level = 3.6\n"
                                            "biff = no\n"
                                            "data_directory = /var/lib/x\n")
    r = d.cli("check")
    assert r.returncode == 0, out(r)
    assert "unknown parameter" not in out(r), out(r)


def test_facteurd_refuses_bad_value(facteurd):
    d = facteurd(start=False, main_cf={"message_size_limit": "10x"})
    n = line_of(os.path.join(d.confdir, "main.cf"), "message_size_limit")
    d.start_fails(r"main\.cf, line %d\b.*message_size_limit" % n)
    with pytest.raises(OSError):
        harness.SMTPConn(d.host, d.port, timeout=1).close()


def test_facteurd_warns_unknown_parameter_and_runs(facteurd):
    d = facteurd(extra_main_cf="no_such_parameter = 1\n")
    text = harness.tail(d.stderr_path, 1 << 20) + d.log()
    assert re.search(r"warning: .*main\.cf, line \d+.*no_such_parameter",
                     text), text
    with d.session() as c:
        check(c.cmd("NOOP"), 250)


def test_missing_config_dir(tmp_path, build):
    r = subprocess.run([harness.bin_path("facteur"), "-c",
                        str(tmp_path / "nope"), "check"],
                       capture_output=True, timeout=10)
    assert r.returncode != 0
    assert "nope" in out(r)


# ------------------------------------------------------------- master.cf

STOCK_POSTFIX_SERVICES = """\
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
smtp      unix  -       -       y       -       -       smtp
virtual   unix  -       n       n       -       -       virtual
"""


def test_listener_overrides(facteurd, tmp_path):
    port2 = harness.free_port()
    d = facteurd(extra_master_cf=(
        "# submission-like listener\n"
        "127.0.0.1:%d inet n - n - - smtpd\n"
        "  -o syslog_name=postfix/submission\n"
        "  -o smtpd_helo_required=yes\n" % port2) + STOCK_POSTFIX_SERVICES)
    # The override applies to the second listener only.
    with d.connect(port=port2) as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 503, "5.5.1",
              "send HELO/EHLO first")
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("QUIT"), 221)
    with d.connect() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("QUIT"), 221)
    d.wait_log(r"postfix/submission/smtpd\[\d+\]: connect from "
               r"\S+\[127\.0\.0\.1\]")
    d.wait_log(r"postfix/submission/smtpd\[\d+\]: disconnect from ")
    # The first listener keeps the default name.
    d.wait_log(r" facteur/smtpd\[\d+\]: connect from ")
    # Postfix's own service lines are accepted and reported as not needed.
    text = harness.tail(d.stderr_path, 1 << 20) + d.log()
    assert re.search(r"master\.cf, line 6\b.*pickup.*not needed", text), text
    assert re.search(r"master\.cf, line 12\b.*defer.*not needed", text), text
    # smtp and virtual unix lines are delivery transports now
    assert not re.search(r"master\.cf, line 1[34]\b.*not needed", text), text


def test_syslog_name_postfix_for_log_tools(facteurd):
    d = facteurd(main_cf={"syslog_name": "postfix"})
    msg = make_msg("syslog-name", to="alice@example.test")
    d.send("sender@example.net", "alice@example.test", msg)
    d.wait_log(r" postfix/smtpd\[\d+\]: [0-9A-F]+: client=")
    d.wait_log(r" postfix/\w+\[\d+\]: [0-9A-F]+: to=<alice@example\.test>,"
               r" relay=virtual, .*status=sent")
    assert " facteur/" not in d.log()


def test_bad_master_cf_line(facteurd):
    d = facteurd(start=False, extra_master_cf="127.0.0.1:x inet n - n - - \n")
    r = d.cli("check")
    assert r.returncode != 0, out(r)
    assert re.search(r"master\.cf, line 2\b", out(r)), out(r)
