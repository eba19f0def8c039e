"""
capture.py - a small scripted SMTP / LMTP server on loopback that records
what facteurd's SMTP and LMTP clients send: one class for both protocols,
used by test_outbound.py, test_lmtp.py and the other client tests.

Records every connection (peer address, first command, commands, number
of transactions), every accepted transaction (sender, accepted recipients,
data bytes as on the wire) and answers as the test scripts it: rcpt_reply,
data_reply, the extensions announced, STARTTLS (real TLS with a test
certificate, refused, or broken), and a stall after DATA.
Must not: listen anywhere but loopback, block a test forever (every socket
has a timeout), or accept a command line longer than it can bound.
"""
import re
import socket
import ssl
import threading
import time


class Conn:
    """What one client connection did."""

    def __init__(self, peer):
        self.peer = peer            # (ip, port) of the client
        self.commands = []          # every command line, decoded
        self.transactions = 0       # messages accepted on this connection
        self.tls = False            # STARTTLS completed
        self.tls_version = None

    @property
    def first(self):
        return self.commands[0] if self.commands else None


class Capture:
    """A scripted ESMTP (or LMTP with lmtp=True) server on host:0.

    rcpt_reply(addr) and data_reply(addr or None) give the replies; for
    LMTP data_reply is called once per accepted recipient (RFC 2033 4.2),
    for SMTP once with None.  ext lists the EHLO keywords after the name.
    starttls: None (not offered), "refuse" (454), "break" (no TLS after
    220), or "tls" (a real handshake with tls_cert = (cert, key)).
    stall_after_data: the DATA content is read, then no reply is sent
    (the connection stays open) until release() is called.
    greeting: the first reply (a 4xx/5xx one ends the session).
    close_after: hang up (without 421) after that many transactions on
    one connection.
    """

    SMTP_EXT = ["SIZE 10000000", "8BITMIME", "PIPELINING", "SMTPUTF8"]
    LMTP_EXT = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"]

    def __init__(self, lmtp=False, host="127.0.0.1", pipelining=True,
                 ext=None, starttls=None, tls_cert=None, tls_min=None,
                 tls_max=None, port=0):
        self.lmtp = lmtp
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(32)
        self.sock.settimeout(0.2)
        self.host = host
        self.port = self.sock.getsockname()[1]
        if ext is None:
            ext = list(self.LMTP_EXT if lmtp else self.SMTP_EXT)
        if not pipelining:
            ext = [e for e in ext if e.upper() != "PIPELINING"]
        self.ext = ext
        self.messages = []          # (sender, [rcpts], data bytes)
        self.conns = []             # Conn, in accept order
        self.rcpt_reply = lambda addr: "250 2.1.5 Ok"
        if lmtp:
            self.data_reply = lambda addr: "250 2.0.0 <%s> Saved" % addr
        else:
            self.data_reply = lambda addr=None: "250 2.0.0 Ok: queued as CAFE1"
        self.starttls = starttls
        self.tls_cert = tls_cert
        self.tls_min = tls_min      # ssl.TLSVersion the server insists on
        self.tls_max = tls_max      # ... and the highest it speaks
        self.stall_after_data = False
        self.greeting = None
        self.close_after = None
        self.stalled = threading.Event()    # a DATA is being held
        self._release = threading.Event()
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # -- compatibility with the older per-file capture servers --
    @property
    def connections(self):
        return len(self.conns)

    @property
    def transactions(self):
        return self.messages

    @property
    def greetings(self):
        return [c.first for c in self.conns if c.first is not None]

    def release(self):
        self._release.set()

    def close(self):
        self.stop_ev.set()
        self._release.set()
        self.thread.join(5)
        self.sock.close()

    def _run(self):
        while not self.stop_ev.is_set():
            try:
                c, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn = Conn(peer)
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._session, args=(c, conn),
                             daemon=True).start()

    def _ehlo(self, name):
        ext = list(self.ext)
        if self.starttls:
            ext.append("STARTTLS")
        lines = [name] + ext
        return "\r\n".join(("250-" if i < len(lines) - 1 else "250 ") + l
                           for i, l in enumerate(lines))

    def _tls(self, c):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.tls_cert[0], self.tls_cert[1])
        if self.tls_min is not None:
            ctx.minimum_version = self.tls_min
        if self.tls_max is not None:
            ctx.maximum_version = self.tls_max
        return ctx.wrap_socket(c, server_side=True)

    def _session(self, c, conn):
        c.settimeout(15)
        f = c.makefile("rb")

        def send(s):
            c.sendall(s.encode() + b"\r\n")
        try:
            g = self.greeting
            send(g or "220 remote.test %s capture" % ("LMTP" if self.lmtp
                                                       else "ESMTP"))
            if g and not g.startswith("2"):
                f.readline(4096)    # the client's QUIT, if any
                send("221 2.0.0 Bye")
                return
            sender, rcpts = None, []
            while True:
                line = f.readline(4096)
                if not line:
                    return
                cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                conn.commands.append(cmd)
                up = cmd.upper()
                if up.startswith("LHLO") and self.lmtp:
                    send(self._ehlo("capture.test"))
                elif up.startswith(("EHLO", "HELO")) and self.lmtp:
                    send("500 5.5.1 this is LMTP")
                elif up.startswith("EHLO"):
                    send(self._ehlo("remote.test"))
                elif up.startswith("HELO"):
                    send("250 remote.test")
                elif up.startswith("MAIL FROM:"):
                    sender = re.match(r"(?i)MAIL FROM:<([^>]*)>", cmd).group(1)
                    rcpts = []
                    send("250 2.1.0 Ok")
                elif up.startswith("RCPT TO:"):
                    a = re.match(r"(?i)RCPT TO:<([^>]*)>", cmd).group(1)
                    r = self.rcpt_reply(a)
                    if r.startswith("2"):
                        rcpts.append(a)
                    send(r)
                elif up == "DATA":
                    if not rcpts:
                        send("503 5.5.1 No valid recipients" if self.lmtp
                             else "554 5.5.1 Error: no valid recipients")
                        continue
                    send("354 End data with <CR><LF>.<CR><LF>")
                    data = b""
                    while True:
                        l = f.readline(1000000)
                        if not l or l == b".\r\n":
                            break
                        data += l
                    if not l:
                        return
                    if self.stall_after_data:
                        self.stalled.set()
                        self._release.wait(60)
                        return      # hang up without a reply
                    if self.lmtp:
                        self.messages.append((sender, list(rcpts), data))
                        conn.transactions += 1
                        for a in rcpts:
                            send(self.data_reply(a))
                    else:
                        r = self.data_reply()
                        if r.startswith("2"):
                            self.messages.append((sender, list(rcpts), data))
                            conn.transactions += 1
                        send(r)
                    sender, rcpts = None, []
                    if (self.close_after is not None
                            and conn.transactions >= self.close_after):
                        return
                elif up == "QUIT":
                    send("221 2.0.0 Bye")
                    return
                elif up == "RSET":
                    sender, rcpts = None, []
                    send("250 2.0.0 Ok")
                elif up == "NOOP":
                    send("250 2.0.0 Ok")
                elif up == "STARTTLS" and self.starttls == "refuse":
                    send("454 4.7.0 TLS not available due to local problem")
                elif up == "STARTTLS" and self.starttls == "break":
                    send("220 2.0.0 Ready to start TLS")
                    c.sendall(b"this is not a TLS server hello\r\n")
                    return
                elif up == "STARTTLS" and self.starttls == "tls":
                    send("220 2.0.0 Ready to start TLS")
                    try:
                        c = self._tls(c)
                    except (ssl.SSLError, OSError):
                        return
                    conn.tls = True
                    conn.tls_version = c.version()
                    f = c.makefile("rb")
                else:
                    send("502 5.5.2 Error: command not recognized")
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def wait_messages(self, n, timeout=20):
        deadline = time.time() + timeout
        while len(self.messages) < n and time.time() < deadline:
            time.sleep(0.05)
        return self.messages

    wait_transactions = wait_messages
