"""GET /metrics: Prometheus text format rendered from the shared scoreboard."""
import re
import subprocess

import harness
from harness import Server, wait_for

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$')


def parse(text):
    """{(name, frozenset(labels)): value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def total(samples, name, **want):
    """Sum of the samples of name whose labels include want."""
    want = set(want.items())
    return sum(v for (n, labels), v in samples.items() if n == name and want <= labels)


class MetricsTest(harness.ServerCase):
    WORKERS = 2
    SECTIONS = {"example": {"bcrypt_cost": "4"}}

    def metrics(self):
        status, headers, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        return body.decode()

    def test_real_prometheus_parser_accepts_it(self):
        promtool = harness.need_tool("promtool", "prometheus")
        r = subprocess.run([promtool, "check", "metrics"], input=self.metrics().encode(),
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_every_family_is_there_per_slot(self):
        s = parse(self.metrics())
        for name in ("forkd_received_bytes_total", "forkd_sent_bytes_total",
                     "forkd_pool_jobs_done_total", "forkd_pool_jobs_rejected_total",
                     "forkd_bus_published_total", "forkd_connections",
                     "forkd_requests_in_flight", "forkd_pool_jobs_queued",
                     "forkd_pool_jobs_running", "forkd_worker_restarts_total",
                     "forkd_request_duration_seconds_count"):
            for slot in ("0", "1"):
                self.assertIn((name, frozenset({("slot", slot)})), s, name)
        # The example app's own metric, summed over the workers.
        self.assertIn(("app_bcrypt_seconds_count", frozenset()), s)
        self.assertEqual(s[("forkd_workers", frozenset())], 2)
        self.assertGreater(s[("forkd_uptime_seconds", frozenset())], 0)

    def test_requests_are_counted_by_method_and_class(self):
        before = parse(self.metrics())
        for _ in range(10):
            self.server.request("GET", "/hello")
        for _ in range(3):
            self.server.request("GET", "/missing")
        self.server.request("DELETE", "/hello")
        after = parse(self.metrics())
        delta = lambda **kw: (total(after, "forkd_requests_total", **kw) -
                              total(before, "forkd_requests_total", **kw))
        # the /metrics request that produced `before` is counted too
        self.assertEqual(delta(method="GET", status="2xx"), 11)
        self.assertEqual(delta(method="GET", status="4xx"), 3)
        self.assertEqual(delta(method="DELETE", status="4xx"), 1)
        hist = (total(after, "forkd_request_duration_seconds_count") -
                total(before, "forkd_request_duration_seconds_count"))
        self.assertEqual(hist, 15)
        self.assertGreater(total(after, "forkd_sent_bytes_total"),
                           total(before, "forkd_sent_bytes_total"))
        self.assertGreater(total(after, "forkd_received_bytes_total"),
                           total(before, "forkd_received_bytes_total"))

    def test_histogram_buckets_are_cumulative(self):
        self.server.request("GET", "/delay?ms=30")
        s = parse(self.metrics())
        for slot in ("0", "1"):
            buckets = sorted(((float("inf") if dict(l)["le"] == "+Inf" else float(dict(l)["le"])), v)
                             for (n, l), v in s.items()
                             if n == "forkd_request_duration_seconds_bucket" and
                             ("slot", slot) in l)
            values = [v for _, v in buckets]
            self.assertEqual(values, sorted(values))
            self.assertEqual(values[-1], s[("forkd_request_duration_seconds_count",
                                            frozenset({("slot", slot)}))])
        slow = total(s, "forkd_request_duration_seconds_count") - \
            total(s, "forkd_request_duration_seconds_bucket", le="0.025")
        self.assertGreaterEqual(slow, 1)  # the 30 ms request lies above 25 ms

    def test_hash_jobs_are_counted(self):
        before = parse(self.metrics())
        for _ in range(4):
            status, _, _ = self.server.json("POST", "/hash", {"password": "pw"})
            self.assertEqual(status, 200)
        # pool counters are published with the one-second heartbeat
        def done():
            after = parse(self.metrics())
            return (total(after, "forkd_pool_jobs_done_total") -
                    total(before, "forkd_pool_jobs_done_total")) == 4 and after
        after = wait_for(done, timeout=10)
        self.assertTrue(after, "pool jobs not counted")
        self.assertEqual(total(after, "app_bcrypt_seconds_count") -
                         total(before, "app_bcrypt_seconds_count"), 4)

    def test_any_worker_answers_for_all(self):
        # Several connections land on both workers; each sees both slots' totals.
        seen = set()
        for _ in range(20):
            s = parse(self.metrics())
            seen.add(total(s, "forkd_requests_total", slot="0") > 0 and
                     total(s, "forkd_requests_total", slot="1") > 0)
        self.assertIn(True, seen)


class MetricsAllowTest(harness.unittest.TestCase):
    def test_other_addresses_get_403(self):
        s = Server({"metrics": {"allow": "10.9.8.7"}}, workers=1)
        self.addCleanup(s.stop)
        s.start()
        status, headers, body = s.request("GET", "/metrics")
        self.assertEqual(status, 403)
        self.assertIn(b'"error"', body)
        # forwarded headers do not open it either
        status, _, _ = s.request("GET", "/metrics", headers={"X-Forwarded-For": "10.9.8.7"})
        self.assertEqual(status, 403)


if __name__ == "__main__":
    harness.main()
