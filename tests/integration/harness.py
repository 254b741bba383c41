"""Shared helpers for forkd's integration tests.

Every test starts the real forkd binary on a free loopback port with its own
configuration file and log files in a temporary folder, and talks to it over
real sockets. Nothing here knows forkd's internals.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
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
# What the primary logs when one of its workers died by a signal (at level
# error when it respawns the worker, info during a stop).
WORKER_SIGNALLED = re.compile(r"worker (\d+) \(slot (\d+)\) exited: signal (\d+)")


def need_tool(name, package):
    """The path of the program name, which the Debian package package (listed
    in scripts/deps) installs. A missing one fails the test instead of
    skipping it: scripts/deps install all should have installed it."""
    path = shutil.which(name) or next(
        (os.path.join(d, name) for d in ("/usr/sbin", "/sbin")
         if os.access(os.path.join(d, name), os.X_OK)), None)
    if not path:
        raise AssertionError("%s is missing: the Debian package %s is in scripts/deps; run "
                             "`bash scripts/deps install all`" % (name, package))
    return path


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

    # Class-level defaults, so that a bare Server (made with __new__ and a
    # port, as a light client handle) still connects and checks.
    host = "127.0.0.1"
    allowed_worker_signals = frozenset()

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
        # The address tests connect to: 127.0.0.1, or the host and port of a
        # listen the test gave ("[::1]:PORT" makes them ::1 and PORT).
        host, _, port = base["server"]["listen"].rpartition(":")
        host = host.strip("[]")
        self.host = host if host not in ("", "0.0.0.0", "*", "::") else "127.0.0.1"
        if port.isdigit():
            self.port = int(port)
        self.write_conf()
        self.args = args or []
        self.env = env
        self.proc = None
        self.stderr_text = b""
        self.checked = False
        # Signals a worker may die by in this test without failing it: a test
        # that kills a worker on purpose (or makes forkd kill one) says so
        # with expect_worker_signals().
        self.allowed_worker_signals = set()

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
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def expect_worker_signals(self, *sigs):
        """Declares that workers may die by sigs in this test (it kills them
        on purpose, or makes forkd's watchdog do it); any other signal a
        worker dies by fails the test when the server stops."""
        self.allowed_worker_signals = set(self.allowed_worker_signals) | {int(s) for s in sigs}

    def worker_signal_deaths(self):
        """[(pid, slot, signal)] for every worker the log says died by a signal."""
        text = self.log() + self.stderr_text.decode(errors="replace")
        return [(int(m.group(1)), int(m.group(2)), int(m.group(3)))
                for m in WORKER_SIGNALLED.finditer(text)]

    def problems(self):
        """What went wrong so far, as text (empty when nothing did): a
        sanitizer report on forkd's stderr, or a worker that died by a signal
        the test did not declare. Reads what stderr holds now without waiting."""
        if self.proc and self.proc.stderr and not self.proc.stderr.closed:
            self.stderr_text = self.stderr_text + drain(self.proc.stderr)
        out = []
        report = SANITIZER_REPORT.search(self.stderr_text)
        if report:
            out.append("a sanitizer report on stderr:\n" +
                       self.stderr_text[max(0, report.start() - 2000):][:20000].decode(
                           errors="replace"))
        for pid, slot, sig in self.worker_signal_deaths():
            if sig not in self.allowed_worker_signals:
                out.append("worker %d (slot %d) died by signal %d (%s), which the test did "
                           "not send" % (pid, slot, sig, signal.Signals(sig).name
                                         if sig in signal.Signals._value2member_map_ else "?"))
        return "\n".join(out)

    def assert_healthy(self):
        """Fails now on a sanitizer report or a worker killed by a signal the
        test did not declare (the same check stop() makes at the end)."""
        found = self.problems()
        if found:
            raise AssertionError("forkd: %s\nlog:\n%s" % (found, self.log()[-5000:]))

    def workers(self):
        """The pids of forkd's worker processes (the primary's children) now."""
        return children(self.proc.pid)

    def stop_timeout(self):
        """How long a graceful stop may take by forkd's own rules: its
        graceful_timeout (default 30 s), after which it kills what is left,
        plus STOP_WAIT for the machine to be slow. Waiting longer than this
        means the stop hung."""
        text = str(self.sections.get("server", {}).get("graceful_timeout", "30")).strip()
        m = re.match(r"^([0-9.]+)\s*(us|ms|s|m|h)?$", text)
        scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
        graceful = float(m.group(1)) * scale[m.group(2) or "s"] if m else 3600.0
        return graceful + STOP_WAIT

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Stops forkd with sig and returns its exit code. Raises
        AssertionError when forkd crashed, a worker died by a signal the test
        did not declare, a sanitizer reported an error (its stderr is kept in
        self.stderr_text), a stop did not end within timeout (default: the
        stop's own bound, stop_timeout()), or a TERM, INT or QUIT stop of a
        running forkd ended with a status other than 0."""
        if self.proc is None:
            return None
        hung = False
        sent = False
        if timeout is None:
            timeout = self.stop_timeout()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            sent = True
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                hung = True
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr and not self.proc.stderr.closed:
            self.stderr_text = self.stderr_text + drain(self.proc.stderr)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        if not self.checked:
            self.checked = True
            self.check_clean_exit(sig, hung, timeout, sent)
        return self.proc.returncode

    def check_clean_exit(self, sig, hung=False, timeout=None, sent=False):
        """Fails on a sanitizer report in stderr, a crash signal forkd was not
        sent, a worker that died by a signal the test did not declare, a stop
        that hung, or a stop signal answered with a non-zero status."""
        code = self.proc.returncode
        crashed = code is not None and code < 0 and -code in CRASH_SIGNALS and -code != sig
        found = self.problems()
        if hung:
            found = ("the stop with signal %d did not end within %.0f s; forkd was killed\n"
                     % (sig, timeout)) + found
        elif sent and sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT) and code != 0:
            found = ("the stop with signal %d ended with status %s instead of 0\n"
                     % (sig, code)) + found
        if crashed:
            found = "forkd crashed (exit %s)\n" % code + found
        if found:
            raise AssertionError("%s\nstderr:\n%s\nlog:\n%s" % (
                found, self.stderr_text[-20000:].decode(errors="replace"),
                self.log()[-5000:]))

    def in_flight(self):
        """Requests being served now by all workers, not counting the GET
        /metrics that asks (it is in flight itself while it renders); -1 when
        /metrics did not answer within a second (say the connection landed on
        a worker whose loop a test blocked: the next try hashes elsewhere).
        The gauge is written when a request starts and ends, not on a timer."""
        try:
            status, _, body = self.request("GET", "/metrics", timeout=1)
        except OSError:
            return -1
        if status != 200:
            raise AssertionError("GET /metrics answered %d" % status)
        found = re.findall(r"^forkd_requests_in_flight\{[^}]*\} (\d+)$", body.decode(), re.M)
        return sum(int(v) for v in found) - 1

    def wait_in_flight(self, n, timeout=START_WAIT):
        """Waits until at least n requests are in flight: forkd has read and
        dispatched them (used instead of sleeping before a signal)."""
        if not wait_for(lambda: self.in_flight() >= n, timeout):
            raise AssertionError("%d request(s) never became in flight; log:\n%s" % (
                n, self.log()[-3000:]))

    def log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def connect(self, timeout=10):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def http(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

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


def tcp_server_rows(port):
    """The kernel's rows (/proc/net/tcp and tcp6) of the TCP sockets whose
    local port is port, as split fields: [1] local and [2] remote address,
    [3] state ("01" established, "08" close-wait, "0A" listen), [4]
    "tx_queue:rx_queue" in hex, [9] the inode (0 once no process holds it)."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        out += [r for r in (row.split() for row in rows)
                if int(r[1].rsplit(":", 1)[1], 16) == port]
    return out


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


class CaseResult(unittest.TextTestResult):
    """unittest's verbose result that also keeps every test's outcome by id
    (a test with a failing subtest counts as failed once)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}   # id -> "passed" | "failed" | "skipped"
        self.reasons = {}    # id -> why it was skipped

    def mark(self, test, outcome):
        key = getattr(test, "test_case", test).id()
        if self.outcomes.get(key) == "failed":
            return
        self.outcomes[key] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self.mark(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.mark(test, "failed")

    def addError(self, test, err):
        super().addError(test, err)
        # An error in setUpClass or tearDownClass comes as a holder named
        # after the class; it counts as one failure of its own.
        self.mark(test, "failed")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.mark(test, "failed")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.mark(test, "skipped")
        self.reasons[getattr(test, "test_case", test).id()] = reason

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.mark(test, "passed")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.mark(test, "failed")


def summarize(result):
    """{"passed": n, "failed": n, "skipped": [[id, reason]...], "failures": [id...]}"""
    by = {"passed": [], "failed": [], "skipped": []}
    for key, outcome in sorted(result.outcomes.items()):
        by[outcome].append(key)
    return {"passed": len(by["passed"]), "failed": len(by["failed"]),
            "skipped": [[k, result.reasons.get(k, "")] for k in by["skipped"]],
            "failures": by["failed"]}


def main():
    """Runs the file's tests verbosely. Prints `N passed, N failed, N
    skipped` (counted per test method), and writes the same as JSON to
    $FORKD_TEST_CASES/$FORKD_TEST_NAME.json when both are set (.ci/run
    counts from there). Exits 1 on a failure, 77 (meson's SKIP) when tests
    were skipped and none passed, else 0."""
    runner = unittest.TextTestRunner(verbosity=2, resultclass=CaseResult)
    prog = unittest.main(verbosity=2, testRunner=runner, exit=False)
    summary = summarize(prog.result)
    print("%d passed, %d failed, %d skipped" % (
        summary["passed"], summary["failed"], len(summary["skipped"])))
    for key, reason in summary["skipped"]:
        print("skipped: %s: %s" % (key, reason))
    where, name = os.environ.get("FORKD_TEST_CASES"), os.environ.get("FORKD_TEST_NAME")
    if where and name:
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, name + ".json"), "w") as f:
            json.dump(summary, f)
    if summary["failed"] or not prog.result.wasSuccessful():
        sys.exit(1)
    if summary["skipped"] and not summary["passed"]:
        sys.exit(77)
    sys.exit(0)
