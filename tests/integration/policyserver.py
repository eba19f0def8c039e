"""
policyserver.py - a Postfix policy delegation server for the tests: reads
requests (attribute lines ended by an empty line), records each one's
attributes, and answers `action=...`. The action is a fixed string or a
function of the request's attributes. Several requests may come on one
connection (facteurd keeps policy connections); an idle connection is
closed after a second so facteurd opens a fresh one.

Must not: listen on anything but 127.0.0.1, or run longer than a minute.
"""
import socket
import threading
import time


class PolicyServer:
    def __init__(self, action):
        self.action = action
        self.requests = []
        self.nconn = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def answer(self, attrs):
        return self.action(attrs) if callable(self.action) else self.action

    def serve(self, conn):
        data = b""
        while True:
            while b"\n\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if b"\n\n" not in data:
                return
            req, data = data.split(b"\n\n", 1)
            attrs = dict(l.split("=", 1) for l in
                         req.decode().split("\n") if "=" in l)
            self.requests.append(attrs)
            conn.sendall(("action=%s\n\n" % self.answer(attrs)).encode())

    def run(self):
        deadline = time.time() + 60
        while not self.stop and time.time() < deadline:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            self.nconn += 1
            conn.settimeout(1)
            try:
                self.serve(conn)
            except OSError:
                pass
            conn.close()

    def close(self):
        self.stop = True
        self.t.join(5)
        self.sock.close()
