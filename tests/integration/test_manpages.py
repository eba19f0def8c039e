"""
test_manpages.py - the manual pages in contrib/man: facteur.cf(5) lists
exactly the parameters (and defaults) `facteur conf -d` reports, as
contrib/man/gen_facteur_cf.py writes it; every page passes `mandoc -Tlint`
at warning level; facteur(1) documents conf, check and init.
Must not: rewrite the pages (`make man` does that).
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MAN = os.path.join(ROOT, "contrib", "man")
PAGES = ["facteur.1", "facteur.cf.5", "facteurd.8"]


def conf_d(tmp_path):
    (tmp_path / "main.cf").write_text("")
    r = subprocess.run([harness.bin_path("facteur"), "-c", str(tmp_path),
                        "conf", "-d"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return [tuple(s.strip() for s in l.split(" =", 1))
            for l in r.stdout.splitlines()]


def test_facteur_cf_lists_every_parameter(build, tmp_path):
    with open(os.path.join(MAN, "facteur.cf.5")) as f:
        page = f.read()
    documented = re.findall(r"^\.It Va (\S+)\n(.*)$", page, re.M)
    want = conf_d(tmp_path)
    names = [n for n, _ in documented]
    missing = sorted(set(n for n, _ in want) - set(names))
    extra = sorted(set(names) - set(n for n, _ in want))
    hint = ("contrib/man/facteur.cf.5 is out of date: run `make man` and "
            "commit it")
    assert not missing and not extra, "%s\nmissing: %s\nextra: %s" % (
        hint, missing, extra)
    assert len(names) == len(set(names)), "a parameter is listed twice"
    got = {n: ("" if v == "(empty)" else v[2:].replace("\\e", "\\"))
           for n, v in documented}
    wrong = [(n, d, got[n]) for n, d in want if got[n] != d]
    assert not wrong, "%s\ndefaults differ: %s" % (hint, wrong[:10])


def test_facteur_cf_is_generated(build, tmp_path):
    r = subprocess.run([sys.executable, os.path.join(MAN, "gen_facteur_cf.py"),
                        harness.bin_path("facteur")], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(MAN, "facteur.cf.5")) as f:
        assert f.read() == r.stdout, (
            "contrib/man/facteur.cf.5 differs from what gen_facteur_cf.py "
            "writes: run `make man` and commit it")


@pytest.mark.parametrize("page", PAGES)
def test_mandoc_lint(page):
    mandoc = shutil.which("mandoc")
    assert mandoc, "mandoc missing: sh contrib/install-deps.sh test"
    r = subprocess.run([mandoc, "-Tlint", "-Wwarning",
                        os.path.join(MAN, page)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_facteur_1_documents_its_commands(build):
    r = subprocess.run([harness.bin_path("facteur"), "help"],
                       capture_output=True, text=True)
    cmds = re.findall(r"^  (\w+)", r.stdout, re.M)
    with open(os.path.join(MAN, "facteur.1")) as f:
        page = f.read()
    for c in ("conf", "check", "init"):
        assert c in cmds
        assert re.search(r"^\.Ss %s$" % c, page, re.M), \
            "facteur.1 has no section for `facteur %s`" % c
    for flag in ("-e", "-M", "-n", "-d"):
        assert re.search(r"^\.It Fl %s$" % flag[1:], page, re.M), flag
