"""
dirtables.py - what the ldap: and mysql: table tests share: starting the
private slapd / mariadbd as module fixtures (tests/servers.py), writing a
schema/ example table with the test server's settings into a facteurd's
config directory, one-recipient probes, and waiting for a server that
was restarted.
Must not: start anything without stopping it, or wait without a bound.
"""
import os
import re
import sys
import time

import pytest

import harness
from harness import check

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import servers  # noqa: E402  (tests/servers.py: private slapd and mariadbd)


def need(cls):
    missing = cls.missing()
    if missing:
        pytest.fail("%s missing: run `make test-deps`" % missing[0], pytrace=False)


def slapd(suffix, reader, entries):
    """Generator body of a slapd fixture."""
    need(servers.Slapd)
    with servers.running_slapd(suffix, reader, entries, live=harness.LIVE) as s:
        yield s


def mariadb(user, password, rows):
    """Generator body of a mariadbd fixture."""
    need(servers.MariaDB)
    with servers.running_mariadb(user, password, rows, live=harness.LIVE) as m:
        yield m


def write_cf(d, kind, name, example, strip, settings):
    """schema/KIND/EXAMPLE as d's NAME with settings; returns "TYPE:path"."""
    path = servers.example_cf(kind, example, os.path.join(d.confdir, name),
                              strip, settings)
    return ("ldap:" if kind == "ldap" else "mysql:") + path


def rcpt(d, addr):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        return c.cmd("RCPT TO:<%s>" % addr)


def mid(msg):
    return re.search(rb"(?im)^Message-ID:\s*(\S+)", msg).group(1).decode()


def delivered(d, addr, m):
    return [x for x in d.delivered(addr) if x.header("Message-ID") == m]


def until_code(attempt, want, waiting, timeout=15):
    """Calls attempt() until its reply has code want (servers come back
    after a back-off); any code but want and waiting fails at once."""
    deadline = time.time() + timeout
    while True:
        r = attempt()
        if r.code == want or time.time() > deadline:
            return r
        assert r.code == waiting, str(r)
        time.sleep(0.3)


def auth(d, user, pw):
    """AUTH PLAIN in a new TLS session; the reply."""
    from test_auth import b64, tls_session
    c, _ = tls_session(d)
    with c:
        return c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, pw)))
