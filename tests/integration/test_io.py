"""Socket I/O against the real binary, batched through io_uring and not.

[server] io_uring (default on) makes each worker hand a loop iteration's
socket reads and writes to the kernel together (src/conn_batch.c,
src/uring.c); off, or where the kernel refuses io_uring, every read and write
is its own system call. These tests check that each worker says which way it
does I/O and holds a ring exactly when it says so, and run the same traffic
through both ways: long keep-alive, deep pipelining, a response far larger
than the socket buffers read by a slow client, an upload in pieces, many
concurrent connections, more ready connections than a batch has slots, and
malformed input.
"""
import ctypes
import os
import re
import socket
import threading
import time
import unittest

import harness
from harness import Server, fd_links
from test_core import HELLO, JSON_HELLO, Checks, Client, compact, exchange, post_json, request

BATCHED = "socket I/O: batched through io_uring, up to 64 reads and 64 writes per system call"
PLAIN = "socket I/O: one system call per read and write ([server] io_uring = off)"
UNAVAILABLE = "socket I/O: io_uring unavailable ("
RING = "anon_inode:[io_uring]"
IO_URING_DISABLED = "/proc/sys/kernel/io_uring_disabled"
# conn_batch.c's slots per loop iteration: more ready connections than this
# take the plain system call path for the rest.
SLOTS = 64


def kernel_io_uring():
    """None when this process may set up an io_uring (probed with the raw
    io_uring_setup system call, independently of forkd), else the reason."""
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    fd = libc.syscall(425, 2, params)  # __NR_io_uring_setup (the common syscall table)
    if fd < 0:
        return "io_uring_setup: " + os.strerror(ctypes.get_errno())
    os.close(fd)
    return None


def rings(pid):
    """How many io_uring instances pid holds open."""
    return fd_links(pid).count(RING)


def ring_submissions(pid):
    """How many operations pid's io_uring has taken so far (SqHead in its
    /proc/PID/fdinfo entry), or None when the kernel does not show it."""
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != RING:
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                m = re.search(r"^SqHead:\s*(\d+)$", f.read(), re.M)
        except OSError:
            continue
        return int(m.group(1)) if m else None
    return None


def worker_line(server, pid, level, text):
    """Whether worker pid logged text at level ("[info] PID#SLOT: text")."""
    pattern = r"^\S+ \[%s\] %d#\d+: %s" % (level, pid, re.escape(text))
    return re.search(pattern, server.log(), re.M) is not None


def tcp_max(name):
    """The largest size TCP autotuning gives a socket buffer (tcp_wmem / tcp_rmem)."""
    with open("/proc/sys/net/ipv4/" + name) as f:
        return int(f.read().split()[2])


class SmallWindowClient(Client):
    """A Client whose receive buffer is set small before it connects, so the
    window it offers stays small and the server's writes back up."""

    def __init__(self, server, rcvbuf, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", server.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""


class ModeTest(unittest.TestCase):
    """Which way each worker does socket I/O, as logged and as held."""

    WORKERS = 2

    def start(self, sections=None):
        server = Server(sections, workers=self.WORKERS).start()
        self.addCleanup(server.stop)
        pids = server.workers()
        self.assertEqual(len(pids), self.WORKERS)
        return server, pids

    def assert_serves(self, server):
        status, _, body = server.request("GET", "/hello")
        self.assertEqual((status, body), (200, HELLO))

    def test_on_by_default(self):
        unavailable = kernel_io_uring()
        if unavailable:
            self.skipTest("no io_uring on this machine (%s)" % unavailable)
        server, pids = self.start()
        for pid in pids:
            with self.subTest(worker=pid):
                self.assertTrue(worker_line(server, pid, "info", BATCHED), server.log())
                self.assertEqual(rings(pid), 1, fd_links(pid))
        self.assertNotIn(PLAIN, server.log())
        self.assertNotIn(UNAVAILABLE, server.log())
        self.assert_serves(server)

    def test_off(self):
        server, pids = self.start({"server": {"io_uring": "off"}})
        for pid in pids:
            with self.subTest(worker=pid):
                self.assertTrue(worker_line(server, pid, "info", PLAIN), server.log())
                self.assertEqual(rings(pid), 0, fd_links(pid))
        self.assertNotIn(BATCHED, server.log())
        self.assertNotIn(UNAVAILABLE, server.log())
        self.assert_serves(server)

    def test_unavailable_falls_back_to_plain_calls(self):
        """kernel.io_uring_disabled = 2 while forkd starts: io_uring_setup
        fails for everyone, so each worker warns and does plain I/O. The old
        value is back as soon as forkd is up (the setting is machine-wide)."""
        if not os.path.exists(IO_URING_DISABLED):
            self.skipTest("%s does not exist (kernel older than 6.6)" % IO_URING_DISABLED)
        if not os.access(IO_URING_DISABLED, os.W_OK):
            self.skipTest("%s is not writable (needs root outside a container)"
                          % IO_URING_DISABLED)
        with open(IO_URING_DISABLED) as f:
            old = f.read().strip()
        server = Server(workers=self.WORKERS)
        self.addCleanup(server.stop)
        try:
            with open(IO_URING_DISABLED, "w") as f:
                f.write("2")
        except OSError as e:
            self.skipTest("cannot write %s: %s" % (IO_URING_DISABLED, e))
        try:
            server.start()
        finally:
            with open(IO_URING_DISABLED, "w") as f:
                f.write(old)
        pids = server.workers()
        self.assertEqual(len(pids), self.WORKERS)
        for pid in pids:
            with self.subTest(worker=pid):
                self.assertTrue(worker_line(server, pid, "warn", UNAVAILABLE), server.log())
                self.assertEqual(rings(pid), 0, fd_links(pid))
        self.assertNotIn(BATCHED, server.log())
        self.assert_serves(server)


class Traffic(Checks):
    """The same traffic for both ways of doing I/O; a subclass sets the way
    (SECTIONS) and the line its worker must have logged (MODE_LINE)."""

    WORKERS = 1  # every connection through one loop: the largest batches
    MODE_LINE = None
    # The large-response test needs bodies well beyond the default 1m.
    MAX_BODY = 32 << 20

    @classmethod
    def sections(cls, io_uring):
        return {"server": {"io_uring": io_uring},
                "http": {"max_body_size": str(cls.MAX_BODY)},
                "example": {"debug_routes": "on"}}  # GET /debug/block

    def test_runs_in_its_mode(self):
        """The traffic below really goes the way this class names."""
        unavailable = self.MODE_LINE == BATCHED and kernel_io_uring()
        if unavailable:
            self.skipTest("no io_uring on this machine (%s)" % unavailable)
        (pid,) = self.server.workers()
        self.assertTrue(worker_line(self.server, pid, "info", self.MODE_LINE),
                        self.server.log())
        self.assertEqual(rings(pid), 1 if self.MODE_LINE == BATCHED else 0)
        if self.MODE_LINE != BATCHED:
            return
        # The ring carries the requests' reads and writes: at least one
        # operation each (a read and a write each, in fact).
        before = ring_submissions(pid)
        if before is None:
            self.skipTest("this kernel's fdinfo shows no SqHead for io_uring")
        with Client(self.server) as c:
            for _ in range(10):
                c.send(request("GET", "/hello"))
                self.assertEqual(c.response().body, HELLO)
        self.assertGreaterEqual(ring_submissions(pid) - before, 10)

    def test_200_keep_alive_requests_on_one_connection(self):
        with Client(self.server) as c:
            for i in range(200):
                kind = i % 3
                if kind == 0:
                    c.send(request("GET", "/hello"))
                    body = HELLO
                elif kind == 1:
                    c.send(request("GET", "/json"))
                    body = JSON_HELLO
                else:
                    c.send(post_json("/echo", {"i": i}))
                    body = compact({"i": i})
                r = c.response()
                self.assertEqual((r.status, r.body), (200, body), i)
                self.assertNotIn("connection", r.h, i)
            self.assertFalse(c.closed(timeout=0.2))

    def test_64_pipelined_requests_in_one_write(self):
        data = b""
        expected = []
        for i in range(64):
            if i % 2:
                data += request("GET", "/hello?i=%d" % i)
                expected.append(HELLO)
            else:
                data += post_json("/echo", {"n": i})
                expected.append(compact({"n": i}))
        with Client(self.server) as c:
            c.send(data)
            for i, body in enumerate(expected):
                r = c.response()
                self.assert_common(r)
                self.assertEqual((r.status, r.body), (200, body), i)
            # Nothing more came, and the connection still serves.
            c.send(request("GET", "/hello"))
            self.assertEqual(c.response().body, HELLO)
            self.assertEqual(c.buf, b"")

    def test_response_larger_than_the_socket_buffers_to_a_slow_reader(self):
        """An echo bigger than everything the kernel can buffer between the
        two ends, so most of it waits in forkd and goes out in many partial
        writes as the client, sleeping between small reads, makes room."""
        rcvbuf = 32 << 10
        size = tcp_max("tcp_wmem") + 4 * rcvbuf + (1 << 20)
        self.assertLess(size, self.MAX_BODY)
        filler = bytes(ord("a") + i % 26 for i in range(4096)).decode()
        obj = {"big": (filler * (size // len(filler) + 1))[:size]}
        body = compact(obj)
        with SmallWindowClient(self.server, rcvbuf) as c:
            c.send(post_json("/echo", body))
            # Slow: small reads with a pause after each, until the whole
            # response (its head says how long) is in.
            want = None
            while want is None or len(c.buf) < want:
                chunk = c.sock.recv(8192)
                if not chunk:
                    self.fail("closed after %d bytes" % len(c.buf))
                c.buf += chunk
                time.sleep(0.001)
                if want is None and b"\r\n\r\n" in c.buf:
                    head = c.buf.partition(b"\r\n\r\n")[0]
                    m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
                    self.assertIsNotNone(m, head)
                    want = len(head) + 4 + int(m.group(1))
            r = c.response()
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), len(body))
            self.assertTrue(r.body == body, "echoed body differs")
            self.assertEqual(c.buf, b"")
            # Still in step afterwards.
            c.send(request("GET", "/hello"))
            self.assertEqual(c.response().body, HELLO)

    def test_upload_in_pieces_echoed_intact(self):
        """About 1 MiB of body arriving in pieces of odd sizes, across
        many reads (and read slots)."""
        text = "".join("%07d," % i for i in range(131072))  # 1 MiB, no repeats
        body = compact({"up": text})
        data = post_json("/echo", body)
        sizes = [1, 7, 100, 4093, 16384, 16385, 65536, 3]
        pieces, at, k = [], 0, 0
        while at < len(data):
            pieces.append(data[at:at + sizes[k % len(sizes)]])
            at += len(pieces[-1])
            k += 1
        with Client(self.server) as c:
            for i, piece in enumerate(pieces):
                c.send(piece)
                if i % 8 == 0:
                    time.sleep(0.001)  # let forkd read what came so far
            r = c.response()
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), len(body))
            self.assertTrue(r.body == body, "echoed body differs")
            c.send(request("GET", "/hello"))
            self.assertEqual(c.response().body, HELLO)

    def run_clients(self, count, work):
        """work(index) in count threads at once; returns their failures."""
        failures = []
        lock = threading.Lock()
        start = threading.Barrier(count)

        def client(index):
            try:
                start.wait(timeout=30)
                work(index)
            except Exception as e:  # reported below, with the client's index
                with lock:
                    failures.append("client %d: %r" % (index, e))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse([t for t in threads if t.is_alive()], "clients still running")
        return failures

    def test_50_concurrent_connections_20_requests_each(self):
        """Every answer goes to its own connection: each echo is unique."""
        def work(index):
            with Client(self.server) as c:
                for i in range(20):
                    if i % 2:
                        c.send(request("GET", "/hello"))
                        body = HELLO
                    else:
                        c.send(post_json("/echo", {"client": index, "i": i}))
                        body = compact({"client": index, "i": i})
                    r = c.response()
                    if (r.status, r.body) != (200, body):
                        raise AssertionError("request %d: %r" % (i, r))

        self.assertEqual(self.run_clients(50, work), [])
        self.assertEqual(exchange(self.server, request("GET", "/hello")).body, HELLO)

    def test_more_ready_connections_than_slots(self):
        """Six times as many connections as a batch has slots become
        readable while the worker's loop is held up (GET /debug/block), so
        the next iterations find far more ready than a batch holds: the
        reads and answers beyond the slots take the other way. (libev's
        epoll takes at most 64 events per poll at first and raises that
        only after a poll filled it: several times the slots are needed for
        one iteration to see more than the reads and writes a batch holds.) Each connection gets its own answer."""
        count = 6 * SLOTS
        clients = []
        try:
            for _ in range(count):
                clients.append(Client(self.server))
            # Every connection accepted and idle before the burst.
            for c in clients:
                c.send(request("GET", "/hello"))
                self.assertEqual(c.response().body, HELLO)
            with Client(self.server) as blocker:
                blocker.send(request("GET", "/debug/block?ms=500"))
                for i, c in enumerate(clients):
                    c.send(post_json("/echo", {"conn": i}))
                for i, c in enumerate(clients):
                    r = c.response()
                    self.assertEqual((r.status, r.body), (200, compact({"conn": i})), i)
                self.assertEqual(blocker.response().body, b'{"blocked_ms":500}')
        finally:
            for c in clients:
                c.close()

    def test_malformed_request_gets_400_and_close(self):
        # Alone, and behind a good request on a kept-alive connection.
        self.assert_refused(b"GET /hello HTTP/1.1\r\nHost x\r\n\r\n", 400)
        with Client(self.server) as c:
            c.send(request("GET", "/hello") + b"GARBAGE\r\n\r\n" + request("GET", "/json"))
            self.assertEqual(c.response().body, HELLO)
            r = c.response()
            self.assert_error(r, 400)
            self.assertEqual(r.h.get("connection"), "close")
            self.assertTrue(c.closed())
        # The server goes on serving.
        self.assertEqual(exchange(self.server, request("GET", "/hello")).body, HELLO)


class TrafficWithIoUring(Traffic, harness.ServerCase):
    SECTIONS = Traffic.sections("on")
    MODE_LINE = BATCHED


class TrafficWithoutIoUring(Traffic, harness.ServerCase):
    SECTIONS = Traffic.sections("off")
    MODE_LINE = PLAIN


if __name__ == "__main__":
    harness.main()
