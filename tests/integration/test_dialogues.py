"""
test_dialogues.py - plain SMTP dialogues kept as data files.

Each dialogues/NAME.dlg is one session, run in order:
    # comment
    %main.cf: name = value   extra main.cf line (the dialogue gets its own daemon)
    %source: 127.0.0.2       bind the client to this source address
    C: text                  send text + CRLF
    B: text                  send bytes (Python escapes: \\r \\n \\x80), nothing added
    S: prefix                the next reply line starts with prefix
    S~ regex                 the next reply line matches regex (case-insensitive)
    R: code                  read one whole reply; every line has this code
    K: KEYWORD               the last R: reply has a line starting with KEYWORD
    !K: KEYWORD              ... and none starting with this one
    X:                       the server closes the connection (within 5 s)
The first S: line is the banner. Dialogues without %main.cf share a daemon.
"""
import codecs
import os
import re

import pytest

import harness

HERE = os.path.dirname(os.path.abspath(__file__))
DLG_DIR = os.path.join(HERE, "dialogues")


def _names():
    return sorted(n[:-4] for n in os.listdir(DLG_DIR) if n.endswith(".dlg"))


def parse(path):
    steps, main_cf, source = [], [], None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = re.match(r"^(%main\.cf:|%source:|C:|B:|S:|S~|R:|K:|!K:|X:)"
                         r" ?(.*)$", line)
            if not m:
                raise ValueError("%s, line %d: cannot parse %r"
                                 % (path, lineno, line))
            op, arg = m.group(1), m.group(2)
            if op == "%main.cf:":
                main_cf.append(arg)
            elif op == "%source:":
                source = arg.strip()
            else:
                steps.append((lineno, op, arg))
    return steps, main_cf, source


def run(d, path, steps, source):
    c = harness.SMTPConn(d.host, d.port, source=source, timeout=5)
    last = None
    name = os.path.basename(path)

    def fail(lineno, what):
        pytest.fail("%s, line %d: %s\n--- transcript ---\n%s"
                    % (name, lineno, what, c.dump()), pytrace=False)

    try:
        for lineno, op, arg in steps:
            if op == "C:":
                c.send(arg.encode("utf-8") + b"\r\n")
            elif op == "B:":
                c.send(codecs.escape_decode(arg.encode("utf-8"))[0])
            elif op in ("S:", "S~"):
                line = c.read_line()
                if line is None:
                    fail(lineno, "connection closed, expected %r" % arg)
                text = line.decode("utf-8", "replace")
                if op == "S:" and not text.startswith(arg):
                    fail(lineno, "expected a line starting with %r, got %r"
                         % (arg, text))
                if op == "S~" and not re.match(arg, text, re.I):
                    fail(lineno, "expected a line matching /%s/, got %r"
                         % (arg, text))
            elif op == "R:":
                try:
                    last = c.reply()
                except harness.SMTPError as e:
                    fail(lineno, str(e))
                if last.code != int(arg):
                    fail(lineno, "expected reply code %s, got:\n%s"
                         % (arg, last))
            elif op in ("K:", "!K:"):
                kw = arg.strip().upper()
                has = any(l.upper() == kw or l.upper().startswith(kw + " ")
                          for l in last.lines)
                if op == "K:" and not has:
                    fail(lineno, "keyword %r missing from:\n%s" % (kw, last))
                if op == "!K:" and has:
                    fail(lineno, "keyword %r must not be in:\n%s" % (kw, last))
            elif op == "X:":
                if not c.expect_closed(5):
                    fail(lineno, "server did not close the connection")
    finally:
        c.close()


@pytest.mark.parametrize("name", _names())
def test_dialogue(name, mx, facteurd):
    path = os.path.join(DLG_DIR, name + ".dlg")
    steps, main_cf, source = parse(path)
    d = mx
    if main_cf:
        d = facteurd(main_cf=dict(
            (k.strip(), v.strip()) for k, v in
            (l.split("=", 1) for l in main_cf)))
    run(d, path, steps, source)
    # Whatever the dialogue did, the daemon must still be serving.
    with d.connect() as c:
        harness.check(c.cmd("NOOP"), 250, "2.0.0")
