"""The core of forkd against the real binary: the example app's routes (but
POST /hash, /hash/verify and /metrics, which test_hash and test_metrics
cover), keep-alive, pipelining, chunked request bodies, HEAD, 404/405,
HTTP/1.0, Connection: close, malformed requests, 505 and 501, and the
keep-alive request limit.

Responses are read from raw sockets by the small reader below, so framing
mistakes (a body after HEAD, a wrong Content-Length) show up as a broken next
response instead of being smoothed over by a client library.
"""
import email.utils
import json
import os
import re
import socket
import time

import harness
from harness import Server, wait_for

DATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                  r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                  r"\d{2}:\d{2}:\d{2} GMT$")
HELLO = b"Hello World!"
JSON_HELLO = b'{"message":"Hello, World!"}'
NOT_FOUND = b'{"error":"not found"}'


class Response:
    """One parsed response: status, reason, headers (a list of lower-case
    names and values, in order), h (the same as a dict), body and the raw head."""

    def __init__(self, status, reason, headers, body, head):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.h = dict(headers)
        self.body = body
        self.head = head

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %r %r>" % (self.status, self.reason, self.headers, self.body[:200])


class Client:
    """A raw connection that reads responses one at a time, in order."""

    def __init__(self, server, timeout=10):
        self.sock = server.connect(timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection; unread: %r" % self.buf[:200])
        self.buf += chunk

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def response(self, head=False):
        """Reads one response; head=True when it answers HEAD (no body follows)."""
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        m = re.match(rb"^HTTP/1\.1 (\d{3}) ([^\r\n]*)$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        status = int(m.group(1))
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep or name != name.strip():
                raise AssertionError("bad header line %r" % line)
            headers.append((name.decode().lower(), value.strip().decode()))
        h = dict(headers)
        if head or status in (204, 304) or status < 200:
            body = b""
        elif "content-length" in h:
            body = self.take(int(h["content-length"]))
        elif h.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    break
                body += self.take(size)
                if self.take(2) != b"\r\n":
                    raise AssertionError("chunk not followed by CRLF")
        else:
            body = self.rest()
        return Response(status, m.group(2).decode(), headers, body, raw + b"\r\n\r\n")

    def rest(self):
        """Reads until the server closes; returns what came."""
        while True:
            try:
                self.fill()
            except EOFError:
                data, self.buf = self.buf, b""
                return data

    def closed(self, timeout=5):
        """Whether the server closes the connection (with nothing more sent) within timeout."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return not self.buf
        return data == b"" and not self.buf


def request(method, path, headers=None, body=None, version="HTTP/1.1"):
    """The bytes of one request. Host is added for HTTP/1.1; a body gets a
    Content-Length unless headers frame it themselves."""
    lines = ["%s %s %s" % (method, path, version)]
    hdrs = dict(headers or {})
    if version == "HTTP/1.1":
        hdrs.setdefault("Host", "127.0.0.1")
    if body is not None and "Transfer-Encoding" not in hdrs:
        hdrs.setdefault("Content-Length", str(len(body)))
    lines += ["%s: %s" % kv for kv in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def post_json(path, obj, version="HTTP/1.1", extra=None):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(extra or {})
    return request("POST", path, headers, body, version)


def compact(obj):
    """JSON as forkd writes it: compact, keys in order, UTF-8 as is."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def exchange(server, data, head=False):
    """Sends data on a new connection and reads one response."""
    with Client(server) as c:
        c.send(data)
        return c.response(head)


def parent_pid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


class Checks:
    """Assertions every test class shares."""

    def assert_common(self, r):
        """What every response carries: Date, Server, and its framing."""
        self.assertEqual(r.h.get("server"), "forkd", r)
        self.assertRegex(r.h.get("date", ""), DATE)
        when = email.utils.parsedate_to_datetime(r.h["date"]).timestamp()
        # The clock it shows is the real one (a sanity bound, not a timing one).
        self.assertLess(abs(when - time.time()), 3600)
        names = [n for n, _ in r.headers]
        for once in ("server", "date", "content-length", "content-type", "connection"):
            self.assertLessEqual(names.count(once), 1, r)
        if r.status not in (204, 304):
            framed = ("content-length" in r.h) + (r.h.get("transfer-encoding") == "chunked")
            self.assertEqual(framed, 1, r)

    def assert_json(self, r, status, body):
        """status, a JSON content type, and exactly body (bytes, or an object)."""
        self.assert_common(r)
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.h.get("content-type"), "application/json", r)
        if isinstance(body, bytes):
            self.assertEqual(r.body, body)
        else:
            self.assertEqual(r.json(), body)
        self.assertEqual(int(r.h["content-length"]), len(r.body))

    def assert_error(self, r, status, message=None):
        """A JSON error: {"error": message} (any non-empty text when message is None)."""
        self.assert_json(r, status, r.json())
        obj = r.json()
        self.assertEqual(list(obj), ["error"], r)
        if message is None:
            self.assertIsInstance(obj["error"], str)
            self.assertTrue(obj["error"])
        else:
            self.assertEqual(obj["error"], message)

    def assert_refused(self, data, status, message=None):
        """data is answered with a JSON error and Connection: close, then the
        connection closes; anything pipelined after it is not answered."""
        with Client(self.server) as c:
            c.send(data + request("GET", "/hello"))
            r = c.response()
            self.assert_error(r, status, message)
            self.assertEqual(r.h.get("connection"), "close", r)
            self.assertTrue(c.closed(), "connection left open after %d" % status)
        return r


class CoreTest(Checks, harness.ServerCase):
    """One forkd with the shipped defaults, shared by the tests below."""

    # ---- GET /hello, /json, /health ----

    def test_hello(self):
        r = exchange(self.server, request("GET", "/hello"))
        self.assert_common(r)
        self.assertEqual((r.status, r.reason), (200, "OK"))
        self.assertEqual(r.body, HELLO)
        self.assertEqual(r.h["content-type"], "text/plain")
        self.assertEqual(r.h["content-length"], "12")
        # Exactly these headers: no Connection header on a kept-alive HTTP/1.1 answer.
        self.assertEqual(sorted(r.h),
                         ["content-length", "content-type", "date", "server", "x-request-id"])
        self.assertTrue(r.head.startswith(b"HTTP/1.1 200 OK\r\n"))

    def test_hello_through_http_client(self):
        status, headers, body = self.server.request("GET", "/hello")
        self.assertEqual((status, body), (200, HELLO))
        self.assertEqual(headers["content-length"], "12")

    def test_json(self):
        r = exchange(self.server, request("GET", "/json"))
        self.assert_json(r, 200, JSON_HELLO)
        self.assertEqual(r.h["content-length"], str(len(JSON_HELLO)))
        self.assertEqual(sorted(r.h),
                         ["content-length", "content-type", "date", "server", "x-request-id"])

    def test_health(self):
        r = exchange(self.server, request("GET", "/health"))
        self.assert_json(r, 200, r.json())
        body = r.json()
        # {"status":"ok","pid":N} first; later features may add keys after them.
        self.assertEqual(list(body)[:2], ["status", "pid"])
        self.assertEqual(body["status"], "ok")
        self.assertIsInstance(body["pid"], int)
        self.assertNotIsInstance(body["pid"], bool)
        # The process answering is forkd itself or one of its workers.
        pid = self.server.proc.pid
        self.assertTrue(body["pid"] == pid or parent_pid(body["pid"]) == pid, body)

    def test_query_string_does_not_change_the_route(self):
        r = exchange(self.server, request("GET", "/hello?x=1&y=%20"))
        self.assertEqual((r.status, r.body), (200, HELLO))

    # ---- POST /echo ----

    def test_echo_round_trip(self):
        objects = [
            {},
            {"a": 1},
            {"s": "caf\u00e9 \u2603 \"quoted\" back\\slash\ttab\nline", "n": -12345678901,
             "f": 1.5, "t": True, "fl": False, "z": None},
            {"nested": {"list": [1, [2, [3, {"deep": []}]]], "obj": {"k": "v"}}, "b": "x"},
            {"big": "x" * 100000},
        ]
        for obj in objects:
            with self.subTest(obj=str(obj)[:60]):
                r = exchange(self.server, post_json("/echo", obj))
                self.assert_json(r, 200, compact(obj))

    def test_echo_accepts_json_content_type_parameters(self):
        for ctype in ("application/json; charset=utf-8", "Application/JSON"):
            with self.subTest(ctype=ctype):
                r = exchange(self.server, request("POST", "/echo", {"Content-Type": ctype},
                                                  b'{"k":"v"}'))
                self.assert_json(r, 200, b'{"k":"v"}')

    def test_echo_invalid_json(self):
        for body in (b"{", b'{"a":}', b"{x:1}", b'{"a":1}}', b"\xff\xfe", b'{"a":1,"a":2}'):
            with self.subTest(body=body):
                r = exchange(self.server, post_json("/echo", body))
                self.assert_error(r, 400)
                self.assertTrue(r.json()["error"].startswith("invalid JSON at line 1 column "),
                                r.json())

    def test_echo_wrong_or_missing_content_type(self):
        message = "Content-Type must be application/json"
        for headers in ({"Content-Type": "text/plain"},
                        {"Content-Type": "application/x-www-form-urlencoded"},
                        {"Content-Type": "application/jsonx"},
                        {}):
            with self.subTest(headers=headers):
                r = exchange(self.server, request("POST", "/echo", headers, b'{"a":1}'))
                self.assert_error(r, 415, message)

    def test_echo_non_object(self):
        for body in (b"[1,2]", b"[]", b'[{"a":1}]'):
            with self.subTest(body=body):
                r = exchange(self.server, post_json("/echo", body))
                self.assert_error(r, 400, "JSON body must be an object")

    def test_echo_scalar_is_valid_json_but_not_an_object(self):
        for body in (b'"text"', b"3", b"null", b"true"):
            with self.subTest(body=body):
                r = exchange(self.server, post_json("/echo", body))
                self.assert_error(r, 400, "JSON body must be an object")

    def test_echo_empty_body(self):
        r = exchange(self.server, post_json("/echo", b""))
        self.assert_error(r, 400, "request body is empty")
        # No Content-Length at all: an empty body too.
        r = exchange(self.server, request("POST", "/echo", {"Content-Type": "application/json"}))
        self.assert_error(r, 400, "request body is empty")

    # ---- GET /delay ----

    def test_delay_zero(self):
        r = exchange(self.server, request("GET", "/delay?ms=0"))
        self.assert_json(r, 200, b'{"delayed_ms":0}')

    def test_delay_waits(self):
        start = time.monotonic()
        r = exchange(self.server, request("GET", "/delay?ms=200"))
        elapsed = time.monotonic() - start
        self.assert_json(r, 200, b'{"delayed_ms":200}')
        # It did wait (a lower bound: only a timer that fires early fails it).
        self.assertGreaterEqual(elapsed, 0.18)

    def test_delay_requests_wait_together(self):
        """200 requests of 200 ms each. Served one after another they would
        take 40 s; the loop never blocks, so they finish together. The bound
        is 20 s: a behaviour check with a huge margin, not a speed test."""
        clients = [Client(self.server, timeout=60) for _ in range(200)]
        try:
            start = time.monotonic()
            for c in clients:
                c.send(request("GET", "/delay?ms=200"))
            responses = [c.response() for c in clients]
            elapsed = time.monotonic() - start
        finally:
            for c in clients:
                c.close()
        for r in responses:
            self.assertEqual((r.status, r.body), (200, b'{"delayed_ms":200}'))
        self.assertLess(elapsed, 20.0)

    def test_delay_bad_values(self):
        message = "ms must be an integer from 0 to 10000"
        for query in ("ms=-1", "ms=10001", "ms=abc", "", "ms=", "other=5", "ms=1.5",
                      "ms=%2B5", "ms=5x", "ms=99999999999999999999"):
            with self.subTest(query=query):
                r = exchange(self.server, request("GET", "/delay?" + query if query else "/delay"))
                self.assert_error(r, 400, message)

    # ---- POST /orders, GET /inventory ----

    def inventory(self):
        r = exchange(self.server, request("GET", "/inventory"))
        self.assert_json(r, 200, r.json())
        return r.json()

    def email_lines(self):
        return [l for l in self.server.log().splitlines() if "email: order" in l]

    def test_inventory_shape(self):
        inv = self.inventory()
        self.assertLessEqual({"pid", "scope", "stock"}, set(inv))
        self.assertIsInstance(inv["pid"], int)
        self.assertEqual(inv["scope"], "worker")
        # [example] products' default: the seed's P001 and P002 among them.
        self.assertEqual(inv["stock"], {"widget": 1000, "gadget": 500, "gizmo": 100,
                                        "P001": 100, "P002": 100})
        for count in inv["stock"].values():
            self.assertIsInstance(count, int)
            self.assertGreaterEqual(count, 0)

    def test_order_placed(self):
        before = self.inventory()["stock"]
        order = {"userId": "user-7",
                 "items": [{"productId": "widget", "quantity": 3},
                           {"productId": "gadget", "quantity": 2}],
                 "note": "fields forkd does not know are dropped"}
        r = exchange(self.server, post_json("/orders", order))
        self.assert_json(r, 201, r.json())
        self.assertEqual(r.reason, "Created")
        body = r.json()
        self.assertIsInstance(body.get("id"), str)
        self.assertRegex(body["id"], r"^\d+-\d+$")
        self.assertEqual(body, {"id": body["id"], "userId": "user-7",
                                "items": order["items"], "status": "placed"})
        # The inventory listener took the quantities.
        after = self.inventory()["stock"]
        self.assertEqual(after, dict(before, widget=before["widget"] - 3,
                                     gadget=before["gadget"] - 2))
        # The email and analytics listeners ran for this order.
        email_line = "email: order %s confirmed to user user-7" % body["id"]
        analytics_line = "analytics: order %s, 2 item(s)" % body["id"]
        log = wait_for(lambda: email_line in self.server.log() and
                       analytics_line in self.server.log() and self.server.log(), timeout=10)
        self.assertTrue(log, self.server.log()[-2000:])
        # Each order gets its own id.
        r2 = exchange(self.server, post_json("/orders", {
            "userId": "u", "items": [{"productId": "gizmo", "quantity": 1}]}))
        self.assertEqual(r2.status, 201)
        self.assertNotEqual(r2.json()["id"], body["id"])

    def test_seed_order(self):
        """The order of the Node.js notes forkd comes from is accepted as written."""
        order = {"userId": "U123", "items": [{"productId": "P001", "quantity": 2},
                                             {"productId": "P002", "quantity": 1}]}
        before = self.inventory()["stock"]
        r = exchange(self.server, post_json("/orders", order))
        self.assert_json(r, 201, r.json())
        self.assertEqual(r.json()["items"], order["items"])
        after = self.inventory()["stock"]
        self.assertEqual(after, dict(before, P001=before["P001"] - 2, P002=before["P002"] - 1))

    def test_order_invalid_fields(self):
        cases = [
            ({}, "userId must be a non-empty string"),
            ({"userId": "", "items": [{"productId": "widget", "quantity": 1}]},
             "userId must be a non-empty string"),
            ({"userId": 5, "items": [{"productId": "widget", "quantity": 1}]},
             "userId must be a non-empty string"),
            ({"userId": "x" * 129, "items": [{"productId": "widget", "quantity": 1}]},
             "userId must be a non-empty string"),
            ({"userId": "u"}, "items must be an array of 1 to 100 items"),
            ({"userId": "u", "items": []}, "items must be an array of 1 to 100 items"),
            ({"userId": "u", "items": {"productId": "widget"}},
             "items must be an array of 1 to 100 items"),
            ({"userId": "u", "items": [{"productId": "widget", "quantity": 1}] * 101},
             "items must be an array of 1 to 100 items"),
            ({"userId": "u", "items": ["widget"]}, "items[0] must be an object"),
            ({"userId": "u", "items": [{"productId": "widget", "quantity": 1}, {"quantity": 1}]},
             "items[1].productId must be a non-empty string"),
            ({"userId": "u", "items": [{"productId": "", "quantity": 1}]},
             "items[0].productId must be a non-empty string"),
            ({"userId": "u", "items": [{"productId": 7, "quantity": 1}]},
             "items[0].productId must be a non-empty string"),
        ]
        for q in (0, -1, 1001, "2", 1.5, None, True):
            cases.append(({"userId": "u", "items": [{"productId": "widget", "quantity": q}]},
                          "items[0].quantity must be an integer from 1 to 1000"))
        cases.append(({"userId": "u", "items": [{"productId": "widget"}]},
                      "items[0].quantity must be an integer from 1 to 1000"))
        before = self.inventory()["stock"]
        for order, message in cases:
            with self.subTest(order=str(order)[:80]):
                r = exchange(self.server, post_json("/orders", order))
                self.assert_error(r, 400, message)
        self.assertEqual(self.inventory()["stock"], before)

    def test_order_unknown_product(self):
        before = self.inventory()["stock"]
        emails = len(self.email_lines())
        r = exchange(self.server, post_json("/orders", {
            "userId": "u", "items": [{"productId": "sprocket", "quantity": 1}]}))
        self.assert_error(r, 400, "items[0].productId: unknown product")
        self.assertEqual(self.inventory()["stock"], before)
        self.assertEqual(len(self.email_lines()), emails)

    def test_order_more_than_the_stock(self):
        before = self.inventory()["stock"]
        emails = len(self.email_lines())
        r = exchange(self.server, post_json("/orders", {
            "userId": "u", "items": [{"productId": "widget", "quantity": 1},
                                     {"productId": "gizmo", "quantity": 1000}]}))
        self.assert_error(r, 409, "not enough stock for gizmo")
        self.assertEqual(r.reason, "Conflict")
        # The whole order is refused: nothing taken, no email sent.
        self.assertEqual(self.inventory()["stock"], before)
        self.assertEqual(len(self.email_lines()), emails)

    def test_order_needs_json(self):
        r = exchange(self.server, request("POST", "/orders", {"Content-Type": "text/plain"},
                                          b"{}"))
        self.assert_error(r, 415, "Content-Type must be application/json")
        r = exchange(self.server, post_json("/orders", b'{"userId":'))
        self.assert_error(r, 400)

    # ---- connections ----

    def test_keep_alive_1000_requests_on_one_connection(self):
        """The default max_keepalive_requests is 1000: all of them on one
        socket, the last answered with Connection: close."""
        kinds = [(request("GET", "/hello"), HELLO),
                 (request("GET", "/json"), JSON_HELLO),
                 (post_json("/echo", {"k": 1}), b'{"k":1}')]
        count = 0
        with Client(self.server) as c:
            for i in range(1000):
                data, body = kinds[i % 3]
                c.send(data)
                r = c.response()
                self.assertEqual((r.status, r.body), (200, body), i)
                if i < 999:
                    self.assertNotIn("connection", r.h, i)
                count += 1
            self.assertEqual(r.h.get("connection"), "close")
            self.assertTrue(c.closed())
        self.assertEqual(count, 1000)

    def test_pipelined_requests_answered_in_order(self):
        """50 requests in one write, some answered later from a timer: the
        answers come back in request order."""
        data = b""
        expected = []
        for i in range(50):
            kind = i % 5
            if kind == 0:
                data += request("GET", "/hello?i=%d" % i)
                expected.append((False, HELLO))
            elif kind == 1:
                data += post_json("/echo", {"n": i})
                expected.append((False, compact({"n": i})))
            elif kind == 2:
                data += request("GET", "/delay?ms=%d" % (i % 4))
                expected.append((False, compact({"delayed_ms": i % 4})))
            elif kind == 3:
                data += request("GET", "/json")
                expected.append((False, JSON_HELLO))
            else:
                data += request("HEAD", "/hello")
                expected.append((True, b""))
        with Client(self.server) as c:
            c.send(data)
            for i, (head, body) in enumerate(expected):
                r = c.response(head)
                self.assert_common(r)
                self.assertEqual((r.status, r.body), (200, body), i)
                if head:
                    self.assertEqual(r.h["content-length"], "12")
            # Nothing more, and the connection is still usable.
            c.send(request("GET", "/hello"))
            self.assertEqual(c.response().body, HELLO)
            self.assertEqual(c.buf, b"")

    def chunked_echo(self, parts, trailer=b""):
        head = request("POST", "/echo", {"Content-Type": "application/json",
                                         "Transfer-Encoding": "chunked"})
        pieces = [head]
        for i, (part, ext) in enumerate(parts):
            pieces.append(b"%X%s\r\n%s\r\n" % (len(part), ext, part))
        pieces.append(b"0\r\n" + trailer + b"\r\n")
        return pieces

    def test_chunked_request_body(self):
        obj = {"msg": "hello chunked world", "n": [1, 2, 3], "pad": "p" * 40}
        text = compact(obj)
        parts = [(text[:7], b""), (text[7:20], b";ext=1"), (text[20:21], b';name="quoted value"'),
                 (text[21:], b";a;b=c")]
        with Client(self.server) as c:
            # One write each, with pauses, so the body arrives in pieces.
            for piece in self.chunked_echo(parts, b"X-Trailer: yes\r\n"):
                c.send(piece)
                time.sleep(0.02)
            self.assert_json(c.response(), 200, text)
            # All at once, then a plain request on the same connection.
            c.send(b"".join(self.chunked_echo(parts)) + request("GET", "/hello"))
            self.assert_json(c.response(), 200, text)
            self.assertEqual(c.response().body, HELLO)

    def test_chunked_request_body_with_bad_json(self):
        with Client(self.server) as c:
            c.send(b"".join(self.chunked_echo([(b'{"a"', b""), (b":}", b"")])))
            self.assert_error(c.response(), 400)

    def test_head_has_get_headers_and_no_body(self):
        for path in ("/hello", "/json", "/inventory", "/nope"):
            with self.subTest(path=path), Client(self.server) as c:
                c.send(request("GET", path) + request("HEAD", path) + request("GET", "/hello"))
                get = c.response()
                head = c.response(head=True)
                # The next response starts right after HEAD's empty line.
                self.assertTrue(c.buf == b"" or c.buf.startswith(b"HTTP/1.1 200 OK\r\n"), c.buf)
                after = c.response()
                self.assertEqual(after.body, HELLO)
                self.assert_common(head)
                self.assertEqual(head.status, get.status)
                self.assertEqual(head.h["content-length"], str(len(get.body)))
                # Date and the request id differ between any two responses.
                self.assertEqual({k: v for k, v in head.headers if k not in ("date", "x-request-id")},
                                 {k: v for k, v in get.headers if k not in ("date", "x-request-id")})

    def test_head_on_a_post_only_route(self):
        r = exchange(self.server, request("HEAD", "/echo"), head=True)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.h["allow"], "POST, OPTIONS")
        self.assertEqual(r.body, b"")

    def test_404(self):
        for path in ("/nope", "/hello/extra", "/HELLO", "/", "/hello%20x"):
            with self.subTest(path=path):
                r = exchange(self.server, request("GET", path))
                self.assert_json(r, 404, NOT_FOUND)
                self.assertEqual(r.reason, "Not Found")
        r = exchange(self.server, post_json("/nope", {"a": 1}))
        self.assert_json(r, 404, NOT_FOUND)

    def test_405(self):
        cases = [("POST", "/hello", "GET, HEAD, OPTIONS"),
                 ("DELETE", "/hello", "GET, HEAD, OPTIONS"), ("PUT", "/json", "GET, HEAD, OPTIONS"),
                 ("GET", "/echo", "POST, OPTIONS"), ("PATCH", "/orders", "POST, OPTIONS")]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = exchange(self.server, request(method, path, body=b""))
                self.assert_error(r, 405, "method not allowed")
                self.assertEqual(r.reason, "Method Not Allowed")
                self.assertEqual(r.h.get("allow"), allow)

    def test_http10_closes_by_default(self):
        data, closed = self.server.raw(request("GET", "/hello", version="HTTP/1.0"))
        self.assertTrue(closed)
        responses = harness.parse_responses(data)
        self.assertEqual(len(responses), 1)
        status, headers, body = responses[0]
        h = dict(headers)
        self.assertEqual((status, body), (200, HELLO))
        self.assertEqual(h["connection"], "close")
        self.assertEqual(h["content-length"], "12")

    def test_http10_keep_alive_when_asked(self):
        with Client(self.server) as c:
            for path, body in (("/hello", HELLO), ("/json", JSON_HELLO)):
                c.send(request("GET", path, {"Connection": "keep-alive"}, version="HTTP/1.0"))
                r = c.response()
                self.assertEqual((r.status, r.body), (200, body))
                self.assertEqual(r.h.get("connection"), "keep-alive")
            self.assertFalse(c.closed(timeout=0.3))
            c.send(request("GET", "/hello", version="HTTP/1.0"))
            r = c.response()
            self.assertEqual(r.h.get("connection"), "close")
            self.assertTrue(c.closed())

    def test_connection_close_from_client(self):
        with Client(self.server) as c:
            # The second request is never answered: the first said close.
            c.send(request("GET", "/hello", {"Connection": "close"}) + request("GET", "/json"))
            r = c.response()
            self.assert_common(r)
            self.assertEqual((r.status, r.body), (200, HELLO))
            self.assertEqual(r.h.get("connection"), "close")
            self.assertTrue(c.closed())

    def test_connection_close_after_a_delayed_answer(self):
        with Client(self.server) as c:
            c.send(request("GET", "/delay?ms=50", {"Connection": "close"}))
            r = c.response()
            self.assertEqual((r.status, r.body), (200, b'{"delayed_ms":50}'))
            self.assertEqual(r.h.get("connection"), "close")
            self.assertTrue(c.closed())

    def test_malformed_requests(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET /hello HTTP/1.1\nHost: x\n\n",
            b"GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /hello HTTP/1.1\r\n\r\n",
            b"GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
            b"GET /hello HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
        ]
        for data in cases:
            with self.subTest(data=data):
                self.assert_refused(data, 400)
        # The server goes on serving other connections.
        self.assertEqual(exchange(self.server, request("GET", "/hello")).body, HELLO)

    def test_unsupported_http_version(self):
        r = self.assert_refused(b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505,
                                "HTTP version not supported")
        self.assertEqual(r.reason, "HTTP Version Not Supported")

    def test_unsupported_transfer_encoding(self):
        for te in ("gzip", "gzip, chunked"):
            with self.subTest(te=te):
                r = self.assert_refused(
                    request("POST", "/echo", {"Content-Type": "application/json",
                                              "Transfer-Encoding": te}),
                    501, "only the chunked transfer coding is supported")
                self.assertEqual(r.reason, "Not Implemented")


class KeepAliveLimitTest(Checks, harness.ServerCase):
    """max_keepalive_requests = 5: the fifth answer says close, then it closes."""

    SECTIONS = {"http": {"max_keepalive_requests": "5"}}

    def test_limit_one_by_one(self):
        with Client(self.server) as c:
            for i in range(5):
                c.send(request("GET", "/hello"))
                r = c.response()
                self.assertEqual((r.status, r.body), (200, HELLO))
                if i < 4:
                    self.assertNotIn("connection", r.h)
            self.assertEqual(r.h.get("connection"), "close")
            self.assertTrue(c.closed())

    def test_limit_with_pipelining(self):
        with Client(self.server) as c:
            c.send(request("GET", "/hello") * 8)
            for i in range(5):
                r = c.response()
                self.assertEqual((r.status, r.body), (200, HELLO))
            self.assertEqual(r.h.get("connection"), "close")
            self.assertTrue(c.closed())

    def test_limit_is_per_connection(self):
        for _ in range(3):
            with Client(self.server) as c:
                c.send(request("GET", "/json"))
                r = c.response()
                self.assertEqual((r.status, r.body), (200, JSON_HELLO))
                self.assertNotIn("connection", r.h)


if __name__ == "__main__":
    harness.main()
