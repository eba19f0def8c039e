"""
test_conf_edit.py - `facteur conf -e` edits main.cf as postconf -e does
(in place, comments and layout kept, a whole logical line replaced, later
duplicates dropped, new names appended, atomic), `conf -M` lists the
services facteur runs, and `facteur check` reports directories the mail
owner cannot write.
Must not: touch anything outside the test's directory.
"""
import os
import pwd
import stat
import subprocess

import pytest

import harness

MAIN = """# top comment
myhostname = a.example
# about mynetworks
mynetworks = 127.0.0.0/8,
    10.0.0.0/8

  # indented comment inside the logical line
    192.168.0.0/16
smtpd_banner = $myhostname ESMTP
myhostname = dup.example
  dup continued
# last line, no newline"""

EXPECTED = """# top comment
myhostname = b.example
# about mynetworks
mynetworks = 127.0.0.1/32

  # indented comment inside the logical line
smtpd_banner = $myhostname ESMTP
# last line, no newline
relayhost = [relay.example]:587
"""


def facteur(confdir, *args):
    return subprocess.run([harness.bin_path("facteur"), "-c", str(confdir)]
                          + list(args), capture_output=True, text=True,
                          timeout=30)


def test_edit_in_place(build, tmp_path):
    main = tmp_path / "main.cf"
    main.write_text(MAIN)
    os.chmod(main, 0o640)
    ino = os.stat(main).st_ino
    r = facteur(tmp_path, "conf", "-e", "myhostname=b.example",
                "mynetworks = 127.0.0.1/32", "relayhost=[relay.example]:587")
    assert r.returncode == 0, r.stderr
    assert main.read_text() == EXPECTED
    st = os.stat(main)
    assert stat.S_IMODE(st.st_mode) == 0o640          # mode kept
    assert st.st_ino != ino                           # replaced by rename
    assert sorted(os.listdir(tmp_path)) == ["main.cf"]  # no temp file left
    r = facteur(tmp_path, "conf", "-h", "myhostname", "mynetworks",
                "relayhost")
    assert r.stdout.split("\n")[:3] == ["b.example", "127.0.0.1/32",
                                        "[relay.example]:587"]
    # Idempotent.
    r = facteur(tmp_path, "conf", "-e", "relayhost=[relay.example]:587")
    assert r.returncode == 0 and main.read_text() == EXPECTED


def test_edit_creates_and_last_wins(build, tmp_path):
    r = facteur(tmp_path, "conf", "-e", "myhostname=x.example",
                "myhostname=y.example")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "main.cf").read_text() == "myhostname = y.example\n"


def test_edit_unknown_name_warns(build, tmp_path):
    r = facteur(tmp_path, "conf", "-e", "no_such_thing=1")
    assert r.returncode == 0
    assert "no_such_thing: unknown parameter" in r.stderr
    assert "no_such_thing = 1\n" in (tmp_path / "main.cf").read_text()


@pytest.mark.parametrize("arg", ["novalue", "=x", "bad-name=1", "a b=1"])
def test_edit_bad_arguments(build, tmp_path, arg):
    (tmp_path / "main.cf").write_text(MAIN)
    r = facteur(tmp_path, "conf", "-e", arg)
    assert r.returncode == 2 and "expected name=value" in r.stderr
    assert (tmp_path / "main.cf").read_text() == MAIN


def test_edit_refuses_nul(build, tmp_path):
    (tmp_path / "main.cf").write_bytes(b"myhostname = a\0b\n")
    r = facteur(tmp_path, "conf", "-e", "myhostname=c.example")
    assert r.returncode == 1 and "NUL" in r.stderr
    assert (tmp_path / "main.cf").read_bytes() == b"myhostname = a\0b\n"


def test_edit_needs_arguments(build, tmp_path):
    r = facteur(tmp_path, "conf", "-e")
    assert r.returncode == 2


def test_master_listing(build, tmp_path):
    (tmp_path / "main.cf").write_text("myhostname = mx.example.test\n")
    (tmp_path / "master.cf").write_text(
        "127.0.0.1:2525 inet n - n - - smtpd\n"
        "submission inet n - n - 50 smtpd\n"
        "  -o syslog_name=facteur/submission\n"
        "  -o smtpd_helo_required=yes\n"
        "pickup unix n - y 60 1 pickup\n"
        "policy unix - n n - 0 spawn user=nobody argv=/usr/bin/true -v\n"
        "smtp-amavis unix - - n - 2 smtp\n"
        "  -o smtp_data_done_timeout=1200\n")
    r = facteur(tmp_path, "conf", "-M")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4, lines
    assert lines[0].split() == ["127.0.0.1:2525", "inet", "smtpd",
                                "listen=127.0.0.1:2525"]
    assert lines[1].split() == ["submission", "inet", "smtpd", "maxproc=50",
                                "listen=*:587", "-o",
                                "syslog_name=facteur/submission", "-o",
                                "smtpd_helo_required=yes"]
    # a spawn service: its socket under $queue_directory/private, its command
    assert lines[2].split() == ["policy", "unix", "spawn", "socket=private/policy",
                                "user=nobody", "argv=/usr/bin/true", "-v"]
    # a delivery transport, named by content_filter / transport_maps
    assert lines[3].split() == ["smtp-amavis", "unix", "smtp", "maxproc=2",
                                "transport=smtp-amavis", "-o",
                                "smtp_data_done_timeout=1200"]


def test_check_directory_ownership(facteurd, build):
    d = facteurd(start=False)
    cli = d.cli

    class R:
        def __init__(self, r):
            self.returncode = r.returncode
            self.stderr = r.stderr.decode("utf-8", "replace")

    d.cli = lambda *a: R(cli(*a))
    assert d.cli("check").returncode == 0
    os.makedirs(d.mail, exist_ok=True)
    # World-writable mail base: refused.
    os.chmod(d.mail, 0o777)
    r = d.cli("check")
    assert r.returncode == 1 and "writable by everyone" in r.stderr, r.stderr
    os.chmod(d.mail, 0o755)
    if os.geteuid() != 0:
        return
    # As root: a mail base the mail owner cannot write, a queue subdirectory
    # owned by someone else, a mail owner that does not exist.
    os.chown(d.mail, 0, 0)
    r = d.cli("check")
    assert r.returncode == 1 and "cannot create maildirs in" in r.stderr
    os.chown(d.mail, d.vmail_uid, d.vmail_gid)
    os.makedirs(os.path.join(d.queue, "deferred"), exist_ok=True)
    os.chown(os.path.join(d.queue, "deferred"), 0, 0)
    r = d.cli("check")
    assert r.returncode == 1 and "deferred is owned by uid 0" in r.stderr
    os.chown(os.path.join(d.queue, "deferred"), d.vmail_uid, d.vmail_gid)
    assert d.cli("check").returncode == 0
    d.params["mail_owner"] = "facteur-no-such-user"
    d.write_config()
    r = d.cli("check")
    assert r.returncode == 1 and "does not exist" in r.stderr
    d.params["mail_owner"] = "root"
    d.write_config()
    r = d.cli("check")
    assert r.returncode == 1 and "is root" in r.stderr
