"""
test_passwd.py - `facteur passwd` (as doveadm pw): every scheme it makes is
accepted by the SMTP AUTH server reading a passwd-file, the right password
authenticates and a wrong one does not; the terminal dialogue reads twice
with echo off; an unknown scheme or argument is a usage error (2).
"""
import os
import subprocess
import time

import pytest

from harness import bin_path, check
from test_auth import FAIL, auth_daemon, b64, tls_session
from test_tls import cert  # noqa: F401

SCHEMES = ["ARGON2ID", "ARGON2I", "SHA512-CRYPT", "SHA256-CRYPT",
           "BLF-CRYPT", "MD5-CRYPT", "SSHA512", "SSHA256", "SSHA",
           "SCRAM-SHA-256", "PLAIN"]


def passwd(*args, stdin=b""):
    return subprocess.run([bin_path("facteur"), "passwd"] + list(args),
                          input=stdin, capture_output=True, timeout=60)


def user(scheme):
    return "u-%s@example.test" % scheme.lower()


def pw(scheme):
    return "pw %s x\u00e9" % scheme


@pytest.fixture(scope="module")
def hashes():
    out = {}
    for s in SCHEMES:
        r = passwd("-s", s, "-u", user(s), stdin=(pw(s) + "\n").encode())
        assert r.returncode == 0, r
        h = r.stdout.decode().strip()
        assert h.startswith("{%s}" % s), h
        assert pw(s) not in h or s == "PLAIN", h
        out[s] = h
    return out


def check_plain_logins(d, logins, first_source):
    """For each (user, password) of logins: AUTH PLAIN with it is 235
    2.7.0, with the password and a "!" appended it is the 535 alone. Each
    wrong try comes from its own client address (127.0.0.first_source,
    then the next ones): no throttling delay."""
    for i, (u, p) in enumerate(logins):
        c, _ = tls_session(d)
        with c:
            check(c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (u, p))), 235, "2.7.0")
        c, _ = tls_session(d, source="127.0.0.%d" % (first_source + i))
        with c:
            r = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (u, p + "!")))
            assert r.raw == [FAIL], (u, r)


def test_each_scheme_authenticates(facteurd, cert, hashes):
    text = "".join("%s:%s\n" % (user(s), h) for s, h in hashes.items())
    d = auth_daemon(facteurd, cert, text)
    check_plain_logins(d, [(user(s), pw(s)) for s in SCHEMES], 20)


def test_salts_differ():
    a = passwd("-s", "SHA512-CRYPT", stdin=b"same\n").stdout
    b = passwd("-s", "SHA512-CRYPT", stdin=b"same\n").stdout
    assert a and b and a != b


def test_default_is_argon2id_and_crlf_trimmed():
    r = passwd(stdin=b"abc\r\n")
    assert r.returncode == 0, r
    assert r.stdout.decode().startswith("{ARGON2ID}$argon2id$v=19$"), r


@pytest.mark.parametrize("args,stdin,code,msg", [
    (["-s", "NOPE"], b"x\n", 2, "unknown password scheme"),
    (["-x"], b"x\n", 2, "bad argument"),
    (["-s"], b"x\n", 2, "bad argument"),
    (["-u", "a:b@example.test"], b"x\n", 2, "cannot contain ':'"),
    ([], b"", 1, "no password read"),
    ([], b"\n", 1, "empty password"),
    ([], b"x" * 2000 + b"\n", 1, "longer than"),
])
def test_errors(args, stdin, code, msg):
    r = passwd(*args, stdin=stdin)
    assert r.returncode == code, r
    assert msg in r.stderr.decode(), r
    assert r.stdout == b"", r


def run_tty(lines):
    """Runs facteur passwd on a pseudo-terminal, typing lines."""
    master, slave = os.openpty()
    p = subprocess.Popen([bin_path("facteur"), "passwd", "-s", "PLAIN"],
                         stdin=slave, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    os.close(slave)
    try:
        for line in lines:
            time.sleep(0.2)
            os.write(master, line)
        out, err = p.communicate(timeout=30)
        echoed = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            echoed += chunk
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
        os.close(master)
    return p.returncode, out, err, echoed


def test_terminal_reads_twice_without_echo():
    rc, out, err, echoed = run_tty([b"tty-secret\n", b"tty-secret\n"])
    assert rc == 0, (rc, out, err)
    assert out == b"{PLAIN}tty-secret\n", out
    assert b"Enter new password:" in err and b"Retype new password:" in err
    assert b"tty-secret" not in echoed, echoed


def test_terminal_mismatch():
    rc, out, err, _ = run_tty([b"one\n", b"two\n"])
    assert rc == 1 and out == b"", (rc, out, err)
    assert b"do not match" in err, err
