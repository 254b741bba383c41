"""forkd refuses malformed and abusive requests, and survives them.

The table below holds requests that break a framing rule or a limit, each
with the statuses forkd must answer (in order, one per response) and whether
the connection must then be closed. Many come from the classes that HTTP
differential fuzzing and request-smuggling research found in other servers:
CL.TE and TE.CL, TE.TE obfuscation (spaces, control characters, duplicates,
lists, underscores), bare CR or LF where CRLF belongs (head, chunk sizes,
chunk extensions, chunk data, trailers), obs-fold, NUL bytes, invalid or
overflowing chunk sizes and Content-Lengths, trailers that try to add
framing headers, absolute-form targets that disagree with Host.

Every case is delivered three ways: in one write, line by line and byte by
byte. After each delivery a normal request on a new connection must still
get its 200, and the error log must not mention a crash.

The other tests cover what a table cannot: lingering close while a client is
still sending a body it was refused, Expect: 100-continue, and bodies of
HEAD, 1xx and 204/304-like answers.
"""
import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HELLO = b"Hello World!"


def req(head_lines, body=b"", method="GET", target="/hello", version="HTTP/1.1",
        host=b"x"):
    """A request from header lines (bytes, without CRLF); Host first unless
    host is None."""
    lines = [b"%s %s %s" % (method.encode(), target.encode(), version.encode())]
    if host is not None:
        lines.append(b"Host: " + host)
    lines += head_lines
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def post(head_lines, body=b"", target="/echo"):
    return req([b"Content-Type: application/json"] + head_lines, body, "POST", target)


def chunked(body, head_lines=()):
    return post([b"Transfer-Encoding: chunked"] + list(head_lines), body)


NEXT = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"  # a request a smuggler hopes to slip in
BIG_LINE = b"GET /" + b"a" * (16 * 1024)           # never ends: refused as it grows
BIG_HEAD = (b"GET /hello HTTP/1.1\r\nHost: x\r\n" +
            b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 100) for i in range(200)))

# (name, bytes, expected statuses, closed afterwards)
CASES = [
    # ---- request line ----
    ("bare LF ends the request line", b"GET /hello HTTP/1.1\nHost: x\r\n\r\n", [400], True),
    ("bare LF line ends throughout", b"GET /hello HTTP/1.1\nHost: x\n\n", [400], True),
    ("bare CR inside the request line", b"GET /hello\rHTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("two spaces after the method", b"GET  /hello HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("two spaces before the version", b"GET /hello  HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("space after the version", b"GET /hello HTTP/1.1 \r\nHost: x\r\n\r\n", [400], True),
    ("space before the method", b" GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("tab as a separator", b"GET\t/hello HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("tab inside the target", b"GET /hel\tlo HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("NUL inside the target", b"GET /he\x00llo HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("DEL inside the target", b"GET /he\x7fllo HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("lower-case method", b"get /hello HTTP/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("no version (HTTP/0.9 form)", b"GET /hello\r\n\r\n", [400], True),
    ("lower-case protocol", b"GET /hello http/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("unknown protocol", b"GET /hello FOO/1.1\r\nHost: x\r\n\r\n", [400], True),
    ("HTTP/1.2", req([], version="HTTP/1.2"), [505], True),
    ("HTTP/2.0 request line", req([], version="HTTP/2.0"), [505], True),
    ("HTTP/0.9 version", req([], version="HTTP/0.9"), [505], True),
    ("request line crossing 8 KiB, never ended", BIG_LINE, [414], True),
    ("complete 9 KiB target", req([], target="/" + "a" * 9 * 1024), [414], True),
    ("'*' target for GET", req([], target="*"), [400], True),
    ("relative target", req([], target="hello"), [400], True),
    ("authority-form (CONNECT)", req([], method="CONNECT", target="x:443", host=b"x:443"),
     [400], True),
    ("absolute-form whose host differs from Host", req([], target="http://y/hello"), [400], True),
    ("absolute-form with userinfo", req([], target="http://u@x/hello"), [400], True),
    ("absolute-form with another scheme", req([], target="ftp://x/hello"), [400], True),
    # ---- header section ----
    ("HTTP/1.1 without Host", req([], host=None), [400], True),
    ("two Host headers", req([b"Host: y"]), [400], True),
    ("two Host headers in HTTP/1.0", req([b"Host: y"], version="HTTP/1.0"), [400], True),
    ("Host with a space", req([], host=b"a b"), [400], True),
    ("Host with a slash", req([], host=b"a/b"), [400], True),
    ("Host with userinfo", req([], host=b"u@a"), [400], True),
    ("space before a colon", req([b"Foo : bar"]), [400], True),
    ("tab before a colon", req([b"Foo\t: bar"]), [400], True),
    ("space before the colon of Host", req([b"Host : y"], host=None), [400], True),
    ("space before the colon of Transfer-Encoding (TE.TE)",
     post([b"Transfer-Encoding : chunked", b"Content-Length: 5"], b"hello"), [400], True),
    ("obs-fold", req([b"Foo: bar", b" baz"]), [400], True),
    ("obs-fold with a tab", req([b"Foo: bar", b"\tbaz"]), [400], True),
    ("folded first header line", req([b" Foo: bar"]), [400], True),
    ("obs-fold continuing Transfer-Encoding",
     post([b"Transfer-Encoding: gzip,", b" chunked", b"Content-Length: 5"], b"hello"),
     [400], True),
    ("field line without a colon", req([b"NoColon"]), [400], True),
    ("empty field name", req([b": value"]), [400], True),
    ("NUL in a field value", req([b"Foo: a\x00b"]), [400], True),
    ("NUL after chunked (C-string truncation)",
     post([b"Transfer-Encoding: chunked\x00", b"Content-Length: 5"], b"hello"), [400], True),
    ("NUL in a field name", req([b"Fo\x00o: bar"]), [400], True),
    ("bare CR in a field value", req([b"Foo: a\rb"]), [400], True),
    ("bare LF ends a field line", b"GET /hello HTTP/1.1\r\nHost: x\nFoo: bar\r\n\r\n", [400], True),
    ("CR CR LF", b"GET /hello HTTP/1.1\r\nHost: x\r\r\n\r\n", [400], True),
    ("head ended by a bare LF", b"GET /hello HTTP/1.1\r\nHost: x\r\n\n", [400], True),
    ("vertical tab before chunked",
     post([b"Transfer-Encoding: \x0bchunked", b"Content-Length: 5"], b"hello"), [400], True),
    ("form feed before chunked",
     post([b"Transfer-Encoding: \x0cchunked", b"Content-Length: 5"], b"hello"), [400], True),
    ("DEL in a field value", req([b"Foo: a\x7fb"]), [400], True),
    ("header section crossing 16 KiB, never ended", BIG_HEAD, [431], True),
    ("101 header fields", req([b"X-%d: y" % i for i in range(100)]), [431], True),
    # ---- Content-Length ----
    ("Content-Length and Transfer-Encoding (CL.TE)",
     b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
     b"\r\n0\r\n\r\n" + NEXT, [400], True),
    ("Transfer-Encoding and Content-Length (TE.CL)",
     b"POST /echo HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\ncontent-length: 30\r\n"
     b"\r\n0\r\n\r\n" + NEXT, [400], True),
    ("two equal Content-Lengths", post([b"Content-Length: 2", b"Content-Length: 2"], b"{}"),
     [400], True),
    ("two different Content-Lengths",
     post([b"Content-Length: 2", b"Content-Length: 30"], b"{}" + NEXT), [400], True),
    ("Content-Length list", post([b"Content-Length: 2, 2"], b"{}"), [400], True),
    ("Content-Length with a plus sign", post([b"Content-Length: +2"], b"{}"), [400], True),
    ("negative Content-Length", post([b"Content-Length: -1"], b"{}"), [400], True),
    ("hexadecimal Content-Length", post([b"Content-Length: 0x2"], b"{}"), [400], True),
    ("Content-Length with an inner space", post([b"Content-Length: 1 0"], b"{}"), [400], True),
    ("empty Content-Length", post([b"Content-Length: "], b"{}"), [400], True),
    ("overflowing Content-Length", post([b"Content-Length: 99999999999999999999"]), [400], True),
    ("Content-Length above max_body_size", post([b"Content-Length: 5000"], b"{}"), [413], True),
    # ---- Transfer-Encoding ----
    ("Transfer-Encoding in HTTP/1.0",
     b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", [400], True),
    ("Transfer-Encoding: gzip", post([b"Transfer-Encoding: gzip"]), [501], True),
    ("Transfer-Encoding: gzip, chunked", post([b"Transfer-Encoding: gzip, chunked"],
                                              b"0\r\n\r\n"), [501], True),
    ("Transfer-Encoding: identity", post([b"Transfer-Encoding: identity",
                                          b"Content-Length: 5"], b"hello"), [501], True),
    ("Transfer-Encoding: xchunked", post([b"Transfer-Encoding: xchunked"]), [501], True),
    ("Transfer-Encoding: chunked;a=b", post([b"Transfer-Encoding: chunked;a=b"],
                                            b"0\r\n\r\n"), [501], True),
    ("chunked not the last coding", post([b"Transfer-Encoding: chunked, gzip"], b"0\r\n\r\n"),
     [400], True),
    ("chunked twice in one field", post([b"Transfer-Encoding: chunked, chunked"], b"0\r\n\r\n"),
     [400], True),
    ("two Transfer-Encoding fields",
     post([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"], b"0\r\n\r\n"),
     [400], True),
    ("empty Transfer-Encoding", post([b"Transfer-Encoding: ", b"Content-Length: 5"], b"hello"),
     [400], True),
    # ---- chunked framing ----
    ("chunk size line ended by a bare LF", chunked(b"2\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk size line ended by a bare CR", chunked(b"2\r{}\r\n0\r\n\r\n"), [400], True),
    ("chunk data followed by a bare LF", chunked(b"2\r\n{}\n0\r\n\r\n"), [400], True),
    ("chunk data not followed by CRLF", chunked(b"2\r\n{}XX0\r\n\r\n"), [400], True),
    ("chunk longer than its size", chunked(b"2\r\n{} \r\n0\r\n\r\n"), [400], True),
    ("last chunk line ended by a bare LF", chunked(b"2\r\n{}\r\n0\n\r\n"), [400], True),
    ("trailer section ended by a bare LF", chunked(b"2\r\n{}\r\n0\r\n\n"), [400], True),
    ("chunk extension ended by a bare LF", chunked(b"2;a=b\n{}\r\n0\r\n\r\n"), [400], True),
    ("bare LF inside a chunk extension", chunked(b"2;a\nb\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("bare CR inside a chunk extension", chunked(b"2;a\rb\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("NUL inside a chunk extension", chunked(b"2;a\x00\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk extension without a name", chunked(b"2;\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk extension name with '['", chunked(b"2;bad[=x\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk extensions longer than 4 KiB",
     chunked(b"2;" + b";".join([b"e"] * 2100) + b"\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("space before a chunk size", chunked(b" 2\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("space after a chunk size", chunked(b"2 \r\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk size with 0x", chunked(b"0x2\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk size with a plus sign", chunked(b"+2\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("negative chunk size", chunked(b"-2\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk size with an underscore", chunked(b"1_0\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("empty chunk size", chunked(b"\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("overflowing chunk size", chunked(b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"), [400], True),
    ("chunk size above max_body_size", chunked(b"1389\r\n{}"), [413], True),
    ("chunks adding up above max_body_size",
     chunked(b"800\r\n" + b" " * 0x800 + b"\r\n800\r\n" + b" " * 0x800 + b"\r\n800\r\n"),
     [413], True),
    ("obs-fold in the trailer section", chunked(b"2\r\n{}\r\n0\r\nX: a\r\n b\r\n\r\n"),
     [400], True),
    ("space before a colon in a trailer", chunked(b"2\r\n{}\r\n0\r\nX : a\r\n\r\n"),
     [400], True),
    ("NUL in a trailer", chunked(b"2\r\n{}\r\n0\r\nX: a\x00\r\n\r\n"), [400], True),
    ("trailer line ended by a bare LF", chunked(b"2\r\n{}\r\n0\r\nX: a\n\r\n"), [400], True),
    ("trailer section above 16 KiB",
     chunked(b"2\r\n{}\r\n0\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"t" * 100)
                                            for i in range(200)) + b"\r\n"), [431], True),
    # ---- Expect ----
    ("unknown expectation", post([b"Expect: something", b"Content-Length: 2"], b"{}"),
     [417], True),
    ("100-continue to a route that does not exist",
     post([b"Expect: 100-continue", b"Content-Length: 2"], target="/nowhere"), [404], True),
    ("100-continue with a body above the limit",
     post([b"Expect: 100-continue", b"Content-Length: 100000"]), [413], True),
    # ---- requests that are valid but must not be misread ----
    ("underscore does not stand in for a dash (Content_Length)",
     req([b"Content_Length: 5"], b"hello"), [200, 400], True),
    ("underscore does not stand in for a dash (Transfer_Encoding)",
     req([b"Transfer_Encoding: chunked", b"Content-Length: 5"], b"0\r\n\r\n" + NEXT),
     [200, 200], False),
    ("trailer fields do not frame the next request",
     chunked(b"2\r\n{}\r\n0\r\nContent-Length: 5\r\n\r\nhello"), [200, 400], True),
    ("body of a GET is read, not parsed", req([b"Content-Length: 38"], NEXT + b"xxxxxx") + NEXT,
     [200, 200], False),
    ("absolute-form matching Host is routed by its path", req([], target="HTTP://X/hello?a=1") +
     NEXT, [200, 200], False),
    ("leading zeros in a chunk size", chunked(b"0002\r\n{}\r\n000\r\n\r\n") + NEXT,
     [200, 200], False),
    ("upgrade request is answered, then closed",
     req([b"Connection: Upgrade", b"Upgrade: h2c"]) + NEXT, [200], True),
]


# Clients that leave half-way: (bytes sent, bytes read before closing).
LEAVERS = [
    (b"GET /hello HTTP/1.1\r\nHo", 0),                                          # mid-head
    (post([b"Content-Length: 100"], b'{"a"'), 0),                              # mid-body
    (chunked(b"2\r\n{}\r\n"), 0),                                              # mid-chunks
    (req([], target="/delay?ms=300"), 0),                                      # mid-/delay
    (post([b"Content-Length: 22"], b'{"password":"leaving"}', target="/hash"), 0),  # mid-/hash
    (req([], target="/debug/stream?kb=8192"), 4096),                           # mid-stream
    (req([], target="/debug/stream?kb=8192", version="HTTP/1.0"), 4096),       # close-delimited
    (NEXT * 20, 100),                                                          # mid-pipeline
]


def deliveries(data):
    """The ways each case is delivered: whole, line by line, byte by byte
    (large cases go in 256-byte pieces instead of single bytes)."""
    lines = data.splitlines(keepends=True)
    step = 1 if len(data) <= 4096 else 256
    return [("whole", [data]), ("lines", lines),
            ("bytes", [data[i:i + step] for i in range(0, len(data), step)])]


def send_and_read(server, pieces, timeout=10):
    """Sends pieces (one send each) and reads until the server closes or
    timeout passes; returns (bytes, closed)."""
    with server.connect(timeout) as s:
        for part in pieces:
            try:
                s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            if len(pieces) > 1:
                time.sleep(0.0002)
        return harness.read_all(s, timeout if len(pieces) else 1)


def read_until_quiet(sock, expect_close, timeout):
    """Reads what the server sends: until it closes, or (when it is to stay
    open) until nothing more comes for a moment."""
    if expect_close:
        return harness.read_all(sock, timeout)
    return harness.read_all(sock, 0.5)


class HardeningTest(harness.ServerCase):
    SECTIONS = {"http": {"max_body_size": "4k", "header_timeout": "5", "body_timeout": "5"},
                "example": {"bcrypt_cost": "4", "debug_routes": "on"}}

    def hello_still_works(self):
        status, _, body = self.server.request("GET", "/hello")
        self.assertEqual((status, body), (200, HELLO))

    def run_case(self, name, data, statuses, closed, how, pieces):
        with self.server.connect(10) as s:
            for part in pieces:
                try:
                    s.sendall(part)
                except (BrokenPipeError, ConnectionResetError):
                    break  # forkd answered early and stopped reading; fine
                if how != "whole":
                    time.sleep(0.0002)
            out, was_closed = read_until_quiet(s, closed, 10)
        responses = harness.parse_responses(out)
        got = [r[0] for r in responses]
        self.assertEqual(got, statuses, "%s (%s): %r" % (name, how, out[:300]))
        self.assertEqual(was_closed, closed, "%s (%s)" % (name, how))
        if closed and statuses[-1] >= 400:
            # The refusal says it closes, and nothing after it was parsed.
            last = dict(responses[-1][1])
            self.assertEqual(last.get("connection"), "close", name)
        for status, headers, body in responses:
            if status >= 400:
                self.assertTrue(body.startswith(b'{"error":'), (name, body))

    def test_table_has_enough_cases(self):
        self.assertGreaterEqual(len(CASES), 60)
        self.assertEqual(len({c[0] for c in CASES}), len(CASES), "case names must be unique")

    def test_malformed_requests(self):
        for name, data, statuses, closed in CASES:
            for how, pieces in deliveries(data):
                with self.subTest(case=name, delivery=how):
                    self.run_case(name, data, statuses, closed, how, pieces)
                    self.hello_still_works()
        # No worker died and (ASan build) no sanitizer report on stderr so
        # far; the stop at the end of the class checks the rest.
        self.server.assert_healthy()

    def test_clients_that_leave_midway(self):
        """Clients that close mid-head, mid-body, mid-/delay, mid-/hash,
        mid-stream or mid-pipeline leave no trace: the worker goes on
        serving, logs no error, and (on the ASan build) reports nothing."""
        for _ in range(20):
            for data, read in LEAVERS:
                with self.server.connect() as s:
                    s.sendall(data)
                    harness.recv_upto(s, read)
        self.hello_still_works()
        self.wait_pool_idle()  # the /hash jobs end after their clients left
        self.hello_still_works()
        self.assertNotIn("[error]", self.server.log())
        self.server.assert_healthy()

    def wait_pool_idle(self):
        """Waits until every /hash job submitted so far has ended. The pool
        is first in, first out: once a fresh job is answered the older ones
        have left the queue; the pool gauges (published with the worker's
        heartbeat) then show nothing running or queued."""
        status, _, _ = self.server.json("POST", "/hash", {"password": "last"})
        self.assertEqual(status, 200)

        def idle():
            status, _, body = self.server.request("GET", "/metrics")
            text = body.decode()
            busy = re.findall(r"^forkd_pool_jobs_(?:running|queued)\{[^}]*\} (\d+)$", text,
                              re.M)
            return status == 200 and busy and not any(int(v) for v in busy)
        self.assertTrue(harness.wait_for(idle, 30), "the pool never went idle")

    def test_refusal_arrives_while_the_client_still_sends(self):
        """A client announces 2 MiB, gets 413 at once, and goes on sending the
        body before it reads: lingering close lets it read the whole 413
        instead of a reset."""
        body = b"x" * (2 * 1024 * 1024)
        with self.server.connect(20) as s:
            s.sendall(post([b"Content-Length: %d" % len(body)]))
            s.sendall(body)  # a reset would make this fail
            out, closed = harness.read_all(s, 20)
        responses = harness.parse_responses(out)
        self.assertEqual([r[0] for r in responses], [413])
        self.assertEqual(responses[0][2], b'{"error":"request body too large"}')
        self.assertTrue(closed)
        self.hello_still_works()

    def test_chunked_refusal_while_the_client_still_sends(self):
        """The same when the body is chunked and crosses the limit midway."""
        with self.server.connect(20) as s:
            s.sendall(chunked(b""))
            for _ in range(512):
                s.sendall(b"1000\r\n" + b"y" * 0x1000 + b"\r\n")
            s.sendall(b"0\r\n\r\n")
            out, closed = harness.read_all(s, 20)
        self.assertEqual([r[0] for r in harness.parse_responses(out)], [413])
        self.assertTrue(closed)

    def test_expect_100_continue(self):
        """100 Continue comes only when the route exists and the body fits;
        then the final answer follows on the same connection."""
        with self.server.connect(10) as s:
            s.sendall(post([b"Expect: 100-continue", b"Content-Length: 7"]))
            first = s.recv(4096)
            self.assertEqual(first, b"HTTP/1.1 100 Continue\r\n\r\n")
            s.sendall(b'{"a":1}')
            out, closed = read_until_quiet(s, False, 5)
        responses = harness.parse_responses(out)
        self.assertEqual([(r[0], r[2]) for r in responses], [(200, b'{"a":1}')])
        self.assertFalse(closed)
        # A body-less request with the expectation gets no 100 at all.
        data, _ = self.server.raw(req([b"Expect: 100-continue"]) , timeout=1)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:80])
        # HTTP/1.0 clients cannot ask for it (RFC 9110 10.1.1).
        data, _ = self.server.raw(
            b"POST /echo HTTP/1.0\r\nContent-Type: application/json\r\n"
            b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", timeout=5)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:80])

    def test_expect_refusals_come_without_100(self):
        for target, length, status in (("/nowhere", 2, 404), ("/echo", 100000, 413),
                                       ("/hello", 2, 405)):
            with self.subTest(target=target), self.server.connect(10) as s:
                s.sendall(post([b"Expect: 100-continue", b"Content-Length: %d" % length],
                               target=target))
                out, closed = harness.read_all(s, 10)
                self.assertTrue(out.startswith(b"HTTP/1.1 %d " % status), out[:80])
                self.assertNotIn(b"100 Continue", out)
                self.assertTrue(closed)

    def test_head_has_no_body(self):
        with self.server.connect(10) as s:
            s.sendall(req([], method="HEAD") + req([], method="HEAD", target="/nowhere") + NEXT)
            out, _ = read_until_quiet(s, False, 5)
        # HEAD answers carry Content-Length but no body: the next response
        # starts right after the empty line.
        first, rest = out.split(b"\r\n\r\n", 1)
        self.assertIn(b"Content-Length: 12", first)
        second, rest = rest.split(b"\r\n\r\n", 1)
        self.assertTrue(second.startswith(b"HTTP/1.1 404 "), second)
        self.assertTrue(rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest[:40])
        self.assertTrue(rest.endswith(b"\r\n\r\n" + HELLO))


class AbsoluteFormTest(unittest.TestCase):
    """absolute-form targets are routed by their path; their authority must
    equal Host, so a route reading Host sees the host the router saw."""

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_forms(self):
        cases = [("http://x/hello", b"x", 200), ("https://x:8080/hello", b"x:8080", 200),
                 ("http://X/hello", b"x", 200), ("http://x", b"x", 404),
                 ("http://x/hello", b"y", 400), ("http://x:81/hello", b"x", 400),
                 ("http:///hello", b"x", 400), ("http://x@y/hello", b"y", 400)]
        for target, host, status in cases:
            with self.subTest(target=target, host=host):
                data, _ = self.server.raw(req([], target=target, host=host), timeout=2)
                self.assertTrue(data.startswith(b"HTTP/1.1 %d " % status), data[:100])
        # HTTP/1.0 without Host: the target's authority is all there is.
        data, _ = self.server.raw(req([], target="http://x/hello", version="HTTP/1.0",
                                      host=None))
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK"), data[:100])


if __name__ == "__main__":
    harness.main()
