"""Shared helpers for forkd's integration tests.

Every test starts the real forkd binary on a free loopback port with its own
configuration file and log files in a temporary folder, and talks to it over
real sockets. Nothing here knows forkd's internals.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

ROOT = os.environ.get("FORKD_SOURCE_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("FORKD_BIN") or os.path.join(ROOT, "build", "forkd")
# The app every test server loads unless a test says otherwise: the example
# module built beside the binary.
APP = os.environ.get("FORKD_APP") or os.path.join(os.path.dirname(BIN), "routes", "example.so")

# How long to wait for the server to come up or go down. These are bounds on
# waiting, not assertions about speed: a slow machine only makes tests wait.
START_WAIT = 20.0
STOP_WAIT = 60.0

# What AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer print
# when they find something; forkd's stderr is searched for it on every stop,
# so a sanitizer build fails any test whose server misbehaved.
SANITIZER_REPORT = re.compile(
    rb"ERROR: (?:Address|Leak|UndefinedBehavior|Memory|Thread)Sanitizer|runtime error:")
# What the primary logs once every worker it started says it is ready.
READY_LINE = "forkd ready:"
# Signals that mean forkd crashed, unless the test sent them itself.
CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGILL)


def asan_build():
    """Whether the forkd under test was built with AddressSanitizer."""
    try:
        with open(BIN, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=START_WAIT, interval=0.02):
    """Polls predicate until it is true or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class Server:
    """A forkd process with its own config, logs and port.

    sections: {"http": {"keepalive_timeout": "5"}, ...} merged over the
    defaults the tests need (loopback listen, logs in the temp folder).
    """

    def __init__(self, sections=None, workers=1, args=None, env=None, wrapper=None):
        # a command forkd runs under, such as ["prlimit", "--nofile=64:64", "--"]
        self.wrapper = list(wrapper or [])
        self.bin = BIN  # another binary (an installed forkd, an app's own) may be set
        self.dir = tempfile.mkdtemp(prefix="forkd-test-")
        self.port = free_port()
        self.error_log = os.path.join(self.dir, "error.log")
        self.access_log = os.path.join(self.dir, "access.log")
        self.pidfile = os.path.join(self.dir, "forkd.pid")
        self.conf = os.path.join(self.dir, "forkd.conf")
        base = {
            "server": {"listen": "127.0.0.1:%d" % self.port, "workers": str(workers),
                       "pidfile": self.pidfile},
            "log": {"error_log": self.error_log, "level": "info"},
            "app": {"module": APP},
        }
        # FORKD_TEST_IO_URING=off runs a whole test file on plain system
        # calls (meson registers the protocol-heavy files a second time so).
        if os.environ.get("FORKD_TEST_IO_URING"):
            base["server"]["io_uring"] = os.environ["FORKD_TEST_IO_URING"]
        for section, keys in (sections or {}).items():
            base.setdefault(section, {}).update(keys)
        self.sections = base
        self.write_conf()
        self.args = args or []
        self.env = env
        self.proc = None
        self.stderr_text = b""
        self.checked = False

    def write_conf(self, sections=None, raw=None):
        """Writes the config file (raw text replaces it entirely)."""
        if sections is not None:
            self.sections = sections
        with open(self.conf, "w") as f:
            if raw is not None:
                f.write(raw)
                return
            for section, keys in self.sections.items():
                f.write("[%s]\n" % section)
                for k, v in keys.items():
                    f.write("%s = %s\n" % (k, v))

    def start(self, wait=True):
        env = dict(os.environ)
        env.update(self.env or {})
        self.stderr_text = b""
        self.checked = False
        self.ready_lines = self.log().count(READY_LINE)
        self.proc = subprocess.Popen(self.wrapper + [self.bin, "-c", self.conf] + self.args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=self.dir)
        if wait and not wait_for(self.ready):
            self.stop(signal.SIGKILL)
            raise RuntimeError("forkd did not start; log:\n" + self.log() +
                               self.stderr_text.decode(errors="replace"))
        return self

    def ready(self):
        """Accepting, and every worker up: the primary logs READY_LINE (at
        level info) once all have said ready. Checked when the error log is
        the test's file and shows info lines."""
        if not self.accepting():
            return False
        log = self.sections.get("log", {})
        if log.get("error_log") != self.error_log or log.get("level", "info") not in (
                "debug", "info"):
            return True
        return self.log().count(READY_LINE) > self.ready_lines

    def accepting(self):
        if self.proc.poll() is not None:
            raise RuntimeError("forkd exited with %s: %s" % (
                self.proc.returncode, self.proc.stderr.read().decode(errors="replace")))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def workers(self):
        """The pids of forkd's worker processes (the primary's children) now."""
        return children(self.proc.pid)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_WAIT):
        """Stops forkd with sig and returns its exit code. Raises
        AssertionError when forkd crashed or a sanitizer reported an error
        (its stderr is kept in self.stderr_text)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr and not self.proc.stderr.closed:
            self.stderr_text = self.stderr_text + drain(self.proc.stderr)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        if not self.checked:
            self.checked = True
            self.check_clean_exit(sig)
        return self.proc.returncode

    def check_clean_exit(self, sig):
        """Fails on a sanitizer report in stderr or a crash signal forkd was not sent."""
        code = self.proc.returncode
        report = SANITIZER_REPORT.search(self.stderr_text)
        crashed = code is not None and code < 0 and -code in CRASH_SIGNALS and -code != sig
        if report or crashed:
            raise AssertionError("forkd %s (exit %s); stderr:\n%s" % (
                "reported a sanitizer error" if report else "crashed", code,
                self.stderr_text[-20000:].decode(errors="replace")))

    def log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def http(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """One request on a new connection: (status, headers dict, body bytes)."""
        conn = self.http(timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method, path, obj=None, headers=None):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        body = None if obj is None else json.dumps(obj).encode()
        status, hdrs, data = self.request(method, path, body, h)
        return status, hdrs, (json.loads(data) if data else None)

    def raw(self, data, timeout=5, chunks=None):
        """Sends data (optionally split into chunks, one send each) and reads
        until the server closes or timeout passes; returns (bytes, closed)."""
        with self.connect(timeout) as s:
            parts = chunks if chunks is not None else [data]
            try:
                for part in parts:
                    s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return read_all(s, timeout)


def children(pid):
    """The pids whose parent is pid, read from /proc (zombies excluded)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(name))
    return sorted(out)


def fd_links(pid):
    """What each open file descriptor of pid links to in /proc/PID/fd
    ("socket:[123]", "anon_inode:[eventfd]", a path); fds that close while
    being listed are left out."""
    out = []
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            out.append(os.readlink(os.path.join(fd_dir, fd)))
        except OSError:
            continue
    return out


def drain(stream):
    """What a pipe from forkd holds now, without waiting: worker processes
    that outlive the primary may keep it open, so reading to EOF could hang."""
    fd = stream.fileno()
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def read_all(sock, timeout=5):
    """Reads until EOF or timeout; returns (bytes, closed_by_peer)."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            return out, True
        if not chunk:
            return out, True
        out += chunk


def recv_upto(sock, n):
    """Reads until n bytes came or the peer closed; returns how many came."""
    got = 0
    while got < n:
        chunk = sock.recv(n - got)
        if not chunk:
            break
        got += len(chunk)
    return got


def parse_responses(data):
    """Splits a byte stream into responses: [(status, headers, body)].
    headers is a list of (lower-case name, value). Handles Content-Length,
    chunked and bodiless responses (to HEAD the caller must strip bodies)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("incomplete head: %r" % data[:200])
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", lines[0] + b" ")
        if not m:
            raise ValueError("bad status line: %r" % lines[0])
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.decode().lower(), value.strip().decode()))
        h = dict(headers)
        if "content-length" in h:
            n = int(h["content-length"])
            body, data = rest[:n], rest[n:]
        elif h.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    _, _, rest = rest.partition(b"\r\n")
                    break
                body += rest[:size]
                rest = rest[size + 2:]
            data = rest
        else:
            body, data = rest, b""
        out.append((status, headers, body))
    return out


class ServerCase(unittest.TestCase):
    """A test class sharing one forkd started with SECTIONS and WORKERS."""

    SECTIONS = None
    WORKERS = 1

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.SECTIONS, workers=cls.WORKERS).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()


def main():
    unittest.main(verbosity=2)
