"""forkd's routes through a real client: the curl binary, run as a subprocess.

curl checks framing its own way (and complains about a wrong Content-Length,
a body after HEAD, or a broken chunked stream), and shows in its -v output
whether it could reuse a kept-alive connection.
"""
import json
import re
import subprocess

import harness

CURL = harness.need_tool("curl", "curl")


def split_responses(out):
    """Splits curl -i output into [(status, headers dict, body)]; every forkd
    answer here must carry a Content-Length."""
    responses = []
    for status, headers, body in harness.parse_responses(out):
        headers = dict(headers)
        if "content-length" not in headers:
            raise AssertionError("response without Content-Length in curl output")
        responses.append((status, headers, body))
    return responses


class CurlTest(harness.ServerCase):

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.port, path)

    def curl(self, *args, stdin=None):
        """Runs curl; returns (stdout, stderr) after checking it exited 0."""
        cmd = [CURL, "-sS", "--noproxy", "*", "--max-time", "30"] + list(args)
        p = subprocess.run(cmd, input=stdin, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, "curl %s: %s" % (args, p.stderr.decode(errors="replace")))
        return p.stdout, p.stderr.decode(errors="replace")

    def one(self, *args, stdin=None):
        """One request with -i: (status, headers, body)."""
        out, _ = self.curl("-i", *args, stdin=stdin)
        responses = split_responses(out)
        self.assertEqual(len(responses), 1, out)
        status, headers, body = responses[0]
        self.assertEqual(headers.get("server"), "forkd")
        self.assertIn("date", headers)
        self.assertEqual(int(headers["content-length"]), len(body))
        return status, headers, body

    def post_json(self, path, data, *extra):
        return self.one("-H", "Content-Type: application/json", "-d", data, *extra, self.url(path))

    def test_hello(self):
        status, headers, body = self.one(self.url("/hello"))
        self.assertEqual((status, body), (200, b"Hello World!"))
        self.assertEqual(headers["content-type"], "text/plain")
        self.assertEqual(headers["content-length"], "12")

    def test_json(self):
        status, headers, body = self.one(self.url("/json"))
        self.assertEqual((status, body), (200, b'{"message":"Hello, World!"}'))
        self.assertEqual(headers["content-type"], "application/json")

    def test_health(self):
        status, _, body = self.one(self.url("/health"))
        self.assertEqual(status, 200)
        obj = json.loads(body)
        self.assertEqual(obj["status"], "ok")
        self.assertIsInstance(obj["pid"], int)

    def test_delay(self):
        status, _, body = self.one(self.url("/delay?ms=100"))
        self.assertEqual((status, body), (200, b'{"delayed_ms":100}'))
        status, _, body = self.one(self.url("/delay?ms=abc"))
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body), {"error": "ms must be an integer from 0 to 10000"})

    def test_post_json_with_d(self):
        status, headers, body = self.post_json("/echo", '{"a":[1,2,{"b":"c"}],"s":"x y"}')
        self.assertEqual((status, body), (200, b'{"a":[1,2,{"b":"c"}],"s":"x y"}'))
        self.assertEqual(headers["content-type"], "application/json")

    def test_post_without_json_content_type(self):
        # -d alone sends application/x-www-form-urlencoded.
        status, _, body = self.one("-d", '{"a":1}', self.url("/echo"))
        self.assertEqual(status, 415)
        self.assertEqual(json.loads(body), {"error": "Content-Type must be application/json"})

    def test_post_invalid_json(self):
        status, _, body = self.post_json("/echo", '{"a":')
        self.assertEqual(status, 400)
        self.assertTrue(json.loads(body)["error"].startswith("invalid JSON"))

    def test_post_chunked_upload(self):
        # Reading the body from stdin with this header makes curl send it chunked.
        status, _, body = self.one("-H", "Transfer-Encoding: chunked", "-H",
                                   "Content-Type: application/json", "--data-binary", "@-",
                                   self.url("/echo"), stdin=b'{"chunked":true,"n":[1,2,3]}')
        self.assertEqual((status, body), (200, b'{"chunked":true,"n":[1,2,3]}'))

    def test_order(self):
        status, _, body = self.post_json(
            "/orders", '{"userId":"curl","items":[{"productId":"widget","quantity":2}]}')
        self.assertEqual(status, 201)
        order = json.loads(body)
        self.assertEqual(order, {"id": order["id"], "userId": "curl",
                                 "items": [{"productId": "widget", "quantity": 2}],
                                 "status": "placed"})
        status, _, body = self.post_json("/orders", '{"userId":"curl","items":[]}')
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body), {"error": "items must be an array of 1 to 100 items"})
        status, _, body = self.one(self.url("/inventory"))
        self.assertEqual(status, 200)
        self.assertEqual(sorted(json.loads(body)["stock"]), ["P001", "P002", "gadget", "gizmo", "widget"])

    def test_404_and_405(self):
        status, _, body = self.one(self.url("/nope"))
        self.assertEqual((status, body), (404, b'{"error":"not found"}'))
        status, headers, body = self.one("-X", "POST", "-d", "", self.url("/hello"))
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, HEAD, OPTIONS")
        self.assertEqual(body, b'{"error":"method not allowed"}')

    def test_keep_alive_reuse(self):
        """Several URLs in one invocation go over one connection."""
        paths = ["/hello", "/json", "/health", "/delay?ms=0", "/nope"]
        out, err = self.curl("-v", "-w", "[%{http_code} %{num_connects}]",
                             *[self.url(p) for p in paths])
        self.assertEqual(err.count("Re-using existing connection"), len(paths) - 1, err)
        self.assertEqual(err.count("Connected to 127.0.0.1"), 1, err)
        marks = re.findall(rb"\[(\d{3}) (\d+)\]", out)
        self.assertEqual(marks, [(b"200", b"1"), (b"200", b"0"), (b"200", b"0"),
                                 (b"200", b"0"), (b"404", b"0")])
        self.assertTrue(out.startswith(b'Hello World![200 1]{"message":"Hello, World!"}[200 0]'),
                        out)

    def test_head_with_I(self):
        for path, length, ctype in (("/hello", "12", "text/plain"),
                                    ("/json", "27", "application/json")):
            with self.subTest(path=path):
                out, err = self.curl("-I", "-v", self.url(path))
                self.assertIn("> HEAD %s HTTP/1.1" % path, err)
                self.assertTrue(out.endswith(b"\r\n\r\n"), out)  # headers only, no body
                lines = out.decode().split("\r\n")
                self.assertEqual(lines[0], "HTTP/1.1 200 OK")
                headers = dict(l.split(": ", 1) for l in lines[1:] if l)
                self.assertEqual(headers["Content-Length"], length)
                self.assertEqual(headers["Content-Type"], ctype)
                self.assertEqual(headers["Server"], "forkd")
                # curl would complain if a body followed; it keeps the connection.
                self.assertIn("left intact", err)

    def test_http10(self):
        out, err = self.curl("-i", "-v", "--http1.0", self.url("/hello"), self.url("/json"))
        self.assertIn("> GET /hello HTTP/1.0", err)
        responses = split_responses(out)
        self.assertEqual([(s, b) for s, _, b in responses],
                         [(200, b"Hello World!"), (200, b'{"message":"Hello, World!"}')])
        for _, headers, _ in responses:
            self.assertEqual(headers["connection"], "close")
        # No keep-alive by default for HTTP/1.0: a new connection per URL.
        self.assertNotIn("Re-using existing connection", err)
        self.assertEqual(err.count("Connected to 127.0.0.1"), 2, err)

    def test_http10_keep_alive(self):
        out, err = self.curl("-i", "-v", "--http1.0", "-H", "Connection: keep-alive",
                             self.url("/hello"), self.url("/json"))
        responses = split_responses(out)
        self.assertEqual([s for s, _, _ in responses], [200, 200])
        self.assertEqual(responses[0][1]["connection"], "keep-alive")
        self.assertIn("Re-using existing connection", err)

    def test_connection_close(self):
        out, err = self.curl("-i", "-v", "-H", "Connection: close", self.url("/hello"),
                             self.url("/json"))
        responses = split_responses(out)
        self.assertEqual([(s, h["connection"]) for s, h, _ in responses],
                         [(200, "close"), (200, "close")])
        self.assertNotIn("Re-using existing connection", err)
        self.assertEqual(err.count("Connected to 127.0.0.1"), 2, err)


if __name__ == "__main__":
    harness.main()
