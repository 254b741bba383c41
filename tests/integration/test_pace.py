"""Adaptive I/O coalescing ([server] io_coalesce, src/pace.c) against the real
binary.

While many connections are busy, a worker's loop waits a little before
polling so their requests are served together; with one or a few clients it
never waits. The wait in force is the gauge forkd_io_coalesce_seconds
on /metrics. These tests drive 64 keep-alive connections with wrk and check
that the wait appears, stays within io_coalesce, is gone once the load is,
never appears for one client however many requests it sends, and never with
io_coalesce = 0; and that every response under the load is still a good one.
"""
import re
import subprocess
import threading
import time
import unittest

import harness
from harness import Server
from test_core import HELLO, Client, request

WRK = harness.need_tool("wrk", "wrk")
GAUGE = re.compile(r'^forkd_io_coalesce_seconds\{slot="0"\} (\S+)$', re.M)


def coalesce_us(server):
    """The wait worker slot 0 applies now, microseconds."""
    status, _, body = server.request("GET", "/metrics")
    assert status == 200, status
    m = GAUGE.search(body.decode())
    assert m, "no forkd_io_coalesce_seconds in /metrics"
    return round(float(m.group(1)) * 1e6)


class Load:
    """wrk with `conns` keep-alive connections on /hello for `seconds`, and
    the gauge sampled every 50 ms meanwhile."""

    def __init__(self, server, seconds=3, conns=64):
        self.server = server
        self.proc = subprocess.Popen(
            [WRK, "-t1", "-c%d" % conns, "-d%ds" % seconds,
             "http://127.0.0.1:%d/hello" % server.port],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.samples = []

    def run(self):
        while self.proc.poll() is None:
            self.samples.append(coalesce_us(self.server))
            time.sleep(0.05)
        self.output = self.proc.stdout.read()
        self.proc.stdout.close()
        return self

    def requests(self):
        m = re.search(r"(\d+) requests in", self.output)
        return int(m.group(1)) if m else 0


class PaceCase(harness.ServerCase):
    def assert_load_ok(self, load):
        self.assertEqual(load.proc.returncode, 0, load.output)
        self.assertGreater(load.requests(), 0, load.output)
        self.assertNotIn("Non-2xx", load.output)
        self.assertNotIn("Socket errors", load.output)

    def idle_again(self):
        """After a pause, one request ends the window the load left open;
        the gauge then shows what that window measured."""
        time.sleep(0.1)
        self.assertEqual(self.server.request("GET", "/hello")[0], 200)
        return coalesce_us(self.server)


class PaceTest(PaceCase):
    """io_coalesce high enough that the cap never binds: the wait is an eighth
    of the turnaround, which gathers 64 / 8 requests whatever the machine's
    speed (at the default 100us, a worker must serve 30,000 requests/s for a
    wait to gather three; an AddressSanitizer build may not)."""
    SECTIONS = {"server": {"io_coalesce": "1ms"}}

    def test_busy_connections_wait_then_stop_waiting(self):
        self.assertEqual(self.idle_again(), 0)
        load = Load(self.server).run()
        self.assert_load_ok(load)
        self.assertTrue(any(s > 0 for s in load.samples), load.samples)
        self.assertLessEqual(max(load.samples), 1000, load.samples)
        self.assertEqual(self.idle_again(), 0)

    def test_one_client_never_makes_the_loop_wait(self):
        """800 requests on one keep-alive connection (max_keepalive_requests
        is 1000), the gauge read between every 200."""
        with Client(self.server) as c:
            for _ in range(4):
                for _ in range(200):
                    c.send(request("GET", "/hello"))
                    r = c.response()
                    self.assertEqual((r.status, r.body), (200, HELLO))
                self.assertEqual(coalesce_us(self.server), 0)

    def test_answers_stay_whole_and_in_order_while_waiting(self):
        """A pipelining client beside the load: every answer is its own, in
        order, while the loop waits before its polls."""
        load = Load(self.server)
        runner = threading.Thread(target=load.run)
        runner.start()
        try:
            with Client(self.server) as c:
                for _ in range(50):
                    c.send(request("GET", "/hello") + request("GET", "/json") +
                           request("GET", "/nope"))
                    self.assertEqual(c.response().body, HELLO)
                    r = c.response()
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.h.get("content-type"), "application/json")
                    self.assertEqual(c.response().status, 404)
        finally:
            runner.join(30)
        self.assert_load_ok(load)
        self.assertTrue(any(s > 0 for s in load.samples), load.samples)


class CappedPaceTest(PaceCase):
    """512 connections: an eighth of their turnaround is 64 / rate, above
    400 us below 160,000 requests/s; capped at 400 us, a wait gathers three
    requests from 7,500 requests/s up: the cap binds on any build."""
    SECTIONS = {"server": {"io_coalesce": "400us"}}

    def test_wait_never_exceeds_io_coalesce(self):
        load = Load(self.server, conns=512).run()
        self.assert_load_ok(load)
        self.assertTrue(any(s > 0 for s in load.samples), load.samples)
        self.assertLessEqual(max(load.samples), 400, load.samples)
        self.assertIn(400, load.samples)


class PaceOffTest(PaceCase):
    SECTIONS = {"server": {"io_coalesce": "0"}}

    def test_off_never_waits_under_load(self):
        load = Load(self.server).run()
        self.assert_load_ok(load)
        self.assertEqual(set(load.samples), {0}, load.samples)


class PaceConfigTest(unittest.TestCase):
    def test_out_of_range_names_the_line_and_the_range(self):
        server = Server({"server": {"io_coalesce": "50ms"}})
        r = subprocess.run([harness.BIN, "-t", "-c", server.conf], capture_output=True,
                           text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"forkd\.conf:\d+: \[server\] io_coalesce = '50ms': "
                         r"out of range; allowed: 0\.\.0\.01 seconds")


if __name__ == "__main__":
    harness.main()
