"""
test_managesieve.py - the ManageSieve server (RFC 5804) driven by a small
Python client: capability greeting, STARTTLS (capabilities again inside
TLS), AUTHENTICATE PLAIN with an initial response and with a continuation,
LOGIN, wrong password, PUTSCRIPT (valid and broken: NO with line:column),
CHECKSCRIPT, SETACTIVE, LISTSCRIPTS, GETSCRIPT, RENAMESCRIPT, DELETESCRIPT,
HAVESPACE, NOOP, UNAUTHENTICATE, literals {n+} and {n}; then a mail sent
over SMTP lands in the folder the uploaded script chooses, from the
Dovecot layout (<home>/sieve/NAME.sieve, <home>/.dovecot.sieve a link).
Roundcube's library (PEAR Net_Sieve, Debian php-net-sieve) does the same
through tests/integration/roundcube_sieve.php.
"""
import base64
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from harness import HOSTNAME, free_port, make_msg
from test_tls import cert, client_ctx, tls_cf  # noqa: F401

USERS = ("alice@example.test:{PLAIN}alice-pw\n"
         "dave@example.test:{PLAIN}dave-pw\n")
VMAILBOX = ("alice@example.test example.test/alice/\n"
            "dave@example.test example.test/dave/Maildir/\n")


class Sieve:
    """A minimal ManageSieve client: lines, literals, OK/NO/BYE."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed; got %r" % self.buf)
        self.buf += data

    def line(self):
        for _ in range(10000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln
            self._fill()
        raise AssertionError("no line")

    def literal(self, n):
        for _ in range(10000):
            if len(self.buf) >= n:
                data, self.buf = self.buf[:n], self.buf[n:]
                return data
            self._fill()
        raise AssertionError("short literal")

    def response(self):
        """(status line, [data lines]); a literal is read whole."""
        lines = []
        for _ in range(10000):
            ln = self.line()
            m = re.match(rb"^\{(\d+)\+?\}$", ln)
            if m:
                lines.append(self.literal(int(m.group(1))))
                assert self.line() == b""   # the CRLF ending the item
                continue
            if re.match(rb"^(OK|NO|BYE)\b", ln):
                m = re.search(rb"\{(\d+)\}$", ln)
                if m:   # a literal text after the status
                    ln = ln[:m.start()] + self.literal(int(m.group(1)))
                    self.line()
                return ln.decode(), lines
            lines.append(ln)
        raise AssertionError("no status")

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.response()

    def starttls(self):
        st, _ = self.cmd("STARTTLS")
        assert st.startswith("OK"), st
        assert self.buf == b""
        self.sock = client_ctx().wrap_socket(self.sock)
        return self.response()      # capabilities again (RFC 5804 2.2)


def lit(data):
    if isinstance(data, str):
        data = data.encode()
    return b"{%d+}\r\n" % len(data) + data


def plain(user, pw):
    return base64.b64encode(("\0%s\0%s" % (user, pw)).encode()).decode()


def caps(lines):
    out = {}
    for ln in lines:
        m = re.match(rb'^"([A-Z-]+)"(?: "(.*)")?$', ln)
        assert m, ln
        out[m.group(1).decode()] = (m.group(2) or b"").decode()
    return out


def start(facteurd, cert, **extra):
    port = free_port()
    cf = tls_cf(cert, smtpd_sasl_passdb="passwd-file:PLACEHOLDER")
    cf.update(extra)
    d = facteurd(start=False, main_cf=cf, vmailbox=VMAILBOX,
                 extra_master_cf="127.0.0.1:%d inet n - n - - managesieved\n"
                 % port)
    users = os.path.join(d.confdir, "users")
    with open(users, "w") as f:
        f.write(USERS)
    d.params["smtpd_sasl_passdb"] = "passwd-file:" + users
    d.write_config()
    d.start()
    d.sieve_port = port
    return d


def login(d, user="alice@example.test", pw="alice-pw"):
    c = Sieve(d.sieve_port)
    c.response()
    c.starttls()
    st, _ = c.cmd('AUTHENTICATE "PLAIN" "%s"' % plain(user, pw))
    assert st.startswith("OK"), st
    return c


def send_mail(d, rcpt, subject):
    d.send("sender@example.net", rcpt, make_msg(subject, to=rcpt))


def wait_file(path, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for sub in ("new", "cur"):
            p = os.path.join(path, sub)
            if os.path.isdir(p) and os.listdir(p):
                return os.listdir(p)
        time.sleep(0.05)
    raise AssertionError("nothing delivered in %s" % path)


SCRIPT = ('require ["fileinto"];\r\n'
          'if header :contains "subject" "report" { fileinto "Reports"; }\r\n')


def test_greeting_starttls_and_auth_rule(facteurd, cert):
    d = start(facteurd, cert, smtpd_tls_auth_only="yes")
    c = Sieve(d.sieve_port)
    st, lines = c.response()
    assert st.startswith("OK")
    cp = caps(lines)
    assert cp["IMPLEMENTATION"] == "facteur"
    assert cp["VERSION"] == "1.0"
    assert "STARTTLS" in cp
    assert cp["SASL"] == ""                 # auth only inside TLS
    assert "fileinto" in cp["SIEVE"].split()
    st, _ = c.cmd('AUTHENTICATE "PLAIN" "%s"' % plain("alice@example.test",
                                                      "alice-pw"))
    assert st.startswith("NO (ENCRYPT-NEEDED)"), st
    st, _ = c.cmd("LISTSCRIPTS")
    assert st.startswith("NO"), st
    st, lines = c.starttls()
    assert st.startswith("OK")
    cp = caps(lines)
    assert cp["SASL"] == "PLAIN LOGIN" and "STARTTLS" not in cp
    # PLAIN with a continuation, the answer as a literal
    c.send('AUTHENTICATE "PLAIN"\r\n')
    assert c.line() == b'""'
    c.send(lit(plain("alice@example.test", "alice-pw")) + b"\r\n")
    st, _ = c.response()
    assert st.startswith("OK"), st
    st, lines = c.cmd("CAPABILITY")
    assert caps(lines)["OWNER"] == "alice@example.test"
    st, _ = c.cmd('NOOP "tag1"')
    assert st.startswith('OK (TAG "tag1")'), st
    st, _ = c.cmd("UNAUTHENTICATE")
    assert st.startswith("OK")
    st, _ = c.cmd("LISTSCRIPTS")
    assert st.startswith("NO")
    st, _ = c.cmd("LOGOUT")
    assert st.startswith("OK")
    c.close()


def test_wrong_password_and_login_mechanism(facteurd, cert):
    d = start(facteurd, cert)
    c = Sieve(d.sieve_port)
    c.response()
    c.starttls()
    st, _ = c.cmd('AUTHENTICATE "PLAIN" "%s"' % plain("alice@example.test",
                                                      "nope"))
    assert st == 'NO "Authentication failed"', st
    st, _ = c.cmd('AUTHENTICATE "PLAIN" "%s"' % plain("nobody@example.test",
                                                      "alice-pw"))
    assert st == 'NO "Authentication failed"', st
    st, _ = c.cmd("LISTSCRIPTS")
    assert st.startswith("NO")
    c.send('AUTHENTICATE "LOGIN"\r\n')
    assert c.line() == b'"VXNlcm5hbWU6"'
    c.send('"%s"\r\n' % base64.b64encode(b"Dave@Example.TEST").decode())
    assert c.line() == b'"UGFzc3dvcmQ6"'
    c.send('"%s"\r\n' % base64.b64encode(b"dave-pw").decode())
    st, _ = c.response()
    assert st.startswith("OK"), st
    st, lines = c.cmd("CAPABILITY")
    assert caps(lines)["OWNER"] == "dave@example.test"
    c.close()
    log = open(d.maillog).read()
    assert re.search(r"managesieved\[\d+\]: warning: unknown\[127\.0\.0\.1\]: "
                     r"SASL PLAIN authentication failed", log), log


def test_scripts_and_delivery(facteurd, cert):
    d = start(facteurd, cert)
    home = os.path.join(d.mail, "example.test/alice")
    c = login(d)
    st, _ = c.cmd('HAVESPACE "filter" 1000')
    assert st.startswith("OK"), st
    st, _ = c.cmd('HAVESPACE "filter" 100000000')
    assert st.startswith("NO (QUOTA/MAXSIZE)"), st
    # a broken script: NO with line:column, nothing stored
    c.send(b'PUTSCRIPT "bad" ' + lit('require "fileinto";\r\nfileint "x";\r\n')
           + b"\r\n")
    st, _ = c.response()
    assert re.match(r'^NO "2:1: .*fileint', st), st
    st, _ = c.cmd("CHECKSCRIPT " + '"if true {"')
    assert re.match(r'^NO "1:\d+: ', st), st
    c.send(b"CHECKSCRIPT " + lit(SCRIPT) + b"\r\n")
    assert c.response()[0].startswith("OK")
    # the real one, as a synchronising literal {n}
    data = SCRIPT.encode()
    c.send(b'PUTSCRIPT "filter" {%d}\r\n' % len(data) + data + b"\r\n")
    st, _ = c.response()
    assert st.startswith("OK"), st
    assert open(os.path.join(home, "sieve/filter.sieve"), "rb").read() == data
    st, lines = c.cmd("LISTSCRIPTS")
    assert st.startswith("OK") and lines == [b'"filter"'], lines
    st, _ = c.cmd('SETACTIVE "nothere"')
    assert st.startswith("NO (NONEXISTENT)"), st
    st, _ = c.cmd('SETACTIVE "filter"')
    assert st.startswith("OK"), st
    assert os.readlink(os.path.join(home, ".dovecot.sieve")) == "sieve/filter.sieve"
    st, lines = c.cmd("LISTSCRIPTS")
    assert lines == [b'"filter" ACTIVE'], lines
    st, lines = c.cmd('GETSCRIPT "filter"')
    assert st.startswith("OK") and lines == [data], lines
    st, _ = c.cmd('DELETESCRIPT "filter"')
    assert st.startswith("NO (ACTIVE)"), st
    # delivery follows the uploaded script
    send_mail(d, "alice@example.test", "monthly report")
    wait_file(os.path.join(home, ".Reports"))
    send_mail(d, "alice@example.test", "hello")
    wait_file(home)
    # rename keeps it active; a second script; delete; deactivate
    st, _ = c.cmd('RENAMESCRIPT "filter" "main"')
    assert st.startswith("OK"), st
    assert os.readlink(os.path.join(home, ".dovecot.sieve")) == "sieve/main.sieve"
    c.send(b'PUTSCRIPT "other" ' + lit("keep;\r\n") + b"\r\n")
    assert c.response()[0].startswith("OK")
    st, _ = c.cmd('RENAMESCRIPT "other" "main"')
    assert st.startswith("NO (ALREADYEXISTS)"), st
    st, lines = c.cmd("LISTSCRIPTS")
    assert sorted(lines) == [b'"main" ACTIVE', b'"other"'], lines
    st, _ = c.cmd('DELETESCRIPT "other"')
    assert st.startswith("OK"), st
    st, _ = c.cmd('GETSCRIPT "other"')
    assert st.startswith("NO (NONEXISTENT)"), st
    st, _ = c.cmd('SETACTIVE ""')
    assert st.startswith("OK"), st
    assert not os.path.lexists(os.path.join(home, ".dovecot.sieve"))
    st, _ = c.cmd('PUTSCRIPT "../x" "keep;"')
    assert st.startswith("NO"), st
    st, _ = c.cmd("FROB")
    assert st.startswith("NO"), st
    st, _ = c.cmd("LOGOUT")
    assert st.startswith("OK")
    c.close()


def test_maildir_home_and_oversized_literal(facteurd, cert):
    d = start(facteurd, cert)
    c = login(d, "dave@example.test", "dave-pw")
    c.send(b'PUTSCRIPT "f" ' + lit(SCRIPT) + b"\r\n")
    assert c.response()[0].startswith("OK")
    assert c.cmd('SETACTIVE "f"')[0].startswith("OK")
    home = os.path.join(d.mail, "example.test/dave")
    assert os.path.isfile(os.path.join(home, "sieve/f.sieve"))
    send_mail(d, "dave@example.test", "report 7")
    wait_file(os.path.join(home, "Maildir/.Reports"))
    # a literal beyond the limit: BYE, the connection closes
    c.send(b'PUTSCRIPT "big" {99999999+}\r\n')
    st, _ = c.response()
    assert st.startswith("BYE"), st
    with pytest.raises((EOFError, OSError, ssl.SSLError)):
        for _ in range(100):
            c._fill()
    c.close()


def test_roundcube_net_sieve(facteurd, cert):
    php = shutil.which("php")
    assert php, "php not installed: run `sh contrib/install-deps.sh test`"
    d = start(facteurd, cert)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "roundcube_sieve.php")
    args = {"port": d.sieve_port, "user": "alice@example.test",
            "pass": "alice-pw", "name": "roundcube", "script": SCRIPT,
            "cafile": cert["cert"], "peer_name": HOSTNAME}
    r = subprocess.run([php, script, json.dumps(args)], capture_output=True,
                       timeout=60)
    out = r.stdout.decode(errors="replace")
    assert r.returncode == 0, "%s%s\n%s" % (out, r.stderr.decode(errors="replace"),
                                         d.diagnostics())
    res = json.loads(out.strip().splitlines()[-1])
    assert res["scripts"] == ["roundcube"] and res["active"] == "roundcube", res
    # Net_Sieve keeps the CRLF that ends the literal (RFC 5804 GETSCRIPT
    # response: string CRLF response-ok), with Dovecot too.
    assert res["script"] == SCRIPT + "\r\n", res
    home = os.path.join(d.mail, "example.test/alice")
    assert os.readlink(os.path.join(home, ".dovecot.sieve")) == "sieve/roundcube.sieve"
    send_mail(d, "alice@example.test", "weekly report")
    wait_file(os.path.join(home, ".Reports"))
    log = open(d.maillog).read()
    assert "login: user=alice@example.test, method=PLAIN" in log, log


def test_pipelined_commands_and_error_limit(facteurd, cert):
    d = start(facteurd, cert, smtpd_hard_error_limit="3")
    c = Sieve(d.sieve_port)
    c.response()
    c.send('NOOP "a"\r\nCAPABILITY\r\nLOGOUT\r\nNOOP\r\n')
    assert c.response()[0].startswith('OK (TAG "a")')
    st, lines = c.response()
    assert st.startswith("OK") and caps(lines)["VERSION"] == "1.0"
    assert c.response()[0].startswith("OK")
    with pytest.raises(EOFError):       # closed after LOGOUT, NOOP unread
        c.response()
    c.close()
    c = Sieve(d.sieve_port)
    c.response()
    c.send("FROB\r\nFROB\r\nFROB\r\nNOOP\r\n")
    for _ in range(3):
        assert c.response()[0].startswith("NO")
    assert c.response()[0].startswith("BYE")
    c.close()
