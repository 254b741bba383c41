"""No leak after 10,000 mixed requests.

Against a forkd built with AddressSanitizer (scripts/test's ASan build), with
LeakSanitizer on: good requests pipelined on keep-alive connections (every
route, chunked bodies, Expect: 100-continue, pool jobs, streams), every
malformed request of test_hardening on its own connection, and clients that
leave mid-head, mid-body, mid-pipeline, mid-/delay, mid-/hash and
mid-stream. Then a graceful stop, and LeakSanitizer must have nothing to say.
On a build without ASan the test is skipped: there is nothing to ask.
"""
import json
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_hardening import CASES, LEAVERS  # noqa: E402

TOTAL = 10000
BATCH = 50


def request(method, path, body=None, headers=(), chunked=False):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: x"] + list(headers)
    if body is not None and chunked:
        lines.append("Transfer-Encoding: chunked")
        half = len(body) // 2
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]) if p)
        body = payload + b"0\r\n\r\n"
    elif body is not None:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def json_post(path, obj, **kw):
    return request("POST", path, json.dumps(obj).encode(), ["Content-Type: application/json"],
                   **kw)


GOOD = [
    request("GET", "/hello"),
    request("GET", "/json"),
    request("GET", "/health"),
    request("GET", "/inventory"),
    request("GET", "/nope?x=1"),
    request("POST", "/hello", b""),
    request("GET", "/delay?ms=0"),
    request("GET", "/delay?ms=2"),
    request("GET", "/delay?ms=x"),
    json_post("/echo", {"a": [1, 2, 3], "s": "x" * 200}),
    json_post("/echo", {"chunked": True}, chunked=True),
    request("POST", "/echo", b'{"a":', ["Content-Type: application/json"]),
    request("POST", "/echo", b"{}", ["Content-Type: text/plain"]),
    request("POST", "/echo", b'{"e":1}', ["Content-Type: application/json",
                                          "Expect: 100-continue"]),
    json_post("/orders", {"userId": "u", "items": [{"productId": "widget", "quantity": 1}]}),
    json_post("/orders", {"userId": "u", "items": []}),
    json_post("/hash", {"password": "secret"}),
    json_post("/hash", {"password": ""}),
    request("GET", "/debug/stream?kb=64"),
    request("GET", "/hello", headers=["X-Forwarded-For: 1.2.3.4", "X-Real-IP: 5.6.7.8"]),
]

def take_response(buf):
    """One complete response off the front of buf: (status, rest), or None
    when buf does not hold one yet. Interim (1xx) responses are skipped."""
    while True:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if not sep:
            return None
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        fields = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            fields[k.strip().lower()] = v.strip()
        if status < 200:
            buf = rest
            continue
        if b"content-length" in fields:
            n = int(fields[b"content-length"])
            return (status, rest[n:]) if len(rest) >= n else None
        if fields.get(b"transfer-encoding") == b"chunked":
            end = rest.find(b"\r\n0\r\n\r\n")
            if rest.startswith(b"0\r\n\r\n"):
                return status, rest[5:]
            return (status, rest[end + 7:]) if end >= 0 else None
        return status, rest


class LeakTest(unittest.TestCase):

    def test_no_leak_after_mixed_requests(self):
        if not harness.asan_build():
            self.skipTest("forkd is not built with AddressSanitizer")
        options = os.environ.get("ASAN_OPTIONS", "")
        server = harness.Server(
            {"http": {"max_body_size": "4k"},
             "example": {"bcrypt_cost": "4", "debug_routes": "on"}},
            env={"ASAN_OPTIONS": (options + ":" if options else "") + "detect_leaks=1"})
        server.start()
        sent = 0
        try:
            sent += self.bad_ones(server)
            sent += self.leavers(server)
            sent += self.good_ones(server, TOTAL - sent)
            self.assertEqual(server.request("GET", "/hello")[0], 200)
        except BaseException:
            server.stop(signal.SIGKILL)
            raise
        self.assertGreaterEqual(sent, TOTAL)
        # A graceful stop; the harness fails on any sanitizer report, and
        # the report is asked for explicitly here as well.
        server.stop()
        self.assertNotIn(b"LeakSanitizer", server.stderr_text)
        self.assertEqual(server.proc.returncode, 0)

    def bad_ones(self, server):
        n = 0
        for _ in range(10):
            for name, data, statuses, closed in CASES:
                if not closed:
                    continue  # kept open: raw() would wait for its timeout
                out, _ = server.raw(data, timeout=10)
                self.assertTrue(out.startswith(b"HTTP/1.1 %d " % statuses[0]), (name, out[:80]))
                n += len(statuses)
        return n

    def leavers(self, server):
        n = 0
        for _ in range(100):
            for data, read in LEAVERS:
                with server.connect() as s:
                    s.sendall(data)
                    harness.recv_upto(s, read)
                n += 1
        return n

    def good_ones(self, server, count):
        n = 0
        i = 0
        while n < count:
            with server.connect(30) as s:
                for _ in range(4):  # a few batches per connection
                    batch = [GOOD[(i + k) % len(GOOD)] for k in range(BATCH)]
                    i += BATCH
                    s.sendall(b"".join(batch))
                    buf = b""
                    done = 0
                    while done < len(batch):
                        r = take_response(buf)
                        if r is None:
                            chunk = s.recv(1 << 20)
                            self.assertTrue(chunk, "closed after %d of a batch" % done)
                            buf += chunk
                            continue
                        status, buf = r
                        self.assertLess(status, 500)
                        done += 1
                    n += done
        return n


if __name__ == "__main__":
    harness.main()
