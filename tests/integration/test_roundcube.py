"""
test_roundcube.py - contrib/roundcube/config.inc.php's settings with the
library under Roundcube's rcube_smtp (PEAR Net_SMTP, Debian php-net-smtp):
tests/integration/roundcube_send.php connects to a submission listener set
up as the snippet's master.cf comment says, does STARTTLS (verifying the
certificate against its name), AUTH PLAIN / LOGIN / best offered with the
user's full address, and sends; the message must land in the maildir with
an ESMTPSA Received line. A wrong password fails at AUTH with 535 (and
the fail2ban jail matches the submission listener's log line), and
without TLS AUTH is not even offered.
Must not: disable certificate verification in the PHP client.
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from harness import HOSTNAME, free_port
from test_fail2ban import f2b_regex, jail_filters

HERE = os.path.dirname(os.path.abspath(__file__))
SNIPPET = os.path.join(HERE, "..", "..", "contrib", "roundcube",
                       "config.inc.php")
SENDER = os.path.join(HERE, "roundcube_send.php")


def snippet_submission_options():
    """The `-o name=value` lines of the snippet's master.cf comment."""
    with open(SNIPPET) as f:
        opts = re.findall(r"^ \*\s+-o (\S+=\S+)\s*$", f.read(), re.M)
    assert any(o.startswith("smtpd_sasl_auth_enable=") for o in opts), opts
    return opts


@pytest.fixture(scope="module")
def rc_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("rc-tls")
    os.chmod(str(d), 0o755)
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2",
                    "-subj", "/CN=" + HOSTNAME,
                    "-addext", "subjectAltName=DNS:" + HOSTNAME],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o644)
    return {"key": key, "cert": crt}


@pytest.fixture
def sub(facteurd, rc_cert):
    """facteurd with the snippet's submission listener on a loopback port."""
    port = free_port()
    master = ("127.0.0.1:%d inet n - n - - smtpd\n" % port +
              "".join("  -o %s\n" % o for o in snippet_submission_options()))
    d = facteurd(start=False, extra_master_cf=master,
                 main_cf={"smtpd_tls_cert_file": rc_cert["cert"],
                          "smtpd_tls_key_file": rc_cert["key"],
                          "smtpd_sasl_passdb": "x",
                          # The webmail is not in mynetworks: only AUTH
                          # lets it relay.
                          "mynetworks": "192.0.2.0/24"})
    users = os.path.join(d.confdir, "users")
    sha512 = subprocess.run(["openssl", "passwd", "-6", "alice pw"],
                            check=True, capture_output=True,
                            timeout=30).stdout.decode().strip()
    with open(users, "w") as f:
        f.write("alice@example.test:{SHA512-CRYPT}%s::::::\n" % sha512)
    os.chmod(users, 0o644)
    d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
    d.write_config()
    d.start()
    d.sub_port = port
    return d


def php_send(d, cert, subject, user="alice@example.test", pw="alice pw",
             auth_type="", to=("bob@example.test",), scheme="tls"):
    php = shutil.which("php")
    assert php, "php not installed: run `sh contrib/install-deps.sh test`"
    msgid = "<%s@webmail.example.test>" % re.sub(r"\W", "", subject)
    args = {"host": "%s://127.0.0.1:%d" % (scheme, d.sub_port) if scheme
            else "127.0.0.1:%d" % d.sub_port,
            "user": user, "pass": pw, "auth_type": auth_type,
            "cafile": cert["cert"], "peer_name": HOSTNAME,
            "from": user, "to": list(to),
            "headers": ("From: Alice <%s>\r\nTo: %s\r\nSubject: %s\r\n"
                        "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
                        "Message-ID: %s\r\nMIME-Version: 1.0\r\n"
                        "Content-Type: text/plain; charset=UTF-8\r\n"
                        % (user, ", ".join(to), subject, msgid)),
            "body": "Sent from the webmail.\r\n.leading dot\r\n"}
    r = subprocess.run([php, SENDER, json.dumps(args)], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    out = r.stdout.decode()
    try:
        res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError("roundcube_send.php: rc=%d\n%s%s\n%s" % (
            r.returncode, out, r.stderr.decode(), d.diagnostics()))
    res["rc"] = r.returncode
    res["msgid"] = msgid
    return res


@pytest.mark.parametrize("auth_type", ["PLAIN", "LOGIN", ""])
def test_send_starttls_auth(sub, rc_cert, auth_type):
    subject = "roundcube %s" % (auth_type or "best")
    res = php_send(sub, rc_cert, subject, auth_type=auth_type)
    assert res["ok"] and res["rc"] == 0 and res["tls"], (res,
                                                        sub.diagnostics())
    assert res["reply"][0] == 250 and "queued as" in res["reply"][1], res
    got = sub.wait_msgid("bob@example.test", res["msgid"])
    assert len(got) == 1
    m = got[0]
    assert m.field("Return-Path") == "<alice@example.test>", m.prepended
    assert m.header("Subject") == subject
    assert b"\n.leading dot\n" in m.content       # dot-stuffing undone
    rcv = m.field("Received") or ""
    assert re.search(r"with ESMTPSA\b", rcv), m.prepended
    sub.wait_log(r"facteur/submission/smtpd\[\d+\]: \w+: "
                 r"client=\S+\[127\.0\.0\.1\], sasl_method=%s, "
                 r"sasl_username=alice@example\.test"
                 % (auth_type or r"(PLAIN|LOGIN)"))


def test_wrong_password_refused(sub, rc_cert):
    res = php_send(sub, rc_cert, "roundcube bad", pw="not the password")
    assert not res["ok"] and res["rc"] == 1 and res["stage"] == "auth", res
    assert res["reply"][0] == 535, res
    assert sub.files("bob@example.test") == []
    # The failure, logged as facteur/submission/smtpd, is what the fail2ban
    # jail (contrib/fail2ban) matches.
    sub.wait_log(r"facteur/submission/smtpd\[\d+\]: warning: "
                 r"\S+\[127\.0\.0\.1\]: SASL \w+ authentication failed")
    log = os.path.join(sub.root, "maillog.copy")
    with open(log, "w") as f:
        f.write(sub.log())
    assert f2b_regex(log, jail_filters()["facteur-sasl"]) == ["127.0.0.1"]


def test_no_auth_without_starttls(sub, rc_cert):
    # A host without tls:// (Roundcube then skips STARTTLS): the listener
    # requires TLS (encrypt) and offers no AUTH in clear text.
    res = php_send(sub, rc_cert, "roundcube clear", scheme="")
    assert not res["ok"] and res["stage"] in ("auth", "mail"), res
    assert sub.files("bob@example.test") == []


def test_snippet_is_valid_php():
    php = shutil.which("php")
    assert php
    r = subprocess.run([php, "-l", SNIPPET], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    # And it sets what Roundcube reads, to the submission port with STARTTLS.
    r = subprocess.run([php, "-r", "include '%s'; echo json_encode($config);"
                        % SNIPPET], capture_output=True, timeout=30)
    conf = json.loads(r.stdout.decode())
    assert conf["smtp_host"].startswith("tls://") and \
        conf["smtp_host"].endswith(":587"), conf
    assert conf["smtp_user"] == "%u" and conf["smtp_pass"] == "%p", conf
    assert conf["managesieve_host"].endswith(":4190"), conf
    assert conf["smtp_conn_options"]["ssl"]["verify_peer"] is True, conf
