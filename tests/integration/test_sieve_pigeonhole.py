"""
test_sieve_pigeonhole.py - differential test against Pigeonhole: for each
(script, message, envelope) case, `facteur sieve test` and Debian's
`sieve-test` (package dovecot-sieve) run the same script on the same
message; both outputs are reduced to a list of actions (store FOLDER with
flags, redirect, reject, discard, vacation, and the implicit keep) and must
be equal. The cases cover RFC 5228 (tests, match types, comparators,
address parts, stop, elsif), fileinto, mailbox, copy, imap4flags,
variables, subaddress, envelope, body (:raw, :text, :content on multipart
messages), relational, regex, editheader,
include (personal and global, :once, :optional, global variables,
return), duplicate, reject, redirect, vacation and date. (ereject is left
out: Debian's Pigeonhole 0.5 does not know it.)

sieve-test runs with a private dovecot.conf (its own base_dir, the
personal script directory, sieve_global) as an unprivileged user, because
Dovecot refuses to run mail code as root.
"""
import os
import pwd
import re
import shutil
import subprocess
import tempfile

import pytest

import harness

SIEVE_TEST = shutil.which("sieve-test") or "/usr/bin/sieve-test"
RCPT = "alice@example.test"
SENDER = "bob@example.net"


def msg(subject="hello", frm="Bob <bob@example.net>", to="alice@example.test",
        extra="", body="Hello Alice.\n"):
    return ("Return-Path: <bob@example.net>\n"
            "Received: from mx.example.net by mx.example.test; "
            "Mon, 1 Jul 2024 10:00:00 +0000\n"
            "Received: from client by mx.example.net; "
            "Mon, 1 Jul 2024 09:59:00 +0000\n"
            "Date: Mon, 1 Jul 2024 10:00:00 +0200\n"
            "From: %s\nTo: %s\nSubject: %s\n"
            "Message-ID: <m1.%s@example.net>\n%s\n%s"
            % (frm, to, subject, abs(hash(subject)) % 100000, extra, body))


def case(name, script, message=None, opts=None):
    """(name, script, message, options); the message is msg() unless
    given; options: rcpt, sender, personal {name: text}, global {name:
    text}, before [texts] (sieve_before scripts: sieve-test -s, facteur
    sieve test --before)."""
    return (name, script, msg() if message is None else message, opts or {})


ELSIF = ('require "fileinto";\n'
         'if header :contains "subject" "invoice" { fileinto "Invoices"; }\n'
         'elsif address :domain :is "from" "example.org" { discard; }\n'
         'else { keep; }\n')
USER_SCRIPT = 'require "fileinto";\nfileinto "User";\n'

# vacation is compared by its period (seconds), not its text.
CASES = [
    case("core_elsif_header", ELSIF, msg("Your INVOICE 42")),
    case("core_elsif_address", ELSIF, msg("hi", frm="x@EXAMPLE.org")),
    case("core_allof_size_exists_stop",
         'require "fileinto";\n'
         'if allof (exists ["x-spam-flag", "from"], size :over 100,\n'
         '          not header :is "x-spam-flag" "NO") {\n'
         '  fileinto "Junk"; stop; }\n'
         'fileinto "Never";\n',
         msg("spam", extra="X-Spam-Flag: YES\n")),
    case("core_matches_octet_localpart",
         'require "fileinto";\n'
         'if address :localpart :matches :comparator "i;octet" "to" "ali?e" {\n'
         '  fileinto "Exact"; }\n'
         'if header :matches "subject" "*\\\\**" { fileinto "Star"; }\n',
         msg("a * b")),
    case("matches_question_mark_is_an_octet",
         'require "fileinto";\n'
         'if header :matches "subject" "a?c" { fileinto "OneOctet"; }\n'
         'if header :matches "subject" "a??c" { fileinto "TwoOctets"; }\n',
         msg("a\u00e9c")),
    case("imap4flags_variables",
         'require ["imap4flags", "fileinto", "variables"];\n'
         'set "f" "\\\\Seen \\\\Flagged";\n'
         'setflag "f2" "${f}"; addflag "f2" "x"; removeflag "f2" "\\\\seen";\n'
         'if hasflag :is "f2" ["\\\\flagged", "x"] {\n'
         '  fileinto :flags "${f2}" "HF"; }\n'),
    case("editheader_index_count",
         'require ["fileinto", "relational", "editheader",\n'
         '         "comparator-i;ascii-numeric"];\n'
         'addheader :last "X-A" "1"; addheader "X-A" "0";\n'
         'deleteheader :index 2 "x-a";\n'
         'if header :is "x-a" "0" { fileinto "Zero"; }\n'
         'if header :count "eq" :comparator "i;ascii-numeric" "x-a" "1" {\n'
         '  fileinto "One"; }\n'),
    case("variables_matches",
         'require ["fileinto", "variables"];\n'
         'if header :matches "subject" "[*] *" {\n'
         '  set :lower "list" "${1}"; fileinto "lists.${list}"; }\n'
         'set :upperfirst "x" "word";\n'
         'if string :is "${x}" "Word" { fileinto "Upper"; }\n',
         msg("[Dev-List] release")),
    case("imap4flags_fileinto_keep",
         'require ["fileinto", "imap4flags"];\n'
         'addflag "\\\\Seen";\n'
         'fileinto :flags "\\\\Flagged work" "Tagged";\n'
         'addflag "$Label1";\n'
         'if hasflag :contains "label" { keep; }\n'),
    case("subaddress_envelope",
         'require ["fileinto", "envelope", "subaddress", "variables"];\n'
         'if envelope :detail :matches "to" "*" { fileinto "sub.${1}"; }\n'
         'if envelope :all :is "from" "bob@example.net" { fileinto "FromBob"; }\n',
         msg(), {"rcpt": "alice+lists@example.test"}),
    case("explicit_keep_flags",
         'require "imap4flags";\n'
         'keep :flags "\\\\Answered";\n'
         'if header :contains "subject" "hello" { keep; }\n'),
    case("same_mailbox_twice_later_flags_win",
         'require ["imap4flags", "fileinto", "copy"];\n'
         'fileinto :flags "\\\\Seen" "A"; fileinto :flags "\\\\Answered" "A";\n'
         'fileinto :copy "B"; fileinto :flags "\\\\Seen" "B";\n'
         'fileinto "INBOX"; keep :flags "\\\\Deleted";\n'
         'redirect "x@example.net"; redirect "x@example.net";\n'
         'redirect "X@example.net";\n'),
    case("body_text",
         'require ["fileinto", "body"];\n'
         'if body :text :contains "unsubscribe" { fileinto "Bulk"; }\n'
         'if body :raw :contains "QUIET" { fileinto "Never"; }\n',
         msg(body="Hi.\nTo unsubscribe click here.\n")),
    case("body_content_multipart",
         'require ["fileinto", "body"];\n'
         'if body :content "text/html" :contains "html" { fileinto "Html"; }\n'
         'if body :text :contains "plain part" { fileinto "Plain"; }\n'
         'if body :content "text" :contains "\u00e9" { fileinto "Accent"; }\n'
         'if body :content "image" :contains "" { fileinto "Image"; }\n',
         msg(extra='MIME-Version: 1.0\nContent-Type: multipart/alternative; '
                   'boundary="b1"\n',
             body='preamble\n--b1\nContent-Type: text/plain; charset=utf-8\n\n'
                  'plain part hello\n--b1\nContent-Type: text/html\n'
                  'Content-Transfer-Encoding: quoted-printable\n\n'
                  '<p>html =C3=A9 part</p>\n--b1--\n')),
    case("copy_flags_redirect_keep",
         'require ["fileinto", "copy", "imap4flags"];\n'
         'fileinto :copy :flags "\\\\Seen" "A";\n'
         'addflag "\\\\Flagged";\n'
         'redirect "a@example.net";\nkeep;\n'),
    case("relational_count_value",
         'require ["fileinto", "relational", "comparator-i;ascii-numeric"];\n'
         'if header :count "ge" :comparator "i;ascii-numeric" "received" "2" {\n'
         '  fileinto "TwoHops"; }\n'
         'if header :value "gt" :comparator "i;ascii-numeric" "x-score" "5" {\n'
         '  fileinto "HighScore"; }\n',
         msg(extra="X-Score: 12\n")),
    case("regex_capture",
         'require ["fileinto", "regex", "variables"];\n'
         'if header :regex "subject" "^\\\\[([a-z]+)-([0-9]+)\\\\]" {\n'
         '  fileinto "${1}.${2}"; }\n',
         msg("[ticket-123] broken")),
    case("editheader_add_delete",
         'require ["fileinto", "editheader", "imap4flags"];\n'
         'addheader "X-Filtered" "yes";\n'
         'if header :is "x-filtered" "yes" { fileinto "Edited"; }\n'
         'deleteheader :contains "subject" "secret";\n'
         'if not exists "subject" { addflag "\\\\Seen"; }\n'
         'addheader :last "X-Tail" "1";\n'
         'addheader :last "X-Tail" "2";\n'
         'deleteheader :index 1 :last "x-tail";\n'
         'if header :is "x-tail" "1" { fileinto "TailOne"; }\n'
         'if header :is "x-tail" "2" { fileinto "TailTwo"; }\n',
         msg("top secret")),
    case("editheader_protected",
         'require ["fileinto", "editheader"];\n'
         'deleteheader "received";\n'
         'deleteheader "from";\n'
         'if exists "received" { fileinto "KeptReceived"; }\n'
         'if not exists "from" { fileinto "NoFrom"; }\n'),
    case("include_personal_global_vars",
         'require ["include", "variables", "fileinto"];\n'
         'global "target";\n'
         'set "target" "Inc";\n'
         'include :personal "sub";\n'
         'include :once "sub";\n'
         'include :optional "missing";\n'
         'include :global "glob";\n'
         'fileinto "${target}.after";\n',
         msg(), {"personal": {
             "sub": 'require ["include", "variables", "fileinto"];\n'
                    'global "target";\n'
                    'fileinto "${target}.sub";\n'
                    'set "target" "Changed";\n'
                    'return;\n'
                    'fileinto "NotReached";\n'},
             "global": {
             "glob": 'require ["include", "variables", "fileinto"];\n'
                     'global "target";\n'
                     'if string :is "${target}" "Changed" { fileinto "GlobalSaw"; }\n'}}),
    case("include_stop_in_child",
         'require ["include", "fileinto"];\n'
         'include "stopper";\n'
         'fileinto "NotReached";\n',
         msg(), {"personal": {"stopper": 'require "fileinto";\n'
                                         'fileinto "Child"; stop;\n'}}),
    case("duplicate_first_time",
         'require ["duplicate", "fileinto"];\n'
         'if duplicate { discard; stop; }\n'
         'if duplicate :header "subject" :handle "s" { fileinto "Dup"; }\n'
         'fileinto "First";\n'),
    case("reject",
         'require "reject";\n'
         'if header :contains "subject" "viagra" { reject "Not wanted here."; }\n',
         msg("cheap viagra")),
    case("core_anyof_cc_encoded_character",
         'require ["fileinto", "encoded-character", "variables"];\n'
         'if anyof (address :all :is ["to", "cc"] "carol@example.test",\n'
         '          header :contains "subject" "${hex:43 61 66 c3 a9}") {\n'
         '  fileinto "${unicode:263a}"; }\n'
         'set :length "n" "${unicode:e9}t${unicode:e9}";\n'
         'set :quotewildcard "q" "a*b?";\n'
         'if string :is "${n}:${q}" "3:a\\\\*b\\\\?" { fileinto "Vars"; }\n',
         msg("=?utf-8?q?Caf=C3=A9?= time", extra="Cc: Carol <carol@example.test>\n")),
    case("redirect_copy",
         'require "copy";\n'
         'redirect :copy "archive@example.net";\n'
         'redirect "carol@example.net";\n'),
    case("reject_conflicts_with_store",
         'require ["reject", "fileinto"];\n'
         'fileinto "A";\nreject "No.";\n'),
    case("reject_conflicts_with_vacation",
         'require ["reject", "vacation"];\n'
         'vacation "Away.";\nreject "No.";\n'),
    case("reject_with_discard_is_fine",
         'require "reject";\nreject "No.";\ndiscard;\n'),
    case("redirect_limit",
         'redirect "a@example.net"; redirect "b@example.net";\n'
         'redirect "c@example.net"; redirect "d@example.net";\n'
         'redirect "e@example.net";\n'),
    case("vacation_reply",
         'require "vacation";\n'
         'vacation :days 3 :subject "Away" "I am away until Monday.";\n'),
    case("vacation_seconds_at_least_a_day",
         'require "vacation-seconds";\n'
         'if header :contains "subject" "hello" { vacation :seconds 30 "Back soon."; }\n'),
    case("vacation_not_to_lists",
         'require ["vacation", "fileinto"];\n'
         'vacation "I am away.";\n'
         'fileinto "Lists";\n',
         msg(extra="Precedence: list\nList-Id: <dev.example.net>\n")),
    case("sequence_explicit_keep_then_user",
         USER_SCRIPT, msg(),
         {"before": ['keep;\n']}),
    case("sequence_stop_and_flags_carry",
         USER_SCRIPT, msg(),
         {"before": ['require "imap4flags";\naddflag "\\\\Seen";\nstop;\n']}),
    case("sequence_fileinto_ends_it",
         USER_SCRIPT, msg(),
         {"before": ['require "fileinto";\nfileinto "Before";\n']}),
    case("sequence_fileinto_and_keep_goes_on",
         USER_SCRIPT, msg(),
         {"before": ['require "fileinto";\nfileinto "Before";\nkeep;\n',
                     'if false { discard; }\n']}),
    case("date_and_mailbox_create",
         'require ["date", "relational", "fileinto", "mailbox", "variables"];\n'
         'if date :value "ge" :originalzone "date" "date" "2024-01-01" {\n'
         '  fileinto :create "Y2024"; }\n'
         'if date :is :originalzone "date" "hour" "10" { fileinto "Ten"; }\n'),
]


def run_user():
    """Dovecot refuses to run as root: an unprivileged user."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam(harness.TEST_MAIL_OWNER)


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_case(base, script, message, opts, before_option):
    """The case's files under base: personal scripts (main.sieve and the
    includes) in base/sieve, global ones in base/global, the message,
    and the sieve_before scripts; returns (personal dir, global dir,
    [before_option, path, ...], [main script, message])."""
    pers = os.path.join(base, "sieve")
    glob = os.path.join(base, "global")
    for d in (base, pers, glob):
        os.makedirs(d, exist_ok=True)
    for n, t in opts.get("personal", {}).items():
        write(os.path.join(pers, n + ".sieve"), t)
    for n, t in opts.get("global", {}).items():
        write(os.path.join(glob, n + ".sieve"), t)
    write(os.path.join(pers, "main.sieve"), script)
    write(os.path.join(base, "msg.eml"), message)
    before = []
    for k, t in enumerate(opts.get("before", [])):
        before += [before_option, os.path.join(base, "before%d.sieve" % k)]
        write(before[-1], t)
    return pers, glob, before, [os.path.join(pers, "main.sieve"),
                                os.path.join(base, "msg.eml")]


def pigeonhole(tmp, name, script, message, opts):
    base = os.path.join(tmp, "ph-" + name)
    pers, glob, before, files = write_case(base, script, message, opts, "-s")
    for d in (os.path.join(base, "run"), os.path.join(base, "mail")):
        os.makedirs(d, exist_ok=True)
    conf = os.path.join(base, "dovecot.conf")
    write(conf, """\
base_dir = {b}/run
state_dir = {b}/state
log_path = {b}/dovecot.log
mail_location = maildir:{b}/mail
recipient_delimiter = +
plugin {{
  sieve = file:{p};active={b}/.dovecot.sieve
  sieve_global = {g}
  sieve_extensions = +editheader +vacation-seconds
}}
""".format(b=base, p=pers, g=glob))
    u = run_user()
    if u is not None:
        for root, dirs, names in os.walk(base):
            for x in [root] + [os.path.join(root, f) for f in names]:
                os.chown(x, u.pw_uid, u.pw_gid)
    env = {"PATH": "/usr/bin:/bin", "HOME": base,
           "USER": u.pw_name if u else pwd.getpwuid(os.getuid()).pw_name}
    r = subprocess.run([SIEVE_TEST, "-c", conf,
                        "-f", opts.get("sender", SENDER),
                        "-r", opts.get("rcpt", RCPT),
                        "-a", opts.get("rcpt", RCPT)] + before + files,
                       capture_output=True, text=True, timeout=30, env=env,
                       user=u.pw_uid if u else None,
                       group=u.pw_gid if u else None,
                       extra_groups=[] if u else None)
    return r


def facteur(tmp, name, script, message, opts):
    pers, glob, before, files = write_case(
        os.path.join(tmp, "f-" + name), script, message, opts, "--before")
    return subprocess.run([harness.bin_path("facteur"), "sieve", "test",
                           "--from", opts.get("sender", SENDER),
                           "--to", opts.get("rcpt", RCPT),
                           "--personal", pers, "--global", glob] + before +
                          files,
                          capture_output=True, text=True, timeout=30)


def flagset(text):
    return tuple(sorted(f.lower() for f in text.split()))


def normalise(out):
    """sieve-test's (or our) report as [(section, action, arg, flags)]."""
    acts = []
    section = None
    for line in out.splitlines():
        s = line.strip()
        if s == "Performed actions:":
            section = "performed"
            continue
        if s == "Implicit keep:":
            section = "implicit"
            continue
        if section is None:
            continue
        if s.startswith("* "):
            s = s[2:]
            m = re.match(r"store message in folder: (.*?)"
                         r"(?: \(flags: (.*?)\))?(?: \(create\))?$", s)
            if m:
                acts.append([section, "store", m.group(1),
                             flagset(m.group(2) or "")])
                continue
            m = re.match(r"redirect message to:? <(.*)>$", s)
            if m:
                acts.append([section, "redirect", m.group(1).lower(), ()])
                continue
            m = re.match(r"reject message with reason: (.*)$", s)
            if m:
                acts.append([section, "reject", m.group(1).strip(), ()])
                continue
            if s.startswith("send vacation message"):
                acts.append([section, "vacation", "", ()])
                continue
            m = re.match(r"track duplicate(?: with handle: (.*))?$", s)
            if m:
                acts.append([section, "track", m.group(1) or "", ()])
                continue
            if s == "discard":
                acts.append([section, "discard", "", ()])
                continue
            if s.startswith("keep"):
                acts.append([section, "store", "INBOX", ()])
                continue
            acts.append([section, "?", s, ()])
        elif s.startswith("+ add IMAP flags:") and acts:
            acts[-1][3] = flagset(s.split(":", 1)[1])
        elif s.startswith("=> seconds :") and acts and acts[-1][1] == "vacation":
            acts[-1][2] = "seconds=" + s.split(":", 1)[1].strip()
    return [tuple(a) for a in acts]


def normalise_sequence(out):
    """sieve-test -s prints one report per script run; a script's keep
    (implicit or explicit) that let the next one run is replaced by what
    that next script does, so only the last report's keep counts."""
    parts = re.split(r"(?m)^## Executing script: .*$", out)
    if len(parts) == 1:
        return normalise(out)
    secs = [normalise(p) for p in parts[1:]]
    acts = []
    for i, sec in enumerate(secs):
        for a in sec:
            if i < len(secs) - 1 and (a[0] == "implicit" or
                                      (a[1] == "store" and a[2] == "INBOX")):
                continue
            acts.append(a)
    return acts


@pytest.fixture
def pubtmp():
    """A temp dir the unprivileged sieve-test user can reach (pytest's
    tmp_path lies under a 0700 directory)."""
    d = tempfile.mkdtemp(prefix="facteur-ph-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_actions_as_pigeonhole(case, pubtmp):
    if not os.access(SIEVE_TEST, os.X_OK):
        pytest.fail("sieve-test missing: run `make test-deps` "
                    "(package dovecot-sieve)", pytrace=False)
    name, script, message, opts = case
    tmp = pubtmp
    ph = pigeonhole(tmp, name, script, message, opts)
    fa = facteur(tmp, name, script, message, opts)
    # a run-time error: both keep the message in INBOX (and say so)
    failed = "resolved with successful implicit keep" in ph.stderr
    assert ph.returncode == (1 if failed else 0), \
        "sieve-test failed:\n%s\n%s" % (ph.stdout, ph.stderr)
    assert fa.returncode == (1 if failed else 0), \
        "facteur sieve test:\n%s\n%s" % (fa.stdout, fa.stderr)
    if failed:
        assert "run-time error" in fa.stderr, fa.stderr
        assert normalise(fa.stdout) == [("implicit", "store", "INBOX", ())]
        return
    want = normalise_sequence(ph.stdout)
    got = normalise(fa.stdout)
    assert want, "no actions parsed from sieve-test:\n" + ph.stdout
    assert not [a for a in want + got if a[1] == "?"], (want, got)
    # duplicate tracking is a side effect recorded after delivery, not an
    # ordered action: compared as a set; everything else in order
    track = sorted(a for a in want if a[1] == "track")
    assert sorted(a for a in got if a[1] == "track") == track, \
        "\nPigeonhole:\n%s\nfacteur:\n%s" % (ph.stdout, fa.stdout)
    want = [a for a in want if a[1] != "track"]
    got = [a for a in got if a[1] != "track"]
    assert got == want, "\nPigeonhole:\n%s\nfacteur:\n%s" % (ph.stdout, fa.stdout)


def test_normalise_both_formats():
    """The comparison itself can fail: different reports differ."""
    ph = ("\nPerformed actions:\n\n * store message in folder: Work\n"
          "        + add IMAP flags: \\seen $label1\n"
          " * redirect message to: <a@b.c>\n\nImplicit keep:\n\n  (none)\n")
    ours = ("\nPerformed actions:\n\n * store message in folder: Work "
            "(flags: \\Seen $Label1)\n * redirect message to <a@b.c>\n"
            "\nImplicit keep:\n\n  (none)\n")
    assert normalise(ph) == normalise(ours) == [
        ("performed", "store", "Work", ("$label1", "\\seen")),
        ("performed", "redirect", "a@b.c", ())]
    assert normalise(ph) != normalise(ours.replace("Work", "Play"))
    assert normalise(ph) != normalise(ours.replace("$Label1", ""))
