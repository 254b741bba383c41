"""What the README promises at the edges of a connection's life and of the
address families: the lingering close's two limits, and IPv6 for listening,
for [proxy] trusted and for [metrics] allow.

Whether forkd still holds a connection is read from the kernel's table
(/proc/net/tcp and tcp6): a socket no process holds any more shows inode 0.
The lingering limits are the design's own (LINGER_IDLE 2 s, LINGER_MAX 10 s
in src/conn.c); the tests assert lower bounds, which a slow machine cannot
break, and the order the two limits set (a quiet client goes before a busy
one refused earlier), and wait for the close itself rather than for a time.

X-Forwarded-Proto reaches an app through the public API (request_scheme);
test_module checks it over IPv4 with a module of its own, and the IPv6 case
below builds the same module (it needs gcc, which scripts/deps installs).
"""
import os
import re
import shutil
import socket
import tempfile
import time
import unittest

import harness
from harness import Server, wait_for
from test_logs import COMBINED, read_lines

BAD = b"GET /hello HTTP/1.1\nHost: x\r\n\r\n"   # a bare LF: 400, then a lingering close


def held_inode(server_port, client_port):
    """The inode of forkd's end of the connection server_port <- client_port
    (0 once no process holds it), or None when the kernel has forgotten it."""
    for fields in harness.tcp_server_rows(server_port):
        if int(fields[2].rsplit(":", 1)[1], 16) == client_port:
            return int(fields[9])
    return None


def forkd_let_go(server_port, client_port):
    return held_inode(server_port, client_port) in (0, None)


class LingerTest(harness.ServerCase):
    def refused(self):
        """A connection that got its 400 and the server's FIN: (socket,
        client port, when the FIN came)."""
        s = self.server.connect(30)
        s.sendall(BAD)
        data, eof = b"", False
        while not eof:
            chunk = s.recv(65536)
            eof = not chunk
            data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data[:80])
        return s, s.getsockname()[1], time.monotonic()

    def test_a_quiet_client_is_let_go_after_the_idle_limit(self):
        """A quiet client is let go by LINGER_IDLE, not LINGER_MAX: when it
        goes, a client refused just before it that keeps sending (which only
        LINGER_MAX lets go) is still held. Were the idle limit lost, both
        would wait for LINGER_MAX and the earlier one would go first."""
        busy, busy_port, _ = self.refused()
        s, port, fin_at = self.refused()
        with busy, s:
            self.assertNotIn(held_inode(self.server.port, port), (0, None),
                             "forkd closed at once instead of lingering")

            def quiet_let_go():
                try:
                    busy.sendall(b"x" * 64)
                except OSError:
                    pass  # forkd let the busy one go: the reset reached it
                return forkd_let_go(self.server.port, port)
            self.assertTrue(wait_for(quiet_let_go, 30),
                            "forkd never closed a quiet lingering connection")
            self.assertFalse(forkd_let_go(self.server.port, busy_port),
                             "the quiet client was held as long as a busy one refused before it")
            # LINGER_IDLE is 2 s; the FIN came a little after forkd's clock started.
            self.assertGreaterEqual(time.monotonic() - fin_at, 1.0)

    def test_a_client_that_keeps_sending_is_let_go_after_the_total_limit(self):
        """Input keeps a lingering connection past the idle limit, but not
        past LINGER_MAX (10 s), however busy the client is."""
        s, port, fin_at = self.refused()
        with s:
            let_go_at = None
            while time.monotonic() - fin_at < 60:
                try:
                    s.sendall(b"x" * 64)
                except OSError:
                    pass  # forkd closed: the reset reached us
                if forkd_let_go(self.server.port, port):
                    let_go_at = time.monotonic()
                    break
                time.sleep(0.2)
            self.assertIsNotNone(let_go_at, "a busy client kept forkd lingering for 60 s")
            # Well past the 2 s idle limit (the client was never quiet), and
            # not before LINGER_MAX counted from a moment before the FIN.
            self.assertGreaterEqual(let_go_at - fin_at, 9.0)
        self.assertEqual(self.server.request("GET", "/hello")[0], 200)


def v6_server(sections):
    """A forkd listening on [::1] only, with an access log."""
    port = harness.free_port()
    merged = {"server": {"listen": "[::1]:%d" % port}}
    for k, v in sections.items():
        merged.setdefault(k, {}).update(v)
    s = Server(merged)
    s.sections["log"]["access_log"] = s.access_log
    s.write_conf()
    return s


class IPv6Test(unittest.TestCase):
    def start(self, **sections):
        s = v6_server(sections)
        self.addCleanup(s.stop)
        return s.start()

    def addrs(self, s, n):
        return [COMBINED.match(line)["addr"] for line in read_lines(s.access_log, n)]

    def test_listen_on_the_ipv6_loopback(self):
        s = self.start()
        self.assertEqual(s.host, "::1")
        status, _, body = s.request("GET", "/hello")
        self.assertEqual((status, body), (200, b"Hello World!"))
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        self.assertEqual(self.addrs(s, 1), ["::1"])

    def test_trusted_ipv6_proxy(self):
        s = self.start(proxy={"trusted": "::1"})
        s.request("GET", "/hello", headers={"X-Forwarded-For": "2001:db8::7"})
        s.request("GET", "/hello", headers={"X-Forwarded-For": "203.0.113.7, ::1"})
        self.assertEqual(self.addrs(s, 2), ["2001:db8::7", "203.0.113.7"])

    def test_untrusted_ipv6_peer(self):
        s = self.start(proxy={"trusted": "127.0.0.1"})
        s.request("GET", "/hello", headers={"X-Forwarded-For": "2001:db8::7"})
        self.assertEqual(self.addrs(s, 1), ["::1"])

    def test_forwarded_proto_and_for_from_a_trusted_ipv6_proxy(self):
        """A module's /who route answers the scheme and client address the
        app API gives: X-Forwarded-Proto and X-Forwarded-For count from the
        trusted ::1, and not from a peer outside [proxy] trusted."""
        import test_module
        folder = tempfile.mkdtemp(prefix="forkd-edges-")
        self.addCleanup(shutil.rmtree, folder, True)
        so = test_module.build(test_module.HELLO_APP, os.path.join(folder, "who.so"))
        fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "2001:db8::9"}
        s = self.start(app={"module": so}, proxy={"trusted": "::1"})
        self.assertEqual(s.request("GET", "/who", headers=fwd)[::2],
                         (200, b"https 2001:db8::9"))
        self.assertEqual(s.request("GET", "/who")[::2], (200, b"http ::1"))
        other = self.start(app={"module": so}, proxy={"trusted": "127.0.0.1"})
        self.assertEqual(other.request("GET", "/who", headers=fwd)[::2], (200, b"http ::1"))

    def test_metrics_allow_ipv6(self):
        s = self.start(metrics={"allow": "::1"})
        status, _, body = s.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(re.search(rb"^forkd_workers 1$", body, re.M), body[:200])
        other = self.start(metrics={"allow": "127.0.0.1"})
        self.assertEqual(other.request("GET", "/metrics")[0], 403)


if __name__ == "__main__":
    harness.main()
