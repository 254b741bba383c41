"""Timeouts, connection limits and load faults, against the real binary.

Every test runs on 127.0.0.1, is bounded in connections and time, and uses
short timeouts so that it is quick. Nothing here asserts how fast forkd is:
waiting has generous bounds, and what is asserted is what happened (a 408,
a closed connection, a 200, memory that did not grow, CPU time that stayed
low while accepting failed).
"""
import os
import resource
import select
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HELLO = b"Hello World!"
GET_HELLO = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def worker_pids(server):
    """The worker processes of server: the primary's children (waiting a
    little for them, as the primary listens before its workers run), or the
    primary itself when it serves in-process."""
    kids = harness.wait_for(lambda: children(server.proc.pid), timeout=5)
    return kids or [server.proc.pid]


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(entry))
    return sorted(kids)


def sockets_of(pid):
    """How many sockets pid holds open."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                n += 1
        except FileNotFoundError:
            pass
    return n


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User plus system CPU time pid (all its threads) has used."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


_pending = {}


def response_of(sock, timeout=10):
    """Reads one complete response (Content-Length framed) from sock;
    bytes of the responses after it are kept for the next call."""
    sock.settimeout(timeout)
    data = _pending.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response: %r" % data)
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        body += chunk
    if len(body) > length:
        _pending[sock] = body[length:]
    return int(head.split(b" ")[1]), head, body[:length]


def server_side_open(server, sock):
    """Whether forkd still holds its end of sock's connection open
    (established, or waiting to close after the client did), from
    /proc/net/tcp: a reset or closed server end is gone from that state."""
    client_port = sock.getsockname()[1]
    return any(int(f[2].rsplit(":", 1)[1], 16) == client_port and f[3] in ("01", "08")
               for f in harness.tcp_server_rows(server.port))


def unread_by_server(server):
    """Bytes clients sent to server.port that forkd has not read yet: the
    receive queues of its established connections, accepted or still
    waiting in the backlog."""
    return sum(int(f[4].split(":")[1], 16) for f in harness.tcp_server_rows(server.port)
               if f[3] == "01")


def hello_ok(server):
    status, _, body = server.request("GET", "/hello")
    return status == 200 and body == HELLO


def nofile_for(case, conns, soft):
    """Raises this process's soft RLIMIT_NOFILE (children inherit it) to soft
    for case, restored when it ends, or skips case when the hard limit is too
    low for conns connections."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, old[1]), old[1]))
    case.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, old)
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < soft:
        case.skipTest("RLIMIT_NOFILE hard limit too low for %d connections" % conns)


def idle_server(conns):
    """A forkd that may hold conns idle keep-alive connections for a while."""
    return harness.Server({"server": {"max_connections": str(conns + 100)},
                           "http": {"keepalive_timeout": "120"}})


def open_idle(case, server, count, socks):
    """Opens count connections into socks, each left idle after one /hello."""
    for i in range(count):
        s = server.connect()
        socks.append(s)
        s.sendall(GET_HELLO)
        status, _, body = response_of(s)
        case.assertEqual((status, body), (200, HELLO), i)


class TimeoutTest(harness.ServerCase):
    """Each timeout, one at a time, with short values."""

    SECTIONS = {"http": {"header_timeout": "1", "body_timeout": "2", "send_timeout": "1",
                         "keepalive_timeout": "2"},
                "example": {"debug_routes": "on"}}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.worker = worker_pids(cls.server)[0]

    def test_header_timeout_counts_from_the_first_byte(self):
        """A client that trickles its head, a byte at a time, is cut when
        header_timeout has passed since its first byte, however often bytes
        come: 408, then close."""
        with self.server.connect() as s:
            s.sendall(b"GET /hello HTTP/1.1\r\n")
            out = b""
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    s.sendall(b"X")
                except OSError:
                    break
                r, _, _ = select.select([s], [], [], 0.1)
                if r:
                    out, closed = harness.read_all(s, 5)
                    break
        self.assertTrue(out.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), out[:100])
        self.assertIn(b'{"error":"request header timed out"}', out)
        self.assertTrue(closed)
        self.assertTrue(hello_ok(self.server))

    def test_body_timeout_between_reads(self):
        """Body bytes that keep coming, each within body_timeout of the last,
        are waited for even when the whole body takes longer; a body that
        stops is answered 408."""
        body = b'{"pad":"' + b"p" * 10 + b'"}'
        with self.server.connect() as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body))
            for byte in body:  # 20 bytes, 0.25 s apart: 5 s in all, more than body_timeout
                s.sendall(bytes([byte]))
                time.sleep(0.25)
            status, _, got = response_of(s)
        self.assertEqual((status, got), (200, body))
        with self.server.connect() as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 10\r\n\r\n{\"a\"")
            out, closed = harness.read_all(s, 20)
        self.assertTrue(out.startswith(b"HTTP/1.1 408 "), out[:100])
        self.assertIn(b'{"error":"request body timed out"}', out)
        self.assertTrue(closed)

    def test_keepalive_timeout(self):
        """An idle keep-alive connection is usable until keepalive_timeout,
        then closed quietly."""
        with self.server.connect() as s:
            s.sendall(GET_HELLO)
            self.assertEqual(response_of(s)[0], 200)
            time.sleep(0.5)
            s.sendall(GET_HELLO)
            self.assertEqual(response_of(s)[0], 200)
            out, closed = harness.read_all(s, 20)
        self.assertEqual((out, closed), (b"", True))

    def test_silent_new_connection(self):
        """A connection that never sends a byte is closed (after
        header_timeout), without an answer."""
        with self.server.connect() as s:
            out, closed = harness.read_all(s, 20)
        self.assertEqual((out, closed), (b"", True))

    def test_stream_to_a_reader(self):
        """The streaming route itself: 8 MiB to a client that reads them."""
        with self.server.connect() as s:
            s.sendall(b"GET /debug/stream?kb=8192 HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(20)
            data = b""
            while not data.endswith(b"\r\n0\r\n\r\n"):
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        (status, _, body), = harness.parse_responses(data)
        self.assertEqual((status, len(body), set(body)), (200, 8 << 20, {ord("x")}))

    def stuck_stream(self, server):
        """A connection that asked server for 1 GiB and reads nothing."""
        s = server.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.sendall(b"GET /debug/stream?kb=1048576 HTTP/1.1\r\nHost: x\r\n\r\n")
        return s

    def test_a_client_that_does_not_read_costs_bounded_memory(self):
        """A client asks for 1 GiB and reads nothing. forkd keeps a bounded
        amount of output for it (its memory does not grow with the
        response) and answers everyone else meanwhile. A server of its own
        with a send_timeout (60 s) far beyond what this takes on any
        machine, so that the connection is still open when checked."""
        server = harness.Server({"http": {"send_timeout": "60"},
                                 "example": {"debug_routes": "on"}}).start()
        self.addCleanup(server.stop)
        worker = worker_pids(server)[0]
        base_rss = rss_kb(worker)
        with self.stuck_stream(server) as s:
            peak = base_rss
            for _ in range(5):
                self.assertTrue(hello_ok(server))
                peak = max(peak, rss_kb(worker))
            self.assertTrue(server_side_open(server, s))
        # 1 GiB was asked for; the worker grew by a few buffers at most.
        self.assertLess(peak - base_rss, 32 * 1024, "worker RSS grew by %d kB" % (peak - base_rss))

    def test_send_timeout_cuts_a_client_that_does_not_read(self):
        """The same client is reset once send_timeout (1 s here) passes
        without progress, having got no more than the kernel's buffers."""
        s = self.stuck_stream(self.server)
        try:
            cut = harness.wait_for(lambda: not server_side_open(self.server, s), timeout=30,
                                   interval=0.05)
            self.assertTrue(cut, "the connection of a client that does not read stayed open")
            s.settimeout(5)
            got = 0
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    got += len(chunk)
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            s.close()
        self.assertLess(got, 64 << 20, "far more than the kernel buffers was sent")
        self.assertTrue(hello_ok(self.server))

    def flood(self, s, first=b"", limit=64 << 20):
        """Sends first, then pipelined requests without reading until the
        socket stays full for a second or limit bytes went; returns the bytes sent."""
        s.setblocking(True)
        s.sendall(first)
        s.setblocking(False)
        batch = GET_HELLO * 1000
        sent = 0
        while sent < limit:
            _, w, _ = select.select([], [s], [], 1.0)
            if not w:
                break
            try:
                sent += s.send(batch)
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                break  # send_timeout already cut it
        return sent

    def test_pipelined_flood_without_reading_is_bounded(self):
        """A client pipelines requests without ever reading the answers:
        forkd stops parsing once the answers pile up, stops reading once its
        input buffer is full, holds bounded memory, and send_timeout resets
        the connection."""
        base_rss = rss_kb(self.worker)
        s = self.server.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            sent = self.flood(s)
            grown = rss_kb(self.worker) - base_rss
            self.assertLess(sent, 64 << 20, "forkd read every byte of the flood")
            self.assertLess(grown, 32 * 1024, "worker RSS grew by %d kB" % grown)
            self.assertTrue(hello_ok(self.server))
            self.assertTrue(harness.wait_for(lambda: not server_side_open(self.server, s),
                                             timeout=30, interval=0.05))
        finally:
            s.close()

    def test_input_behind_a_slow_response_is_bounded(self):
        """While a response is in the making (/delay), pipelined input is
        kept up to a bound and then reading stops; afterwards the answers
        come in order."""
        base_rss = rss_kb(self.worker)
        with self.server.connect() as s:
            sent = self.flood(s, b"GET /delay?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n")
            grown = rss_kb(self.worker) - base_rss
            self.assertLess(sent, 64 << 20, "forkd read every byte behind a pending response")
            self.assertLess(grown, 32 * 1024, "worker RSS grew by %d kB" % grown)
            s.setblocking(True)
            status, _, body = response_of(s, 20)
            self.assertEqual((status, body), (200, b'{"delayed_ms":2000}'))
            for _ in range(100):
                self.assertEqual(response_of(s, 20)[2], HELLO)


class SlowlorisTest(unittest.TestCase):
    """200 slowloris connections: each is cut by header_timeout while /hello
    keeps answering."""

    SECTIONS = {"http": {"header_timeout": "1"}}
    CLIENTS = 200

    def test_slowloris(self):
        server = harness.Server(self.SECTIONS).start()
        try:
            socks = []
            for _ in range(self.CLIENTS):
                s = server.connect()
                s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
                s.setblocking(False)
                socks.append(s)
            answers = {}
            hellos = 0
            deadline = time.monotonic() + 60
            while len(answers) < len(socks) and time.monotonic() < deadline:
                for s in socks:
                    if s.fileno() not in answers:
                        try:
                            s.send(b"X-Slow: 1\r\n"[:1])
                        except OSError:
                            pass
                # Everyone else is still served, while the slow ones wait.
                self.assertTrue(hello_ok(server))
                hellos += 1
                readable, _, _ = select.select([s for s in socks if s.fileno() not in answers],
                                               [], [], 0.1)
                for s in readable:
                    s.setblocking(True)
                    answers[s.fileno()] = harness.read_all(s, 5)
            self.assertEqual(len(answers), len(socks), "some slow clients were never cut")
            for out, closed in answers.values():
                self.assertTrue(out.startswith(b"HTTP/1.1 408 "), out[:80])
                self.assertTrue(closed)
            self.assertGreater(hellos, 0)
            for s in socks:
                s.close()
            self.assertTrue(hello_ok(server))
        finally:
            server.stop()


class IdleConnectionsTest(unittest.TestCase):
    """5,000 idle keep-alive connections are held while /hello answers."""

    COUNT = 5000

    def test_idle_connections_are_held(self):
        nofile_for(self, self.COUNT, self.COUNT * 2 + 200)
        server = idle_server(self.COUNT)
        socks = []
        try:
            server.start()
            worker = worker_pids(server)[0]
            open_idle(self, server, self.COUNT, socks)
            self.assertGreaterEqual(sockets_of(worker), self.COUNT)
            for _ in range(20):
                self.assertTrue(hello_ok(server))
            # They are still open and usable, every one of a sample.
            for s in socks[::100]:
                s.sendall(GET_HELLO)
                self.assertEqual(response_of(s)[2], HELLO)
            self.assertGreaterEqual(sockets_of(worker), self.COUNT)
        finally:
            for s in socks:
                s.close()
            server.stop()


class MaxConnectionsTest(harness.ServerCase):
    """At max_connections the worker stops accepting; the connections that
    wait in the listen queue are served in turn, none refused or reset."""

    SECTIONS = {"server": {"max_connections": "10"}}

    def test_waits_at_the_cap_then_serves(self):
        held = []
        try:
            for _ in range(10):
                s = self.server.connect()
                s.sendall(GET_HELLO)
                self.assertEqual(response_of(s)[0], 200)
                held.append(s)
            late = self.server.connect()
            late.sendall(GET_HELLO)
            r, _, _ = select.select([late], [], [], 1.0)
            self.assertEqual(r, [], "a connection above the cap was served")
            held.pop().close()
            self.assertEqual(response_of(late, 20)[2], HELLO)
            late.close()
        finally:
            for s in held:
                s.close()

    def test_flood_is_served_in_turn(self):
        """200 clients at once against a cap of 10, each asking for a
        response that takes 20 ms: every one gets its 200."""
        results = []
        lock = threading.Lock()

        def client():
            try:
                with self.server.connect(60) as s:
                    s.sendall(b"GET /delay?ms=20 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    status, _, body = response_of(s, 60)
                    res = (status, body)
            except OSError as e:
                res = ("error", repr(e))
            with lock:
                results.append(res)

        threads = [threading.Thread(target=client) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(results), 200)
        self.assertEqual(results, [(200, b'{"delayed_ms":20}')] * 200)


class EmfileTest(unittest.TestCase):
    """When accept fails with EMFILE the worker pauses accepting instead of
    spinning on a listen socket that stays readable; once descriptors free
    up, the waiting connections are served."""

    def test_emfile_does_not_spin(self):
        server = harness.Server({"server": {"max_connections": "1000"}})
        old = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            # Start with a normal limit to see how many descriptors an idle
            # worker holds, then restart with only a few more than that.
            server.start()
            worker = worker_pids(server)[0]
            base = len(os.listdir("/proc/%d/fd" % worker))
            server.stop()
            # forkd lifts its soft limit as far as the hard one allows (for
            # max_connections), so the hard limit is what must be low: set
            # for forkd alone, with prlimit, so this process keeps its own.
            server.wrapper = [harness.need_tool("prlimit", "util-linux"), "--nofile=%d:%d" % (base + 8, base + 8), "--"]
            server.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, old)
        socks = []
        try:
            worker = worker_pids(server)[0]
            for _ in range(20):
                s = server.connect()
                s.sendall(GET_HELLO)
                socks.append(s)
            # Some are answered; then the worker runs out of descriptors.
            harness.wait_for(lambda: "Too many open files" in server.log(), timeout=20)
            self.assertIn("Too many open files", server.log())
            before = cpu_seconds(worker)
            time.sleep(3)
            used = cpu_seconds(worker) - before
            self.assertLess(used, 1.0, "the worker used %.2f s of CPU in 3 s at EMFILE" % used)
            # Free the served connections: the waiting ones get their turn.
            answered = []
            for s in socks:
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    answered.append(s)
            self.assertTrue(answered, "nothing was served before EMFILE")
            for s in answered:
                self.assertEqual(response_of(s)[0], 200)
                s.close()
            waiting = [s for s in socks if s not in answered]
            for s in waiting:
                self.assertEqual(response_of(s, 20)[2], HELLO)
                s.close()  # frees a descriptor for the next one
            socks = []
        finally:
            for s in socks:
                s.close()
            server.stop()


if __name__ == "__main__":
    harness.main()
