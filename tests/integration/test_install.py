"""
test_install.py - `make install DESTDIR=...` stages the programs, manual
pages, service files and directories where the operating system expects
them, with the installed paths written into the service files; nothing
outside DESTDIR is touched and no user is created.
Must not: install into the real system (DESTDIR is always a temp dir).
"""
import os
import platform
import stat
import subprocess

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def make(*args):
    gmake = "gmake" if platform.system() == "FreeBSD" else "make"
    build = harness.build_dir()
    return subprocess.run([gmake, "-s", "-C", ROOT,
                           "B=%s" % os.path.relpath(build, ROOT)] + list(args),
                          capture_output=True, text=True, timeout=300)


def test_install_destdir(build, tmp_path):
    dest = tmp_path / "stage"
    r = make("install", "DESTDIR=%s" % dest, "PREFIX=/opt/facteur",
             "SPOOLDIR=/var/spool/fx", "MAILBASE=/srv/mail")
    assert r.returncode == 0, r.stdout + r.stderr
    sbin = dest / "opt/facteur/sbin"
    for prog in ("facteurd", "facteur"):
        st = os.stat(sbin / prog)
        assert stat.S_IMODE(st.st_mode) == 0o755
    for page in ("man1/facteur.1", "man5/facteur.cf.5", "man8/facteurd.8"):
        assert (dest / "opt/facteur/share/man" / page).is_file(), page
    assert stat.S_IMODE(os.stat(dest / "var/spool/fx").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(dest / "srv/mail").st_mode) == 0o750
    if platform.system() == "FreeBSD":
        rc = (dest / "opt/facteur/etc/rc.d/facteur").read_text()
        assert "command=/opt/facteur/sbin/facteurd" in rc
    else:
        unit = (dest / "etc/systemd/system/facteur.service").read_text()
        assert "ExecStart=/opt/facteur/sbin/facteurd -f -c /etc/facteur" in unit
        assert "ReadWritePaths=/var/spool/fx" in unit
        assert "ReadWritePaths=-/srv/mail" in unit
        assert (dest / "etc/logrotate.d/facteur").is_file()
    # No configuration is written: `facteur init` does that.
    assert not (dest / "etc/facteur/main.cf").exists()
    assert "facteur init" in r.stdout


def test_install_user_is_explicit(build):
    r = make("-n", "install-user", "MAIL_OWNER=facteur-test-nouser")
    assert r.returncode == 0, r.stderr
    if platform.system() == "FreeBSD":
        assert "pw useradd" in r.stdout
    else:
        assert "useradd --system" in r.stdout
    r = make("-n", "install", "DESTDIR=/nonexistent-stage")
    assert "useradd" not in r.stdout and "pw useradd" not in r.stdout
