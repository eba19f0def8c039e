"""
test_dovecot_imap.py - Dovecot IMAP reads what facteurd delivers: a private
dovecot (own base_dir, state_dir, config, loopback high port, passwd-file
users with {PLAIN} passwords, the mail_location of contrib/dovecot) serves
the Maildir facteurd wrote; LOGIN, SELECT INBOX and FETCH give back the
delivered bytes, a Sieve-filed folder and its flags show up, a wrong
password is refused. The contrib/dovecot snippets parse with doveconf.
The LDAP and SQL snippets (auth-facteur-{ldap,sql}.conf.ext and
dovecot-facteur-{ldap,sql}.conf.ext, only the server, credentials, paths
and vmail ids changed) serve the users of a private slapd / mariadbd (the
entries and rows of test_ldap.py / test_mysql.py) to whom facteurd
delivered through its ldap: / mysql: tables: userPassword and auth_bind
for LDAP, PostfixAdmin's mailbox table for SQL.
"""
import imaplib
import os
import pwd
import re
import subprocess
import time

import pytest

import dirtables
import harness
import test_ldap
import test_mysql
from dovecotserver import (DOVECONF, DOVECOT, DovecotProcess, instances,
                           passwd_file_auth)
from harness import make_msg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONTRIB = os.path.join(ROOT, "contrib", "dovecot")


def need_dovecot():
    for exe in (DOVECOT, DOVECONF, "/usr/lib/dovecot/imap"):
        if not os.access(exe, os.X_OK):
            pytest.fail("%s missing: run `make test-deps`" % exe, pytrace=False)


class Dovecot(DovecotProcess):
    """One private dovecot serving IMAP on 127.0.0.1 for facteurd's maildirs."""

    def __init__(self, d, users=None, auth=None, files=None):
        """users: {login: password} for a passwd-file; or auth: the
        passdb/userdb blocks and files: {name: text} beside dovecot.conf
        ("@DIR@" in both is this instance's directory)."""
        self.dir = os.path.join(d.root, "dovecot")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = harness.free_port()
        self.proc = None
        self.log = os.path.join(self.dir, "dovecot.log")
        me = pwd.getpwuid(os.getuid()).pw_name
        internal = harness.TEST_MAIL_OWNER if os.geteuid() == 0 else me
        with open(os.path.join(self.dir, "users"), "w") as f:
            for user, pw in (users or {}).items():
                f.write("%s:{PLAIN}%s:::\n" % (user, pw))
        os.chmod(os.path.join(self.dir, "users"), 0o644)
        for name, text in (files or {}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text.replace("@DIR@", self.dir))
        if auth is None:
            auth = passwd_file_auth(os.path.join(self.dir, "users"), d.mail,
                                    d.vmail_uid, d.vmail_gid)
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""\
# A private instance: contrib/dovecot/90-facteur.conf and
# auth-facteur-passwdfile.conf.ext with this test's paths and users.
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = facteur-test-{port}
log_path = {log}
info_log_path = {log}
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
# Failed logins are part of the tests: no growing per-IP penalty.
auth_failure_delay = 0
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
default_internal_user = {internal}
default_login_user = {internal}
first_valid_uid = 1
mail_location = maildir:{mail}/%d/%n
mail_home = {mail}/%d/%n
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
""".format(dir=self.dir, port=self.port, log=self.log, internal=internal,
           mail=d.mail) + auth.replace("@DIR@", self.dir))

    def ready(self):
        imaplib.IMAP4("127.0.0.1", self.port, timeout=5).logout()
        return True

    def login(self, user, pw):
        c = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        c.login(user, pw)
        return c


def new_dovecot(d, users=None, **kw):
    """A Dovecot for daemon d, not started (see Dovecot)."""
    need_dovecot()
    return Dovecot(d, users, **kw)


@pytest.fixture
def dovecot_for():
    yield from instances(new_dovecot)


def fetch_all(c, mailbox):
    typ, data = c.select(mailbox, readonly=True)
    assert typ == "OK", data
    n = int(data[0])
    out = []
    for i in range(1, n + 1):
        typ, data = c.fetch(str(i), "(FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        out.append((data[0][0], data[0][1]))
    return out


def test_imap_fetches_the_delivered_message(facteurd, dovecot_for):
    d = facteurd()
    body = b"".join(b"line %d of the message, with some text.\r\n" % i
                    for i in range(200))
    msg = make_msg(subject="read over IMAP", body=body)
    d.send("sender@example.net", "alice@example.test", msg)
    files = d.wait_files("alice@example.test", 1)
    assert len(files) == 1
    stored = files[0].raw
    assert b"\r" not in stored          # Maildir files have LF line ends
    dv = dovecot_for(d, {"alice@example.test": "alice pw", "bob@example.test": "bob pw"})
    c = dv.login("Alice@Example.test", "alice pw")
    try:
        got = fetch_all(c, "INBOX")
        assert len(got) == 1
        # IMAP sends CRLF; the bytes are facteur's delivered file exactly.
        assert got[0][1] == stored.replace(b"\n", b"\r\n")
        assert got[0][1].endswith(body)
        assert b"Subject: read over IMAP" in got[0][1]
        assert re.search(rb"^Return-Path: <sender@example.net>", got[0][1])
    finally:
        c.logout()
    c = dv.login("bob@example.test", "bob pw")
    try:
        assert fetch_all(c, "INBOX") == []
    finally:
        c.logout()
    with pytest.raises(imaplib.IMAP4.error):
        dv.login("alice@example.test", "wrong")


def test_sieve_folder_and_flags_visible(facteurd, dovecot_for):
    d = facteurd()
    home = os.path.join(d.mail, "example.test", "alice")
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, ".dovecot.sieve"), "w") as f:
        f.write('require ["fileinto", "imap4flags"];\n'
                'if header :contains "subject" "invoice" {\n'
                '  addflag "\\\\Flagged"; fileinto "Invoices"; }\n')
    for p in (d.mail, os.path.join(d.mail, "example.test"), home):
        os.chown(p, d.vmail_uid, d.vmail_gid)
    os.chown(os.path.join(home, ".dovecot.sieve"), d.vmail_uid, d.vmail_gid)
    d.send("sender@example.net", "alice@example.test", make_msg(subject="invoice 42"))
    d.send("sender@example.net", "alice@example.test", make_msg(subject="hello"))
    deadline = time.time() + harness.DELIVERY_TIMEOUT
    while time.time() < deadline:
        if len(d.files("alice@example.test")) >= 1 and \
                os.path.isdir(os.path.join(home, ".Invoices", "new")) and \
                os.listdir(os.path.join(home, ".Invoices", "new")) + \
                os.listdir(os.path.join(home, ".Invoices", "cur")):
            break
        time.sleep(0.05)
    dv = dovecot_for(d, {"alice@example.test": "pw"})
    c = dv.login("alice@example.test", "pw")
    try:
        deadline = time.time() + 10
        while True:
            typ, boxes = c.list()
            names = b" ".join(boxes)
            if b"Invoices" in names or time.time() > deadline:
                break
            time.sleep(0.1)
        assert b"Invoices" in names, boxes
        filed = fetch_all(c, "Invoices")
        assert len(filed) == 1
        assert b"Subject: invoice 42" in filed[0][1]
        assert b"\\Flagged" in filed[0][0]
        inbox = fetch_all(c, "INBOX")
        assert [b"Subject: hello" in m for _, m in inbox] == [True]
    finally:
        c.logout()


def test_contrib_snippets_parse(tmp_path):
    """contrib/dovecot as an operator installs it (paths moved to a temp
    dir): doveconf accepts each of the three auth variants."""
    need_dovecot()
    for variant in ("passwdfile", "ldap", "sql"):
        d = tmp_path / variant
        (d / "conf.d").mkdir(parents=True)
        for name in os.listdir(CONTRIB):
            if name == "README":
                continue
            with open(os.path.join(CONTRIB, name)) as f:
                text = f.read().replace("/etc/dovecot/", str(d) + "/")
            dest = d / ("conf.d" if name.startswith(("90-", "auth-")) else ".") / name
            dest.write_text(text)
        main = (d / "conf.d" / "90-facteur.conf").read_text()
        main = main.replace("!include auth-facteur-passwdfile.conf.ext",
                            "#!include auth-facteur-passwdfile.conf.ext")
        main = main.replace("#!include auth-facteur-%s.conf.ext" % variant,
                            "!include auth-facteur-%s.conf.ext" % variant)
        main = re.sub(r"(?m)^mail_(uid|gid) = vmail$",
                      lambda m: "mail_%s = %s" % (m.group(1), "root"), main)
        (d / "conf.d" / "90-facteur.conf").write_text(main)
        (d / "dovecot.conf").write_text(
            "base_dir = %s/run\n!include conf.d/90-facteur.conf\n" % d)
        r = subprocess.run([DOVECONF, "-n", "-c", str(d / "dovecot.conf")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (variant, r.stderr)
        out = r.stdout
        assert "mail_location = maildir:/var/vmail/%d/%n" in out
        want = {"passwdfile": "driver = passwd-file", "ldap": "driver = ldap",
                "sql": "driver = sql"}[variant]
        assert want in out, out


# ---- the LDAP and SQL variants of contrib/dovecot against real servers

def contrib(name, changes):
    """A contrib/dovecot file with changes ((old, new) pairs, each of
    which must be there) applied."""
    with open(os.path.join(CONTRIB, name)) as f:
        text = f.read()
    for old, new in changes:
        assert old in text, (name, old)
        text = text.replace(old, new)
    return text


def vmail_changes(d, kind):
    """The Maildir base and the vmail user's ids of facteurd d."""
    return [("/var/vmail/", d.mail + "/"),
            ("=uid=vmail, =gid=vmail", "=uid=%d, =gid=%d" % (d.vmail_uid, d.vmail_gid))
            if kind == "ldap" else
            ("'vmail' AS uid, 'vmail' AS gid",
             "%d AS uid, %d AS gid" % (d.vmail_uid, d.vmail_gid))]


def imap_inbox(dv, user, pw):
    c = dv.login(user, pw)
    try:
        return fetch_all(c, "INBOX")
    finally:
        c.logout()


def same_bytes(got, delivered_file):
    assert [m for _, m in got] == [delivered_file.raw.replace(b"\n", b"\r\n")]


@pytest.fixture(scope="module")
def slapd():
    yield from dirtables.slapd(test_ldap.BASE, test_ldap.READER, test_ldap.ENTRIES)


@pytest.fixture(scope="module")
def mariadb():
    yield from dirtables.mariadb("facteur", test_mysql.PASSWORD, test_mysql.ROWS)


@pytest.mark.parametrize("mode", ["userPassword", "auth_bind"])
def test_imap_ldap_users(facteurd, dovecot_for, slapd, mode):
    """facteurd delivers through ldap: tables; Dovecot's LDAP passdb and
    userdb (contrib snippets) log the same users in and find the mail."""
    d = facteurd(start=False)
    test_ldap.configure(d, slapd.url)
    d.start()
    msg = make_msg(subject="ldap users over IMAP", to="team@hosted.test")
    d.send("sender@example.net", ["a.liddell@hosted.test", "team@hosted.test"], msg)
    m = dirtables.mid(msg)
    alice = d.wait_msgid("alice@hosted.test", m)
    bob = d.wait_msgid("bob@hosted.test", m)
    assert len(alice) == 1 and len(bob) == 1
    changes = [("uris = ldap://ldap.example.test/", "uris = " + slapd.url),
               ("dn = cn=facteur,ou=services,dc=example,dc=test",
                "dn = " + test_ldap.READER),
               ("dnpass = CHANGE_ME", "dnpass = " + test_ldap.READER_PW),
               ("base = dc=example,dc=test", "base = " + test_ldap.BASE)]
    if mode == "auth_bind":
        changes.append(("\nauth_bind = no\n", "\nauth_bind = yes\n"
                        "auth_bind_userdn = uid=%%n,ou=people,%s\n" % test_ldap.BASE))
    conf = contrib("dovecot-facteur-ldap.conf.ext", changes + vmail_changes(d, "ldap"))
    auth = contrib("auth-facteur-ldap.conf.ext", [("/etc/dovecot/", "@DIR@/")])
    dv = dovecot_for(d, auth=auth, files={"dovecot-facteur-ldap.conf.ext": conf})
    same_bytes(imap_inbox(dv, "alice@hosted.test", "alice-pw"), alice[0])  # {SSHA}
    same_bytes(imap_inbox(dv, "BOB@hosted.test", "bob-pw"), bob[0])        # {CRYPT}
    if mode == "userPassword":
        # {ARGON2ID}: Dovecot checks it (slapd has no argon2 module here).
        assert imap_inbox(dv, "carol@hosted.test", "Secret-1") == []
        # inactive: the pass_filter does not find it
        with pytest.raises(imaplib.IMAP4.error):
            dv.login("gone@hosted.test", "alice-pw")
    for user, pw in [("alice@hosted.test", "bob-pw"), ("nobody@hosted.test", "x"),
                     ("a*)(mail=*", "alice-pw")]:
        with pytest.raises(imaplib.IMAP4.error):
            dv.login(user, pw)


def test_imap_sql_users(facteurd, dovecot_for, mariadb):
    """facteurd delivers through mysql: tables (an alias domain and a
    catch-all among them); Dovecot's SQL passdb and userdb (contrib
    snippets) log the PostfixAdmin users in and find the mail."""
    mariadb.sql("CREATE USER IF NOT EXISTS 'dovecot'@'127.0.0.1' IDENTIFIED BY "
                "'dovecot-pw'; GRANT SELECT ON postfixadmin.* TO "
                "'dovecot'@'127.0.0.1';", db="mysql")
    d = facteurd(start=False)
    test_mysql.configure(d, "inet:127.0.0.1:%d" % mariadb.port)
    d.start()
    msg = make_msg(subject="sql users over IMAP", to="alice@hosted.test")
    d.send("sender@example.net", ["alice@hosted.test", "bob@alias.test",
                                  "anyone@second.test"], msg)
    m = dirtables.mid(msg)
    got = {u: d.wait_msgid(u, m) for u in ("alice@hosted.test", "bob@hosted.test",
                                            "carol@second.test")}
    assert all(len(v) == 1 for v in got.values()), got
    conf = contrib("dovecot-facteur-sql.conf.ext", [
        ("connect = host=/run/mysqld/mysqld.sock dbname=postfixadmin user=dovecot "
         "password=CHANGE_ME",
         "connect = host=127.0.0.1 port=%d dbname=postfixadmin user=dovecot "
         "password=dovecot-pw" % mariadb.port)] + vmail_changes(d, "sql"))
    auth = contrib("auth-facteur-sql.conf.ext", [("/etc/dovecot/", "@DIR@/")])
    dv = dovecot_for(d, auth=auth, files={"dovecot-facteur-sql.conf.ext": conf})
    same_bytes(imap_inbox(dv, "alice@hosted.test", "alice-pw"),
               got["alice@hosted.test"][0])                         # {SSHA}
    same_bytes(imap_inbox(dv, "BOB@hosted.test", "bob-pw"),
               got["bob@hosted.test"][0])                           # {SHA512-CRYPT}
    same_bytes(imap_inbox(dv, "carol@second.test", "Secret-1"),
               got["carol@second.test"][0])                         # {ARGON2ID}
    for user, pw in [("gone@hosted.test", "alice-pw"),   # inactive
                     ("alice@hosted.test", "bob-pw"),
                     ("x' OR '1'='1", "alice-pw")]:
        with pytest.raises(imaplib.IMAP4.error):
            dv.login(user, pw)
