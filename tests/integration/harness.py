"""
harness.py - black-box helpers for facteur's integration tests.

Starts facteurd from $FACTEUR_BUILD/bin in a private directory (config,
maps, queue, maildirs, log) on a free loopback port, talks raw SMTP to it,
and reads back what it delivered. Only the standard library is used.
Must not: guess at facteurd internals beyond the documented contract
(DESIGN.md), leave a process behind, or hide a daemon's stderr on failure.
"""
import errno
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOSTNAME = "mx.example.test"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
IO_TIMEOUT = 10.0
DELIVERY_TIMEOUT = 15.0
# The unprivileged user facteurd runs as when the tests run as root.
TEST_MAIL_OWNER = os.environ.get("FACTEUR_TEST_MAIL_OWNER", "nobody")

# Every facteurd we started and have not reaped yet: the last line of
# defence (atexit in conftest) kills these, so no test leaves one behind.
LIVE = set()


def build_dir():
    b = os.environ.get("FACTEUR_BUILD")
    if not b:
        here = os.path.dirname(os.path.abspath(__file__))
        b = os.path.join(here, "..", "..", "build")
    return os.path.abspath(b)


def bin_path(name):
    return os.path.join(build_dir(), "bin", name)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))
from ports import free_port  # noqa: E402,F401  (tests/ports.py)


def tail(path, nbytes=4000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - nbytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return "<%s: %s>" % (path, e)


def _set_pdeathsig():
    # Linux only, best effort: the daemon dies if the test runner dies.
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:
        pass


class SMTPError(AssertionError):
    pass


class Reply:
    """One SMTP reply: code (int), lines (text after 'NNN-' / 'NNN ')."""

    def __init__(self, raw_lines):
        self.raw = raw_lines
        self.code = int(raw_lines[-1][:3])
        self.lines = [l[4:] for l in raw_lines]

    @property
    def text(self):
        return self.lines[-1]

    @property
    def esc(self):
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3})( |$)", self.lines[0])
        return m.group(1) if m else None

    def __str__(self):
        return "\n".join(self.raw)

    __repr__ = __str__


class SMTPConn:
    """A raw SMTP client connection: exact bytes out, replies parsed."""

    def __init__(self, host, port, source=None, timeout=IO_TIMEOUT):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.transcript = []

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.transcript.append(b"C: " + data[:300])
        self.sock.sendall(data)

    def cmd(self, line):
        """Sends one command line (CRLF added) and returns its reply."""
        self.send(line.encode("utf-8") + b"\r\n" if isinstance(line, str)
                  else line + b"\r\n")
        return self.reply()

    def read_line(self, timeout=None):
        """One line without its CRLF, or None at EOF."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if line.endswith(b"\r"):
            line = line[:-1]
        self.transcript.append(b"S: " + line[:300])
        return line

    def reply(self, timeout=None):
        """A whole (possibly multi-line) reply; SMTPError at EOF/garbage."""
        lines = []
        while True:
            raw = self.read_line(timeout)
            if raw is None:
                raise SMTPError("connection closed while reading a reply; "
                                "got so far: %r\n%s" % (lines, self.dump()))
            line = raw.decode("utf-8", "replace")
            if not re.match(r"^[2-5]\d\d([ -]|$)", line):
                raise SMTPError("not an SMTP reply line: %r\n%s"
                                % (line, self.dump()))
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                if any(l[:3] != line[:3] for l in lines):
                    raise SMTPError("inconsistent codes in reply %r" % lines)
                return Reply(lines)

    def expect_closed(self, timeout=5.0):
        """True if the server closes the connection (reads nothing more)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def dump(self):
        return "\n".join(l.decode("utf-8", "replace")
                         for l in self.transcript[-40:])


def check(reply, code, esc=None, text=None):
    """Asserts a reply's code (exact), enhanced code (exact) and text (regex)."""
    msg = "expected %s%s%s, got:\n%s" % (
        code, " " + esc if esc else "", " /%s/" % text if text else "", reply)
    assert reply.code == code, msg
    if esc is not None:
        assert reply.esc == esc, msg
    if text is not None:
        assert re.search(text, "\n".join(reply.lines), re.I), msg
    return reply


QUEUED_RE = re.compile(r"queued as ([0-9A-Za-z]+)")


def queue_id_of(reply):
    m = QUEUED_RE.search(reply.text)
    assert m, "no queue ID in %s" % reply
    return m.group(1)


# ---------------------------------------------------------------- messages

def make_msg(subject="test", body=b"Hello.\r\n", sender="sender@example.net",
             to="alice@example.test", msgid=None, extra_headers=b""):
    """A complete RFC 5322 message with CRLF line ends (not dot-stuffed).

    Date, Message-ID and From are always present so that no server adds
    headers of its own besides Received: (byte-exact comparisons)."""
    if msgid is None:
        msgid = "<%s.%d@client.test>" % (re.sub(r"\W", "", subject)[:40],
                                         time.monotonic_ns())
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdr = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
           "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: %s\r\n"
           % (sender or "mailer-daemon@example.net", to, subject, msgid))
    return hdr.encode("utf-8") + extra_headers + b"\r\n" + body


def msgid_of(msg):
    """The Message-ID of a message (bytes), as make_msg wrote it."""
    return re.search(rb"(?im)^Message-ID:\s*(\S+)", msg).group(1).decode()


def dot_stuff(msg):
    """Dot-stuffs a CRLF message and appends the end-of-data marker."""
    lines = msg.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    out = [b"." + l if l.startswith(b".") else l for l in lines]
    return b"\r\n".join(out) + b"\r\n.\r\n"


def to_lf(msg):
    return msg.replace(b"\r\n", b"\n")


# ---------------------------------------------------------------- maildirs

class Delivered:
    """One delivered maildir file, split into facteur's prepended header
    fields (Return-Path, X-Original-To, Delivered-To, Received, as Postfix's
    virtual(8) writes them) and the message content that follows."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        self.prepended = []          # [(name, value)] with unfolded values
        rest = self.raw
        wanted = [b"return-path", b"x-original-to", b"delivered-to",
                  b"received"]
        for name in wanted:
            m = re.match(rb"([!-9;-~]+):[ \t]?", rest)
            if not m or m.group(1).lower() != name:
                break
            end = 0
            while True:
                nl = rest.find(b"\n", end)
                if nl < 0:
                    nl = len(rest) - 1
                    break
                if rest[nl + 1:nl + 2] in (b" ", b"\t"):
                    end = nl + 1
                    continue
                break
            field = rest[:nl + 1]
            value = field[m.end():].rstrip(b"\n")
            self.prepended.append((m.group(1).decode(),
                                   re.sub(rb"\n[ \t]+", b" ", value)
                                   .decode("utf-8", "replace")))
            rest = rest[nl + 1:]
        self.content = rest

    def field(self, name):
        for n, v in self.prepended:
            if n.lower() == name.lower():
                return v
        return None

    def header(self, name):
        """A header of the delivered message content (first match)."""
        head = self.content.split(b"\n\n", 1)[0]
        m = re.search(rb"(?im)^" + re.escape(name.encode()) +
                      rb":[ \t]*(.*(?:\n[ \t].*)*)", head)
        return m.group(1).decode("utf-8", "replace") if m else None

    @property
    def size_tag(self):
        m = re.search(r",S=(\d+)", os.path.basename(self.path))
        return int(m.group(1)) if m else None


def maildir_files(base, addr, subdirs=("new", "cur")):
    user, domain = addr.split("@")
    out = []
    for sub in subdirs:
        d = os.path.join(base, domain, user, sub)
        try:
            names = sorted(os.listdir(d))
        except FileNotFoundError:
            continue
        out.extend(os.path.join(d, n) for n in names if not n.startswith("."))
    return out


# ---------------------------------------------------------------- daemon

DEFAULT_USERS = ["alice", "bob", "catchall", "carol"]


class Daemon:
    """One facteurd instance with its own directory tree."""

    def __init__(self, root, main_cf=None, extra_main_cf="",
                 extra_master_cf="", vmailbox=None, valias=None,
                 listen=True):
        self.link = None
        self.vmail_uid, self.vmail_gid = os.getuid(), os.getgid()
        owner = {}
        if os.geteuid() == 0:
            # As root, facteurd binds, then drops to mail_owner, which must
            # reach its files: a world-traversable tree outside pytest's
            # private (0700) tmp dir, linked from it for inspection.
            pw = pwd.getpwnam(TEST_MAIL_OWNER)
            self.vmail_uid, self.vmail_gid = pw.pw_uid, pw.pw_gid
            owner = {"mail_owner": TEST_MAIL_OWNER}
            real = tempfile.mkdtemp(prefix="facteur-it-")
            os.chmod(real, 0o755)
            os.makedirs(os.path.dirname(str(root)), exist_ok=True)
            os.symlink(real, str(root))
            self.link = str(root)
            root = real
        self.root = str(root)
        os.makedirs(self.root, exist_ok=True)
        self.confdir = os.path.join(self.root, "conf")
        os.makedirs(self.confdir, exist_ok=True)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.queue = os.path.join(self.root, "queue")
        self.mail = os.path.join(self.root, "mail")
        self.maillog = os.path.join(self.root, "maillog")
        self.stderr_path = os.path.join(self.root, "facteurd.stderr")
        self.vmailbox_path = os.path.join(self.confdir, "vmailbox")
        self.valias_path = os.path.join(self.confdir, "valias")
        self.proc = None
        self.killed = False
        self.expect_exit = False    # set by tests where exiting is right
        self.params = {
            "myhostname": HOSTNAME,
            "mydomain": "example.test",
            "mydestination": "localhost",
            "mynetworks": "127.0.0.1/32",
            "queue_directory": self.queue,
            "maillog_file": self.maillog,
            "virtual_mailbox_domains": "example.test, other.test",
            "virtual_mailbox_base": self.mail,
            "virtual_mailbox_maps": "texthash:" + self.vmailbox_path,
            "virtual_alias_maps": "texthash:" + self.valias_path,
            "virtual_uid_maps": "static:%d" % self.vmail_uid,
            "virtual_gid_maps": "static:%d" % self.vmail_gid,
            "recipient_delimiter": "+",
            "message_size_limit": "1048576",
            "smtpd_recipient_limit": "50",
            # a session left open must not hold the SIGTERM at teardown
            # past STOP_TIMEOUT (test_stop.py tests the bound itself)
            "facteur_shutdown_timeout": "2s",
            # No DNS but the hosts file (port 9 refuses at once): smtpd's
            # client name lookup makes 127.0.0.1 localhost[127.0.0.1] and
            # any other client unknown[...] without waiting. Tests that
            # need DNS run dnsmasq and set their own servers.
            "facteur_dns_servers": "127.0.0.1:9",
        }
        self.params.update(owner)
        if main_cf:
            for k, v in main_cf.items():
                if v is None:
                    self.params.pop(k, None)
                else:
                    self.params[k] = v
        self.extra_main_cf = extra_main_cf
        self.master_cf = ("%s:%d inet n - n - - smtpd\n"
                          % (self.host, self.port)) if listen else ""
        self.master_cf += extra_master_cf
        if vmailbox is None:
            vmailbox = "".join("%s@example.test example.test/%s/\n" % (u, u)
                               for u in DEFAULT_USERS)
        if valias is None:
            valias = ("postmaster@example.test alice@example.test\n"
                      "team@example.test alice@example.test, bob@example.test\n"
                      "dup@example.test alice@example.test, alice@example.test\n"
                      "chain@example.test team@example.test\n"
                      "loop1@example.test loop2@example.test\n"
                      "loop2@example.test loop1@example.test\n"
                      "@other.test catchall@example.test\n")
        self.vmailbox = vmailbox
        self.valias = valias
        self.write_config()

    # -- config
    def main_cf_text(self):
        lines = ["# written by facteur's integration tests"]
        lines += ["%s = %s" % (k, v) for k, v in self.params.items()]
        return "\n".join(lines) + "\n" + self.extra_main_cf

    def write_config(self):
        if os.geteuid() == 0 and not os.path.exists(self.mail):
            # The mailbox base belongs to the mail owner, as an operator
            # sets it up; facteurd creates the maildirs below it.
            os.makedirs(self.mail, 0o755)
            os.chown(self.mail, self.vmail_uid, self.vmail_gid)
        with open(os.path.join(self.confdir, "main.cf"), "w") as f:
            f.write(self.main_cf_text())
        with open(os.path.join(self.confdir, "master.cf"), "w") as f:
            f.write(self.master_cf)
        with open(self.vmailbox_path, "w") as f:
            f.write(self.vmailbox)
        with open(self.valias_path, "w") as f:
            f.write(self.valias)

    def table(self, name, text, kind="texthash"):
        """Writes text as the config directory's file name; returns
        "kind:path", what a table parameter names."""
        path = os.path.join(self.confdir, name)
        with open(path, "w") as f:
            f.write(text)
        return "%s:%s" % (kind, path)

    # -- process
    def diagnostics(self):
        return ("--- facteurd stderr (tail) ---\n%s\n--- maillog (tail) ---\n%s"
                % (tail(self.stderr_path), tail(self.maillog)))

    def spawn(self):
        exe = bin_path("facteurd")
        assert os.access(exe, os.X_OK), "facteurd not built: %s" % exe
        err = open(self.stderr_path, "ab")
        err.write(b"\n=== start %f ===\n" % time.time())
        err.flush()
        self.proc = subprocess.Popen(
            [exe, "-c", self.confdir, "-f"], stdin=subprocess.DEVNULL,
            stdout=err, stderr=err, cwd=self.root, start_new_session=True,
            preexec_fn=_set_pdeathsig)
        err.close()
        self.killed = False
        LIVE.add(self.proc)
        return self.proc

    def start(self, timeout=START_TIMEOUT):
        """Starts facteurd and waits for the 220 banner on our port."""
        self.spawn()
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                LIVE.discard(self.proc)
                self.expect_exit = True     # reported here, not again
                raise AssertionError("facteurd exited with status %s during "
                                     "start-up\n%s" % (rc, self.diagnostics()))
            try:
                with SMTPConn(self.host, self.port, timeout=2) as c:
                    line = c.read_line()
                    if line and line.startswith(b"220"):
                        return self
                    last = line
            except OSError as e:
                last = e
            time.sleep(0.05)
        self.stop()
        self.expect_exit = True
        raise AssertionError("facteurd not ready on %s:%d after %ss (last: %r)\n%s"
                             % (self.host, self.port, timeout, last,
                                self.diagnostics()))

    def start_fails(self, pattern=None, timeout=20):
        """Starts facteurd on a configuration it must refuse: it must
        exit with a non-zero status within timeout (else it is stopped
        and the test fails). Returns its stderr, which must match
        pattern (a regex) when one is given."""
        self.spawn()
        self.expect_exit = True
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("facteurd started on a configuration it "
                                 "must refuse\n" + self.diagnostics())
        text = tail(self.stderr_path, 1 << 20)
        assert rc != 0, "facteurd exited with status 0\n" + text
        if pattern is not None:
            assert re.search(pattern, text), text
        return text

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def kill(self):
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.killed = True
        LIVE.discard(self.proc)

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_TIMEOUT. Returns the exit status
        and whether SIGKILL was needed."""
        if not self.proc:
            return None, False
        forced = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                forced = True
                self.proc.kill()
                self.proc.wait()
        # Anything left in the process group (a helper process, if any).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError as e:
            if e.errno not in (errno.ESRCH, errno.EPERM):
                raise
        LIVE.discard(self.proc)
        return self.proc.returncode, forced

    def sanitizer_report(self):
        text = tail(self.stderr_path, 200000)
        for pat in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                    "runtime error:", "ThreadSanitizer"):
            i = text.find(pat)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    # -- talking to it
    def connect(self, source=None, banner=True, port=None):
        c = SMTPConn(self.host, port or self.port, source=source)
        if banner:
            check(c.reply(), 220)
        return c

    def session(self, source=None, helo="client.test"):
        c = self.connect(source=source)
        check(c.cmd("EHLO " + helo), 250)
        return c

    def send(self, sender, rcpts, msg, source=None):
        """One transaction in a fresh session; returns the queue ID.
        Asserts every step succeeds."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        with self.session(source=source) as c:
            check(c.cmd("MAIL FROM:<%s>" % sender), 250, "2.1.0")
            for r in rcpts:
                check(c.cmd("RCPT TO:<%s>" % r), 250, "2.1.5")
            check(c.cmd("DATA"), 354)
            c.send(dot_stuff(msg))
            r = check(c.reply(), 250, "2.0.0", r"queued as")
            qid = queue_id_of(r)
            check(c.cmd("QUIT"), 221, "2.0.0")
            return qid

    # -- reading results
    def files(self, addr):
        return maildir_files(self.mail, addr)

    def delivered(self, addr):
        return [Delivered(p) for p in self.files(addr)]

    def wait_files(self, addr, n, timeout=DELIVERY_TIMEOUT):
        deadline = time.time() + timeout
        while True:
            files = self.files(addr)
            if len(files) >= n or time.time() > deadline:
                break
            time.sleep(0.02)
        assert len(files) >= n, ("%s: %d file(s) delivered, expected %d "
                                 "within %ss\n%s" % (addr, len(files), n,
                                                     timeout,
                                                     self.diagnostics()))
        return [Delivered(p) for p in files]

    def delivered_msgid(self, addr, msgid):
        """The files delivered to addr so far whose Message-ID is msgid."""
        return [d for d in self.delivered(addr)
                if d.header("Message-ID") == msgid]

    def wait_msgid(self, addr, msgid, timeout=DELIVERY_TIMEOUT):
        """The delivered file(s) of addr whose Message-ID is msgid."""
        deadline = time.time() + timeout
        while True:
            found = self.delivered_msgid(addr, msgid)
            if found or time.time() > deadline:
                break
            time.sleep(0.02)
        assert found, ("%s: message %s not delivered within %ss\n%s"
                       % (addr, msgid, timeout, self.diagnostics()))
        return found

    def log(self):
        try:
            with open(self.maillog, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, regex, timeout=DELIVERY_TIMEOUT):
        rx = re.compile(regex, re.M)
        deadline = time.time() + timeout
        while True:
            text = self.log()
            m = rx.search(text)
            if m or time.time() > deadline:
                break
            time.sleep(0.02)
        assert m, "no log line matching /%s/ within %ss\n%s" % (
            regex, timeout, tail(self.maillog))
        return m

    def queue_files(self, states=("incoming", "active", "deferred", "hold")):
        out = []
        for st in states:
            d = os.path.join(self.queue, st)
            try:
                for dirpath, _, names in os.walk(d):
                    out.extend(os.path.join(dirpath, n) for n in names)
            except FileNotFoundError:
                pass
        return out

    def wait_queue_empty(self, states=("active", "deferred"), timeout=30):
        deadline = time.time() + timeout
        while True:
            left = self.queue_files(states)
            if not left or time.time() > deadline:
                return left
            time.sleep(0.05)

    def cli(self, *args, timeout=20):
        exe = bin_path("facteur")
        assert os.access(exe, os.X_OK), "facteur CLI not built: %s" % exe
        return subprocess.run([exe, "-c", self.confdir] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, cwd=self.root)


class Pool:
    """The daemons of one fixture; close() stops them and reports problems."""

    def __init__(self, base):
        self.base = base
        self.daemons = []

    def new(self, start=True, **kw):
        root = os.path.join(str(self.base), "d%d" % len(self.daemons))
        d = Daemon(root, **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def close(self):
        problems = []
        for d in self.daemons:
            if d.proc is None:
                continue
            mine = []
            was_running = d.proc.poll() is None
            rc, forced = d.stop()
            if was_running and not d.killed:
                if forced:
                    mine.append("facteurd (pid %d) ignored SIGTERM for %ss"
                                % (d.pid, STOP_TIMEOUT))
                elif rc != 0:
                    mine.append("facteurd (pid %d) exited %s on SIGTERM"
                                % (d.pid, rc))
            elif not was_running and not d.killed and not d.expect_exit:
                mine.append("facteurd (pid %d) died during the test, status %s"
                            % (d.pid, rc))
            rep = d.sanitizer_report()
            if rep:
                mine.append("sanitizer report in %s:\n%s"
                            % (d.stderr_path, rep))
            if mine:
                problems += mine + [d.diagnostics()]
        if not problems and not os.environ.get("FACTEUR_TEST_KEEP"):
            for d in self.daemons:
                if d.link:
                    shutil.rmtree(d.root, ignore_errors=True)
        return problems
