"""
test_tls_sni.py - per-domain certificates in the SMTP server
(tls_server_sni_maps, Postfix's format: the key is a host name or
".domain" for its subdomains, the value a key file followed by
certificate files, or one PEM file with the key and the chain). Checked
with `openssl s_client -servername` after STARTTLS and on the smtps
listener: each name gets its certificate's subject, other names and
clients without SNI get the default one. Key files are root-only (0600):
they are read before facteurd drops to mail_owner. Bad entries are
start-up errors naming the entry.
"""
import os
import re
import subprocess

import pytest

from harness import HOSTNAME, free_port
from test_tls import cert, tls_cf  # noqa: F401


def make_cert(d, name):
    key, crt = os.path.join(d, name + ".key"), os.path.join(d, name + ".crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + name], check=True, capture_output=True,
                   timeout=60)
    os.chmod(key, 0o600)
    return key, crt


@pytest.fixture(scope="module")
def sni_files(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("sni"))
    os.chmod(d, 0o755)
    akey, acrt = make_cert(d, "mail.alpha.test")
    bkey, bcrt = make_cert(d, "mx.beta.test")
    both = os.path.join(d, "beta.pem")       # one file: key, then chain
    with open(both, "w") as f:
        f.write(open(bkey).read() + open(bcrt).read())
    os.chmod(both, 0o600)
    sni = os.path.join(d, "sni")
    with open(sni, "w") as f:
        f.write("# host or .domain -> key + chain\n"
                "Mail.Alpha.test  %s %s\n"
                ".beta.test       %s\n" % (akey, acrt, both))
    return {"map": sni, "dir": d, "akey": akey, "acrt": acrt}


def subject(port, servername=None, starttls=True):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-brief"]
    if starttls:
        cmd += ["-starttls", "smtp"]
    if servername:
        cmd += ["-servername", servername]
    else:
        cmd += ["-noservername"]
    r = subprocess.run(cmd, input=b"QUIT\r\n", capture_output=True,
                       timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    m = re.search(r"Peer certificate: (?:subject=)?.*?CN\s*=\s*([^\s,/]+)",
                  out)
    assert m, out
    return m.group(1)


def test_sni_picks_the_certificate(facteurd, cert, sni_files):
    smtps = free_port()
    d = facteurd(main_cf=tls_cf(cert, tls_server_sni_maps="texthash:" +
                                sni_files["map"]),
                 extra_master_cf="127.0.0.1:%d inet n - n - - smtpd "
                 "-o smtpd_tls_wrappermode=yes\n" % smtps)
    assert subject(d.port, "mail.alpha.test") == "mail.alpha.test"
    assert subject(d.port, "MAIL.ALPHA.TEST") == "mail.alpha.test"
    assert subject(d.port, "mx.beta.test") == "mx.beta.test"   # .beta.test
    assert subject(d.port, "a.b.beta.test") == "mx.beta.test"
    assert subject(d.port, "beta.test") == HOSTNAME    # .domain: subdomains
    assert subject(d.port, "other.test") == HOSTNAME
    assert subject(d.port, "alpha.test") == HOSTNAME
    assert subject(d.port) == HOSTNAME                  # no SNI at all
    # implicit TLS (smtps) uses the same map
    assert subject(smtps, "mail.alpha.test", starttls=False) == \
        "mail.alpha.test"
    assert subject(smtps, None, starttls=False) == HOSTNAME


@pytest.mark.parametrize("entry,msg", [
    ("x.test /nonexistent/key.pem", r"tls_server_sni_maps: cannot open "
                                    r"/nonexistent/key\.pem.*entry \"x\.test\""),
    ("x.test ACRT", r"tls_server_sni_maps: ACRT: certificate without a "
                    r"private key before it"),
    ("x.test AKEY", r"tls_server_sni_maps: the last private key has no "
                    r"certificate after it"),
])
def test_bad_entries_are_startup_errors(facteurd, cert, sni_files, tmp_path,
                                        entry, msg):
    entry = entry.replace("ACRT", sni_files["acrt"]).replace(
        "AKEY", sni_files["akey"])
    msg = msg.replace("ACRT", re.escape(sni_files["acrt"]))
    m = str(tmp_path / "sni")
    with open(m, "w") as f:
        f.write(entry + "\n")
    d = facteurd(start=False, main_cf=tls_cf(cert, tls_server_sni_maps=
                                             "texthash:" + m))
    d.start_fails(msg)


def test_sni_needs_a_default_certificate(facteurd, sni_files):
    d = facteurd(start=False, main_cf={
        "smtpd_tls_security_level": "may",
        "tls_server_sni_maps": "texthash:" + sni_files["map"]})
    d.start_fails(r"tls_server_sni_maps needs a default certificate")
