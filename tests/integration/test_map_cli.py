"""
test_map_cli.py - `facteur map query` (postmap -q) and `facteur map dump`
(postmap -s): values printed, exit 0 found / 1 not found / 75 when the
table cannot answer (reason on stderr) / 2 for usage and configuration
errors; key folding and -f; several keys and keys on stdin; texthash,
inline, cidr, static, fail, and an ldap: table on a private slapd
(found, not found, slapd down -> 75).
"""
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import harness

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import servers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args, stdin=None):
    r = subprocess.run([harness.bin_path("facteur"), "map"] + list(args),
                       input=stdin, capture_output=True, text=True, timeout=30)
    assert "Sanitizer" not in r.stderr, r.stderr
    return r


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    d = tmp_path_factory.mktemp("maps")
    (d / "vmailbox").write_text(
        "# mailboxes\n"
        "alice@example.test   example.test/alice/\n"
        "Bob@Example.test     example.test/bob/\n"
        "@catch.test          catch.test/all/\n")
    (d / "clients.cidr").write_text(
        "192.0.2.0/24     REJECT no thanks\n"
        "2001:db8::/32    OK\n")
    (d / "bad").write_text("only-a-key\n")
    return d


def test_query_found_and_not_found(build, maps):
    m = "texthash:%s/vmailbox" % maps
    r = run("query", m, "alice@example.test")
    assert (r.returncode, r.stdout, r.stderr) == (0, "example.test/alice/\n", "")
    r = run("query", m, "nobody@example.test")
    assert (r.returncode, r.stdout) == (1, "")
    r = run("query", m, "@catch.test")
    assert (r.returncode, r.stdout) == (0, "catch.test/all/\n")


def test_keys_are_folded_unless_f(build, maps):
    m = "texthash:%s/vmailbox" % maps
    r = run("query", m, "ALICE@Example.TEST")
    assert (r.returncode, r.stdout) == (0, "example.test/alice/\n")
    r = run("query", "-f", m, "ALICE@Example.TEST")
    assert r.returncode == 1
    r = run("query", "-f", m, "alice@example.test")
    assert r.returncode == 0


def test_several_keys_and_stdin(build, maps):
    m = "texthash:%s/vmailbox" % maps
    r = run("query", m, "x@example.test", "bob@example.test", "alice@example.test")
    assert r.returncode == 0
    assert r.stdout == ("bob@example.test\texample.test/bob/\n"
                        "alice@example.test\texample.test/alice/\n")
    r = run("query", m, "x@example.test", "y@example.test")
    assert (r.returncode, r.stdout) == (1, "")
    long_key = "a" * 5000
    r = run("query", m, "-", stdin="x@example.test\n%s\n\nalice@example.test\n" % long_key)
    assert (r.returncode, r.stdout) == (0, "alice@example.test\texample.test/alice/\n")
    r = run("query", m, "-", stdin="")
    assert r.returncode == 1


def test_inline_static_cidr(build, maps):
    r = run("query", "inline:{ a@x.test = one, b@x.test = two }", "b@x.test")
    assert (r.returncode, r.stdout) == (0, "two\n")
    r = run("query", "static:fixed value", "anything")
    assert (r.returncode, r.stdout) == (0, "fixed value\n")
    c = "cidr:%s/clients.cidr" % maps
    r = run("query", c, "192.0.2.77")
    assert (r.returncode, r.stdout) == (0, "REJECT no thanks\n")
    r = run("query", c, "2001:db8::1")
    assert (r.returncode, r.stdout) == (0, "OK\n")
    r = run("query", c, "198.51.100.1")
    assert r.returncode == 1


def test_tempfail_is_75_with_reason(build, maps):
    r = run("query", "fail:backend down", "a@x.test")
    assert r.returncode == 75
    assert r.stdout == ""
    assert 'fail:backend down lookup error for "a@x.test"' in r.stderr
    r = run("query", "texthash:%s/missing" % maps, "a@x.test")
    assert r.returncode == 75
    assert "No such file" in r.stderr


def test_usage_and_config_errors_are_2(build, maps):
    for args in (["query"], ["query", "texthash:/x"], ["dump"], ["frob"], [],
                 ["dump", "a:b", "c"], ["query", "-x", "inline:{a=b}", "a"]):
        r = run(*args)
        assert r.returncode == 2, args
        assert "usage: facteur map" in r.stderr, args
    r = run("query", "nosuchtype:/x", "a")
    assert r.returncode == 2
    assert "unsupported dictionary type: nosuchtype" in r.stderr
    r = run("query", "texthash:%s/bad" % maps, "a")
    assert r.returncode == 2
    assert "line 1" in r.stderr


def test_dump(build, maps):
    r = run("dump", "texthash:%s/vmailbox" % maps)
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.splitlines()) == sorted([
        "alice@example.test\texample.test/alice/",
        "Bob@Example.test\texample.test/bob/",
        "@catch.test\tcatch.test/all/"])
    r = run("dump", "inline:{ k1 = v1, k2 = v2 }")
    assert (r.returncode, sorted(r.stdout.splitlines())) == (0, ["k1\tv1", "k2\tv2"])
    r = run("dump", "fail:down")
    assert r.returncode == 2
    assert r.stderr.startswith("facteur: ")


BASE = "dc=facteur,dc=test"
READER = "cn=reader,%s" % BASE
ENTRIES = """
dn: {b}
objectClass: dcObject
objectClass: organization
dc: facteur
o: facteur tests

dn: {r}
objectClass: person
cn: reader
sn: reader
userPassword: reader pw

dn: ou=people,{b}
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,{b}
objectClass: inetOrgPerson
objectClass: facteurMailUser
uid: alice
cn: Alice
sn: A
mail: alice@hosted.test
facteurMailbox: hosted.test/alice/
facteurActive: TRUE
""".format(b=BASE, r=READER)


def test_ldap_table(build, tmp_path):
    missing = servers.Slapd.missing()
    if missing:
        pytest.fail("%s missing: run `make test-deps`" % missing[0], pytrace=False)
    base = tempfile.mkdtemp(prefix="facteur-slapd-")
    s = servers.Slapd(base, BASE, READER, live=harness.LIVE)
    try:
        s.start()
        s.add(ENTRIES)
        with open(os.path.join(ROOT, "schema", "ldap", "virtual_mailboxes.cf")) as f:
            text = f.read()
        cf = tmp_path / "mailboxes.cf"
        cf.write_text(text + "server_host = %s\nsearch_base = %s\nbind_dn = %s\n"
                      "bind_pw = reader pw\ntimeout = 3\ncache = yes\n"
                      % (s.url, BASE, READER))
        m = "ldap:%s" % cf
        r = run("query", m, "Alice@hosted.test")
        assert (r.returncode, r.stdout) == (0, "hosted.test/alice/\n"), r.stderr
        r = run("query", m, "a*)(mail=*@hosted.test", "nobody@hosted.test")
        assert (r.returncode, r.stdout) == (1, "")
        s.stop()
        r = run("query", m, "alice@hosted.test")
        assert r.returncode == 75
        assert "lookup error for \"alice@hosted.test\"" in r.stderr
    finally:
        s.stop()
        shutil.rmtree(base, ignore_errors=True)
