"""
servers.py - private directory servers for the integration tests and the
benchmark: a slapd (mdb database in a temp dir, loopback port, the system
schemas plus schema/ldap/facteur.schema) and a mariadbd (temp datadir,
socket, loopback port). Each is started and stopped by its own PID.
running_slapd / running_mariadb start one in a temp dir loaded with
entries / rows and remove everything afterwards; example_cf copies an
example table file of schema/ with a test's settings.
Only the standard library is used.
Must not: listen on anything but loopback, touch a system instance, or
wait without a bound.
"""
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLAPD = "/usr/sbin/slapd"
SYSTEM_SCHEMA = "/etc/ldap/schema"
MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"


from ports import free_port  # noqa: E402,F401  (tests/ports.py)


def _set_pdeathsig():
    # Linux only, best effort: the server dies if its starter dies.
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)	# PR_SET_PDEATHSIG
    except Exception:
        pass


def _stop(proc, timeout):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class ServerError(Exception):
    pass


def _tail(path):
    try:
        with open(path) as f:
            return f.read()[-3000:]
    except FileNotFoundError:
        return ""


class _Server:
    """What Slapd and MariaDB share: the process started with its output
    in base/OUT, polled with probe() until it answers, stopped by PID."""

    NAME = "server"
    STOP_TIMEOUT = 15

    def _run(self, args, out, probe, timeout):
        log = open(os.path.join(self.base, out), "ab")
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=_set_pdeathsig)
        log.close()
        self.live.add(self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise ServerError("%s exited:\n%s" % (self.NAME, self.log()))
            if probe():
                return
            time.sleep(0.1)
        raise ServerError("%s did not start:\n%s" % (self.NAME, self.log()))

    def _answers(self, args):
        return subprocess.run(args, capture_output=True,
                              timeout=10).returncode == 0

    def stop(self):
        if self.proc is None:
            return
        _stop(self.proc, self.STOP_TIMEOUT)
        self.live.discard(self.proc)
        self.proc = None


class Slapd(_Server):
    """One private slapd. suffix is the database's base DN; reader (a DN)
    may read everything, anonymous binds may only authenticate."""

    NAME = "slapd"

    def __init__(self, base, suffix, reader, live=None):
        self.base = base
        self.suffix = suffix
        self.admin = "cn=admin," + suffix
        self.admin_pw = "admin"
        self.port = free_port()
        self.url = "ldap://127.0.0.1:%d/" % self.port
        self.proc = None
        self.live = live if live is not None else set()
        os.makedirs(os.path.join(base, "db"))
        self.conf = os.path.join(base, "slapd.conf")
        with open(self.conf, "w") as f:
            f.write("""\
include {sys}/core.schema
include {sys}/cosine.schema
include {sys}/inetorgperson.schema
include {facteur}/facteur.schema
pidfile {dir}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "{b}"
rootdn "{admin}"
rootpw {pw}
directory {dir}/db
index objectClass eq
index mail,facteurMailAddress,facteurDomain eq
access to attrs=userPassword by dn.exact="{reader}" read by anonymous auth by * none
access to * by dn.exact="{reader}" read by * none
""".format(sys=SYSTEM_SCHEMA, facteur=os.path.join(ROOT, "schema", "ldap"),
           dir=base, b=suffix, admin=self.admin, pw=self.admin_pw,
           reader=reader))

    @staticmethod
    def missing():
        """The programs this needs that are not installed."""
        return [p for p in (SLAPD, shutil.which("ldapadd") or "/usr/bin/ldapadd")
                if not os.access(p, os.X_OK)]

    def start(self, timeout=15):
        self._run([SLAPD, "-h", self.url, "-f", self.conf, "-d", "0"],
                  "slapd.log",
                  lambda: self._answers(
                      ["ldapsearch", "-x", "-H", self.url, "-D", self.admin,
                       "-w", self.admin_pw, "-s", "base", "-b", "",
                       "(objectClass=*)"]),
                  timeout)

    def log(self):
        return _tail(os.path.join(self.base, "slapd.log"))

    def add(self, ldif):
        r = subprocess.run(["ldapadd", "-x", "-H", self.url, "-D",
                            self.admin, "-w", self.admin_pw],
                           input=ldif.encode(), capture_output=True, timeout=60)
        if r.returncode != 0:
            raise ServerError(r.stdout.decode() + r.stderr.decode())

    def count(self, filt):
        r = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.url, "-D",
                            self.admin, "-w", self.admin_pw, "-b", self.suffix,
                            filt, "dn"], capture_output=True, timeout=30)
        if r.returncode != 0:
            raise ServerError(r.stderr.decode())
        return r.stdout.decode().count("dn: ")


class MariaDB(_Server):
    """One private mariadbd: temp datadir, socket, loopback TCP port."""

    NAME = "mariadbd"
    STOP_TIMEOUT = 30

    CLIENT = shutil.which("mariadb") or "/usr/bin/mariadb"

    def __init__(self, base, live=None):
        self.base = base
        self.data = os.path.join(base, "data")
        self.sock = os.path.join(base, "mysqld.sock")
        self.port = free_port()
        self.proc = None
        self.live = live if live is not None else set()
        self.user = pwd.getpwuid(os.getuid()).pw_name
        r = subprocess.run([INSTALL_DB, "--no-defaults", "--datadir=" + self.data,
                            "--auth-root-authentication-method=normal",
                            "--user=" + self.user, "--skip-test-db"],
                           capture_output=True, timeout=120)
        if r.returncode != 0:
            raise ServerError((r.stdout + r.stderr).decode("utf-8", "replace"))

    @staticmethod
    def missing():
        return [p for p in (MARIADBD, INSTALL_DB) if not os.access(p, os.X_OK)]

    def start(self, timeout=30):
        self._run([MARIADBD, "--no-defaults", "--datadir=" + self.data,
                   "--socket=" + self.sock, "--port=%d" % self.port,
                   "--bind-address=127.0.0.1", "--user=" + self.user,
                   "--pid-file=" + os.path.join(self.base, "mariadbd.pid"),
                   "--skip-log-bin", "--skip-name-resolve",
                   "--innodb-buffer-pool-size=16M",
                   "--innodb-log-file-size=8M",
                   "--log-error=" + os.path.join(self.base, "mariadbd.log")],
                  "mariadbd.err",
                  lambda: self._answers(
                      [self.CLIENT, "--no-defaults", "-S", self.sock,
                       "-uroot", "-e", "SELECT 1"]),
                  timeout)

    def log(self):
        return _tail(os.path.join(self.base, "mariadbd.log"))

    def sql(self, text, db="postfixadmin"):
        r = subprocess.run([self.CLIENT, "--no-defaults", "-S", self.sock,
                            "-uroot", "-N", "-B", db], input=text.encode(),
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise ServerError(r.stderr.decode())
        return r.stdout.decode()

    def load_postfixadmin(self, user, password):
        """Creates the postfixadmin database from schema/sql/mariadb.sql and
        a user allowed to SELECT from it over loopback TCP."""
        self.sql("CREATE DATABASE postfixadmin; "
                 "CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'; "
                 "GRANT SELECT ON postfixadmin.* TO '%s'@'127.0.0.1';"
                 % (user, password.replace("'", "\\'"), user), db="mysql")
        with open(os.path.join(ROOT, "schema", "sql", "mariadb.sql")) as f:
            self.sql(f.read())


@contextlib.contextmanager
def _running(prefix, make, load):
    """make(base) in a new temp dir, started, then load(server); stopped
    and the dir removed on exit."""
    base = tempfile.mkdtemp(prefix=prefix)
    s = None
    try:
        s = make(base)
        s.start()
        load(s)
        yield s
    finally:
        if s is not None:
            s.stop()
        shutil.rmtree(base, ignore_errors=True)


def running_slapd(suffix, reader, entries, live=None):
    """A started Slapd loaded with entries (LDIF), removed on exit."""
    return _running("facteur-slapd-",
                    lambda base: Slapd(base, suffix, reader, live=live),
                    lambda s: s.add(entries))


def running_mariadb(user, password, rows, live=None):
    """A started MariaDB with the postfixadmin database (schema/sql), a
    SELECT-only user and rows (SQL), removed on exit."""
    def load(m):
        m.load_postfixadmin(user, password)
        m.sql(rows)
    return _running("facteur-mariadb-",
                    lambda base: MariaDB(base, live=live), load)


def example_cf(kind, example, dest, strip, settings):
    """Writes dest: schema/KIND/EXAMPLE without the keys named in strip,
    then settings (text, "key = value" lines)."""
    with open(os.path.join(ROOT, "schema", kind, example)) as f:
        text = f.read()
    text = re.sub(r"(?m)^(%s) =.*\n" % "|".join(strip), "", text)
    with open(dest, "w") as f:
        f.write(text + settings)
    return dest
