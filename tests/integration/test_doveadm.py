"""
test_doveadm.py - compatibility with Dovecot's own password tool (Debian
dovecot-core, Dovecot 2.3), run without any Dovecot configuration
(`doveadm -c /dev/null pw`): every scheme facteur reads, hashed by
`doveadm pw -s SCHEME`, authenticates through facteurd's SMTP AUTH
(PLAIN, and SCRAM-SHA-256 for the schemes that allow it) and refuses a
wrong password; and every hash `facteur passwd -s SCHEME` prints is
accepted by `doveadm pw -t` for the right password only, so one
passwd-file can serve facteur and Dovecot IMAP.
"""
import subprocess

import pytest

from harness import bin_path, check
from test_auth import auth_daemon, tls_session
from test_auth_mechs import smtp_scram
from test_passwd import check_plain_logins
from test_tls import cert  # noqa: F401

DOVEADM = ["doveadm", "-c", "/dev/null", "pw"]
READ = ["SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "MD5-CRYPT", "SSHA512",
        "SSHA256", "SSHA", "SHA512", "SHA256", "SHA", "ARGON2ID", "ARGON2I",
        "SCRAM-SHA-256", "PLAIN", "CLEARTEXT"]
MADE = ["ARGON2ID", "ARGON2I", "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT",
        "MD5-CRYPT", "SSHA512", "SSHA256", "SSHA", "SCRAM-SHA-256", "PLAIN"]


def pw(scheme):
    return "Pw %s; x\u00e9" % scheme   # no ":" (the passwd-file separator)


def user(scheme):
    return "d-%s@example.test" % scheme.lower()


def doveadm(*args):
    return subprocess.run(DOVEADM + list(args), capture_output=True,
                          timeout=60)


@pytest.fixture(scope="module")
def dove_hashes():
    out = {}
    for s in READ:
        r = doveadm("-s", s, "-p", pw(s))
        assert r.returncode == 0, r
        h = r.stdout.decode().strip()
        assert h.startswith("{%s}" % s), h
        out[s] = h
    return out


def test_doveadm_hashes_authenticate(facteurd, cert, dove_hashes):
    text = "".join("%s:%s::::::\n" % (user(s), h)
                   for s, h in dove_hashes.items())
    d = auth_daemon(facteurd, cert, text,
                    smtpd_sasl_mechanisms="plain login scram-sha-256")
    check_plain_logins(d, [(user(s), pw(s)) for s in READ], 130)
    # SCRAM-SHA-256 itself for the stored forms that allow it
    for s in ("SCRAM-SHA-256", "PLAIN", "CLEARTEXT"):
        c, _ = tls_session(d)
        with c:
            r, _ = smtp_scram(c, user(s), pw(s))
            check(r, 235, "2.7.0")


@pytest.mark.parametrize("scheme", MADE)
def test_facteur_passwd_verifies_with_doveadm(scheme):
    r = subprocess.run([bin_path("facteur"), "passwd", "-s", scheme],
                       input=(pw(scheme) + "\n").encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r
    h = r.stdout.decode().strip()
    ok = doveadm("-t", h, "-p", pw(scheme))
    assert ok.returncode == 0, (h, ok)
    assert b"(verified)" in ok.stdout, ok
    bad = doveadm("-t", h, "-p", pw(scheme) + "!")
    assert bad.returncode != 0, (h, bad)
