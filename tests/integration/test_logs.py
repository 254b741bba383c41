"""Access log, error log and trusted-proxy client addresses, against the real binary."""
import os
import re
import signal
import socket

import harness
from harness import Server, wait_for

COMBINED = re.compile(
    r'^(?P<addr>\S+) - - \[(?P<time>\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] '
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'"(?P<referer>[^"]*)" "(?P<ua>[^"]*)" (?P<rt>\d+\.\d{3}) "(?P<id>[^"]+)"$')
COMMON = re.compile(
    r'^(?P<addr>\S+) - - \[[^\]]+\] "(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+) '
    r'(?P<rt>\d+\.\d{3}) "(?P<id>[^"]+)"$')


def read_lines(path, count, timeout=10):
    """Waits until path holds at least count lines (the log flushes once a second)."""
    def lines():
        try:
            with open(path) as f:
                got = f.read().splitlines()
        except FileNotFoundError:
            return None
        return got if len(got) >= count else None
    return wait_for(lines, timeout) or []


class AccessLogTest(harness.unittest.TestCase):
    def start(self, sections):
        server = Server(sections)
        sections.setdefault("log", {})
        server.sections["log"]["access_log"] = server.access_log
        server.write_conf()
        self.addCleanup(server.stop)
        return server.start()

    def test_combined_line_for_each_request(self):
        s = self.start({"log": {"access_log_format": "combined"}})
        s.request("GET", "/hello", headers={"User-Agent": "t/1", "Referer": "http://r/"})
        s.request("GET", "/nope")
        s.request("GET", "/delay?ms=120")
        lines = read_lines(s.access_log, 3)
        self.assertEqual(len(lines), 3, lines)
        m = [COMBINED.match(line) for line in lines]
        self.assertTrue(all(m), lines)
        self.assertEqual(m[0]["addr"], "127.0.0.1")
        self.assertEqual(m[0]["request"], "GET /hello HTTP/1.1")
        self.assertEqual((m[0]["status"], m[0]["bytes"]), ("200", "12"))
        self.assertEqual((m[0]["referer"], m[0]["ua"]), ("http://r/", "t/1"))
        self.assertEqual(m[1]["status"], "404")
        self.assertEqual(m[2]["request"], "GET /delay?ms=120 HTTP/1.1")
        self.assertGreaterEqual(float(m[2]["rt"]), 0.1)  # the request time is measured

    def test_common_format_and_bad_requests(self):
        s = self.start({"log": {"access_log_format": "common"}})
        s.request("GET", "/hello")
        data, closed = s.raw(b"GARBAGE\r\n\r\n")
        self.assertTrue(data.startswith(b"HTTP/1.1 400 "))
        lines = read_lines(s.access_log, 2)
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(all(COMMON.match(line) for line in lines), lines)
        self.assertIn('"-" 400 ', lines[1])

    def test_escaping_keeps_one_line_per_request(self):
        s = self.start({})
        s.request("GET", "/hello", headers={"User-Agent": 'evil" "x\\'})
        line = read_lines(s.access_log, 1)[0]
        self.assertIn('"evil\\x22 \\x22x\\x5C"', line)
        self.assertTrue(COMBINED.match(line), line)

    def test_reopen_on_usr1(self):
        s = self.start({})
        s.request("GET", "/hello")
        read_lines(s.access_log, 1)
        moved = s.access_log + ".1"
        os.rename(s.access_log, moved)
        moved_err = s.error_log + ".1"
        os.rename(s.error_log, moved_err)
        s.send_signal(signal.SIGUSR1)
        # The primary passes the signal on to the workers asynchronously: keep
        # requesting until a line lands in a new file at the old path.
        def reopened():
            s.request("GET", "/json")
            return os.path.exists(s.access_log) and read_lines(s.access_log, 1, timeout=1.5)
        lines = wait_for(reopened, timeout=20)
        self.assertTrue(lines, "access log not reopened")
        self.assertIn('"GET /json HTTP/1.1" 200', lines[0])
        with open(moved) as f:
            self.assertIn("GET /hello", f.read())
        self.assertTrue(wait_for(lambda: os.path.exists(s.error_log)), "error log not reopened")

    def test_graceful_stop_flushes(self):
        s = self.start({})
        for _ in range(5):
            s.request("GET", "/hello")
        self.assertEqual(s.stop(), 0)
        with open(s.access_log) as f:
            self.assertEqual(len(f.read().splitlines()), 5)


class ProxyTrustTest(harness.unittest.TestCase):
    def start(self, trusted):
        server = Server({"proxy": {"trusted": trusted}})
        server.sections["log"]["access_log"] = server.access_log
        server.write_conf()
        self.addCleanup(server.stop)
        return server.start()

    def addrs(self, s, n):
        return [COMBINED.match(line)["addr"] for line in read_lines(s.access_log, n)]

    def test_trusted_peer_forwarded_for(self):
        s = self.start("127.0.0.1, ::1")
        s.request("GET", "/hello", headers={"X-Forwarded-For": "203.0.113.7"})
        # the nearest untrusted address from the right wins; trusted hops are skipped
        s.request("GET", "/hello", headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.9, 127.0.0.1"})
        s.request("GET", "/hello", headers={"X-Real-IP": "192.0.2.5"})
        s.request("GET", "/hello", headers={"X-Forwarded-For": "not-an-address"})
        self.assertEqual(self.addrs(s, 4), ["203.0.113.7", "203.0.113.9", "192.0.2.5", "127.0.0.1"])

    def test_untrusted_peer_cannot_spoof(self):
        s = self.start("10.1.2.3")
        s.request("GET", "/hello", headers={"X-Forwarded-For": "203.0.113.7"})
        s.request("GET", "/hello", headers={"X-Real-IP": "192.0.2.5"})
        self.assertEqual(self.addrs(s, 2), ["127.0.0.1", "127.0.0.1"])

    def test_empty_trust_list(self):
        s = self.start('""')
        s.request("GET", "/hello", headers={"X-Forwarded-For": "203.0.113.7"})
        self.assertEqual(self.addrs(s, 1), ["127.0.0.1"])


class ErrorLogTest(harness.unittest.TestCase):
    def test_line_shape_and_level(self):
        s = Server({"log": {"level": "info"}})
        self.addCleanup(s.stop)
        s.start()
        s.json("POST", "/orders", {"userId": "u-log", "items": [{"productId": "widget", "quantity": 1}]})
        self.assertTrue(wait_for(lambda: "email: order" in s.log()))
        line = [l for l in s.log().splitlines() if "email: order" in l][0]
        self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \[info\] \d+#\d+: email: order ")

    def test_level_filters(self):
        s = Server({"log": {"level": "warn"}})
        self.addCleanup(s.stop)
        s.start()
        s.json("POST", "/orders", {"userId": "u-log", "items": [{"productId": "widget", "quantity": 1}]})
        s.stop()
        self.assertNotIn("[info]", s.log())


if __name__ == "__main__":
    harness.main()
