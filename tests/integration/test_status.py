"""
test_status.py - `facteur status` over the control socket (listeners,
sessions, queue sizes by state, last-minute rates, failing tables) and
the Prometheus endpoint (facteur_metrics_listen): the text exposition
format parsed line by line, HELP/TYPE for every metric, values checked
against what the test did. The control socket is mail_owner's, mode 0600.
"""
import os
import re
import stat
import urllib.error
import urllib.request

from harness import check, free_port, make_msg


def status(d):
    r = d.cli("status")
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode()


def field(text, name):
    m = re.search(r"^%s: (.*)$" % re.escape(name), text, re.M)
    assert m, "no %s in:\n%s" % (name, text)
    return m.group(1)


def kv(s):
    return dict(p.split("=", 1) for p in s.split())


def test_status_reports_listeners_sessions_queue_rates(facteurd, tmp_path):
    hc = tmp_path / "header_checks"
    hc.write_text("/^Subject: hold me/ HOLD\n")
    d = facteurd(main_cf={"header_checks": "regexp:%s" % hc})
    sock = os.path.join(d.queue, "private", "control")
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o700
    assert st.st_uid == d.vmail_uid

    text = status(d)
    assert field(text, "state") == "running"
    assert int(field(text, "pid")) == d.pid
    m = re.search(r"^listener: (\S+) addresses=(\S+) sessions=(\d+) max=(\d+)$",
                  text, re.M)
    assert m, text
    assert m.group(2) == "127.0.0.1:%d" % d.port
    assert field(text, "backends") == "ok"
    q = kv(field(text, "queue"))
    assert set(q) == {"incoming", "active", "deferred", "hold", "corrupt"}
    assert all(v == "0" for v in q.values()), q

    # Two open sessions show up.
    a, b = d.session(), d.session()
    text = status(d)
    assert field(text, "sessions") == "2"
    assert re.search(r"^listener: .* sessions=2 ", text, re.M), text
    a.close()
    b.close()

    d.send("s@example.net", "alice@example.test", make_msg("one"))
    d.send("s@example.net", "bob@example.test", make_msg("two"))
    d.send("s@example.net", "alice@example.test", make_msg("hold me"))
    d.wait_files("alice@example.test", 1)
    d.wait_files("bob@example.test", 1)
    # A table that fails (reload with fail:broken in virtual_alias_maps):
    # 451 at RCPT, and status names the table.
    d.params["virtual_alias_maps"] += " fail:broken"
    d.write_config()
    assert d.cli("reload").returncode == 0
    with d.session() as c:
        check(c.cmd("MAIL FROM:<s@example.net>"), 250)
        r = c.cmd("RCPT TO:<someone@example.test>")
        assert r.code == 451, r
    text = status(d)
    q = kv(field(text, "queue"))
    assert q["hold"] == "1", text
    assert q["incoming"] == "0"
    minute = kv(field(text, "last_minute"))
    assert minute["received"] == "3", text
    assert minute["delivered"] == "2", text
    total = kv(field(text, "total"))
    assert total["received"] == "3" and total["delivered"] == "2"
    assert re.search(r"^backend_failure: fail:broken count=\d+ last=\S+ "
                     r"\(\d+s ago\): ", text, re.M), text
    assert "backends: ok" not in text


def test_status_as_other_user_is_refused(facteurd):
    d = facteurd()
    # The control socket's directory is mail_owner's, 0700: another user
    # cannot reach it (the CLI says why).
    import shutil
    import subprocess
    import tempfile
    from harness import bin_path
    other = 54321          # neither root nor the mail owner
    assert other != d.vmail_uid
    tmp = tempfile.mkdtemp(prefix="facteur-status-")
    os.chmod(tmp, 0o755)
    exe = os.path.join(tmp, "facteur")
    shutil.copy(bin_path("facteur"), exe)
    os.chmod(exe, 0o755)
    conf = os.path.join(tmp, "conf")
    shutil.copytree(d.confdir, conf)
    for n in os.listdir(conf):
        os.chmod(os.path.join(conf, n), 0o644)
    os.chmod(conf, 0o755)
    try:
        r = subprocess.run([exe, "-c", conf, "status"], capture_output=True,
                           timeout=20, preexec_fn=lambda: (
                               os.setgroups([]), os.setgid(other),
                               os.setuid(other)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert r.returncode == 1, r
    assert b"Permission denied" in r.stderr, r.stderr
    assert b"run as root or as mail_owner" in r.stderr


METRIC_LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*)\})?'
    r' (?P<value>-?[0-9.eE+]+|NaN|[+-]Inf)$')


def parse_exposition(text):
    """Prometheus text format 0.0.4: returns {(name, labels): value} and
    checks HELP/TYPE come first for every metric family."""
    helped, typed, samples = set(), {}, {}
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, "two HELP lines for %s" % name
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge", "untyped", "summary",
                            "histogram")
            assert name not in typed
            typed[name] = kind
            continue
        assert not line.startswith("#"), line
        m = METRIC_LINE.match(line)
        assert m, "not an exposition line: %r" % line
        name = m.group("name")
        assert name.startswith("facteur_"), name
        assert name in helped and name in typed, "%s without HELP/TYPE" % name
        labels = tuple(sorted(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"',
                                         m.group("labels") or "")))
        assert (name, labels) not in samples, "duplicate sample %s" % line
        samples[(name, labels)] = float(m.group("value"))
    for name, kind in typed.items():
        if kind == "counter":
            assert name.endswith("_total"), name
    return samples


def test_prometheus_endpoint(facteurd):
    port = free_port()
    d = facteurd(main_cf={"facteur_metrics_listen": "127.0.0.1:%d" % port})
    d.send("s@example.net", "alice@example.test", make_msg("metric"))
    d.wait_files("alice@example.test", 1)
    d.wait_log(r"status=sent")
    keep = d.session()
    url = "http://127.0.0.1:%d/metrics" % port
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        ctype = resp.headers["Content-Type"]
        body = resp.read().decode()
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
    s = parse_exposition(body)
    svc = "127.0.0.1:%d" % d.port
    assert s[("facteur_up", ())] == 1
    assert s[("facteur_messages_received_total", ())] == 1
    assert s[("facteur_recipients_delivered_total", ())] == 1
    assert s[("facteur_listener_sessions", (("command", "smtpd"),
                                            ("listener", svc)))] == 1
    assert s[("facteur_sessions", ())] == 1
    assert s[("facteur_queue_messages", (("state", "active"),))] == 0
    assert s[("facteur_queue_messages", (("state", "hold"),))] == 0
    assert s[("facteur_last_minute", (("event", "received"),))] == 1
    assert s[("facteur_connections_total", ())] >= 3
    keep.close()
    # The same text over the control socket.
    r = d.cli("status", "--metrics")
    assert r.returncode == 0
    s2 = parse_exposition(r.stdout.decode())
    assert s2[("facteur_messages_received_total", ())] == 1
    # HEAD: the headers only.
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) > 100
        assert resp.read() == b""
    # Only /metrics is served.
    try:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=10)
        assert False, "expected a 404"
    except urllib.error.HTTPError as e:
        assert e.code == 404


def test_metrics_bare_port_listens_on_loopback_only(facteurd):
    port = free_port()
    d = facteurd(main_cf={"facteur_metrics_listen": str(port)})
    found = False
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        local, st = f[1], f[3]
        if st == "0A" and int(local.split(":")[1], 16) == port:
            assert local.split(":")[0] == "0100007F", line   # 127.0.0.1
            found = True
    assert found, "nothing listens on %d" % port
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=10) as resp:
        assert b"facteur_up 1" in resp.read()
    del d


def test_control_socket_protocol(facteurd):
    import socket as so
    d = facteurd()
    path = os.path.join(d.queue, "private", "control")

    def ask(data, timeout=5):
        s = so.socket(so.AF_UNIX, so.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        return out.decode()

    assert ask(b"status\n").startswith("state: running\n")
    assert ask(b"bogus\n").startswith("error: unknown command")
    assert ask(b"x" * 500 + b"\n").startswith("error: command line too long")
    assert "facteur_up 1" in ask(b"metrics\r\n")
    # A client that never sends its line is dropped (not kept forever):
    # the daemon still answers others meanwhile.
    idle = so.socket(so.AF_UNIX, so.SOCK_STREAM)
    idle.connect(path)
    assert ask(b"status\n").startswith("state: running")
    idle.close()
    assert ask(b"reload\n").startswith("ok: configuration")
    assert ask(b"stop\n") == "ok: stopping\n"
    assert d.proc.wait(10) == 0
    d.expect_exit = True
    assert not os.path.exists(path), "control socket left behind"
