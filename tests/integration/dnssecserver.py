"""
dnssecserver.py - a tiny DNS responder for the DANE tests: dnsmasq cannot
set the AD bit on its own records, so this one answers A, AAAA, MX and
TLSA queries (and one level of CNAME) from a dict, with AD set for names under the "signed" zones
(as a validating resolver would after checking the signatures) and not
for the others, SERVFAIL for the names listed, NXDOMAIN for unknown
names. UDP and TCP (RFC 7766 framing) on one loopback port; an EDNS0 OPT
in a query is echoed (with the DO bit); names in tcp_only get a
truncated UDP reply (TC) and their records over TCP. Pure struct, one
thread.

  srv = DnssecServer(records={("mx.example.net", "A"): ["127.0.0.1"],
                              ("example.net", "MX"): [(10, "mx.example.net")],
                              ("_*._tcp.mx.example.net", "TLSA"):
                                  [(3, 1, 1, bytes.fromhex("..."))]},
                     signed=["example.net"], servfail=["_*._tcp.x.net"])

"_*._tcp.HOST" answers the TLSA query of any port.
  ... facteur_dns_servers = 127.0.0.1:<srv.port> ...
  srv.close()

Must not: listen anywhere but loopback, block a test (every socket has a
timeout and the thread stops on close), or crash on a malformed query
(it is dropped).
"""
import re
import select
import socket
import struct
import threading

from harness import free_port

TYPES = {"A": 1, "CNAME": 5, "MX": 15, "AAAA": 28, "TLSA": 52}


def _name(labels):
    out = b""
    for l in labels.rstrip(".").split("."):
        if l:
            b = l.encode("ascii")
            out += bytes([len(b)]) + b
    return out + b"\0"


def _rdata(rtype, v):
    if rtype == "A":
        return socket.inet_pton(socket.AF_INET, v)
    if rtype == "AAAA":
        return socket.inet_pton(socket.AF_INET6, v)
    if rtype == "CNAME":
        return _name(v)
    if rtype == "MX":
        return struct.pack("!H", v[0]) + _name(v[1])
    if rtype == "TLSA":
        return bytes(v[:3]) + v[3]
    raise ValueError(rtype)


class DnssecServer:
    def __init__(self, records, signed=(), servfail=(), tcp_only=()):
        self.records = {(n.lower().rstrip("."), t): list(v)
                        for (n, t), v in records.items()}
        self.signed = [z.lower().rstrip(".") for z in signed]
        self.servfail = {n.lower().rstrip(".") for n in servfail}
        # names answered over UDP with TC and no records (RFC 7766: the
        # client asks again over TCP)
        self.tcp_only = {n.lower().rstrip(".") for n in tcp_only}
        self.queries = []           # (name, type name, AD asked, DO asked)
        self.truncated = []         # (name, type name) answered with TC
        self.port = free_port(udp_too=True)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(16)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def close(self):
        self._stop.set()
        self._t.join(5)
        self.udp.close()
        self.tcp.close()

    def _secure(self, name):
        return any(name == z or name.endswith("." + z) for z in self.signed)

    def answer(self, q, tcp=True):
        """The reply to one query packet (bytes), or None if malformed."""
        if len(q) < 12:
            return None
        qid, flags, qd, an, ns, ar = struct.unpack("!6H", q[:12])
        if qd != 1 or flags & 0x8000:
            return None
        p, labels = 12, []
        while True:
            if p >= len(q):
                return None
            n = q[p]
            if n == 0 or n > 63:
                break
            labels.append(q[p + 1:p + 1 + n].decode("ascii", "replace"))
            p += 1 + n
        if n != 0 or p + 5 > len(q):
            return None
        qend = p + 5
        qtype, qclass = struct.unpack("!HH", q[p + 1:qend])
        name = ".".join(labels).lower()
        edns = ar > 0 and q[qend:qend + 3] == b"\0\0\x29"
        do = edns and len(q) >= qend + 11 and q[qend + 7] & 0x80
        tname = {v: k for k, v in TYPES.items()}.get(qtype, str(qtype))
        self.queries.append((name, tname, bool(flags & 0x20), bool(do)))
        if not tcp and name in self.tcp_only:
            self.truncated.append((name, tname))
            return struct.pack("!6H", qid, 0x8000 | (flags & 0x0100) | 0x0200
                               | 0x0080, 1, 0, 0, 0) + q[12:qend]
        # "_*._tcp.HOST" in the records answers for every port
        m = re.match(r"_[0-9]+\._tcp\.(.+)$", name)
        key = "_*._tcp." + m.group(1) if m else name
        rcode, rrs = 0, []
        if name in self.servfail or key in self.servfail:
            rcode = 2
        elif not any(k[0] in (name, key) for k in self.records):
            rcode = 3
        elif (name, "CNAME") in self.records and tname != "CNAME":
            # one CNAME, then the target's records (owner spelled out)
            target = self.records[(name, "CNAME")][0]
            rd = _rdata("CNAME", target)
            rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 300,
                                                len(rd)) + rd)
            for v in self.records.get((target.lower(), tname), []):
                rd = _rdata(tname, v)
                rrs.append(_name(target) + struct.pack("!HHIH", qtype, 1,
                                                       300, len(rd)) + rd)
        else:
            for v in self.records.get((name, tname),
                                      self.records.get((key, tname), [])):
                rd = _rdata(tname, v)
                rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 300,
                                                    len(rd)) + rd)
        ad = rcode != 2 and self._secure(name)
        rflags = 0x8000 | (flags & 0x0100) | 0x0080 | (0x20 if ad else 0) \
            | rcode
        out = struct.pack("!6H", qid, rflags, 1, len(rrs), 0,
                          1 if edns else 0) + q[12:qend] + b"".join(rrs)
        if edns:
            out += b"\0\0\x29" + struct.pack("!HBBHH", 1232, 0, 0,
                                             0x8000 if do else 0, 0)
        return out

    def _run(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self.udp, self.tcp], [], [], 0.1)
            except (OSError, ValueError):
                return
            for s in r:
                try:
                    if s is self.udp:
                        q, peer = self.udp.recvfrom(4096)
                        a = self.answer(q, tcp=False)
                        if a is not None:
                            self.udp.sendto(a, peer)
                    else:
                        self._tcp_conn()
                except OSError:
                    pass

    def _tcp_conn(self):
        c, _ = self.tcp.accept()
        c.settimeout(2)
        try:
            while True:
                hdr = c.recv(2)
                if len(hdr) < 2:
                    return
                n = struct.unpack("!H", hdr)[0]
                q = b""
                while len(q) < n:
                    b = c.recv(n - len(q))
                    if not b:
                        return
                    q += b
                a = self.answer(q)
                if a is None:
                    return
                c.sendall(struct.pack("!H", len(a)) + a)
        except OSError:
            pass
        finally:
            c.close()
