"""
test_seed003.py - seed 003's tables as the guide writes them (paths
adapted), and seed 000's VRFY switch:

- virtual: "virtual_maps=hash:/etc/postfix/virtual" (the pre-2.0 name,
  still honoured as Postfix 3's virtual_alias_maps default) with
  "@thebible.com fred" and the chained "@vieuxbouc.com @thebible.com":
  the guide's test mail to lol@vieuxbouc.com reaches fred; the
  "virtual.domain anything" / postmaster / user lines of its syntax
  section make a virtual alias domain;
- transport: the mydestination domains (and ".linuxfred.lan") -> local:,
  plus seed 003's aliases (root: fred): mail to root@linuxfred.lan is
  delivered through the aliases, an unknown local user is refused at
  RCPT, and a sub-domain routed to local: is not silently lost;
- canonical before virtual with the guide's canonical lines (the full
  canonical and masquerading cases are in test_rewrite.py, the aliases
  file in test_aliases.py: not repeated here);
- seed 000: disable_vrfy_command = yes -> 502 5.5.1; no -> VRFY answers
  252 for a known recipient and 550 for an unknown one, as Postfix.
"""
import time

from harness import check, dot_stuff, make_msg

# seed 003, "Virtual:" section (fred is the guide's local user: here an
# alias to his hosted mailbox, as "root: fred" is in test_aliases.py)
VIRTUAL = """\
@thebible.com                   fred
@vieuxbouc.com    @thebible.com
virtual.domain       anything
postmaster@virtual.domain    postmaster
user1@virtual.domain alice@example.test
user2@virtual.domain bob@example.test, carol@example.test
"""

# seed 003, "Transport:" section
TRANSPORT = """\
thebible.linuxfred.lan        local:
localhost.linuxfred.lan      local:
linuxfred.lan                      local:
.linuxfred.lan    local:
"""

# seed 003, "Alias:" section (root: postfix commented out, as it says)
ALIASES = """\
# root:         postfix
root:   fred
frederic.m:     fred
fmr:     fred
root:   admin,fred
postmaster: root
fred: fred@example.test
"""

# seed 003, "Canonical:" section (frederic.m@free.fr made local)
CANONICAL = """\
fred@thebible.linuxfred.lan     frederic.m@example.test
fred@linuxfred.lan              frederic.m@example.test
"""


def _daemon(facteurd, **extra):
    d = facteurd(start=False, main_cf={
        # seed 003's identity
        "myhostname": "thebible.linuxfred.lan",
        "mydomain": "linuxfred.lan",
        "myorigin": "$mydomain",
        "mydestination": "$myhostname, localhost.$mydomain, $mydomain"})
    d.params["alias_maps"] = d.table("aliases", ALIASES, kind="hash")
    d.vmailbox += "fred@example.test example.test/fred/\n"
    d.vmailbox += "frederic.m@example.test example.test/frederic.m/\n"
    for k, v in extra.items():
        if v is None:
            d.params.pop(k, None)
        else:
            d.params[k] = v(d) if callable(v) else v
    d.write_config()
    d.start()
    return d


def _send(d, sender, rcpt, tag):
    msg = make_msg(tag, sender=sender, to=rcpt)
    with d.session() as c:
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        check(c.cmd("RCPT TO:<%s>" % rcpt), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        check(c.reply(), 250)
    return msg


def test_seed003_virtual_maps(facteurd):
    # only the old name: virtual_alias_maps keeps its default
    d = _daemon(facteurd, virtual_alias_maps=None, virtual_maps=lambda d:
                d.table("virtual", VIRTUAL, kind="hash"))
    # the old name is in use: no "unknown parameter" for it
    assert "unknown parameter: virtual_maps" not in d.log()
    # echo ... | mail -s "super le redirection" lol@vieuxbouc.com -> fred
    _send(d, "x@remote.test", "lol@vieuxbouc.com", "vieuxbouc")
    got = d.wait_files("fred@example.test", 1)
    assert len(got) == 1
    assert got[0].field("X-Original-To") == "lol@vieuxbouc.com"
    # @thebible.com directly
    _send(d, "x@remote.test", "anyone@thebible.com", "thebible")
    assert len(d.wait_files("fred@example.test", 2)) == 2
    # "virtual.domain anything" declares a virtual alias domain: its
    # listed users are forwarded, anyone else is unknown, even for a
    # client that is not allowed to relay
    with d.session(source="127.0.0.2") as c:
        check(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        check(c.cmd("RCPT TO:<user2@virtual.domain>"), 250)
        check(c.cmd("RCPT TO:<nobody@virtual.domain>"), 550, "5.1.1",
              r"User unknown in virtual alias table")
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(make_msg("user2", to="user2@virtual.domain")))
        check(c.reply(), 250)
    d.wait_files("bob@example.test", 1)
    d.wait_files("carol@example.test", 1)
    # postmaster@virtual.domain -> postmaster (bare: @myorigin, local) ->
    # aliases: postmaster -> root -> admin, fred; fred's mailbox gets it
    _send(d, "x@remote.test", "postmaster@virtual.domain", "pm")
    assert len(d.wait_files("fred@example.test", 3)) == 3


def test_seed003_transport_local(facteurd):
    d = _daemon(facteurd, transport_maps=lambda d: d.table(
        "transport", TRANSPORT, kind="hash"))
    # mail for root@ each mydestination domain: aliases -> fred
    for dom in ("linuxfred.lan", "thebible.linuxfred.lan",
                "localhost.linuxfred.lan"):
        _send(d, "x@remote.test", "root@" + dom, "root-" + dom)
    got = d.wait_files("fred@example.test", 3)
    assert len(got) == 3
    assert sorted(f.field("X-Original-To") for f in got) == sorted(
        "root@" + x for x in ("linuxfred.lan", "thebible.linuxfred.lan",
                              "localhost.linuxfred.lan"))
    # an unknown local user is refused at RCPT, never queued
    with d.session() as c:
        check(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        check(c.cmd("RCPT TO:<nosuchuser@linuxfred.lan>"), 550, "5.1.1",
              r"User unknown in local recipient table")
    # hosted mailboxes are not affected by the local: entries
    _send(d, "x@remote.test", "alice@example.test", "alice")
    d.wait_files("alice@example.test", 1)
    # ".linuxfred.lan local:" names sub-domains that are not local here:
    # relayed mail to one is deferred with a reason, never lost silently
    _send(d, "x@remote.test", "joe@sub.linuxfred.lan", "sub")
    assert d.wait_log(r"to=<joe@sub\.linuxfred\.lan>.*status=deferred "
                      r"\(.*local")


def test_seed003_canonical_before_virtual(facteurd):
    d = _daemon(
        facteurd,
        canonical_maps=lambda d: d.table("canonical", CANONICAL, kind="hash"),
        virtual_alias_maps=lambda d: d.table(
            "valias2", "fred@linuxfred.lan carol@example.test\n"
            "frederic.m@example.test bob@example.test\n"))
    # canonical first: fred@linuxfred.lan -> frederic.m@example.test,
    # which virtual then sends to bob; the virtual entry for the
    # original address (carol) is never used
    _send(d, "x@remote.test", "fred@linuxfred.lan", "canon")
    got = d.wait_files("bob@example.test", 1)
    assert len(got) == 1
    assert got[0].field("X-Original-To") == "fred@linuxfred.lan"
    time.sleep(0.3)
    assert d.files("carol@example.test") == []


def test_seed000_vrfy_disabled(facteurd):
    d = facteurd(main_cf={"disable_vrfy_command": "yes"})
    with d.session() as c:
        r = c.cmd("EHLO client.test")
        check(r, 250)
        assert "VRFY" not in r.text.upper().split()
        check(c.cmd("VRFY alice@example.test"), 502, "5.5.1",
              r"^5\.5\.1 VRFY command is disabled$")
        check(c.cmd("VRFY nobody@example.test"), 502, "5.5.1")
        check(c.cmd("NOOP"), 250)


def test_seed000_vrfy_enabled(facteurd):
    d = facteurd(main_cf={"disable_vrfy_command": "no"})
    with d.session() as c:
        r = c.cmd("EHLO client.test")
        check(r, 250)
        # Postfix echoes the argument as sent
        check(c.cmd("VRFY alice@example.test"), 252, "2.0.0",
              r"^2\.0\.0 alice@example\.test$")
        check(c.cmd("VRFY <bob@example.test>"), 252, "2.0.0",
              r"^2\.0\.0 <bob@example\.test>$")
        check(c.cmd("VRFY nobody@example.test"), 550, "5.1.1",
              r"<nobody@example\.test>: Recipient address rejected: "
              r"User unknown in virtual mailbox table")
        check(c.cmd("VRFY"), 501, "5.5.4")


def test_seed003_main_cf_loads(facteurd):
    """The guide's main.cf lines (paths adapted; inet_interfaces left to
    the test's listener) load: what facteur does not use is a notice
    naming it, nothing is an unknown parameter."""
    d = facteurd(start=False, main_cf={
        "myhostname": "thebible.linuxfred.lan",
        "mydomain": "linuxfred.lan",
        "myorigin": "$mydomain",
        "mydestination": "$myhostname, localhost.$mydomain, $mydomain",
        "mynetworks": "168.100.189.0/28, 127.0.0.0/8",
        "relayhost": "smtp.wanadoo.fr",
        "mail_spool_directory": "/var/spool/mail",
        "mailbox_command": "/usr/bin/procmail",
        "mailq_path": "/usr/bin/mailq.postfix",
        "virtual_alias_maps": None,
    })
    d.params["alias_maps"] = d.table("aliases", ALIASES, kind="hash")
    d.params["transport_maps"] = d.table("transport", TRANSPORT, kind="hash")
    d.params["virtual_maps"] = d.table("virtual", VIRTUAL, kind="hash")
    d.params["canonical_maps"] = d.table("canonical", CANONICAL, kind="hash")
    d.vmailbox += "fred@example.test example.test/fred/\n"
    d.vmailbox += "frederic.m@example.test example.test/frederic.m/\n"
    d.write_config()
    d.start()
    log = d.log()
    assert "unknown parameter" not in log, log
    assert d.wait_log(r"mailbox_command is not used by this version")
    r = d.cli("check")
    assert "unknown parameter" not in (r.stdout + r.stderr).decode()
    # and the tables work together: canonical, then virtual, aliases
    _send(d, "x@remote.test", "lol@vieuxbouc.com", "all")
    _send(d, "x@remote.test", "fred@linuxfred.lan", "canon")
    d.wait_files("fred@example.test", 1)
    d.wait_files("frederic.m@example.test", 1)
