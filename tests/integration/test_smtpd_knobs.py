"""
test_smtpd_knobs.py - SMTP server settings that shape the dialogue rather
than decide on mail, each with Postfix's replies: smtpd_reject_footer
(after 4xx/5xx only, "\\n" line breaks, leading "\\c", $client_address and
$server_name), smtpd_discard_ehlo_keywords (hidden from EHLO and logged
unless silent-discard; what Postfix also disables: AUTH 503, DSN
parameters 501 5.7.1, BDAT 521), smtpd_discard_ehlo_keyword_address_maps (per client address),
smtpd_sasl_exceptions_networks (AUTH not offered, still usable) and
smtpd_forbidden_commands (221 2.7.0 and disconnect; names, a regexp:
table, and "Label:" header lines).
One daemon for the module; variants are master.cf listeners with -o.
"""
import base64
import re

import pytest

import harness
from harness import check, free_port

FOOTER = "For help call 555-0101 (client $client_address, server $server_name)"

VARIANTS = {
    "footer": ["-o { smtpd_reject_footer = %s }" % FOOTER],
    "footer_nl": [r"-o { smtpd_reject_footer = first line\nsecond line }"],
    "footer_c": [r"-o { smtpd_reject_footer = \c, see https://help.test/ }"],
    "discard": ["-o smtpd_discard_ehlo_keywords=pipelining,chunking,dsn",
                "-o smtpd_data_restrictions=reject_unauth_pipelining"],
    "silent": ["-o smtpd_discard_ehlo_keywords=auth,8bitmime,silent-discard",
               "-o smtpd_data_restrictions=reject_unauth_pipelining"],
    "forbid": ["-o smtpd_forbidden_commands=FOO,regexp:REGEXP"],
    # Postfix 3.7's inline pattern table, as in its own default
    "forbid_inline": ["-o { smtpd_forbidden_commands = CONNECT GET POST "
                      "regexp:{{/^[^A-Z]/ Bogus}} }"],
    "mapfail": ["-o smtpd_discard_ehlo_keyword_address_maps=fail:down"],
    "saslfail": ["-o smtpd_sasl_exceptions_networks=fail:down"],
}


def b64(s):
    return base64.b64encode(s.encode()).decode()


@pytest.fixture(scope="module")
def d(build, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("knobs"))
    ports = {name: free_port() for name in VARIANTS}
    dm = pool.new(start=False)
    rx = dm.table("forbid_rx", "/^X-?TEST/ bogus\n", kind="regexp")
    master = ""
    for name, opts in VARIANTS.items():
        master += "127.0.0.1:%d inet n - n - - smtpd\n" % ports[name]
        for o in opts:
            master += "  %s\n" % o.replace("regexp:REGEXP", rx)
    dm.master_cf += master
    users = dm.table("users", "alice@example.test:{PLAIN}alice-pw\n",
                     kind="passwd-file")
    dm.params.update({
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_passdb": users,
        "smtpd_sasl_exceptions_networks": "127.0.0.2",
        "smtpd_discard_ehlo_keyword_address_maps": dm.table(
            "ehlo_maps", "127.0.0.3 pipelining, silent-discard\n"
            "127.0.0.4 size vrfy\n", kind="cidr"),
        # set in main.cf so that `facteur check` would name them
        "smtpd_reject_footer": "",
        "smtpd_discard_ehlo_keywords": "",
        "smtpd_forbidden_commands": "CONNECT GET POST",
    })
    dm.write_config()
    dm.start()
    dm.ports = ports
    yield dm
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def ehlo(d, variant=None, source=None):
    c = d.connect(port=d.ports[variant] if variant else None, source=source)
    r = check(c.cmd("EHLO client.test"), 250)
    return c, [l.split(" ")[0].split("=")[0].upper() for l in r.lines[1:]]


# ---- smtpd_reject_footer

def unknown_rcpt(c):
    check(c.cmd("MAIL FROM:<x@example.net>"), 250)
    return c.cmd("RCPT TO:<nobody@example.test>")


def test_footer_appended_to_rejects(d):
    c, _ = ehlo(d, "footer")
    with c:
        r = unknown_rcpt(c)
        assert r.raw == [
            "550-5.1.1 <nobody@example.test>: Recipient address rejected: "
            "User unknown in virtual mailbox table",
            "550 5.1.1 For help call 555-0101 (client 127.0.0.1, server "
            "%s)" % d.params["myhostname"]], r
        # 2xx replies are untouched
        assert c.cmd("RSET").raw == ["250 2.0.0 Ok"]
        r = c.cmd("FROB")
        assert r.raw == ["500-5.5.2 Error: command not recognized",
                         "500 5.5.2 For help call 555-0101 (client "
                         "127.0.0.1, server %s)" % d.params["myhostname"]], r


def test_footer_line_breaks(d):
    c, _ = ehlo(d, "footer_nl")
    with c:
        r = unknown_rcpt(c)
        assert r.raw[1:] == ["550-5.1.1 first line",
                             "550 5.1.1 second line"], r
        assert r.raw[0].startswith("550-5.1.1 <nobody@example.test>"), r


def test_footer_no_break(d):
    c, _ = ehlo(d, "footer_c")
    with c:
        r = unknown_rcpt(c)
        assert r.raw == [
            "550 5.1.1 <nobody@example.test>: Recipient address rejected: "
            "User unknown in virtual mailbox table, see "
            "https://help.test/"], r


def test_no_footer_by_default(d):
    c, _ = ehlo(d)
    with c:
        assert unknown_rcpt(c).raw == [
            "550 5.1.1 <nobody@example.test>: Recipient address rejected: "
            "User unknown in virtual mailbox table"]


# ---- EHLO keywords

def test_ehlo_default_keywords(d):
    c, kw = ehlo(d)
    with c:
        for k in ("PIPELINING", "SIZE", "VRFY", "AUTH", "DSN", "CHUNKING",
                  "8BITMIME", "ENHANCEDSTATUSCODES"):
            assert k in kw, kw


def test_discard_ehlo_keywords(d):
    c, kw = ehlo(d, "discard")
    with c:
        for k in ("PIPELINING", "CHUNKING", "DSN"):
            assert k not in kw, kw
        assert "SIZE" in kw and "AUTH" in kw, kw
        # what Postfix disables with the keyword: DSN parameters ...
        check(c.cmd("MAIL FROM:<x@example.net> RET=HDRS"), 501, "5.7.1",
              "^5.7.1 DSN support is disabled$")
        check(c.cmd("MAIL FROM:<x@example.net> ENVID=abc"), 501, "5.7.1")
        check(c.cmd("MAIL FROM:<x@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test> NOTIFY=NEVER"), 501,
              "5.7.1", "DSN support is disabled")
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        # ... and BDAT, which ends the session (the chunk is unreadable)
        c.send("BDAT 7 LAST\r\nHi!\r\n\r\n")
        check(c.reply(), 521, "5.5.1", "command not implemented")
        assert c.expect_closed()
    c, kw = ehlo(d, "discard")
    with c:
        # DATA, VRFY, SIZE= still work
        check(c.cmd("MAIL FROM:<x@example.net> SIZE=100"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        check(c.cmd("Subject: x\r\n\r\nbody\r\n."), 250, "2.0.0")
    d.wait_log(r"discarding EHLO keywords: PIPELINING DSN CHUNKING$",
               timeout=5)


@pytest.mark.parametrize("variant,announced", [("discard", False),
                                                ("silent", True)])
def test_discarded_pipelining_is_unauth(d, variant, announced):
    c, kw = ehlo(d, variant)
    with c:
        assert ("PIPELINING" in kw) == announced, kw
        c.send("MAIL FROM:<x@example.net>\r\nRCPT TO:<alice@example.test>"
               "\r\nDATA\r\n")
        check(c.reply(), 250)
        check(c.reply(), 250)
        r = c.reply()
        if announced:
            check(r, 354)
        else:
            check(r, 503, "5.5.0", "<DATA>: Data command rejected: "
                  "Improper use of SMTP command pipelining")


def test_discard_ehlo_auth_silently(d):
    c, kw = ehlo(d, "silent")
    with c:
        assert "AUTH" not in kw and "8BITMIME" not in kw, kw
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0alice-pw")),
              503, "5.5.1", "authentication not enabled")
    assert "discarding EHLO keywords: 8BITMIME AUTH" not in open(
        d.maillog).read()
    assert "discarding EHLO keywords: AUTH 8BITMIME" not in open(
        d.maillog).read()


def test_discard_ehlo_keyword_address_maps(d):
    c, kw = ehlo(d, source="127.0.0.3")
    with c:
        assert "PIPELINING" not in kw and "SIZE" in kw, kw
    c, kw = ehlo(d, source="127.0.0.4")
    with c:
        assert "SIZE" not in kw and "VRFY" not in kw, kw
        assert "PIPELINING" in kw, kw
    d.wait_log(r"discarding EHLO keywords: SIZE VRFY$", timeout=5)


@pytest.mark.parametrize("variant,what", [
    ("mapfail", "what EHLO features to announce to"),
    ("saslfail", "if EHLO feature AUTH should be announced to")])
def test_ehlo_lookup_failure_is_421(d, variant, what):
    # as Postfix: a table that cannot answer ends the session with 4xx
    c = d.connect(port=d.ports[variant])
    with c:
        r = c.cmd("EHLO client.test")
        assert r.raw == ["421 4.3.0 %s Server local data error"
                         % d.params["myhostname"]], r
        assert c.expect_closed()
    d.wait_log(r"warning: don't know %s localhost\[127.0.0.1\]$" % what,
               timeout=5)
    # HELO does not need them
    c = d.connect(port=d.ports[variant])
    with c:
        check(c.cmd("HELO client.test"), 250)
        check(c.cmd("MAIL FROM:<x@example.net>"), 250)


# ---- smtpd_sasl_exceptions_networks

def test_sasl_exceptions_networks(d):
    c, kw = ehlo(d, source="127.0.0.2")
    with c:
        assert "AUTH" not in kw and "PIPELINING" in kw, kw
        # not offered, but still accepted (Postfix hides it only)
        check(c.cmd("AUTH PLAIN " + b64("\0alice@example.test\0alice-pw")),
              235, "2.7.0")
    c, kw = ehlo(d, source="127.0.0.1")
    with c:
        assert "AUTH" in kw, kw


# ---- smtpd_forbidden_commands

@pytest.mark.parametrize("line", ["GET / HTTP/1.0", "post /x HTTP/1.1",
                                  "Subject: hello"])
def test_forbidden_commands_default(d, line):
    c, _ = ehlo(d)
    with c:
        r = c.cmd(line)
        assert r.raw == ["221 2.7.0 Error: I can break rules, too. "
                         "Goodbye."], r
        assert c.expect_closed(), "connection not closed"
    d.wait_log(r"warning: non-SMTP command from localhost\[127.0.0.1\]: %s$"
               % line.replace("/", r"\/"), timeout=5)


def test_unknown_command_is_not_forbidden(d):
    c, _ = ehlo(d)
    with c:
        check(c.cmd("FOO bar"), 500, "5.5.2", "command not recognized")
        check(c.cmd("NOOP"), 250)


def test_forbidden_commands_list_and_table(d):
    c, _ = ehlo(d, "forbid")
    with c:
        check(c.cmd("GET /"), 500, "5.5.2")    # not in this list
        r = c.cmd("foo")
        check(r, 221, "2.7.0", "I can break rules, too. Goodbye.")
        assert c.expect_closed()
    c, _ = ehlo(d, "forbid")
    with c:
        check(c.cmd("X-TEST 1"), 221, "2.7.0")  # regexp: table
        assert c.expect_closed()


def test_forbidden_commands_inline_regexp(d):
    """regexp:{{/^[^A-Z]/ Bogus}} (an inline pattern table, Postfix 3.7):
    a line that does not start with a letter ends the session; commands
    and the names in the list behave as before."""
    c, _ = ehlo(d, "forbid_inline")
    with c:
        check(c.cmd("FOO bar"), 500, "5.5.2")
        check(c.cmd("NOOP"), 250)
        check(c.cmd("1abc"), 221, "2.7.0", "I can break rules, too.")
        assert c.expect_closed()
    c, _ = ehlo(d, "forbid_inline")
    with c:
        check(c.cmd("get /"), 221, "2.7.0")
        assert c.expect_closed()


def test_check_has_no_later_notice(d):
    p = d.cli("check")
    out = p.stdout.decode() + p.stderr.decode()
    for name in ("smtpd_reject_footer", "smtpd_discard_ehlo_keywords",
                 "smtpd_discard_ehlo_keyword_address_maps",
                 "smtpd_sasl_exceptions_networks",
                 "smtpd_forbidden_commands"):
        assert "%s is not used" % name not in out, out
    assert p.returncode == 0, out


@pytest.mark.parametrize("name,value,msg", [
    ("smtpd_sasl_exceptions_networks", "999.1.2.3",
     r'network list: "999.1.2.3": bad network address'),
    ("smtpd_forbidden_commands", "CONNECT nosuch:/x",
     "unsupported dictionary type: nosuch"),
    ("smtpd_discard_ehlo_keyword_address_maps", "nosuch:/x",
     "unsupported dictionary type: nosuch"),
])
def test_bad_values_are_errors(facteurd, name, value, msg):
    d = facteurd(start=False)
    d.extra_main_cf = "%s = %s\n" % (name, value)
    d.write_config()
    p = d.cli("check")
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert re.search(r"main\.cf, line \d+: %s: %s" % (name, msg), err), err
