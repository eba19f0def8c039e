"""
test_mysql.py - mysql: tables against a real mariadbd started here (temp
datadir, loopback port), loaded with schema/sql/mariadb.sql and the example
queries of schema/sql/*.cf: domains, mailboxes, aliases, alias domains and
catch-all deliver end to end; injection attempts are unknown users and the
data stays intact; an outage gives 451 4.3.0 and mail flows again when the
server is back, without restarting facteurd; with two hosts the one that
answers is used.
"""
import os
import re
import shutil
import sys
import tempfile
import time

import pytest

import harness
from harness import check, make_msg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import servers  # noqa: E402  (tests/servers.py: private slapd and mariadbd)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(ROOT, "schema", "sql")
PASSWORD = "s3cret'pw"

ROWS = """
INSERT INTO domain (domain, active) VALUES ('hosted.test', 1), ('second.test', 1),
  ('off.test', 0);
INSERT INTO mailbox (username, password, maildir, local_part, domain, active) VALUES
  ('alice@hosted.test', '{PLAIN}x', 'hosted.test/alice/', 'alice', 'hosted.test', 1),
  ('bob@hosted.test', '{PLAIN}x', 'hosted.test/bob/', 'bob', 'hosted.test', 1),
  ('gone@hosted.test', '{PLAIN}x', 'hosted.test/gone/', 'gone', 'hosted.test', 0),
  ('carol@second.test', '{PLAIN}x', 'second.test/carol/', 'carol', 'second.test', 1);
INSERT INTO alias (address, goto, domain, active) VALUES
  ('alice@hosted.test', 'alice@hosted.test', 'hosted.test', 1),
  ('bob@hosted.test', 'bob@hosted.test', 'hosted.test', 1),
  ('team@hosted.test', 'alice@hosted.test,bob@hosted.test', 'hosted.test', 1),
  ('@second.test', 'carol@second.test', 'second.test', 1);
INSERT INTO alias_domain (alias_domain, target_domain, active) VALUES
  ('alias.test', 'hosted.test', 1), ('second-alias.test', 'second.test', 1);
INSERT INTO domain (domain, active) VALUES ('alias.test', 1), ('second-alias.test', 1);
"""


@pytest.fixture(scope="module")
def mariadb():
    missing = servers.MariaDB.missing()
    if missing:
        pytest.fail("%s missing: run `make test-deps`" % missing[0], pytrace=False)
    base = tempfile.mkdtemp(prefix="facteur-mariadb-")
    m = servers.MariaDB(base, live=harness.LIVE)
    m.start()
    m.load_postfixadmin("facteur", PASSWORD)
    m.sql(ROWS)
    yield m
    m.stop()
    shutil.rmtree(base, ignore_errors=True)


def write_cf(d, name, example, hosts, extra=""):
    """An example query file of schema/sql with this server's settings."""
    with open(os.path.join(SCHEMA, example)) as f:
        text = f.read()
    text = re.sub(r"(?m)^(hosts|user|password|dbname) =.*\n", "", text)
    text += ("hosts = %s\nuser = facteur\npassword = %s\ndbname = postfixadmin\n"
             "retry_interval = 1\ntimeout = 3\n%s" % (hosts, PASSWORD, extra))
    path = os.path.join(d.confdir, name)
    with open(path, "w") as f:
        f.write(text)
    return "mysql:" + path


def configure(d, hosts):
    w = lambda n, e: write_cf(d, n, e, hosts)
    d.params["virtual_mailbox_domains"] = w("domains.cf", "virtual_domains.cf")
    d.params["virtual_mailbox_maps"] = ", ".join([
        w("mailboxes.cf", "virtual_mailboxes.cf"),
        w("ad_mailboxes.cf", "virtual_alias_domain_mailboxes.cf")])
    d.params["virtual_alias_maps"] = ", ".join([
        w("aliases.cf", "virtual_aliases.cf"),
        w("ad_aliases.cf", "virtual_alias_domain_aliases.cf"),
        w("ad_catchall.cf", "virtual_alias_domain_catchall.cf")])
    d.write_config()


@pytest.fixture(scope="module")
def mx(build, mariadb, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("mysql"))
    d = pool.new(start=False)
    configure(d, "inet:127.0.0.1:%d" % mariadb.port)
    d.start()
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def rcpt(d, addr):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        return c.cmd("RCPT TO:<%s>" % addr)


def mid(msg):
    return re.search(rb"(?im)^Message-ID:\s*(\S+)", msg).group(1).decode()


def test_mailbox_alias_alias_domain_catchall_delivered(mx):
    msg = make_msg("sql", to="team@hosted.test")
    mx.send("sender@example.net",
            ["alice@hosted.test", "team@hosted.test", "bob@alias.test",
             "anyone@second.test", "someone@second-alias.test"], msg)
    m = mid(msg)
    a = mx.wait_msgid("alice@hosted.test", m)
    b = mx.wait_msgid("bob@hosted.test", m)
    c = mx.wait_msgid("carol@second.test", m)
    assert mx.wait_queue_empty(timeout=15) == []
    a = [x for x in mx.delivered("alice@hosted.test") if x.header("Message-ID") == m]
    b = [x for x in mx.delivered("bob@hosted.test") if x.header("Message-ID") == m]
    c = [x for x in mx.delivered("carol@second.test") if x.header("Message-ID") == m]
    assert len(a) == 1 and len(b) == 1 and len(c) == 1
    assert a[0].field("Delivered-To") == "alice@hosted.test"
    assert c[0].field("Delivered-To") == "carol@second.test"


@pytest.mark.parametrize("addr,code", [
    ("nobody@hosted.test", 550),        # hosted domain, no such mailbox
    ("gone@hosted.test", 550),          # inactive mailbox
])
def test_unknown_and_inactive(mx, addr, code):
    r = rcpt(mx, addr)
    assert r.code == code, str(r)


@pytest.mark.parametrize("local", [
    "\"x'); DROP TABLE mailbox; --\"",
    "\"x' OR '1'='1\"",
    "\"x' OR '1'='1' OR 'a\"",       # true for every row if unescaped
    "\"alice@hosted.test' OR username LIKE '%\"",
    "\"a*)(uid=*\"",
    "\"x\\\\' OR 1=1 -- \"",
])
def test_injection_is_an_unknown_user(mx, mariadb, local):
    r = rcpt(mx, local + "@hosted.test")
    check(r, 550, "5.1.1")
    assert mariadb.sql("SELECT COUNT(*) FROM mailbox").strip() == "4"
    assert mariadb.sql("SELECT COUNT(*) FROM alias").strip() == "4"
    check(rcpt(mx, "alice@hosted.test"), 250)


def test_outage_gives_451_then_recovers(mx, mariadb):
    with mx.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@hosted.test>"), 250)
        mariadb.stop()
        try:
            for addr in ("bob@hosted.test", "alice@hosted.test", "x@second.test"):
                check(c.cmd("RCPT TO:<%s>" % addr), 451, "4.3.0")
        finally:
            mariadb.start()
        # The same session, without restarting facteurd: the next attempts
        # reconnect (back-off is at most retry_interval = 1 s).
        deadline = time.time() + 10
        while True:
            r = c.cmd("RCPT TO:<bob@hosted.test>")
            if r.code == 250 or time.time() > deadline:
                break
            assert r.code == 451, str(r)
            time.sleep(0.3)
        check(r, 250, "2.1.5")
    assert re.search(r"mysql:\S+ lookup error for \"\S+\": ", mx.log())


def test_second_host_used_when_first_is_down(build, mariadb, facteurd):
    dead = harness.free_port()
    d = facteurd(start=False)
    configure(d, "inet:127.0.0.1:%d 127.0.0.1:%d" % (dead, mariadb.port))
    d.start()
    for i in range(6):
        check(rcpt(d, "alice@hosted.test"), 250)
        check(rcpt(d, "nobody@hosted.test"), 550)


def test_unreachable_server_at_start_defers(build, facteurd):
    """facteurd starts with its only server down, and answers 451."""
    d = facteurd(start=False)
    configure(d, "inet:127.0.0.1:%d" % harness.free_port())
    d.start()
    check(rcpt(d, "alice@hosted.test"), 451, "4.3.0")
