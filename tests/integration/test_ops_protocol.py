"""The request line's version is exactly "HTTP/" DIGIT "." DIGIT.

llhttp 8.1 also accepts other protocol names there ("RTSP/1.0", and "ICE/1.0"
after SOURCE) and answered them as HTTP requests. forkd refuses them with 400
and closes the connection, as it does any malformed version; a version of the
right form that forkd does not speak (2.0, 0.9) keeps its 505. Each case is
delivered whole, line by line and byte by byte, and a normal request must
still be answered afterwards.
"""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def line(method, target, version):
    return b"%s %s %s\r\nHost: x\r\n\r\n" % (method, target, version)


# (name, request, status); every refusal also closes the connection.
CASES = [
    ("RTSP/1.0 after GET (answered 200 before)", line(b"GET", b"/hello", b"RTSP/1.0"), 400),
    ("RTSP/1.1 after GET", line(b"GET", b"/hello", b"RTSP/1.1"), 400),
    ("RTSP/1.0 after DESCRIBE", line(b"DESCRIBE", b"/hello", b"RTSP/1.0"), 400),
    ("RTSP/1.0 after OPTIONS *", line(b"OPTIONS", b"*", b"RTSP/1.0"), 400),
    ("ICE/1.0 after SOURCE", line(b"SOURCE", b"/hello", b"ICE/1.0"), 400),
    ("ICE/1.0 after GET", line(b"GET", b"/hello", b"ICE/1.0"), 400),
    ("HTTPS/1.1", line(b"GET", b"/hello", b"HTTPS/1.1"), 400),
    ("lower-case http/1.1", line(b"GET", b"/hello", b"http/1.1"), 400),
    ("Http/1.1", line(b"GET", b"/hello", b"Http/1.1"), 400),
    ("HTTP/1 without a minor version", line(b"GET", b"/hello", b"HTTP/1"), 400),
    ("HTTP/1. without a minor digit", line(b"GET", b"/hello", b"HTTP/1."), 400),
    ("HTTP/11 without a dot", line(b"GET", b"/hello", b"HTTP/11"), 400),
    ("HTTP/1.10, two minor digits", line(b"GET", b"/hello", b"HTTP/1.10"), 400),
    ("HTTP/01.1, two major digits", line(b"GET", b"/hello", b"HTTP/01.1"), 400),
    ("HTTP/1.1x, trailing text", line(b"GET", b"/hello", b"HTTP/1.1x"), 400),
    ("HTTP/ 1.1, a space inside", line(b"GET", b"/hello", b"HTTP/ 1.1"), 400),
    ("HTTP/a.b", line(b"GET", b"/hello", b"HTTP/a.b"), 400),
    ("HTTP/2.0: well-formed, not spoken", line(b"GET", b"/hello", b"HTTP/2.0"), 505),
    ("HTTP/0.9: well-formed, not spoken", line(b"GET", b"/hello", b"HTTP/0.9"), 505),
]


def deliveries(data):
    lines = data.splitlines(keepends=True)
    return [("whole", [data]), ("lines", lines), ("bytes", [data[i:i + 1] for i in range(len(data))])]


class StrictVersion(harness.ServerCase):
    def send(self, pieces):
        with self.server.connect() as s:
            for part in pieces:
                try:
                    s.sendall(part)
                except (BrokenPipeError, ConnectionResetError):
                    break
                if len(pieces) > 1:
                    time.sleep(0.0002)
            return harness.read_all(s, 10)

    def test_refused_and_closed(self):
        for name, data, status in CASES:
            for how, pieces in deliveries(data):
                with self.subTest(case=name, delivery=how):
                    out, closed = self.send(pieces)
                    responses = harness.parse_responses(out)
                    self.assertEqual([r[0] for r in responses], [status])
                    self.assertTrue(closed)
                    self.assertIn(("connection", "close"), responses[0][1])
        status, _, body = self.server.request("GET", "/hello")
        self.assertEqual((status, body), (200, b"Hello World!"))

    def test_http_versions_still_served(self):
        for version in (b"HTTP/1.1", b"HTTP/1.0"):
            for how, pieces in deliveries(line(b"GET", b"/hello", version)):
                with self.subTest(version=version, delivery=how):
                    with self.server.connect() as s:
                        for part in pieces:
                            s.sendall(part)
                        out, _ = harness.read_all(s, 2)
                    responses = harness.parse_responses(out)
                    self.assertEqual(responses[0][0], 200)
                    self.assertEqual(responses[0][2], b"Hello World!")

    def test_no_crash_logged(self):
        self.assertNotIn("crash", self.server.log().lower())


if __name__ == "__main__":
    harness.main()
