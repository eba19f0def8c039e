"""
test_pflogsumm.py - contrib/pflogsumm/README's three ways, on a real
facteurd log: N messages received and delivered (one recipient each, two
of them through the same session), R recipients rejected; pflogsumm's
"received", "delivered" and "rejected" counts and its per-recipient table
must say exactly that, with syslog_name = postfix, with --syslog-name=facteur
on the default name, and through the README's sed rewrite.
Must not: read any log but the daemon's own maillog_file.
"""
import os
import re
import shutil
import subprocess

import pytest

from harness import check, dot_stuff, make_msg, queue_id_of

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "..", "contrib", "pflogsumm", "README")
N = 5          # messages received and delivered
R = 3          # recipients rejected (no message queued for them)


def pflogsumm(log_text, *args):
    exe = shutil.which("pflogsumm")
    assert exe, "pflogsumm not installed: run `sh contrib/install-deps.sh test`"
    r = subprocess.run([exe] + list(args), input=log_text.encode(),
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    return r.stdout.decode()


def counts(report):
    """The "Grand Totals" numbers pflogsumm printed, by label."""
    out = {}
    for label in ("received", "delivered", "rejected", "deferred",
                  "bounced", "forwarded"):
        m = re.search(r"^\s+(\d+)\s+%s\b" % label, report, re.M)
        assert m, "no %r total in pflogsumm's report:\n%s" % (label, report)
        out[label] = int(m.group(1))
    return out


def traffic(d, name):
    """N accepted messages, R refused recipients; returns the whole log
    once every message is delivered and removed from the queue."""
    qids = []
    for i in range(N - 2):
        qids.append(d.send("sender%d@example.net" % i, "alice@example.test",
                           make_msg("pflogsumm %d" % i, to="alice@example.test")))
    with d.session() as c:             # two transactions, one session
        for rcpt in ("bob@example.test", "carol@example.test"):
            check(c.cmd("MAIL FROM:<multi@example.net>"), 250)
            check(c.cmd("RCPT TO:<nobody-%s>" % rcpt), 550, "5.1.1")
            check(c.cmd("RCPT TO:<%s>" % rcpt), 250)
            check(c.cmd("DATA"), 354)
            c.send(dot_stuff(make_msg("pflogsumm multi", to=rcpt)))
            qids.append(queue_id_of(check(c.reply(), 250, "2.0.0")))
        check(c.cmd("QUIT"), 221)
    with d.session(source="127.0.0.2") as c:
        check(c.cmd("MAIL FROM:<outsider@example.net>"), 250)
        r = c.cmd("RCPT TO:<someone@elsewhere.test>")
        assert r.code in (454, 554), r
        check(c.cmd("QUIT"), 221)
    assert len(set(qids)) == N
    for q in qids:
        d.wait_log(r" %s: removed$" % re.escape(q))
    d.wait_log(r"disconnect from \S+\[127\.0\.0\.2\]")
    log = d.log()
    assert re.search(r"^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ %s/smtpd\[\d+\]: "
                     % re.escape(name), log, re.M), log
    return log


def check_report(report):
    c = counts(report)
    assert c == {"received": N, "delivered": N, "rejected": R,
                 "deferred": 0, "bounced": 0, "forwarded": 0}, (c, report)
    # The per-recipient table: alice got N-2, bob and carol one each.
    sect = report.split("Recipients by message count", 1)
    assert len(sect) == 2, report
    table = sect[1].split("\n\n", 1)[0]
    got = dict((a, int(n)) for n, a in
               re.findall(r"^\s+(\d+)\s+(\S+@\S+)\s*$", table, re.M))
    assert got == {"alice@example.test": N - 2, "bob@example.test": 1,
                   "carol@example.test": 1}, (got, report)


def test_syslog_name_postfix(facteurd):
    d = facteurd(main_cf={"syslog_name": "postfix"})
    check_report(pflogsumm(traffic(d, "postfix")))


@pytest.fixture
def facteur_log(facteurd):
    return traffic(facteurd(), "facteur")


def test_syslog_name_option(facteur_log):
    # Without the option pflogsumm sees nothing of facteur's lines ...
    c = counts(pflogsumm(facteur_log))
    assert c["received"] == 0 and c["delivered"] == 0, c
    # ... with it, everything.
    check_report(pflogsumm(facteur_log, "--syslog-name=facteur"))


def test_readme_sed_rewrite(facteur_log):
    with open(README) as f:
        m = re.search(r"^\s*sed -E '([^']+)'", f.read(), re.M)
    assert m, "no sed -E line in %s" % README
    r = subprocess.run(["sed", "-E", m.group(1)], input=facteur_log.encode(),
                       capture_output=True, timeout=30, check=True)
    rewritten = r.stdout.decode()
    assert " facteur/" not in rewritten
    assert len(rewritten.splitlines()) == len(facteur_log.splitlines())
    check_report(pflogsumm(rewritten))

