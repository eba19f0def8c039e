"""
test_sieve.py - Sieve at delivery: mail sent over SMTP lands in the folder
the user's <home>/.dovecot.sieve chooses, with imap4flags as maildir flags;
subaddress; discard; sieve_before runs first; a broken script still
delivers to INBOX with a log line; a vacation reply is queued once;
include from <home>/sieve/ and sieve_global_dir, editheader edits in the
delivered file, duplicate state that survives a restart.
"""
import glob
import os
import time

from harness import check, make_msg, dot_stuff, queue_id_of

USERS = ("alice@example.test example.test/alice/\n"
         "dave@example.test example.test/dave/Maildir/\n")


def put_script(d, home_rel, text):
    home = os.path.join(d.mail, home_rel)
    os.makedirs(home, exist_ok=True)
    path = os.path.join(home, ".dovecot.sieve")
    with open(path, "w") as f:
        f.write(text)
    for p in (home, os.path.dirname(home), path):
        os.chown(p, d.vmail_uid, d.vmail_gid)
    return path


def send(d, rcpt, subject="hello", sender="sender@example.net", extra=b"",
         msgid=None):
    msg = make_msg(subject, to=rcpt, extra_headers=extra, msgid=msgid)
    with d.connect() as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<%s>" % sender), 250)
        check(c.cmd("RCPT TO:<%s>" % rcpt), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        qid = queue_id_of(check(c.reply(), 250, "2.0.0"))
        check(c.cmd("QUIT"), 221)
    return qid


def files(d, rel, folder=""):
    base = os.path.join(d.mail, rel, ("." + folder) if folder else "")
    out = []
    for sub in ("new", "cur"):
        out += sorted(glob.glob(os.path.join(base, sub, "*")))
    return out


def wait_files(d, rel, folder="", n=1, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        f = files(d, rel, folder)
        if len(f) >= n:
            return f
        time.sleep(0.05)
    raise AssertionError("no delivery in %s/%s\n%s"
                         % (rel, folder, d.diagnostics()))


def maillog(d):
    try:
        with open(d.maillog, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_log(d, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in maillog(d):
            return
        time.sleep(0.05)
    raise AssertionError("%r not logged\n%s" % (text, d.diagnostics()))


def test_fileinto_flags_and_utf7(facteurd):
    d = facteurd(vmailbox=USERS)
    put_script(d, "example.test/alice", r'''
require ["fileinto", "imap4flags"];
if header :contains "subject" "invoice" {
    fileinto :flags ["\\Seen", "\\Flagged"] "Accounts";
} elsif header :is "subject" "reçu" {
    fileinto "Reçu";
}
''')
    send(d, "alice@example.test", "Your invoice 42")
    f = wait_files(d, "example.test/alice", "Accounts")
    assert "/cur/" in f[0] and f[0].endswith(":2,FS"), f
    assert os.path.exists(os.path.join(d.mail, "example.test/alice/.Accounts/maildirfolder"))
    send(d, "alice@example.test", "=?utf-8?q?re=C3=A7u?=")
    wait_files(d, "example.test/alice", "Re&AOc-u")
    assert files(d, "example.test/alice") == []     # nothing in INBOX


def test_home_is_parent_of_Maildir_and_subaddress(facteurd):
    d = facteurd(vmailbox=USERS)
    put_script(d, "example.test/dave", '''
require ["fileinto", "envelope", "subaddress"];
if envelope :detail "to" "news" { fileinto "News"; }
''')
    send(d, "dave+news@example.test")
    wait_files(d, "example.test/dave/Maildir", "News")
    send(d, "dave@example.test")
    wait_files(d, "example.test/dave/Maildir")


def test_discard_and_broken_script(facteurd):
    d = facteurd(vmailbox=USERS)
    put_script(d, "example.test/alice", 'if header :contains "subject" "drop" { discard; }\n')
    send(d, "alice@example.test", "please drop me")
    wait_log(d, "discarded by sieve script")
    assert files(d, "example.test/alice") == []
    put_script(d, "example.test/alice", 'require "fileinto";\nfileint "x";\n')
    send(d, "alice@example.test", "broken")
    wait_files(d, "example.test/alice")
    wait_log(d, "2:1: unknown command 'fileint'")
    assert "implicit keep" in maillog(d)


def test_sieve_before_runs_first(facteurd, tmp_path):
    before = os.path.join(str(tmp_path), "before.sieve")
    d = facteurd(vmailbox=USERS)
    before = os.path.join(d.root, "before.sieve")
    with open(before, "w") as f:
        f.write('require "fileinto";\nif header :contains "subject" "[SPAM]" '
                '{ fileinto "Junk"; }\n')
    os.chmod(before, 0o644)
    d.params["sieve_before"] = before
    d.write_config()
    d.stop()
    d.start()
    put_script(d, "example.test/alice", 'require "fileinto";\nfileinto "User";\n')
    send(d, "alice@example.test", "[SPAM] buy now")
    wait_files(d, "example.test/alice", "Junk")
    send(d, "alice@example.test", "normal")
    wait_files(d, "example.test/alice", "User")
    assert len(files(d, "example.test/alice", "Junk")) == 1


def test_vacation_queued_once(facteurd):
    d = facteurd(vmailbox=USERS)
    put_script(d, "example.test/alice", '''
require "vacation";
vacation :days 1 :subject "Out of office" "I am away.";
''')
    for i in range(2):
        send(d, "alice@example.test", "question %d" % i,
             sender="friend@remote.test")
        wait_files(d, "example.test/alice", n=i + 1)
    wait_log(d, "vacation reply from <alice@example.test> to <friend@remote.test> queued")
    wait_log(d, "already replied within the period")
    assert maillog(d).count("vacation reply from") == 1
    # never to a list
    send(d, "alice@example.test", "list", sender="other@remote.test",
         extra=b"List-Id: <x.lists.test>\r\n")
    wait_files(d, "example.test/alice", n=3)
    assert "to <other@remote.test> queued" not in maillog(d)
    state = os.listdir(os.path.join(d.mail, "example.test/alice/.facteur-vacation"))
    assert len(state) == 1


def put_file(d, rel, text):
    path = os.path.join(d.mail, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    p = path
    while p != d.mail:
        os.chown(p, d.vmail_uid, d.vmail_gid)
        p = os.path.dirname(p)
    return path


def test_include_editheader_duplicate(facteurd):
    d = facteurd(vmailbox=USERS)
    gdir = os.path.join(d.root, "global-sieve")
    os.makedirs(gdir)
    with open(os.path.join(gdir, "spam.sieve"), "w") as f:
        f.write('require "fileinto";\n'
                'if header :is "x-spam" "yes" { fileinto "Junk"; }\n')
    os.chmod(gdir, 0o755)
    os.chmod(os.path.join(gdir, "spam.sieve"), 0o644)
    d.params["sieve_global_dir"] = gdir
    d.write_config()
    d.stop()
    d.start()
    put_file(d, "example.test/alice/sieve/common.sieve",
             'require "fileinto";\n'
             'if header :contains "subject" "report" { fileinto "Reports"; }\n')
    put_script(d, "example.test/alice", """
require ["include", "editheader", "duplicate", "fileinto"];
if duplicate { discard; stop; }
addheader "X-Sieve-Filtered" "yes";
deleteheader "x-internal";
deleteheader "received";
include :global "spam";
include :personal "common";
""")
    mid = "<weekly.1@client.test>"
    send(d, "alice@example.test", "weekly report", msgid=mid,
         extra=b"X-Internal: secret\r\n")
    f = wait_files(d, "example.test/alice", "Reports")
    with open(f[0], "rb") as fh:
        text = fh.read()
    head = text.split(b"\n\n", 1)[0]
    # the edits are in the delivered file; Received is protected
    assert b"\nX-Sieve-Filtered: yes\n" in head, text
    assert b"X-Internal" not in head, text
    assert b"\nReceived: " in head, text
    assert head.startswith(b"Return-Path: <sender@example.net>\n"), text
    assert text.endswith(b"\n\nHello.\n"), text
    # the same Message-ID again: a duplicate, discarded
    send(d, "alice@example.test", "weekly report", msgid=mid)
    wait_log(d, "discarded by sieve script")
    # the state survives a restart
    d.stop()
    d.start()
    send(d, "alice@example.test", "weekly report again", msgid=mid)
    deadline = time.time() + 10
    while maillog(d).count("discarded by sieve script") < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert maillog(d).count("discarded by sieve script") == 2, d.diagnostics()
    assert len(files(d, "example.test/alice", "Reports")) == 1
    assert os.path.exists(os.path.join(d.mail, "example.test/alice",
                                       ".facteur-duplicate.lmdb"))
    # the global script
    send(d, "alice@example.test", "buy now", extra=b"X-Spam: yes\r\n")
    wait_files(d, "example.test/alice", "Junk")
    assert files(d, "example.test/alice") == []


def test_missing_include_keeps_in_inbox(facteurd):
    d = facteurd(vmailbox=USERS)
    put_script(d, "example.test/alice", """
require ["include", "fileinto"];
fileinto "Before";
include "nonesuch";
""")
    send(d, "alice@example.test", "x")
    wait_files(d, "example.test/alice")
    wait_log(d, 'include: personal script "nonesuch" does not exist')
    assert files(d, "example.test/alice", "Before") == []


def test_keywords_dovecot_compatible(facteurd):
    """imap4flags keywords: letters in the file name mapped by the
    folder's dovecot-keywords; Dovecot IMAP FETCH FLAGS shows them, and a
    keyword Dovecot itself added keeps its letter."""
    from test_dovecot_imap import Dovecot, need_dovecot, fetch_all
    d = facteurd(vmailbox=USERS)
    put_script(d, "example.test/alice", r'''
require ["fileinto", "imap4flags"];
if header :contains "subject" "work" {
    fileinto :flags ["\\Seen", "$Label1", "work"] "Work";
} else {
    addflag ["Important", "bad(atom"];
}
''')
    send(d, "alice@example.test", "work item 1")
    f = wait_files(d, "example.test/alice", "Work")
    assert f[0].endswith(":2,Sab"), f
    kwfile = os.path.join(d.mail, "example.test/alice/.Work/dovecot-keywords")
    with open(kwfile) as fh:
        assert fh.read() == "0 $Label1\n1 work\n"
    send(d, "alice@example.test", "other")
    f = wait_files(d, "example.test/alice")
    assert f[0].endswith(":2,a"), f      # Important; bad(atom is dropped
    with open(os.path.join(d.mail, "example.test/alice/dovecot-keywords")) as fh:
        assert fh.read() == "0 Important\n"
    need_dovecot()
    dv = Dovecot(d, {"alice@example.test": "pw"})
    dv.start()
    try:
        c = dv.login("alice@example.test", "pw")
        try:
            got = fetch_all(c, "Work")
            flags = got[0][0].decode()
            assert "$Label1" in flags and "work" in flags and "\\Seen" in flags, flags
            got = fetch_all(c, "INBOX")
            assert "Important" in got[0][0].decode(), got[0][0]
            # Dovecot adds a keyword of its own to the Work folder
            typ, data = c.select("Work")
            assert typ == "OK"
            typ, data = c.store("1", "+FLAGS", "(Urgent)")
            assert typ == "OK", data
            c.close()
        finally:
            c.logout()
        with open(kwfile) as fh:
            text = fh.read()
        assert "0 $Label1\n1 work\n" in text and "Urgent" in text, text
        # our next delivery uses Dovecot's letter for Urgent
        put_script(d, "example.test/alice", r'''
require ["fileinto", "imap4flags"];
fileinto :flags ["Urgent", "work"] "Work";
''')
        urgent = [l.split()[0] for l in text.splitlines() if l.endswith(" Urgent")][0]
        send(d, "alice@example.test", "second")
        f = wait_files(d, "example.test/alice", "Work", n=2)
        new = [x for x in f if "second" in open(x, errors="replace").read()]
        assert new, f
        letters = new[0].rsplit(":2,", 1)[1]
        assert sorted(letters) == sorted("b" + chr(ord("a") + int(urgent))), new
        c = dv.login("alice@example.test", "pw")
        try:
            got = fetch_all(c, "Work")
            assert any("Urgent" in fl.decode() and "work" in fl.decode()
                       and "second" in m.decode(errors="replace")
                       for fl, m in got), got
        finally:
            c.logout()
    finally:
        dv.stop()


def test_script_sequence_as_pigeonhole(facteurd):
    """sieve_before / user / sieve_after: the next script runs while the
    keep (implicit or explicit) is in effect, even after "stop"; the
    earlier keep is replaced by what the next script does; imap4flags
    carry over."""
    d = facteurd(vmailbox=USERS)
    before = os.path.join(d.root, "before.sieve")
    after = os.path.join(d.root, "after.sieve")
    with open(before, "w") as f:
        f.write('require "imap4flags";\n'
                'if header :contains "subject" "flag" { addflag "\\\\Seen"; stop; }\n'
                'if header :contains "subject" "explicit" { keep; }\n')
    with open(after, "w") as f:
        f.write('require "fileinto";\nfileinto "After";\n')
    for p in (before, after):
        os.chmod(p, 0o644)
    d.params["sieve_before"] = before
    d.params["sieve_after"] = after
    d.write_config()
    d.stop()
    d.start()
    put_script(d, "example.test/alice", '''
require "fileinto";
if header :contains "subject" "user" { fileinto "User"; }
''')
    # explicit keep in before, fileinto in the user script: only User
    send(d, "alice@example.test", "explicit user")
    wait_files(d, "example.test/alice", "User")
    # stop + flag in before: the user script still runs, with the flag
    send(d, "alice@example.test", "flag user")
    f = wait_files(d, "example.test/alice", "User", n=2)
    assert [x for x in f if x.endswith(":2,S")], f
    # nothing in before or user: sieve_after runs and files it
    send(d, "alice@example.test", "plain")
    wait_files(d, "example.test/alice", "After")
    time.sleep(0.3)
    assert files(d, "example.test/alice") == []
    assert len(files(d, "example.test/alice", "User")) == 2
    assert len(files(d, "example.test/alice", "After")) == 1


def test_reject_at_smtp_time_and_conflict_keeps(facteurd):
    """reject refuses at the end of DATA (5.7.1 with the reason) when it
    is the only recipient; a reject that conflicts with a fileinto is a
    run-time error: the message goes to INBOX and the reason is logged."""
    d = facteurd(vmailbox=USERS)
    put_script(d, "example.test/alice", '''
require ["reject", "fileinto"];
if header :contains "subject" "spam" { reject "We do not want it."; }
if header :contains "subject" "both" { fileinto "Kept"; reject "No."; }
''')
    msg = make_msg("buy spam now", to="alice@example.test")
    with d.connect() as c:
        check(c.cmd("EHLO client.test"), 250)
        check(c.cmd("MAIL FROM:<sender@example.net>"), 250)
        check(c.cmd("RCPT TO:<alice@example.test>"), 250)
        check(c.cmd("DATA"), 354)
        c.send(dot_stuff(msg))
        r = check(c.reply(), 550, "5.7.1")
        assert "We do not want it." in str(r), r
        check(c.cmd("QUIT"), 221)
    assert files(d, "example.test/alice") == []
    assert d.queue_files() == []
    send(d, "alice@example.test", "both ways")
    wait_files(d, "example.test/alice")
    wait_log(d, "reject action conflicts with the store action at line 4")
    assert files(d, "example.test/alice", "Kept") == []
