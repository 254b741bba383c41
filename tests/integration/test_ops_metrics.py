"""Metrics an operator can act on, against the real binary.

Requests and durations by route key (the registered pattern, never the raw
path) and exact status code; process_* for the primary and every worker; an
app-defined histogram (the example app's app_bcrypt_seconds, registered
through metrics.h by every worker) summed over the workers and kept when a
worker is replaced; 10,000 distinct raw paths giving a bounded number of
series; and promtool finding nothing to complain about.
"""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def parse(text):
    """{(name, labels text): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, line
        out[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return out


class RouteMetrics(harness.ServerCase):
    WORKERS = 2

    def metrics(self):
        status, _, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        return body.decode()

    def value(self, samples, name, labels):
        return samples.get((name, labels), 0)

    def test_route_keys_and_exact_codes(self):
        before = parse(self.metrics())
        for _ in range(3):
            self.server.request("GET", "/hello")
        self.server.request("GET", "/nope")
        self.server.request("DELETE", "/hello")
        self.server.json("POST", "/orders", {"userId": "u", "items": []})
        after = parse(self.metrics())

        def delta(labels, name="forkd_http_requests_total"):
            return self.value(after, name, labels) - self.value(before, name, labels)
        self.assertEqual(delta('{route="GET /hello",code="200"}'), 3)
        self.assertEqual(delta('{route="unmatched",code="404"}'), 1)
        self.assertEqual(delta('{route="unmatched",code="405"}'), 1)
        self.assertEqual(delta('{route="POST /orders",code="400"}'), 1)
        self.assertEqual(delta('{route="GET /hello"}',
                               "forkd_http_request_duration_seconds_count"), 3)
        # The route label is always a registered pattern or a fixed word.
        routes = {re.search(r'route="([^"]*)"', k[1]).group(1) for k in after
                  if k[0] == "forkd_http_requests_total"}
        for r in routes:
            self.assertTrue(r in ("unmatched", "overflow") or re.match(r"^[A-Z]+ /", r), r)

    def test_query_strings_never_reach_a_label(self):
        before = parse(self.metrics())
        self.server.request("GET", "/hello?id=7")
        self.server.request("GET", "/hello?id=8")
        text = self.metrics()
        self.assertNotIn("?id=", text)
        key = ("forkd_http_requests_total", '{route="GET /hello",code="200"}')
        self.assertEqual(parse(text)[key] - before.get(key, 0), 2)

    def test_ten_thousand_raw_paths_stay_bounded(self):
        c = self.server.http()
        try:
            for i in range(10000):
                c.request("GET", "/unknown/%d?x=%d" % (i, i))
                c.getresponse().read()
        finally:
            c.close()
        text = self.metrics()
        series = [l for l in text.splitlines() if l.startswith("forkd_http_requests_total{")]
        self.assertLess(len(series), 64 * 40)
        self.assertNotIn("/unknown/", text)
        self.assertGreaterEqual(parse(text)[("forkd_http_requests_total",
                                             '{route="unmatched",code="404"}')], 10000)

    def test_process_metrics_per_process(self):
        wait_for(lambda: 'process_open_fds{slot="1"' in self.metrics())
        samples = parse(self.metrics())
        pids = [self.server.proc.pid] + self.server.workers()
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                     "process_open_fds", "process_start_time_seconds"):
            labels = {k[1] for k in samples if k[0] == name}
            self.assertIn('{slot="primary",pid="%d"}' % self.server.proc.pid, labels)
            for slot, pid in enumerate(sorted(pids[1:])):
                self.assertTrue(any('pid="%d"' % pid in l for l in labels), (name, labels))
        rss = samples[("process_resident_memory_bytes",
                       '{slot="primary",pid="%d"}' % self.server.proc.pid)]
        self.assertGreater(rss, 1 << 20)

    def test_promtool_is_clean(self):
        promtool = harness.need_tool("promtool", "prometheus")
        self.server.request("POST", "/hash", body=b'{"password":"pw"}',
                            headers={"Content-Type": "application/json"})
        self.server.request("GET", "/hello")
        r = subprocess.run([promtool, "check", "metrics"], input=self.metrics().encode(),
                           capture_output=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, b""))


class AppMetrics(unittest.TestCase):
    def test_app_histogram_summed_and_kept_across_a_restart(self):
        s = harness.Server({}, workers=2).start()
        self.addCleanup(s.stop)
        s.expect_worker_signals(signal.SIGKILL)  # the test kills a worker

        def count():
            return parse(s.request("GET", "/metrics")[2].decode()).get(
                ("app_bcrypt_seconds_count", ""), 0)
        self.assertEqual(count(), 0)
        # New connections each time: the kernel spreads them over both workers.
        for _ in range(6):
            status, _, _ = s.request("POST", "/hash", body=b'{"password":"pw"}',
                                     headers={"Content-Type": "application/json"})
            self.assertEqual(status, 200)
        self.assertEqual(count(), 6)
        text = s.request("GET", "/metrics")[2].decode()
        self.assertIn("# TYPE app_bcrypt_seconds histogram", text)
        self.assertIn('app_bcrypt_seconds_bucket{le="+Inf"} 6', text)
        # A worker dies; its replacement registers the same metric, and what
        # the dead one counted stays in the sum.
        old = s.workers()
        os.kill(old[0], signal.SIGKILL)
        self.assertTrue(wait_for(lambda: len(s.workers()) == 2 and s.workers() != old))
        self.assertTrue(wait_for(lambda: s.accepting()))
        self.assertEqual(count(), 6)


if __name__ == "__main__":
    harness.main()
