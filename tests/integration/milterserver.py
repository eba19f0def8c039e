"""
milterserver.py - a milter written by hand on a socket, for tests that
need one misbehaving on purpose or recording what it is sent (the
Python Milter module cannot). Each connection runs on its own thread:
packets (4-byte big-endian length, command byte, data) are read one by
one and behave(cmd, data) returns the bytes to send back (b"" for none)
or None to close the connection.

Must not: listen on anything but 127.0.0.1, or block a test past its
timeouts (accept polls every 0.2 s, a connection times out after 10 s).
"""
import socket
import threading

from harness import free_port


def pkt(cmd, data=b""):
    """One milter packet: length, command byte, data."""
    return (len(data) + 1).to_bytes(4, "big") + cmd + data


class RawMilter:
    """A milter on 127.0.0.1:self.port answering with behave(cmd, data)."""

    def __init__(self, behave):
        self.behave = behave
        self.port = free_port()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", self.port))
        self.srv.listen(8)
        self.srv.settimeout(0.2)
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.srv.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,),
                             daemon=True).start()

    def serve(self, c):
        c.settimeout(10)
        buf = b""
        try:
            while True:
                while len(buf) < 4 or len(buf) < 4 + int.from_bytes(
                        buf[:4], "big"):
                    chunk = c.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                n = int.from_bytes(buf[:4], "big")
                cmd, data, buf = buf[4:5], buf[5:4 + n], buf[4 + n:]
                out = self.behave(cmd, data)
                if out is None:
                    return
                c.sendall(out)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop_ev.set()
        self.t.join(2)
        self.srv.close()
