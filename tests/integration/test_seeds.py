"""
test_seeds.py - the restriction blocks of seed 001 and seed 004, as the
guides write them (their main.cf lines copied below; only addresses,
paths and mynetworks adapted so that 127.0.0.2 is a stranger and
127.0.0.1 a trusted client), load and behave as their comments say: one
accepted and one refused case for each list. Seed 004's typo
"reject_invalide_hostname" is a start-up error naming file:line and the
nearest valid name; with the typo corrected, the block works. DNS answers
come from the private dnsmasq of test_policy_dns (known.test has an MX,
other .test names do not exist).
"""
import re
import time

from dnsserver import dns_server  # noqa: F401 (fixture)
from harness import check
from test_policy_dns import dnsmasq  # noqa: F401 (fixture)
from test_tls import cert  # noqa: F401 (fixture)

STRANGER = "127.0.0.2"

# seed 001, "Paramètres généraux" .. "Distribution locale" and the
# restriction block, comments included (mynetworks adapted: see above)
SEED001 = """\
#######################
# Paramètres généraux #
#######################
# Nom de domaine de messagerie principal.
mydomain = example.com
# Nom d'hôte.
myhostname = tintin.example.com
# Nom de domaine utilisé pour les adresses incomplètes.
myorigin = $mydomain
# Activer l'écoute IPv6.
inet_protocols = all
# Les clients SMTP sûrs, qui auront plus de privilèges
# (concrètement, le droit d'utiliser ce serveur comme relais).
mynetworks = 127.0.0.1/32 [::1]/128
################
# Serveur SMTP #
################
# Les noms de domaine pour lesquels on accepte le courrier.
mydestination = example.com, tintin.example.com, localhost, localhost.localdomain
# Si votre FAI ne vous permet pas de poster le courrier directement,
# utiliser son serveur SMTP comme relais en décommentant cette ligne.
#relayhost = smtp.fai.com
#######################
# Distribution locale #
#######################
# Commande pour distribuer le courrier.
mailbox_command = procmail -a "$EXTENSION"
# Taille limite des BàL
mailbox_size_limit = 51200000
# Caractère séparant le nom de destinataire d'un paramètre additionnel
# (adresses « plussées », du type <untel+nawak@example.com> → <untel@example.com>)
recipient_delimiter = +

# Règles pour accepter ou refuser une connexion :
# - on attend une seconde (pour piéger les zombies) ;
# - on interdit la parallélisation là où il n'est pas sensé y en avoir.
smtpd_client_restrictions = permit_mynetworks, permit_sasl_authenticated, sleep 1, reject_unauth_pipelining
# Règles pour accepter ou refuser un message, dès lors qu'on connaît le nom
# de l'hôte de l'expéditeur (par sa commande HELO ou EHLO) :
# - on refuse les noms d'hôte invalides.
smtpd_helo_restrictions = reject_invalid_helo_hostname
# Règles pour accepter ou refuser un message, dès lors qu'on connaît l'adresse
# de l'expéditeur :
# - s'il vient d'un expéditeur inexistant de notre domaine, on le rejette ;
# - si le domaine de l'expéditeur n'a pas d'IP ou de MX, on le refuse ;
# - s'il vient d'un client sûr ou d'un client authentifié, on l'accepte ;
# - si l'adresse de l'expéditeur n'est pas sous forme canonique, on le refuse.
smtpd_sender_restrictions = reject_unlisted_sender, reject_unknown_sender_domain, permit_mynetworks, permit_sasl_authenticated, reject_non_fqdn_sender
# Règles pour accepter ou refuser un message, dès lors qu'on connaît le
# destinataire (par la commande RCPT TO) :
# - s'il est destiné à un expéditeur forgé chez nous, on le rejette ;
# - s'il est destiné à un domaine forgé, on le rejette ;
# - s'il vient d'un hôte sûr ou d'un client authentifié, on l'accepte ;
# - si l'adresse de destination n'est pas sous forme canonique, on le refuse ;
# - finalement, s'il n'est pas destiné à un domaine que l'on gère ou pour
# lequel on relaie, on le refuse.
smtpd_recipient_restrictions = reject_unlisted_recipient, reject_unknown_recipient_domain, permit_mynetworks, permit_sasl_authenticated, reject_non_fqdn_recipient, reject_unauth_destination
"""

# seed 004's main.cf lines around its restriction block (TLS and SASL
# lines are exercised by the TLS/SASL tests; alias and canonical paths
# adapted to the test's directory)
SEED004 = """\
# - my parametres
mydomain = example.com
myhostname = tamanoir.example.com
myorigin = $mydomain

smtpd_banner = $myhostname ESMTP $mail_name
biff = no
append_dot_mydomain = no

message_size_limit = 20480000
smtpd_recipient_restrictions = permit_mynetworks,
    permit_sasl_authenticated,
    reject_unknown_sender_domain,
    reject_unknown_recipient_domain,
    reject_unauth_pipelining,
    reject_non_fqdn_hostname,
    reject_unauth_destination,
    permit
smtpd_helo_restrictions = permit_mynetworks,
    permit_sasl_authenticated,
    reject_non_fqdn_hostname,
    reject_invalide_hostname,
    permit
smtpd_sender_restrictions = permit_mynetworks,
    permit_sasl_authenticated,
    reject_non_fqdn_sender,
    reject_unknown_sender_domain,
    permit
alias_database = hash:{conf}/aliases
mydestination = $myhostname, localhost, localhost.localdomain,localhost.$myhostname, mail.foucry.net, foucry.net, pilstock-app.com
relayhost =
mynetworks = 127.0.0.1/32
recipient_delimiter = +
alias_maps = hash:{conf}/aliases,hash:$config_directory/aliases
sender_canonical_maps = hash:{conf}/canonical
"""


def names(text):
    return set(re.findall(r"(?m)^([a-z_0-9]+)\s*=", text))


def seeded(facteurd, text, dns_port, start=True):
    """A daemon whose main.cf ends with the seed's lines (the harness's
    own settings for the same names are left out)."""
    d = facteurd(start=False)
    text = text.replace("{conf}", d.confdir)
    for n in names(text):
        d.params.pop(n, None)
    d.params["facteur_dns_servers"] = "127.0.0.1:%d" % dns_port
    d.extra_main_cf = text
    d.valias += ("tintin@example.com alice@example.test\n"
                 "jacques@foucry.net bob@example.test\n")
    d.write_config()
    if start:
        d.start()
    return d


def rcpt(d, sender, to, helo="milou.example.net", source=STRANGER):
    with d.session(helo=helo, source=source) as c:
        r = c.cmd("MAIL FROM:<%s>" % sender)
        if r.code != 250:
            return r
        return c.cmd("RCPT TO:<%s>" % to)


def test_seed001_loads(facteurd, dnsmasq):  # noqa: F811
    d = seeded(facteurd, SEED001, dnsmasq, start=False)
    r = d.cli("check")
    out = (r.stdout + r.stderr).decode()
    assert r.returncode == 0, out
    assert "unknown parameter" not in out, out


def test_seed001_client_block(facteurd, dnsmasq):  # noqa: F811
    d = seeded(facteurd, SEED001, dnsmasq)
    # "on attend une seconde": a stranger waits, a trusted client does not
    t0 = time.monotonic()
    check(rcpt(d, "tournesol@known.test", "tintin@example.com"), 250)
    assert time.monotonic() - t0 >= 1.0
    t0 = time.monotonic()
    check(rcpt(d, "tournesol@known.test", "tintin@example.com",
               source="127.0.0.1"), 250)
    assert time.monotonic() - t0 < 1.0
    # "on interdit la parallélisation": HELO (no PIPELINING) + MAIL at once
    c = d.connect(source=STRANGER)
    c.send(b"HELO milou.example.net\r\nMAIL FROM:<tournesol@known.test>\r\n")
    check(c.reply(), 250)
    check(c.reply(), 250)
    check(c.cmd("RCPT TO:<tintin@example.com>"), 503, "5.5.0",
          r"Client host rejected: Improper use of SMTP command pipelining")
    c.close()


def test_seed001_helo_block(facteurd, dnsmasq):  # noqa: F811
    d = seeded(facteurd, SEED001, dnsmasq)
    check(rcpt(d, "tournesol@known.test", "tintin@example.com",
               helo="milou..example.net"), 501, "5.5.2",
          r"<milou\.\.example\.net>: Helo command rejected: Invalid name")
    check(rcpt(d, "tournesol@known.test", "tintin@example.com",
               helo="milou.example.net"), 250)


def test_seed001_sender_block(facteurd, dnsmasq):  # noqa: F811
    d = seeded(facteurd, SEED001, dnsmasq)
    # "expéditeur inexistant de notre domaine"
    check(rcpt(d, "nobody@example.com", "tintin@example.com"), 550, "5.1.0",
          r"<nobody@example\.com>: Sender address rejected: User unknown")
    # "domaine de l'expéditeur sans IP ni MX"
    check(rcpt(d, "tournesol@nowhere.test", "tintin@example.com"), 450,
          "4.1.8", r"<tournesol@nowhere\.test>: Sender address rejected: "
          r"Domain not found")
    # a real one from outside, and a local user from a trusted client
    check(rcpt(d, "tournesol@known.test", "tintin@example.com"), 250)
    check(rcpt(d, "tintin@example.com", "tintin@example.com",
               source="127.0.0.1"), 250)


def test_seed001_recipient_block(facteurd, dnsmasq):  # noqa: F811
    d = seeded(facteurd, SEED001, dnsmasq)
    # "destiné à un expéditeur forgé chez nous"
    check(rcpt(d, "tournesol@known.test", "nobody@example.com"), 550,
          "5.1.1", r"<nobody@example\.com>: Recipient address rejected: "
          r"User unknown in local recipient table")
    # "destiné à un domaine forgé" (before permit_mynetworks: for trusted
    # clients too; strangers get the relay refusal first)
    check(rcpt(d, "tintin@example.com", "x@nowhere.test", source="127.0.0.1"),
          450, "4.1.2", r"<x@nowhere\.test>: Recipient address rejected: "
          r"Domain not found")
    # no relaying for strangers (smtpd_relay_restrictions' default answers
    # first: defer_unauth_destination), but for trusted clients
    check(rcpt(d, "tournesol@known.test", "x@known.test"), 454, "4.7.1",
          r"<x@known\.test>: Relay access denied")
    check(rcpt(d, "tintin@example.com", "x@known.test", source="127.0.0.1"),
          250)
    # the seed's own dialogue
    check(rcpt(d, "tournesol@known.test", "tintin@example.com"), 250)
    d.wait_log(r"NOQUEUE: reject: RCPT from [^ ]*\[127\.0\.0\.2\]: 550 5\.1\.1 "
               r"<nobody@example\.com>")


def seed004(facteurd, dns_port, fixed):
    text = SEED004
    if fixed:
        text = text.replace("reject_invalide_hostname",
                            "reject_invalid_hostname")
    d = seeded(facteurd, text, dns_port, start=False)
    with open(d.confdir + "/aliases", "w") as f:
        f.write("root: jacques@foucry.net\n")
    with open(d.confdir + "/canonical", "w") as f:
        f.write("jacques jacques@foucry.net\n")
    return d


def test_seed004_typo_is_a_startup_error(facteurd, dnsmasq):  # noqa: F811
    d = seed004(facteurd, dnsmasq, fixed=False)
    want = (r"main\.cf, line (\d+): smtpd_helo_restrictions: unknown "
            r"restriction \"reject_invalide_hostname\" \(did you mean "
            r"\"reject_invalid_hostname\"\?\)")
    r = d.cli("check")
    m = re.search(want, (r.stdout + r.stderr).decode())
    assert r.returncode != 0 and m, r
    # the line is the one of smtpd_helo_restrictions in main.cf
    lines = open(d.confdir + "/main.cf").read().split("\n")
    assert lines[int(m.group(1)) - 1].startswith("smtpd_helo_restrictions")
    d.start_fails(want)


def test_seed004_fixed_block(facteurd, dnsmasq):  # noqa: F811
    d = seed004(facteurd, dnsmasq, fixed=True)
    r = d.cli("check")
    assert r.returncode == 0, r
    d.start()
    # helo: reject_non_fqdn_hostname (the old name), reject_invalid_hostname
    check(rcpt(d, "tournesol@known.test", "jacques@foucry.net",
               helo="milou"), 504, "5.5.2",
          r"<milou>: Helo command rejected: need fully-qualified hostname")
    # an invalid name is not fully qualified either: Postfix's
    # reject_non_fqdn_hostname answers first, reject_invalid_hostname
    # (listed after it) never gets a say in this block
    check(rcpt(d, "tournesol@known.test", "jacques@foucry.net",
               helo="milou..example.net"), 504, "5.5.2",
          r"<milou\.\.example\.net>: Helo command rejected: need "
          r"fully-qualified hostname")
    # sender: reject_non_fqdn_sender, reject_unknown_sender_domain
    check(rcpt(d, "tournesol@milou", "jacques@foucry.net"), 504, "5.5.2",
          r"<tournesol@milou>: Sender address rejected: need "
          r"fully-qualified address")
    check(rcpt(d, "tournesol@nowhere.test", "jacques@foucry.net"), 450,
          "4.1.8", r"Sender address rejected: Domain not found")
    # recipient: the relay default answers strangers first; trusted relay
    check(rcpt(d, "tournesol@known.test", "x@known.test"), 454, "4.7.1",
          r"Relay access denied")
    check(rcpt(d, "tournesol@known.test", "x@known.test", helo="milou",
               source="127.0.0.1"), 250)
    # accepted: a stranger with clean names, to our domain; root's alias
    check(rcpt(d, "tournesol@known.test", "jacques@foucry.net"), 250)
    check(rcpt(d, "tournesol@known.test", "root@tamanoir.example.com"), 250)


# seed 001's master.cf (addresses adapted to free loopback ports)
SEED001_MASTER = """\
smtp inet n - - - - smtpd
submission inet n - - - - smtpd -o smtpd_enforce_tls=yes -o smtpd_client_restrictions=permit_sasl_authenticated,reject
smtps inet n - - - - smtpd -o smtpd_tls_wrappermode=yes
"""


def test_seed001_master_cf(facteurd, dnsmasq, cert):  # noqa: F811
    from harness import free_port
    from test_tls import TLSConn, client_ctx, starttls

    d = seeded(facteurd, SEED001, dnsmasq, start=False)
    ports = {"smtp": d.port, "submission": free_port(), "smtps": free_port()}
    master = SEED001_MASTER
    for name, port in ports.items():
        master = re.sub(r"(?m)^%s " % name, "127.0.0.1:%d " % port, master)
    d.master_cf = master
    d.params.update({"smtpd_tls_cert_file": cert["cert"],
                     "smtpd_tls_key_file": cert["key"]})
    d.write_config()
    r = d.cli("check")
    assert r.returncode == 0, r
    d.start()
    # submission: TLS first (smtpd_enforce_tls), then only authenticated
    # clients ("permit_sasl_authenticated,reject"), even trusted ones
    c = TLSConn(d.host, ports["submission"])
    check(c.reply(), 220)
    check(c.cmd("EHLO milou.example.net"), 250)
    check(c.cmd("MAIL FROM:<tintin@example.com>"), 530, "5.7.0",
          r"Must issue a STARTTLS command first")
    starttls(c)
    check(c.cmd("EHLO milou.example.net"), 250)
    check(c.cmd("MAIL FROM:<tintin@example.com>"), 250)
    check(c.cmd("RCPT TO:<tintin@example.com>"), 554, "5.7.1",
          r"Client host rejected: Access denied")
    c.close()
    # smtps: TLS from the first byte; port 25's rules apply there
    c = TLSConn(d.host, ports["smtps"])
    c.starttls(client_ctx())
    check(c.reply(), 220)
    check(c.cmd("EHLO milou.example.net"), 250)
    check(c.cmd("MAIL FROM:<tintin@example.com>"), 250)
    check(c.cmd("RCPT TO:<tintin@example.com>"), 250)
    c.close()
