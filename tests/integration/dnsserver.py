"""
dnsserver.py - one private dnsmasq for the integration tests: given
records (A, AAAA, MX, null MX, TXT, PTR, DNSBL answers) it serves them on
127.0.0.1 at a port free for both UDP and TCP, authoritative for the
local zones given (NXDOMAIN for any other name in them), with its log in
a temp dir. It is started and stopped by its own PID (SIGTERM, SIGKILL
after 5 s) and is ready when it answers a query.

  from dnsserver import dns_server, mx, host, ptr, txt, dnsbl
  @pytest.fixture
  def dnsmasq(dns_server):
      return dns_server(mx("a.test", "mx.a.test"), host("mx.a.test",
                        "127.0.0.1"), local=("test", "in-addr.arpa")).port

`dns_server` is a pytest fixture (a factory; import it into the test
module); running_dnsmasq is the same as a context manager.
Must not: listen on anything but loopback, read /etc/hosts,
/etc/resolv.conf or a dnsmasq.conf, forward a query, or wait without a
bound. Skips the test when dnsmasq is not installed.
"""
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from harness import free_port

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


# -- records: each returns a list of dnsmasq options --------------------

def host(name, *addrs):
    """A and/or AAAA records; dnsmasq also answers the PTR of each
    address with name (use ptr() for a PTR alone)."""
    return ["--host-record=%s,%s" % (name, ",".join(addrs))]


def mx(domain, target, pref=10):
    return ["--mx-host=%s,%s,%d" % (domain, target, pref)]


def null_mx(domain):
    """RFC 7505: MX 0 ."""
    return ["--mx-host=%s,.,0" % domain]


def txt(name, text):
    return ["--txt-record=%s,%s" % (name, text)]


def reverse_name(addr):
    """1.2.3.4 -> 4.3.2.1.in-addr.arpa; IPv6 -> nibbles.ip6.arpa."""
    return ipaddress.ip_address(addr).reverse_pointer


def ptr(addr, name):
    return ["--ptr-record=%s,%s" % (reverse_name(addr), name)]


def dnsbl(zone, addr, answer="127.0.0.2", reason=None):
    """addr listed in the DNSBL zone (reversed octets under zone) with
    the answer address, and a TXT reason when given. For an RHSBL, addr
    is a domain name (not reversed)."""
    try:
        left = reverse_name(addr).rsplit(".", 2)[0]
    except ValueError:
        left = addr
    name = "%s.%s" % (left, zone)
    return host(name, answer) + (txt(name, reason) if reason else [])


# -- the server --------------------------------------------------------

def _query(port, name="ready.invalid", timeout=0.2):
    """True when something answers a DNS query for name on port."""
    qid = os.getpid() & 0xffff
    packet = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\0" + struct.pack("!HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(packet, ("127.0.0.1", port))
        data = s.recv(512)
        return len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid
    except OSError:
        return False
    finally:
        s.close()


class Dnsmasq:
    """One dnsmasq process; records is a list of option lists (from the
    functions above), local the zones it is authoritative for."""

    def __init__(self, workdir, records, local=("test",)):
        self.workdir = workdir
        self.logfile = os.path.join(workdir, "dnsmasq.log")
        self.port = None
        self.proc = None
        self.args = [
            DNSMASQ, "--no-daemon", "--listen-address=127.0.0.1",
            "--bind-interfaces", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", "--pid-file=",
            "--user=nobody" if os.geteuid() == 0 else "--user="]
        self.args += ["--local=/%s/" % z for z in local]
        for r in records:
            self.args += r

    def start(self, timeout=5):
        self.port = free_port(udp_too=True)
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                self.args + ["--port=%d" % self.port],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("dnsmasq exited:\n" + self.log())
            if _query(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise AssertionError("dnsmasq did not answer:\n" + self.log())

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def log(self):
        try:
            with open(self.logfile) as f:
                return f.read()[-3000:]
        except FileNotFoundError:
            return ""

    @property
    def server(self):
        """The facteur_dns_servers value for this server."""
        return "127.0.0.1:%d" % self.port


def _require():
    if not os.access(DNSMASQ, os.X_OK):
        pytest.skip("dnsmasq is not installed (dnsmasq-base)")


@contextlib.contextmanager
def running_dnsmasq(*records, local=("test",)):
    """A started Dnsmasq serving records, in a temp dir removed on exit."""
    _require()
    base = tempfile.mkdtemp(prefix="facteur-dnsmasq-")
    d = Dnsmasq(base, records, local=local)
    try:
        d.start()
        yield d
    finally:
        d.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def dns_server():
    """Factory: dns_server(*records, local=("test",)) -> a started
    Dnsmasq, stopped at the test's end."""
    stack = contextlib.ExitStack()

    def start(*records, local=("test",)):
        return stack.enter_context(running_dnsmasq(*records, local=local))
    with stack:
        yield start
