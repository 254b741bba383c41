"""Memory a burst took comes back once a worker is quiet.

Measured in the worker's resident size (/proc/PID/status), so only on a
build without AddressSanitizer, whose allocator keeps freed memory in
quarantine: meson registers this file for such builds only, and run by hand
against an ASan build it skips.
"""
import time
import unittest

import harness
from test_limits import (GET_HELLO, HELLO, hello_ok, idle_server, nofile_for, open_idle,
                         response_of, rss_kb, unread_by_server, worker_pids)


class BurstMemoryTest(unittest.TestCase):
    """The memory a burst took is handed back once the worker is quiet: its
    spare requests and buffers, and closed connections, do not stay pinned."""

    CONNS = 256     # as many as a worker keeps spares for
    PAD = 12000     # header bytes per request (max_header_size is 16k)
    IDLE = 3000     # idle keep-alive connections held, then closed

    def setUp(self):
        if harness.asan_build():
            self.skipTest("AddressSanitizer's allocator holds freed memory in quarantine")

    def test_memory_of_idle_connections_comes_back_when_they_close(self):
        nofile_for(self, self.IDLE, self.IDLE + 200)
        server = idle_server(self.IDLE)
        socks = []
        try:
            server.start()
            worker = worker_pids(server)[0]
            self.assertTrue(hello_ok(server))
            time.sleep(2.5)
            base = rss_kb(worker)
            open_idle(self, server, self.IDLE, socks)
            time.sleep(2.5)  # the spares are trimmed by now: only the connections remain
            held = rss_kb(worker) - base
            self.assertGreater(held, 300, "%d idle connections took %d kB only" % (self.IDLE, held))
            for s in socks:
                s.close()
            socks = []
            back = harness.wait_for(lambda: rss_kb(worker) - base < held / 3, timeout=10)
            self.assertTrue(back, "worker RSS still %d kB above its level before the connections "
                            "(%d kB while they were open)" % (rss_kb(worker) - base, held))
            self.assertTrue(hello_ok(server))
        finally:
            for s in socks:
                s.close()
            server.stop()

    def test_memory_of_a_burst_comes_back(self):
        server = harness.Server({"server": {"max_connections": "1000"}})
        socks = []
        try:
            server.start()
            worker = worker_pids(server)[0]
            for _ in range(10):
                self.assertTrue(hello_ok(server))
            time.sleep(2.5)  # past two of the worker's once-a-second trims
            base = rss_kb(worker)
            head = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * self.PAD
            for _ in range(self.CONNS):
                s = server.connect()
                s.sendall(head)  # incomplete: the worker holds it until the end comes
                socks.append(s)
            # Every head is in the worker's buffers before the ends come.
            self.assertTrue(harness.wait_for(lambda: unread_by_server(server) == 0, 30),
                            "forkd left %d bytes unread" % unread_by_server(server))
            for s in socks:
                s.sendall(b"\r\n\r\n")
            for s in socks:
                self.assertEqual(response_of(s)[2], HELLO)
            grown = rss_kb(worker) - base
            # The burst must really have taken memory, or the rest proves nothing.
            self.assertGreater(grown, 2048, "the burst grew the worker by %d kB only" % grown)
            for s in socks:
                s.close()
            socks = []
            back = harness.wait_for(lambda: rss_kb(worker) - base < 1024, timeout=10)
            self.assertTrue(back, "worker RSS still %d kB above its level before the burst "
                            "(%d kB at the burst)" % (rss_kb(worker) - base, grown))
            self.assertTrue(hello_ok(server))
        finally:
            for s in socks:
                s.close()
            server.stop()


if __name__ == "__main__":
    harness.main()
