"""
test_aliases.py - alias_maps for the mydestination domains, with the
aliases(5) text file read directly (seed 003's "root: fred" file, with its
duplicate "root" line: the first one is used, as postalias keeps it and
warns): lists, continuation lines, aliases of aliases, user+ext; targets
that are commands, files or :include: are refused with a clear reason and
a log line (facteur has no local delivery agent), the other members of the
alias still get the mail; newaliases / sendmail -bi and facteur map
query|dump -a read the same file.
"""
import os
import re
import subprocess
import time

import harness
from harness import check, dot_stuff, make_msg
from test_sendmail import local_bin, _drop

ALIASES = """\
# seed 003 (the "root: postfix" line commented out, as the guide says)
# root:         postfix
root:   fred
frederic.m:     fred
fmr:     fred
root:   admin,fred
postmaster: root
team: alice@example.test,
      bob@example.test
"Quoted Name": carol@example.test
prog: |/usr/bin/procmail
mixed: "|/usr/bin/procmail -a x", carol@example.test, /var/mail/carol
inc: :include:/etc/mail/list
broken line without colon
# the local user fred reads his mail in the hosted domain
fred: fred@example.test
"""


def daemon(facteurd, aliases=ALIASES, start=True):
    # myorigin = $myhostname (local): "root: fred" means fred@mx.example.test
    d = facteurd(start=False, main_cf={
        "mydestination": "localhost, $myhostname"})
    path = os.path.join(d.confdir, "aliases")
    with open(path, "w") as f:
        f.write(aliases)
    d.aliases_path = path
    d.params["alias_maps"] = "hash:" + path
    d.vmailbox += "fred@example.test example.test/fred/\n"
    d.write_config()
    if start:
        d.start()
    return d


def rcpt(d, addr):
    with d.session() as c:
        check(c.cmd("MAIL FROM:<x@remote.test>"), 250)
        return c.cmd("RCPT TO:<%s>" % addr)


def test_root_fred_and_aliases_of_aliases(facteurd):
    d = daemon(facteurd)
    d.send("x@remote.test", ["root@mx.example.test"],
           make_msg("root", to="root@mx.example.test"))
    got = d.wait_files("fred@example.test", 1)
    assert len(got) == 1, d.diagnostics()
    f = got[0]
    assert f.field("X-Original-To") == "root@mx.example.test"
    # the first "root" line wins: admin is not a target
    assert "admin" not in d.log()
    # postmaster -> root -> fred; fmr -> fred; user+ext -> user's alias
    d.send("x@remote.test", ["postmaster@mx.example.test",
                             "fmr+tag@localhost"],
           make_msg("pm", to="postmaster@mx.example.test"))
    assert len(d.wait_files("fred@example.test", 2)) == 2
    # a list with a continuation line; a quoted name
    d.send("x@remote.test", ["team@mx.example.test",
                             "\"quoted name\"@mx.example.test"],
           make_msg("team", to="team@mx.example.test"))
    assert len(d.wait_files("alice@example.test", 1)) == 1
    assert len(d.wait_files("bob@example.test", 1)) == 1
    assert len(d.wait_files("carol@example.test", 1)) == 1
    # a local name that is no alias: unknown, as Postfix says it
    r = rcpt(d, "nobody@mx.example.test")
    check(r, 550, "5.1.1", r"User unknown in local recipient table")


def test_command_file_include_refused(facteurd):
    d = daemon(facteurd)
    r = rcpt(d, "prog@mx.example.test")
    check(r, 550, "5.1.1", r"mail to command is restricted")
    check(rcpt(d, "inc@mx.example.test"), 550, "5.1.1",
          r":include: is restricted")
    d.wait_log(r"reject: RCPT from .*prog@mx\.example\.test")
    # the other members of a mixed alias get the mail, the refusal is logged
    d.send("x@remote.test", ["mixed@mx.example.test"],
           make_msg("mixed", to="mixed@mx.example.test"))
    assert len(d.wait_files("carol@example.test", 1)) == 1
    d.wait_log(r"warning: <mixed@mx\.example\.test>: alias_maps: mixed: "
               r"\"\|/usr/bin/procmail -a x\" refused: mail to command is "
               r"restricted")


def test_aliases_file_reloaded(facteurd):
    d = daemon(facteurd)
    check(rcpt(d, "newname@mx.example.test"), 550, "5.1.1")
    time.sleep(1.1)
    with open(d.aliases_path, "a") as f:
        f.write("newname: carol@example.test\n")
    deadline = time.time() + 10
    while time.time() < deadline:
        r = rcpt(d, "newname@mx.example.test")
        if r.code == 250:
            break
        time.sleep(0.3)
    check(r, 250)


def test_missing_aliases_file_defers(facteurd):
    d = daemon(facteurd, start=False)
    os.unlink(d.aliases_path)
    d.start()
    check(rcpt(d, "root@mx.example.test"), 451, "4.3.0")


def newaliases(d, args, prog="sendmail"):
    exe = local_bin("sendmail")
    if prog == "newaliases":
        alt = os.path.join(os.path.dirname(exe), "newaliases")
        if not os.path.exists(alt):
            os.symlink("sendmail", alt)
        exe = alt
    return subprocess.run([exe, "-C", d.confdir] + args, capture_output=True,
                          timeout=20, preexec_fn=_drop, cwd="/")


def test_newaliases_and_map_cli(facteurd):
    d = daemon(facteurd, start=False)
    os.chmod(d.confdir, 0o755)
    os.chmod(d.aliases_path, 0o644)
    for prog, args in (("sendmail", ["-bi"]), ("newaliases", [])):
        r = newaliases(d, args, prog)
        assert r.returncode == 0, r.stderr
        # 10 distinct names; the duplicate and the broken line are reported
        assert b"10 aliases" in r.stdout, r.stdout
        err = r.stderr.decode()
        assert "line 6: duplicate entry" in err, err
        assert "line 14: need name:value pair" in err, err
    r = d.cli("map", "query", "-a", "hash:" + d.aliases_path, "ROOT")
    assert r.returncode == 0 and r.stdout == b"fred\n", r
    r = d.cli("map", "query", "-a", "hash:" + d.aliases_path, "team")
    assert re.match(rb"alice@example.test,\s+bob@example.test\n$", r.stdout), r
    r = d.cli("map", "query", "-a", "hash:" + d.aliases_path, "nosuch")
    assert r.returncode == 1
    r = d.cli("map", "dump", "-a", "hash:" + d.aliases_path)
    assert r.returncode == 0
    assert b"postmaster\troot\n" in r.stdout
    # facteur check reads it too
    r = d.cli("check")
    assert b"duplicate entry" in r.stderr + r.stdout
    # an unreadable source is an error for newaliases
    os.unlink(d.aliases_path)
    r = newaliases(d, ["-bi"])
    assert r.returncode != 0
    assert b"aliases" in r.stderr


def test_include_when_enabled(facteurd):
    d = daemon(facteurd, start=False)
    lst = os.path.join(d.confdir, "list")
    with open(lst, "w") as f:
        f.write("# the team\nalice@example.test\n"
                "bob@example.test, |/bin/cat\n")
    with open(d.aliases_path, "a") as f:
        f.write("members: :include:%s\n" % lst)
        f.write("lost: :include:%s/nosuch\n" % d.confdir)
    d.params["facteur_alias_include"] = "yes"
    d.write_config()
    d.start()
    d.send("x@remote.test", ["members@mx.example.test"],
           make_msg("members", to="members@mx.example.test"))
    assert len(d.wait_files("alice@example.test", 1)) == 1
    assert len(d.wait_files("bob@example.test", 1)) == 1
    d.wait_log(r"warning: <members@mx\.example\.test>: alias_maps: members: "
               r"\"\|/bin/cat\" refused: mail to command is restricted")
    # an include file that cannot be read: try later, never a bounce
    check(rcpt(d, "lost@mx.example.test"), 451, "4.3.0")
    d.wait_log(r"lost@mx\.example\.test>: :include:.*nosuch: No such file")


def test_extension_propagation(facteurd):
    # default (canonical, virtual): the alias's targets do not get +tag
    d = daemon(facteurd)
    d.send("x@remote.test", ["team+tag@mx.example.test"],
           make_msg("ext", to="team+tag@mx.example.test"))
    f = d.wait_files("alice@example.test", 1)[0]
    assert f.field("X-Original-To") == "team+tag@mx.example.test"
    assert f.field("Delivered-To") == "alice@example.test"
    d.stop()
    # with "alias" they do, as local(8) does
    d.params["propagate_unmatched_extensions"] = "canonical, virtual, alias"
    d.write_config()
    d.start()
    d.send("x@remote.test", ["team+tag@mx.example.test"],
           make_msg("ext2", to="team+tag@mx.example.test"))
    got = d.wait_files("alice@example.test", 2)
    assert sorted(g.field("Delivered-To") for g in got) == [
        "alice+tag@example.test", "alice@example.test"]
