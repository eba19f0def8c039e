#!/usr/bin/env python3
"""bench.py - facteur against Postfix, same load, same machine (not a test).

Starts, in a private temp directory on loopback high ports:
  * facteurd with a bench configuration (domain bench.test, 10 mailboxes,
    texthash: map, queue and maildirs in the temp directory);
  * a private Postfix instance (own config_directory, queue_directory,
    data_directory, no chroot, maillog_file through postlogd) delivering the
    same domain with virtual(8) into maildirs in the temp directory.
Both run as the unprivileged user "facteurbench" (created when missing;
Postfix refuses to run its daemons as root).

For every scenario, smtp-source sends the same load to each server and the
clock stops when the LAST message is in a maildir (new/ is polled), so a
server that acknowledges fast but delivers late is not flattered. Reported:
msg/s, the CPU time of the server's whole process tree per message, the
machine's CPU time per message (all processes, smtp-source included), and
the ratio facteur/postfix. Then facteurd's resident memory with no session
and with 1000 idle sessions open.

Directory backends: the headline load again against facteurd with its
domains and mailboxes in a private slapd (ldap: tables) and a private
mariadbd (mysql: tables, the PostfixAdmin schema), the lookup cache on,
run in turn with a fresh file-backed one (the order rotating each round;
medians compared) so that the machine's load drifting hits all of them alike (the
servers come from tests/servers.py; a backend whose server is not
installed is skipped with a note). --headline measures only the headline
scenario (and skips the idle sessions).

Must not: touch the system's own Postfix instance, leave a process or a temp
directory behind (everything is stopped in a finally block and on signals),
or wait without a bound.
"""

import argparse
import os
import pwd
import grp
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import servers  # noqa: E402  (tests/servers.py: private slapd and mariadbd)
from ports import free_port  # noqa: E402  (tests/ports.py)

BENCH_USER = "facteurbench"
DOMAIN = "bench.test"
USERS = ["user"] + ["user%d" % i for i in range(1, 10)]
SENDER = "bench@example.org"
RCPT = "user@" + DOMAIN

# (label, sessions, messages, payload bytes); the first one is the headline.
SCENARIOS = [
    ("20 sessions x 4 KiB", 20, 5000, 4096),
    ("1 session x 4 KiB", 1, 1000, 4096),
    ("20 sessions x 64 KiB", 20, 2000, 65536),
]
# The product target: at least 3x the throughput of Postfix doing the same
# virtual delivery under the same load, on the same machine, in the same run.
TARGET_RATIO = 3.0
# Directory-backed facteurd against the file backend, cache on.
DIRECTORY_TARGET = 0.9
LDAP_SUFFIX = "dc=bench,dc=test"
LDAP_READER = "cn=reader," + LDAP_SUFFIX
DIR_PASSWORD = "bench pw"
CACHE_KEYS = "cache = yes\ncache_ttl = 60s\ncache_negative_ttl = 10s\ncache_size = 10000\n"
LOAD0 = 0.0
IDLE_SESSIONS = 1000


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def find_prog(name, dirs=("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")):
    p = shutil.which(name)
    if p:
        return p
    for d in dirs:
        c = os.path.join(d, name)
        if os.access(c, os.X_OK):
            return c
    return None


def wait_banner(port, timeout, alive=lambda: True):
    """Waits until a 220 banner comes from 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not alive():
            raise BenchError("server exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                line = s.makefile("rb").readline(1024)
                if line.startswith(b"220"):
                    s.sendall(b"QUIT\r\n")
                    return
                last = repr(line)
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise BenchError("no SMTP banner on port %d after %ds (%s)" % (port, timeout, last))


def run(cmd, timeout=60, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True)
    if check and r.returncode != 0:
        raise BenchError("%s: exit %d\n%s" % (" ".join(cmd), r.returncode, r.stdout.strip()))
    return r


# ---------------------------------------------------------------- users

def ensure_group(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    if find_prog("groupadd"):
        run([find_prog("groupadd"), "--system", name])
    elif find_prog("pw"):
        run([find_prog("pw"), "groupadd", name])
    else:
        raise BenchError("cannot create group %s (no groupadd or pw)" % name)
    return grp.getgrnam(name).gr_gid


def ensure_user(name):
    try:
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    if find_prog("useradd"):
        run([find_prog("useradd"), "--system", "--user-group", "--no-create-home",
             "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
             "--comment", "facteur benchmark", name])
    elif find_prog("pw"):
        ensure_group(name)
        run([find_prog("pw"), "useradd", name, "-g", name, "-d", "/nonexistent",
             "-s", "/usr/sbin/nologin", "-c", "facteur benchmark"])
    else:
        raise BenchError("cannot create user %s (no useradd or pw)" % name)
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


# ---------------------------------------------------------------- measuring

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
HAVE_PROC = os.path.exists("/proc/stat") and os.path.exists("/proc/self/stat")


def machine_cpu_seconds():
    """Busy CPU seconds of the whole machine so far (all CPUs), or None."""
    if HAVE_PROC:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + (v[4] if len(v) > 4 else 0)	# idle + iowait
        return (sum(v[:8]) - idle) / CLK_TCK
    r = subprocess.run(["sysctl", "-n", "kern.cp_time"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    try:
        v = [int(x) for x in r.stdout.split()]	# user nice sys intr idle
        hz = int(subprocess.run(["sysctl", "-n", "kern.stathz"], stdout=subprocess.PIPE,
                                text=True).stdout.strip() or "128")
        return sum(v[:4]) / hz
    except (ValueError, IndexError):
        return None


def _proc_stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    # The command name is in parentheses and may contain spaces.
    rest = data[data.rindex(")") + 2:].split()
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, utime + stime + cutime + cstime


def tree_cpu_seconds(root_pid):
    """CPU seconds used so far by root_pid and all its descendants, living
    or reaped (utime+stime+cutime+cstime over the live tree), or None."""
    if not HAVE_PROC or root_pid is None:
        return None
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            procs[int(name)] = _proc_stat(int(name))
        except (OSError, ValueError, IndexError):
            continue
    if root_pid not in procs:
        return None
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += procs[pid][1]
        todo.extend(children.get(pid, ()))
    return total / CLK_TCK


def rss_kib(pid):
    if HAVE_PROC:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None
    r = subprocess.run(["ps", "-o", "rss=", "-p", str(pid)], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    try:
        return int(r.stdout.strip())
    except ValueError:
        return None


# ---------------------------------------------------------------- maildirs

def count_new(base):
    """Number of delivered files in DOMAIN/*/new under base."""
    n = 0
    dom = os.path.join(base, DOMAIN)
    try:
        boxes = os.listdir(dom)
    except FileNotFoundError:
        return 0
    for b in boxes:
        try:
            with os.scandir(os.path.join(dom, b, "new")) as it:
                for _ in it:
                    n += 1
        except FileNotFoundError:
            continue
    return n


def clean_maildirs(base):
    """Empties new/ and cur/ of every mailbox, keeping the directories."""
    dom = os.path.join(base, DOMAIN)
    if not os.path.isdir(dom):
        return
    for b in os.listdir(dom):
        for sub in ("new", "cur"):
            d = os.path.join(dom, b, sub)
            if not os.path.isdir(d):
                continue
            with os.scandir(d) as it:
                for e in it:
                    os.unlink(e.path)


def vmailbox_text():
    return "".join("%s@%s\t%s/%s/\n" % (u, DOMAIN, DOMAIN, u) for u in USERS)


def mkdir(path, mode=0o755, owner=None):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner[0], owner[1])


# ---------------------------------------------------------------- servers

class Postfix:
    """A private Postfix instance under DIR (config in DIR/etc)."""

    name = "postfix"

    def __init__(self, top, port, owner, setgid_group):
        self.dir = os.path.join(top, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.mail = os.path.join(self.dir, "mail")
        self.maillog = os.path.join(self.dir, "maillog")
        self.port = port
        self.owner = owner
        self.setgid_group = setgid_group
        self.postfix = find_prog("postfix")
        self.started = False

    def setup(self):
        uid, gid = self.owner
        user = pwd.getpwuid(uid).pw_name
        mkdir(self.dir)
        mkdir(self.etc)
        mkdir(self.queue)		# root-owned; postfix-script makes the rest
        mkdir(os.path.join(self.dir, "data"), 0o700, self.owner)
        mkdir(self.mail, 0o700, self.owner)
        main = """\
# Private Postfix instance for facteur's benchmark.
compatibility_level = 3.6
queue_directory = {q}
data_directory = {d}/data
mail_owner = {user}
setgid_group = {sgid}
myhostname = bench.localdomain
mydomain = localdomain
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
biff = no
virtual_mailbox_domains = {dom}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = texthash:{etc}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
maillog_file = {log}
maillog_file_prefixes = {d}
# No throttling of the load generator.
default_process_limit = 100
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
in_flow_delay = 0
""".format(q=self.queue, d=self.dir, user=user, sgid=self.setgid_group, dom=DOMAIN,
           mail=self.mail, etc=self.etc, uid=uid, gid=gid, log=self.maillog)
        master = "127.0.0.1:%d inet n - n - - smtpd\n" % self.port
        # Debian's default services, without chroot.
        master += """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(master)
        with open(os.path.join(self.etc, "vmailbox"), "w") as f:
            f.write(vmailbox_text())

    def start(self):
        run([self.postfix, "-c", self.etc, "check"])
        self.started = True
        run([self.postfix, "-c", self.etc, "start"])
        wait_banner(self.port, 30)

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cpu_root(self):
        return self.master_pid()

    def stop(self):
        if not self.started:
            return
        self.started = False
        pid = self.master_pid()
        try:
            run([self.postfix, "-c", self.etc, "stop"], timeout=30, check=False)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 15
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        if pid:
            # The master leads its own process group: take the children too.
            for sig_target in (lambda: os.killpg(pid, signal.SIGKILL),
                               lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    sig_target()
                except OSError:
                    pass

    def tail_log(self):
        return tail(self.maillog)


class Facteur:
    name = "facteur"

    def __init__(self, top, port, build, owner, name="facteur", maps=None):
        """maps: main.cf lines replacing the file-backed domain and
        mailbox maps (a directory-backed variant named name)."""
        self.name = name
        self.maps = maps
        self.dir = os.path.join(top, name)
        self.conf = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        self.mail = os.path.join(self.dir, "mail")
        self.maillog = os.path.join(self.dir, "maillog")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.port = port
        self.daemon = os.path.join(build, "bin", "facteurd")
        self.owner = owner		# (uid, gid) to run as, None = as we are
        self.proc = None
        self.errf = None

    def setup(self):
        if self.owner:
            uid, gid = self.owner
        else:
            uid, gid = os.getuid(), os.getgid()
        mkdir(self.dir)
        mkdir(self.conf)
        mkdir(self.queue, 0o700, (uid, gid))
        mkdir(self.mail, 0o700, (uid, gid))
        with open(self.maillog, "a"):
            pass
        os.chown(self.maillog, uid, gid)
        main = """\
# facteurd configuration for the benchmark: the same domain, maps and
# mailboxes as the private Postfix instance.
myhostname = bench.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = {dom}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = texthash:{conf}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
queue_directory = {queue}
maillog_file = {log}
# Room for the 1000 idle sessions of the memory measurement.
default_process_limit = 2000
""".format(dom=DOMAIN, mail=self.mail, conf=self.conf, uid=uid, gid=gid,
           queue=self.queue, log=self.maillog)
        if self.owner:
            main += "mail_owner = %s\n" % pwd.getpwuid(uid).pw_name
        if self.maps:
            main += self.maps(self.conf)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write("127.0.0.1:%d inet n - n - - smtpd\n" % self.port)
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            f.write(vmailbox_text())

    def start(self):
        self.errf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([self.daemon, "-c", self.conf, "-f"],
                                     stdin=subprocess.DEVNULL, stdout=self.errf,
                                     stderr=subprocess.STDOUT)
        try:
            wait_banner(self.port, 30, lambda: self.proc.poll() is None)
        except BenchError as e:
            raise BenchError("facteurd: %s\n%s" % (e, tail(self.stderr_path)))

    def cpu_root(self):
        return self.proc.pid if self.proc else None

    def stop(self):
        if self.proc is None:
            return
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=15)
        if self.errf:
            self.errf.close()
            self.errf = None

    def tail_log(self):
        return tail(self.stderr_path)


def queue_pending(queue):
    """Files waiting in a queue directory (same layout for both servers)."""
    n = 0
    for sub in ("maildrop", "incoming", "active", "deferred"):
        for _root, _dirs, files in os.walk(os.path.join(queue, sub)):
            n += len(files)
    return n


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join("    " + l for l in lines[-n:])
    except OSError as e:
        return "    (%s)" % e


# ---------------------------------------------------------------- load

def wait4_bounded(pid, timeout):
    """Reaps pid within timeout; returns (status, rusage) or kills it."""
    deadline = time.monotonic() + timeout
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            return status, ru
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, ru = os.wait4(pid, 0)
            return None, ru
        time.sleep(0.01)


def load(server, smtp_source, sessions, msgs, size, timeout, tmpdir, poll=0.005):
    """Sends msgs with smtp-source and waits for the last one in a maildir."""
    clean_maildirs(server.mail)
    deadline = time.monotonic() + 10
    while queue_pending(server.queue) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = queue_pending(server.queue)
    if left:
        log("%s: warning: %d files still queued before the run" % (server.name, left))
    outpath = os.path.join(tmpdir, "smtp-source.out")
    cmd = [smtp_source, "-s", str(sessions), "-m", str(msgs), "-l", str(size),
           "-f", SENDER, "-t", RCPT, "127.0.0.1:%d" % server.port]
    root = server.cpu_root()
    cpu0 = tree_cpu_seconds(root)
    mach0 = machine_cpu_seconds()
    t0 = time.monotonic()
    with open(outpath, "wb") as out:
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT)
    reaped = None
    n = 0
    try:
        # While smtp-source runs, only wait for it: scanning a maildir with
        # thousands of files would steal CPU from the servers. Then poll
        # new/ closely for the delivery tail.
        while reaped is None:
            wpid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if wpid == p.pid:
                reaped = (status, ru)
                if status != 0:
                    raise BenchError("%s: smtp-source failed (status %d):\n%s\n  server log:\n%s"
                                     % (server.name, status, tail(outpath),
                                        server.tail_log()))
                break
            if time.monotonic() - t0 > timeout:
                raise BenchError("%s: smtp-source still running after %ds\n  server log:\n%s"
                                 % (server.name, timeout, server.tail_log()))
            time.sleep(0.01)
        while True:
            n = count_new(server.mail)
            if n >= msgs:
                break
            if time.monotonic() - t0 > timeout:
                raise BenchError("%s: only %d of %d messages delivered after %ds\n  server log:\n%s"
                                 % (server.name, n, msgs, timeout, server.tail_log()))
            time.sleep(poll)
        t1 = time.monotonic()
        cpu1 = tree_cpu_seconds(root)
        mach1 = machine_cpu_seconds()
    finally:
        if reaped is None:
            status, ru = wait4_bounded(p.pid, 30)
            reaped = (status, ru)
        p.returncode = 0		# reaped by hand; keep Popen from waiting
    status, ru = reaped
    if status not in (0, None) and n < msgs:
        raise BenchError("%s: smtp-source status %s" % (server.name, status))
    # A second look: more files than messages means duplicate deliveries.
    time.sleep(0.2)
    extra = count_new(server.mail) - msgs
    secs = t1 - t0
    res = {
        "secs": secs,
        "rate": msgs / secs,
        "server_ms": (cpu1 - cpu0) * 1000 / msgs if cpu0 is not None and cpu1 is not None else None,
        "machine_ms": (mach1 - mach0) * 1000 / msgs if mach0 is not None and mach1 is not None else None,
        "client_ms": (ru.ru_utime + ru.ru_stime) * 1000 / msgs,
        "extra": extra,
    }
    return res


def raise_nofile(want):
    """Raises the soft descriptor limit to want (bounded by the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def idle_sessions(port, pid, count, timeout=60):
    """RSS of pid with no session, then with count idle sessions (each got
    its 220 banner). Returns (rss0, rss1, sessions_open)."""
    raise_nofile(count + 64)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY:
        count = min(count, soft - 64)	# keep descriptors to read /proc with
    time.sleep(0.5)
    rss0 = rss_kib(pid)
    sel = selectors.DefaultSelector()
    socks = []
    bannered = 0
    deadline = time.monotonic() + timeout
    pending = {}
    try:
        while (bannered < count) and time.monotonic() < deadline:
            # Keep at most 100 handshakes in flight: the listen queue is finite.
            while len(socks) < count and len(pending) < 100:
                try:
                    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                except OSError:		# out of descriptors: measure what we have
                    count = len(socks)
                    break
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                except OSError:
                    s.close()
                    break
                socks.append(s)
                pending[s] = b""
                sel.register(s, selectors.EVENT_READ)
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(512)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    pending.pop(s, None)
                    continue
                pending[s] += data
                if b"\n" in pending[s]:
                    sel.unregister(s)
                    if pending.pop(s).startswith(b"220"):
                        bannered += 1
            if not pending and len(socks) >= count:
                break
        time.sleep(1.0)
        rss1 = rss_kib(pid)
        try:		# proof that the server still holds them
            fds = len(os.listdir("/proc/%d/fd" % pid))
        except OSError:
            fds = None
        return rss0, rss1, bannered, fds
    finally:
        sel.close()
        for s in socks:
            s.close()


# ---------------------------------------------------------------- directories

def ldap_entries():
    out = ["""dn: {b}
objectClass: dcObject
objectClass: organization
dc: bench
o: facteur bench

dn: {r}
objectClass: person
cn: reader
sn: reader
userPassword: {pw}

dn: ou=domains,{b}
objectClass: organizationalUnit
ou: domains

dn: facteurDomain={d},ou=domains,{b}
objectClass: facteurMailDomain
facteurDomain: {d}
facteurActive: TRUE

dn: ou=people,{b}
objectClass: organizationalUnit
ou: people
""".format(b=LDAP_SUFFIX, r=LDAP_READER, pw=DIR_PASSWORD, d=DOMAIN)]
    for u in USERS:
        out.append("""dn: uid={u},ou=people,{b}
objectClass: inetOrgPerson
objectClass: facteurMailUser
uid: {u}
cn: {u}
sn: {u}
mail: {u}@{d}
facteurMailbox: {d}/{u}/
facteurActive: TRUE
""".format(u=u, b=LDAP_SUFFIX, d=DOMAIN))
    return "\n".join(out)


def example_cf(kind, example, settings):
    """An example table of schema/KIND with this server's settings and the
    lookup cache on."""
    path = os.path.join(servers.ROOT, "schema", kind, example)
    with open(path) as f:
        lines = f.read().splitlines(True)
    keys = [l.split("=", 1)[0].strip() for l in settings.splitlines() if "=" in l]
    keep = [l for l in lines
            if not any(l.startswith(k + " ") or l.startswith(k + "=") for k in keys)]
    return "".join(keep) + settings + CACHE_KEYS


def write_maps(conf, kind, settings):
    paths = {}
    for role, example in (("domains", "virtual_domains.cf"),
                          ("mailboxes", "virtual_mailboxes.cf")):
        p = os.path.join(conf, role + ".cf")
        with open(p, "w") as f:
            f.write(example_cf(kind, example, settings))
        os.chmod(p, 0o644)
        paths[role] = p
    t = "ldap" if kind == "ldap" else "mysql"
    return ("virtual_mailbox_domains = %s:%s\nvirtual_mailbox_maps = %s:%s\n"
            % (t, paths["domains"], t, paths["mailboxes"]))


def start_directories(top, want, notes, stack):
    """Starts the wanted private directory servers; returns the facteurd
    variants [(name, maps)] that can use them."""
    variants = []
    if "ldap" in want:
        missing = servers.Slapd.missing()
        if missing:
            notes.append("facteur+ldap: skipped, %s is not installed" % missing[0])
        else:
            s = servers.Slapd(os.path.join(top, "slapd"), LDAP_SUFFIX, LDAP_READER)
            stack.append(s)
            s.start()
            s.add(ldap_entries())
            settings = ("server_host = %s\nsearch_base = %s\nbind_dn = %s\n"
                        "bind_pw = %s\ntimeout = 10\n"
                        % (s.url, LDAP_SUFFIX, LDAP_READER, DIR_PASSWORD))
            variants.append(("facteur+ldap",
                             lambda conf, st=settings: write_maps(conf, "ldap", st)))
    if "mysql" in want:
        missing = servers.MariaDB.missing()
        if missing:
            notes.append("facteur+mysql: skipped, %s is not installed" % missing[0])
        else:
            base = os.path.join(top, "mariadb")
            os.makedirs(base)
            m = servers.MariaDB(base)
            stack.append(m)
            m.start()
            m.load_postfixadmin("facteur", DIR_PASSWORD)
            m.sql("INSERT INTO domain (domain, active) VALUES ('%s', 1);\n" % DOMAIN +
                  "".join("INSERT INTO mailbox (username, password, maildir, local_part, "
                          "domain, active) VALUES ('%s@%s', '{PLAIN}x', '%s/%s/', '%s', "
                          "'%s', 1);\n" % (u, DOMAIN, DOMAIN, u, u, DOMAIN)
                          for u in USERS))
            settings = ("hosts = inet:127.0.0.1:%d\nuser = facteur\npassword = %s\n"
                        "dbname = postfixadmin\ntimeout = 10\n" % (m.port, DIR_PASSWORD))
            variants.append(("facteur+mysql",
                             lambda conf, st=settings: write_maps(conf, "sql", st)))
    return variants


# ---------------------------------------------------------------- main

def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", help="build directory (with bin/facteurd)")
    ap.add_argument("--quick", action="store_true", help="a fifth of the messages")
    ap.add_argument("--only", choices=("facteur", "postfix"), help="one server only")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per run (120)")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per scenario and server; the median is shown (1)")
    ap.add_argument("--headline", action="store_true",
                    help="the headline scenario only, no idle sessions (with "
                    "--only facteur: the file/ldap/mysql comparison alone)")
    ap.add_argument("--directories", default="ldap,mysql",
                    help="directory-backed facteurd runs of the headline load: "
                    "ldap, mysql, both (default) or none")
    args = ap.parse_args()
    if args.repeat < 1 or args.timeout < 1:
        ap.error("--repeat and --timeout must be at least 1")
    want_dirs = set(x for x in args.directories.split(",") if x and x != "none")
    if want_dirs - {"ldap", "mysql"}:
        ap.error("--directories: expected ldap, mysql or none")

    smtp_source = find_prog("smtp-source")
    if not smtp_source:
        raise BenchError("smtp-source not found (Debian: apt-get install postfix)")
    is_root = os.geteuid() == 0
    want_facteur = args.only != "postfix"
    want_postfix = args.only != "facteur"
    daemon = os.path.join(args.build, "bin", "facteurd")
    notes = []
    if want_facteur and not os.access(daemon, os.X_OK):
        notes.append("facteur: skipped, %s is not built" % daemon)
        want_facteur = False
    if want_postfix and not is_root:
        notes.append("postfix: skipped, a private Postfix instance needs root")
        want_postfix = False
    if want_postfix and not find_prog("postfix"):
        notes.append("postfix: skipped, the postfix command is not installed")
        want_postfix = False
    for n in notes:
        log(n)
    if not (want_facteur or want_postfix):
        raise BenchError("nothing to measure")

    owner = None
    setgid_group = None
    if is_root:
        owner = ensure_user(BENCH_USER)
        try:
            grp.getgrnam("postdrop")
            setgid_group = "postdrop"
        except KeyError:
            setgid_group = BENCH_USER + "drop"
            ensure_group(setgid_group)

    global LOAD0
    LOAD0 = os.getloadavg()[0]
    top = tempfile.mkdtemp(prefix="facteur-bench.")
    os.chmod(top, 0o755)
    servers_ = []
    dir_servers = []
    dir_rows = []
    try:
        if want_facteur:
            servers_.append(Facteur(top, free_port(), args.build, owner))
        if want_postfix:
            servers_.append(Postfix(top, free_port(), owner, setgid_group))
        # Enough descriptors for the idle sessions, inherited by facteurd.
        raise_nofile(IDLE_SESSIONS * 2 + 256)
        for s in servers_:
            s.setup()
            s.start()
            log("%s: listening on 127.0.0.1:%d" % (s.name, s.port))

        # Warm-up: start worker processes/threads, fill caches.
        for s in servers_:
            load(s, smtp_source, 20, 200, 4096, args.timeout, top)

        results = []
        for label, sessions, msgs, size in SCENARIOS[:1] if args.headline else SCENARIOS:
            if args.quick:
                msgs //= 5
            row = {"label": label, "sessions": sessions, "msgs": msgs, "size": size}
            runs = {s.name: [] for s in servers_}
            for i in range(args.repeat):
                for s in servers_:		# alternate, so drift hits both
                    log("%s: %s, %d messages (%d/%d) ..." % (s.name, label, msgs, i + 1, args.repeat))
                    runs[s.name].append(load(s, smtp_source, sessions, msgs, size,
                                             args.timeout, top))
            for name, rs in runs.items():
                rs.sort(key=lambda r: r["rate"])
                row[name] = rs[len(rs) // 2]	# the median run by msg/s
            results.append(row)

        idle = None
        fsrv = next((s for s in servers_ if s.name == "facteur"), None)
        if fsrv is not None and not args.headline:
            log("facteur: opening %d idle sessions ..." % IDLE_SESSIONS)
            idle = idle_sessions(fsrv.port, fsrv.proc.pid, IDLE_SESSIONS)

        if fsrv is not None and want_dirs:
            dir_rows = directory_runs(top, args, smtp_source, owner, fsrv,
                                      results[0], want_dirs, dir_servers)
    finally:
        for d in reversed(dir_servers):
            try:
                d.stop()
            except Exception as e:
                log("%s: stop: %s" % (type(d).__name__, e))
        for s in servers_:
            try:
                s.stop()
            except Exception as e:	# keep stopping the others
                log("%s: stop: %s" % (s.name, e))
        if args.keep:
            log("kept %s" % top)
        else:
            shutil.rmtree(top, ignore_errors=True)

    report(results, [s.name for s in servers_], idle)
    report_directories(dir_rows)
    return 0


def directory_runs(top, args, smtp_source, owner, fsrv, head, want, stack):
    """The headline scenario against directory-backed facteurd variants,
    interleaved with a fresh file-backed one (file, ldap, mysql, then
    ldap, mysql, file, ...) so that a change in the machine's load hits
    every backend alike; the medians are compared."""
    label, sessions, msgs, size = SCENARIOS[0]
    if args.quick:
        msgs //= 5
    notes = []
    try:
        variants = start_directories(top, want, notes, stack)
    except (servers.ServerError, OSError, subprocess.SubprocessError) as e:
        notes.append("directory servers: could not start: %s" % e)
        variants = []
    for n in notes:
        log(n)
    started = []
    try:
        # A fresh file-backed server too: the headline server's maildirs
        # have grown large directories by now, which slows it down.
        for name, maps in [("facteur+file", None)] + variants if variants else []:
            f = Facteur(top, free_port(), args.build, owner, name=name, maps=maps)
            try:
                f.setup()
                f.start()
                log("%s: listening on 127.0.0.1:%d" % (name, f.port))
                load(f, smtp_source, 20, 200, 4096, args.timeout, top)
                started.append(f)
            except BenchError as e:	# keep the other backend's figure
                log("%s: %s" % (name, e))
                f.stop()
        if len(started) < 2 or started[0].name != "facteur+file":
            return [(fsrv.name, head["facteur"])]
        runs = {f.name: [] for f in started}
        for i in range(args.repeat):
            k = i % len(started)	# rotate: no backend always runs first
            for f in started[k:] + started[:k]:
                if f.name not in runs:
                    continue
                log("%s: %s, %d messages (%d/%d) ..." % (f.name, label, msgs, i + 1, args.repeat))
                try:
                    runs[f.name].append(load(f, smtp_source, sessions, msgs, size,
                                             args.timeout, top))
                except BenchError as e:
                    log("%s: %s" % (f.name, e))
                    del runs[f.name]
        if started[0].name not in runs:
            return []
        rows = []
        for name, rs in runs.items():
            rs.sort(key=lambda r: r["rate"])
            rows.append((name, rs[len(rs) // 2]))
        return rows
    finally:
        for f in started:
            f.stop()


def report_directories(rows):
    if len(rows) < 2:
        return
    label = SCENARIOS[0][0]
    base = rows[0][1]["rate"]
    log("")
    log("directory backends, %s, lookup cache on (cache_ttl 60s, cache_negative_ttl 10s):" % label)
    for name, r in rows:
        log("  %-14s %9.1f msg/s  %6.2f ms server CPU/msg  %s" % (
            name, r["rate"], r["server_ms"] or 0.0,
            "(file backend)" if r is rows[0][1] else
            "%.2f of the file backend (target >= %.2f)" % (r["rate"] / base, DIRECTORY_TARGET)))


def report(results, names, idle):
    log("")
    log("load: smtp-source -s SESSIONS -m MSGS -l SIZE -f %s -t %s" % (SENDER, RCPT))
    log("time: start of smtp-source to the last message in a maildir (fsynced by both servers)")
    log("machine: %d CPUs, load average %.2f before the run" % (os.cpu_count() or 0, LOAD0))
    log("CPU: server = its whole process tree; machine = every process on the host")
    log("     (smtp-source and anything else running); client = smtp-source alone")
    hdr = "%-22s %-8s %6s %8s %9s %11s %12s %11s" % (
        "scenario", "server", "msgs", "seconds", "msg/s", "server CPU", "machine CPU", "client CPU")
    log(hdr)
    log("%-22s %-8s %6s %8s %9s %11s %12s %11s" % ("", "", "", "", "", "ms/msg", "ms/msg", "ms/msg"))
    log("-" * len(hdr))
    for row in results:
        for name in names:
            r = row[name]
            log("%-22s %-8s %6d %8.2f %9.1f %11s %12s %11s%s" % (
                row["label"], name, row["msgs"], r["secs"], r["rate"],
                fmt(r["server_ms"], ".2f"), fmt(r["machine_ms"], ".2f"),
                fmt(r["client_ms"], ".2f"),
                "  (%d duplicate deliveries)" % r["extra"] if r["extra"] > 0 else ""))
        if len(names) == 2:
            log("%-22s %-8s %s" % (row["label"], "ratio",
                                    "%.2f  (facteur/postfix msg/s)" % (row["facteur"]["rate"] / row["postfix"]["rate"])))
    log("")
    if idle is not None:
        rss0, rss1, n, fds = idle
        if rss0 is not None and rss1 is not None:
            per = (rss1 - rss0) / n if n else 0
            log("facteurd RSS: %d KiB idle, %d KiB with %d idle sessions: +%.1f MiB, %.1f KiB per session%s"
                % (rss0, rss1, n, (rss1 - rss0) / 1024, per,
                   "" if n >= IDLE_SESSIONS else "  (only %d of %d got a banner)" % (n, IDLE_SESSIONS)))
            if fds is not None:
                log("facteurd descriptors open meanwhile: %d" % fds)
        else:
            log("facteurd RSS: n/a (%d idle sessions open)" % n)
    head = results[0] if results else None
    if head and "facteur" in head:
        log("facteurd CPU per message (%s): %s ms" % (head["label"], fmt(head["facteur"]["server_ms"], ".3f")))
    if head and len(names) == 2:
        ratio = head["facteur"]["rate"] / head["postfix"]["rate"]
        log("headline: %s: facteur %.0f msg/s, postfix %.0f msg/s, ratio %.2f (target >= %.1f)"
            % (head["label"], head["facteur"]["rate"], head["postfix"]["rate"], ratio, TARGET_RATIO))
    elif head:
        name = names[0]
        log("headline: %s: %s %.0f msg/s (no ratio: one server only)"
            % (head["label"], name, head[name]["rate"]))


def _on_signal(signum, _frame):
    raise KeyboardInterrupt("signal %d" % signum)


if __name__ == "__main__":
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
