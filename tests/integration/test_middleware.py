"""forkd's built-in middleware as the example app turns them on ([example]
middleware = on): security headers ([headers]), CORS ([cors]) and the rate
limit ([ratelimit]), each with real clients over real sockets.
"""
import os
import re
import resource
import subprocess
import threading
import unittest

import harness
from harness import Server, wait_for

HELMET = {
    "content-security-policy": "default-src 'self';base-uri 'self';font-src 'self' https: "
    "data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';"
    "script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';"
    "upgrade-insecure-requests",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "origin-agent-cluster": "?1",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-dns-prefetch-control": "off",
    "x-download-options": "noopen",
    "x-frame-options": "SAMEORIGIN",
    "x-permitted-cross-domain-policies": "none",
    "x-xss-protection": "0",
}
HSTS = "max-age=31536000; includeSubDomains"


def headers_of(server, path="/hello", headers=None, method="GET"):
    """(status, headers as a list of (lowercase name, value)) of one request."""
    conn = server.http()
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        r.read()
        return r.status, [(k.lower(), v) for k, v in r.getheaders()]
    finally:
        conn.close()


def server(sections, workers=1):
    secs = {"example": {"middleware": "on"}}
    for k, v in sections.items():
        secs.setdefault(k, {}).update(v)
    return Server(secs, workers=workers)


class HeadersTest(unittest.TestCase):
    def setUp(self):
        self.s = None

    def tearDown(self):
        if self.s:
            self.s.stop()

    def test_defaults_on_every_answer(self):
        self.s = server({}).start()
        for path in ("/hello", "/nope", "/json"):
            status, h = headers_of(self.s, path)
            got = {k: v for k, v in h if k in HELMET}
            self.assertEqual(got, HELMET, path)
            self.assertNotIn("strict-transport-security", dict(h))

    def test_hsts_only_over_https_through_a_trusted_proxy(self):
        self.s = server({}).start()
        _, h = headers_of(self.s, headers={"X-Forwarded-Proto": "https"})
        self.assertEqual(dict(h)["strict-transport-security"], HSTS)
        self.s.stop()
        # The same header from a peer that is not trusted counts for nothing.
        self.s = server({"proxy": {"trusted": "10.9.9.9"}}).start()
        _, h = headers_of(self.s, headers={"X-Forwarded-Proto": "https"})
        self.assertNotIn("strict-transport-security", dict(h))

    def test_replaced_removed_added(self):
        self.s = server({"headers": {"X-Frame-Options": "DENY", "x-dns-prefetch-control": "",
                                     "Permissions-Policy": "geolocation=()",
                                     "Strict-Transport-Security": ""}}).start()
        _, h = headers_of(self.s, headers={"X-Forwarded-Proto": "https"})
        d = dict(h)
        self.assertEqual(d["x-frame-options"], "DENY")
        self.assertNotIn("x-dns-prefetch-control", d)
        self.assertNotIn("strict-transport-security", d)
        self.assertEqual(d["permissions-policy"], "geolocation=()")
        self.assertEqual([k for k, _ in h].count("x-frame-options"), 1)

    def test_bad_header_lines_are_config_errors(self):
        for line, why in [("Bad Name = x", "not a header"),
                          ("Content-Length = 5", "forkd sets this header itself")]:
            s = Server()
            s.write_conf(raw=open(s.conf).read() + "[headers]\n" + line + "\n")
            r = subprocess.run([harness.BIN, "-c", s.conf, "-t"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1, line)
            self.assertRegex(r.stderr, r"%s:\d+: \[headers\] .*: %s" % (re.escape(s.conf), why))


ORIGIN = "http://app.example"


class CorsTest(harness.ServerCase):
    SECTIONS = {"example": {"middleware": "on"},
                "cors": {"origins": "%s, https://other.example:8443" % ORIGIN,
                         "max_age": "10m", "expose": "X-Request-Id"}}

    def preflight(self, origin, method="PUT", headers="content-type, x-token"):
        h = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            h["Access-Control-Request-Headers"] = headers
        return headers_of(self.server, "/orders", h, "OPTIONS")

    def test_preflight_allowed(self):
        status, h = self.preflight(ORIGIN)
        d = dict(h)
        self.assertEqual(status, 204)
        self.assertEqual(d["access-control-allow-origin"], ORIGIN)
        self.assertEqual(d["access-control-allow-methods"], "GET, HEAD, PUT, PATCH, POST, DELETE")
        self.assertEqual(d["access-control-allow-headers"], "content-type, x-token")
        self.assertEqual(d["access-control-max-age"], "600")
        self.assertIn(("vary", "Origin"), h)
        self.assertNotIn("access-control-allow-credentials", d)

    def test_preflight_refused(self):
        status, h = self.preflight("http://evil.example")
        self.assertEqual(status, 204)
        self.assertFalse([k for k, _ in h if k.startswith("access-control-")], h)
        self.assertIn(("vary", "Origin"), h)

    def test_simple_request(self):
        status, h = headers_of(self.server, "/hello", {"Origin": "https://other.example:8443"})
        d = dict(h)
        self.assertEqual((status, d["access-control-allow-origin"]),
                         (200, "https://other.example:8443"))
        self.assertEqual(d["access-control-expose-headers"], "X-Request-Id")
        status, h = headers_of(self.server, "/hello", {"Origin": "https://other.example"})
        self.assertNotIn("access-control-allow-origin", dict(h))
        # Without Origin: not a cross-origin request, no CORS headers at all.
        _, h = headers_of(self.server, "/hello")
        self.assertFalse([k for k, _ in h if k.startswith("access-control-") or k == "vary"])

    def test_options_without_request_method_is_not_a_preflight(self):
        # forkd's own OPTIONS answer (204 with Allow), not a preflight's.
        status, h = headers_of(self.server, "/orders", {"Origin": ORIGIN}, "OPTIONS")
        names = [k for k, _ in h]
        self.assertEqual((status, dict(h).get("allow")), (204, "POST, OPTIONS"))
        self.assertNotIn("access-control-allow-methods", names)


class CorsAnyTest(harness.ServerCase):
    SECTIONS = {"example": {"middleware": "on"}, "cors": {"origins": "*"}}

    def test_any_origin(self):
        _, h = headers_of(self.server, "/hello", {"Origin": "http://x.example"})
        self.assertEqual(dict(h)["access-control-allow-origin"], "*")
        self.assertNotIn(("vary", "Origin"), h)


class CorsCredentialsTest(harness.ServerCase):
    SECTIONS = {"example": {"middleware": "on"},
                "cors": {"origins": "*", "credentials": "on", "headers": "content-type"}}

    def test_credentials_echo_the_origin(self):
        status, h = headers_of(self.server, "/orders",
                               {"Origin": "http://x.example", "Access-Control-Request-Method":
                                "POST", "Access-Control-Request-Headers": "x-other"}, "OPTIONS")
        d = dict(h)
        self.assertEqual(d["access-control-allow-origin"], "http://x.example")
        self.assertEqual(d["access-control-allow-credentials"], "true")
        self.assertEqual(d["access-control-allow-headers"], "content-type")
        self.assertIn(("vary", "Origin"), h)

    def test_bad_origin_in_config(self):
        s = Server({"example": {"middleware": "on"}, "cors": {"origins": "example.com"}})
        r = subprocess.run([harness.BIN, "-c", s.conf, "-t"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("[cors] origins: 'example.com' is not * or scheme://host[:port]", r.stderr)


def hits(port, n, path="/hello", headers=None):
    """Statuses of n requests, each on its own connection (so they spread
    over the workers' sockets), and the last answer's headers."""
    statuses, last = [], None
    for _ in range(n):
        s = harness.Server.__new__(harness.Server)
        s.port = port
        status, h = headers_of(s, path, headers)
        statuses.append(status)
        last = dict(h)
    return statuses, last


class RateLimitTest(unittest.TestCase):
    LIMIT = 20

    def start(self, **ratelimit):
        rl = {"requests": str(self.LIMIT), "window": "1h", "prefix": "/"}
        rl.update(ratelimit)
        self.s = server({"ratelimit": rl}, workers=2).start()
        self.addCleanup(self.s.stop)
        return self.s

    def test_exactly_the_limit_across_workers(self):
        s = self.start(prefix="/hello")  # /metrics below stays readable
        statuses, last = hits(s.port, self.LIMIT + 10)
        self.assertEqual(statuses, [200] * self.LIMIT + [429] * 10)
        self.assertEqual(last["ratelimit-limit"], str(self.LIMIT))
        self.assertEqual(last["ratelimit-remaining"], "0")
        self.assertGreater(int(last["retry-after"]), 0)
        self.assertLessEqual(int(last["retry-after"]), 3600)
        # The requests did land on both workers (each has its own socket).
        text = s.request("GET", "/metrics")[2].decode()
        per_slot = re.findall(r'^forkd_requests_total\{slot="(\d)",method="GET",status="2xx"\} '
                              r'(\S+)$', text, re.M)
        self.assertEqual(len({slot for slot, v in per_slot if float(v) > 0}), 2, per_slot)

    def test_headers_count_down(self):
        s = self.start()
        for i in range(1, 4):
            _, h = headers_of(s)
            d = dict(h)
            self.assertEqual(d["ratelimit-remaining"], str(self.LIMIT - i))
            self.assertLessEqual(int(d["ratelimit-reset"]), 3600)

    def test_only_under_the_prefix(self):
        s = self.start(prefix="/inventory")
        statuses, last = hits(s.port, self.LIMIT + 5, "/hello")
        self.assertEqual(set(statuses), {200})
        self.assertNotIn("ratelimit-limit", last)
        statuses, _ = hits(s.port, self.LIMIT + 1, "/inventory")
        self.assertEqual(statuses[-1], 429)

    def test_a_spoofed_forwarded_for_buys_nothing(self):
        s = self.start()
        # [proxy] trusted is 127.0.0.1 by default: restart with nobody trusted.
        s.stop()
        self.s = server({"ratelimit": {"requests": str(self.LIMIT), "window": "1h"},
                         "proxy": {"trusted": ""}}, workers=2).start()
        statuses = [headers_of(self.s, "/hello", {"X-Forwarded-For": "198.51.100.%d" % i})[0]
                    for i in range(self.LIMIT + 5)]
        self.assertEqual(statuses[-5:], [429] * 5)
        self.s.stop()

    def test_clients_behind_a_trusted_proxy_count_apart(self):
        s = self.start()
        for ip in ("198.51.100.1", "198.51.100.2"):
            statuses, _ = hits(s.port, self.LIMIT + 1, headers={"X-Forwarded-For": ip})
            self.assertEqual(statuses, [200] * self.LIMIT + [429], ip)

    def test_address_spraying_keeps_memory_bounded(self):
        s = self.start(clients="64")
        pids = s.workers()
        before = sum(rss_kib(p) for p in pids)
        for i in range(3000):
            headers_of(s, "/hello", {"X-Forwarded-For": "10.%d.%d.%d" % (i >> 16, i >> 8 & 255,
                                                                         i & 255)})
        after = sum(rss_kib(p) for p in pids)
        # A fixed table of 64 slots: the workers grow by no more than noise.
        self.assertLess(after - before, 2048, (before, after))
        # And the limiter still counts a fresh client from zero.
        statuses, _ = hits(s.port, self.LIMIT + 1, headers={"X-Forwarded-For": "192.0.2.7"})
        self.assertEqual(statuses, [200] * self.LIMIT + [429])


class RedisRateLimitTest(unittest.TestCase):
    """[bus] redis: the limit holds across two forkd instances (two hosts)
    sharing one Redis, and a Redis that goes away loosens it to each host's
    own count instead of refusing requests."""
    LIMIT = 12

    def setUp(self):
        from test_bus import Redis  # the tests' own redis-server helper
        self.redis = Redis().start()
        self.addCleanup(self.redis.stop)
        self.hosts = []
        for _ in range(2):
            h = server({"ratelimit": {"requests": str(self.LIMIT), "window": "1h",
                                      "prefix": "/hello"},
                        "bus": {"redis": "127.0.0.1:%d" % self.redis.port}}, workers=2).start()
            self.addCleanup(h.stop)
            self.hosts.append(h)
        for h in self.hosts:
            self.assertTrue(wait_for(lambda: h.json("GET", "/health")[2]["bus"] == "up", 30))

    def test_the_limit_holds_across_hosts(self):
        statuses = []
        for i in range(self.LIMIT + 6):
            statuses.append(headers_of(self.hosts[i % 2])[0])
        self.assertEqual(statuses, [200] * self.LIMIT + [429] * 6)
        keys = self.redis.command("KEYS", "forkd:ratelimit:*")
        self.assertEqual(len(keys), 1, keys)
        self.assertEqual(int(self.redis.command("GET", keys[0])), self.LIMIT + 6)
        self.assertGreater(int(self.redis.command("PTTL", keys[0])), 0)

    def test_client_leaving_while_redis_counts(self):
        """The request is held while Redis counts it; a client that leaves
        meanwhile is let go cleanly (the sanitizer build checks the memory)."""
        import signal
        import socket
        h = self.hosts[0]
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            clients = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(3)]
            for c in clients:
                c.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(wait_for(lambda: in_flight(h) == 3, 30), in_flight(h))
            for c in clients:
                c.close()
            # The held requests end once their clients are gone.
            self.assertTrue(wait_for(lambda: in_flight(h) == 0, 30), in_flight(h))
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.assertEqual(headers_of(h)[0], 200)

    def test_redis_gone_falls_back_to_each_host(self):
        statuses = [headers_of(self.hosts[0])[0] for _ in range(5)]
        self.assertEqual(statuses, [200] * 5)
        self.redis.kill()
        # Each host now counts alone, from zero: never a 5xx, and the limit
        # still applies per host.
        for h in self.hosts:
            statuses = [headers_of(h)[0] for _ in range(self.LIMIT + 2)]
            self.assertEqual(statuses, [200] * self.LIMIT + [429] * 2, statuses)


def in_flight(server):
    """Requests forkd holds now (the /metrics one aside)."""
    text = server.request("GET", "/metrics")[2].decode()
    return sum(int(float(v)) for v in re.findall(r"^forkd_requests_in_flight\{[^}]*\} (\S+)$",
                                                 text, re.M)) - 1


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


if __name__ == "__main__":
    harness.main()
