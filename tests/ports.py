"""Loopback ports for the servers the tests start (facteurd listeners,
slapd, mariadbd, dnsmasq, capture and policy servers).

A port is taken from below the kernel's ephemeral range, never from it:
a port the kernel handed out for "bind to 0" and that we closed again can
be given at once to any outgoing connection (facteurd's own relay or
policy clients, a test's smtplib), and the server we then start on it
fails with "Address already in use". Ports below the ephemeral range are
only ever chosen explicitly, so once we have checked one is free it stays
free for us. Each process walks the range from a start derived from its
PID and never hands the same port out twice.
"""

import os
import socket

_LOW = 15000


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768        # Linux default; FreeBSD's is 49152


_HIGH = max(_LOW + 1000, _ephemeral_low())
_SPAN = _HIGH - _LOW
_next = (os.getpid() * 7919) % _SPAN
_given = set()


def _bindable(port, host, udp_too):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp_too else [])
    socks = []
    try:
        for kind in kinds:
            s = socket.socket(fam, kind)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(host="127.0.0.1", udp_too=False):
    """A TCP (and with udp_too also UDP) port free on host."""
    global _next
    for _ in range(_SPAN):
        port = _LOW + _next
        _next = (_next + 1) % _SPAN
        if port in _given:
            continue
        if _bindable(port, host, udp_too):
            _given.add(port)
            return port
    raise RuntimeError("no free port in %d-%d" % (_LOW, _HIGH - 1))
