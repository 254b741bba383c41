"""The application API over HTTP, through the example app's /api group
(routes/api.c): middleware and request data, a middleware that holds the
request (and a client that leaves meanwhile), route groups with path
parameters, the error handler and the logged 500s, OPTIONS, HEAD, the
trailing-slash policy, query, cookie, form and Accept helpers, redirects and
Set-Cookie, and the bad input of each ([http] max_params, bad escapes,
malformed cookies, CR/LF handed to a response helper).

curl is the client where a real one matters: a cookie jar across a login
redirect, -L following 301, 303 and 308.
"""
import json
import re
import socket
import subprocess
import time

import os
import signal

import harness
from harness import Server, wait_for

CURL = harness.need_tool("curl", "curl")
TOKEN = {"Authorization": "Bearer letmein"}


class ApiTest(harness.ServerCase):
    SECTIONS = {"http": {"max_params": "50"}, "log": {"level": "info"}}

    def get(self, path, headers=None):
        return self.server.request("GET", path, headers=headers)

    def get_json(self, path, headers=None):
        status, h, body = self.get(path, headers)
        return status, h, json.loads(body)

    # ---- 1. middleware and request data ----

    def test_request_id_middleware_and_data_reach_the_route(self):
        status, h, body = self.get_json("/api/v1/users/42")
        self.assertEqual(status, 200)
        self.assertRegex(h["x-request-id"], r"^\d+-\d+$")
        self.assertEqual(body, {"id": "42", "name": "user", "requestId": h["x-request-id"]})
        # A client's sane id is kept; anything else is replaced.
        _, h, body = self.get_json("/api/v1/users/1", {"X-Request-Id": "abc-123"})
        self.assertEqual((h["x-request-id"], body["requestId"]), ("abc-123", "abc-123"))
        _, h, _ = self.get_json("/api/v1/users/1", {"X-Request-Id": "bad id!"})
        self.assertRegex(h["x-request-id"], r"^\d+-\d+$")

    def test_middleware_does_not_run_outside_its_prefix(self):
        status, h, body = self.get("/hello")
        self.assertEqual((status, body), (200, b"Hello World!"))
        # forkd's own request id (on every response), not the middleware's
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{8}-[0-9a-f]{12}$")
        status, h, body = self.get("/apix")
        self.assertEqual((status, body), (404, b'{"error":"not found"}'))
        self.assertRegex(h["x-request-id"], r"^[0-9a-f]{8}-[0-9a-f]{12}$")

    def test_request_data_is_freed_when_the_request_ends(self):
        _, _, before = self.get_json("/api/stats")
        for _ in range(3):
            self.get("/api/v1/users/7")
        _, _, after = self.get_json("/api/stats")
        # The first stats request's data was freed after its answer was built.
        self.assertEqual(after["requests"] - before["requests"], 4)

    def test_json_body_middleware(self):
        status, _, body = self.server.json("POST", "/api/v1/echo", {"a": [1, 2]})
        self.assertEqual((status, body), (200, {"body": {"a": [1, 2]}}))
        status, _, body = self.server.request("POST", "/api/v1/echo", b'{"a":',
                                              {"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertIn("invalid JSON", json.loads(body)["error"])
        status, _, body = self.server.request("POST", "/api/v1/echo", b"x=1",
                                              {"Content-Type": "text/plain"})
        self.assertEqual(status, 415)

    def test_three_middleware_in_front_of_hello(self):
        for method in ("GET", "HEAD"):
            status, h, body = self.server.request(method, "/mw/hello")
            self.assertEqual(status, 200)
            self.assertEqual(h["content-length"], "12")
            self.assertEqual(body, b"Hello World!" if method == "GET" else b"")

    # ---- 1. a middleware that holds the request ----

    def test_held_middleware_goes_on_or_fails(self):
        status, _, body = self.get_json("/api/private/whoami", TOKEN)
        self.assertEqual((status, body["user"]), (200, "letmein"))
        status, _, body = self.get_json("/api/private/whoami?lookup_ms=20", TOKEN)
        self.assertEqual(status, 200)
        status, h, body = self.get_json("/api/private/whoami")
        self.assertEqual(status, 401)
        self.assertEqual(body, {"error": "a valid bearer token is required",
                                "requestId": h["x-request-id"]})
        status, _, body = self.get_json("/api/private/whoami?lookup_ms=x", TOKEN)
        self.assertEqual(status, 400)

    def test_held_requests_on_one_keep_alive_connection(self):
        conn = self.server.http()
        try:
            for i in range(5):
                conn.request("GET", "/api/private/whoami?lookup_ms=%d" % i, headers=TOKEN)
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
            conn.request("GET", "/hello")
            self.assertEqual(conn.getresponse().read(), b"Hello World!")
        finally:
            conn.close()

    def test_client_leaves_while_held(self):
        """Clients close while their request is held; the timers that would
        resume them are cancelled by the abort callback. Under the sanitizer
        build any use after free or leak fails the server's stop."""
        log_before = self.server.log()
        socks = []
        # A large body makes the connection free its request object when it
        # closes (instead of keeping it as a spare): a timer that fired into
        # it anyway would be a use after free the sanitizer reports.
        big = b"a=" + b"x" * 100000
        for ms in (0, 1, 5, 50, 200, 200, 200, 400):
            for body in (b"", big):
                s = self.server.connect()
                s.sendall(b"%s /api/private/whoami?lookup_ms=%d HTTP/1.1\r\nHost: t\r\n"
                          b"Authorization: Bearer letmein\r\n"
                          b"Content-Type: application/x-www-form-urlencoded\r\n"
                          b"Content-Length: %d\r\n\r\n%s"
                          % (b"POST" if body else b"GET", ms, len(body), body))
                socks.append(s)
        for s in socks:
            s.close()
        # Let every timer's moment pass (a wait, not a measurement).
        time.sleep(0.6)
        status, _, _ = self.get("/api/private/whoami?lookup_ms=1", TOKEN)
        self.assertEqual(status, 200)
        self.assertNotIn("[error]", self.server.log()[len(log_before):])

    # ---- 2. groups ----

    def test_group_params_and_nesting(self):
        for path, status in (("/api/v1/users/9", 200), ("/api/v1/users/0", 404),
                             ("/api/v1/users/x", 400), ("/api/v1/users", 404),
                             ("/api/v2/users/9", 404)):
            with self.subTest(path=path):
                self.assertEqual(self.get(path)[0], status)

    # ---- 3. errors ----

    def test_error_handler_and_logs(self):
        log_before = self.server.log()
        status, h, body = self.get_json("/api/v1/users/0")
        self.assertEqual((status, body), (404, {"error": "no such user",
                                                "requestId": h["x-request-id"]}))
        status, h, body = self.get_json("/api/v1/boom")
        self.assertEqual((status, body), (500, {"error": "internal server error",
                                                "requestId": h["x-request-id"]}))
        # A route that forgets to answer gets a 500, not a hung connection.
        status, h, body = self.get_json("/api/v1/silent")
        self.assertEqual((status, body["error"]), (500, "internal server error"))
        # Outside /api, forkd's default answers.
        status, _, body = self.get("/nope")
        self.assertEqual((status, body), (404, b'{"error":"not found"}'))
        log = wait_for(lambda: "v1/silent" in self.server.log()[len(log_before):] and
                       self.server.log()[len(log_before):])
        errors = [l for l in log.splitlines() if "[error]" in l]
        self.assertEqual(len(errors), 2, log)
        self.assertIn("GET /api/v1/boom (route GET /api/v1/boom): 500 Input/output error",
                      errors[0])
        self.assertIn("(route GET /api/v1/silent): 500 the route returned without answering",
                      errors[1])
        # The 4xx are operational: not logged as errors.
        self.assertNotIn("no such user", log)

    # ---- 4. OPTIONS, HEAD, trailing slash ----

    def test_options(self):
        for path, allow in (("/hello", "GET, HEAD, OPTIONS"), ("/echo", "POST, OPTIONS"),
                            ("/api/v1/users/5", "GET, HEAD, OPTIONS"),
                            ("*", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")):
            with self.subTest(path=path):
                data, _ = self.server.raw(b"OPTIONS %s HTTP/1.1\r\nHost: t\r\n"
                                          b"Connection: close\r\n\r\n" % path.encode())
                (status, headers, body), = harness.parse_responses(data)
                h = dict(headers)
                self.assertEqual((status, h.get("allow"), body), (204, allow, b""))
                self.assertNotIn("content-length", h)
        self.assertEqual(self.server.request("OPTIONS", "/nope")[0], 404)

    def test_head_for_every_get_route(self):
        for path in ("/hello", "/json", "/health", "/mw/hello", "/api/v1/users/3",
                     "/api/negotiate", "/api/query?a=1", "/api/me", "/nope"):
            with self.subTest(path=path):
                gs, gh, gb = self.get(path)
                hs, hh, hb = self.server.request("HEAD", path)
                self.assertEqual((hs, hb), (gs, b""))
                self.assertEqual(hh["content-length"], str(len(gb)))
                skip = ("date", "x-request-id")
                self.assertEqual({k: v for k, v in hh.items() if k not in skip},
                                 {k: v for k, v in gh.items() if k not in skip})

    def test_trailing_slash_strict_by_default(self):
        self.assertEqual(self.get("/hello/")[0], 404)
        self.assertEqual(self.get("/api/v1/users/3/")[0], 404)

    # ---- 5. request helpers and their bad input ----

    def test_query_iteration_and_repeated_keys(self):
        status, _, body = self.get_json("/api/query?a=1&tag=x&tag=y%20z&b&tag=")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"pairs": [["a", "1"], ["tag", "x"], ["tag", "y z"], ["b", ""],
                                          ["tag", ""]],
                                "tag": ["x", "y z", ""]})
        self.assertEqual(self.get("/api/query?a=%zz")[0], 400)

    def test_too_many_query_keys(self):
        ok = "&".join("k%d=1" % i for i in range(50))
        self.assertEqual(self.get("/api/query?" + ok)[0], 200)
        status, _, body = self.get("/hello?" + ok + "&one=more")
        self.assertEqual((status, body), (400, b'{"error":"too many query parameters"}'))

    def test_form_bodies(self):
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, body = self.server.request("POST", "/api/form", b"a=1&b=%41+c&a=2", form)
        self.assertEqual((status, json.loads(body)),
                         (200, {"pairs": [["a", "1"], ["b", "A c"], ["a", "2"]]}))
        for bad in (b"a=%zz", b"a=%4", b"a=x%00", b"%=1"):
            with self.subTest(body=bad):
                status, _, body = self.server.request("POST", "/api/form", bad, form)
                self.assertEqual(status, 400)
                self.assertEqual(json.loads(body)["error"],
                                 "malformed form body: bad percent-encoding")
        many = "&".join("f%d=1" % i for i in range(51)).encode()
        status, _, body = self.server.request("POST", "/api/form", many, form)
        self.assertEqual((status, json.loads(body)["error"]), (413, "too many form fields"))
        status, _, _ = self.server.request("POST", "/api/form", b"a=1", {"Content-Type": "text/plain"})
        self.assertEqual(status, 415)

    def test_cookies_malformed_pairs_are_ignored(self):
        status, _, body = self.get_json("/api/cookies", {
            "Cookie": 'junk; =nameless; a b=1; ok=1;; q="quoted"; last=z'})
        self.assertEqual((status, body), (200, {"pairs": [["ok", "1"], ["q", "quoted"],
                                                          ["last", "z"]]}))
        status, _, body = self.get_json("/api/cookies", {"Cookie": ";;;==;"})
        self.assertEqual((status, body), (200, {"pairs": []}))

    def test_accepts(self):
        cases = [(None, "application/json"), ("text/html", "text/html; charset=utf-8"),
                 ("text/*;q=0.5, text/plain", "text/plain; charset=utf-8"),
                 ("application/json;q=0.1, text/html;q=0.2", "text/html; charset=utf-8"),
                 ("*/*", "application/json")]
        for accept, ctype in cases:
            with self.subTest(accept=accept):
                status, h, _ = self.get("/api/negotiate", {"Accept": accept} if accept else {})
                self.assertEqual((status, h["content-type"]), (200, ctype))
        self.assertEqual(self.get("/api/negotiate", {"Accept": "image/png"})[0], 406)

    def test_header_iteration(self):
        status, _, body = self.get_json("/api/headers", {"X-One": "1", "X-Two": "2"})
        self.assertEqual(status, 200)
        self.assertEqual(body["count"], len(body["names"]))
        self.assertLess(body["names"].index("X-One"), body["names"].index("X-Two"))

    # ---- 6. response helpers and CR/LF refused ----

    def test_crlf_refused_by_every_helper(self):
        data, _ = self.server.raw(b"GET /api/unsafe HTTP/1.1\r\nHost: t\r\n"
                                  b"Connection: close\r\n\r\n")
        (status, headers, body), = harness.parse_responses(data)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"header": -22, "cookie": -22,
                                            "cookie_semicolon": -22, "cookie_path": -22,
                                            "redirect": -22})
        names = [k for k, _ in headers]
        self.assertNotIn("x-evil", names)
        self.assertNotIn("set-cookie", names)
        self.assertNotIn("location", names)
        self.assertNotIn(b"evil", data.lower())


class ApiCurlTest(harness.ServerCase):
    SECTIONS = {"http": {"trailing_slash": "redirect"}}

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.server.port, path)

    def curl(self, *args):
        cmd = [CURL, "-sS", "--noproxy", "*", "--max-time", "30"] + list(args)
        p = subprocess.run(cmd, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        return p.stdout

    def status_and_body(self, *args):
        out = self.curl("-w", "\n%{http_code} %{num_redirects}", *args)
        body, _, tail = out.rpartition(b"\n")
        code, redirects = tail.split()
        return int(code), int(redirects), body

    def test_login_cookie_jar_and_redirects(self):
        with harness.tempfile.TemporaryDirectory() as d:
            jar = d + "/jar"
            code, redirects, body = self.status_and_body(
                "-c", jar, "-b", jar, "-L", "-d", "user=ann", self.url("/api/login"))
            self.assertEqual((code, redirects), (200, 1))
            self.assertEqual(json.loads(body), {"user": "ann"})
            with open(jar) as f:
                line = [l for l in f if "session" in l][0].split("\t")
            # HttpOnly, Path=/api, value ann, and an expiry (Max-Age) set.
            self.assertTrue(line[0].startswith("#HttpOnly_127.0.0.1"), line)
            self.assertEqual((line[2], line[5], line[6].strip()), ("/api", "session", "ann"))
            self.assertGreater(int(line[4]), 0)
            code, _, body = self.status_and_body("-b", jar, self.url("/api/me"))
            self.assertEqual((code, json.loads(body)), (200, {"user": "ann"}))
            # Logout clears the cookie: the redirected /api/me no longer gets it.
            code, redirects, body = self.status_and_body(
                "-c", jar, "-b", jar, "-L", self.url("/api/logout"))
            self.assertEqual((code, redirects), (401, 1))
            out = self.curl("-i", "-b", jar, self.url("/api/logout"))
            self.assertTrue(out.startswith(b"HTTP/1.1 302 "), out)
            self.assertIn(b"\r\nSet-Cookie: session=; Path=/api; Max-Age=0; "
                          b"Expires=Thu, 01 Jan 1970 00:00:00 GMT\r\n", out)
            self.assertIn(b"\r\nLocation: /api/me\r\n", out)

    def test_login_refuses_a_value_a_cookie_cannot_carry(self):
        code, _, body = self.status_and_body("-d", "user=a%3Bb", self.url("/api/login"))
        self.assertEqual(code, 400)
        self.assertIn(b"cookie cannot carry", body)

    def test_trailing_slash_redirects(self):
        code, redirects, body = self.status_and_body("-L", self.url("/hello/"))
        self.assertEqual((code, redirects, body), (200, 1, b"Hello World!"))
        out = self.curl("-i", self.url("/api/v1/users/3/?x=1"))
        self.assertTrue(out.startswith(b"HTTP/1.1 301 "), out)
        self.assertIn(b"\r\nLocation: /api/v1/users/3?x=1\r\n", out)
        # 308 keeps the method and the body.
        code, redirects, body = self.status_and_body(
            "-L", "-H", "Content-Type: application/json", "-d", '{"k":1}', self.url("/echo/"))
        self.assertEqual((code, redirects, json.loads(body)), (200, 1, {"k": 1}))
        self.assertEqual(self.status_and_body(self.url("/nope/"))[0], 404)


NM = harness.need_tool("nm", "binutils")


class ExportTest(harness.unittest.TestCase):
    """Every function include/forkd.h declares is exported by the forkd binary,
    where an app module looks it up: a function nothing inside forkd calls
    (response_cookie, request_accepts) is linked in all the same."""

    def test_every_public_function_is_exported(self):
        with open(os.path.join(harness.ROOT, "include", "forkd.h")) as f:
            header = f.read()
        names = set(re.findall(r"^[a-z][\w \*]*?\b(\w+)\(", header, re.M))
        names -= {"forkd_app_init"}  # the app's to define
        self.assertIn("response_cookie", names)
        out = subprocess.run([NM, "-D", "--defined-only", harness.BIN], capture_output=True,
                             text=True, check=True).stdout
        exported = {line.split()[-1] for line in out.splitlines() if line.strip()}
        self.assertEqual(sorted(names - exported), [])


class ApiLeakTest(harness.unittest.TestCase):
    """Every /api path, good and bad, held requests whose clients leave, then
    a graceful stop: LeakSanitizer must have nothing to say (request data,
    parsed bodies, held lookups and their timers are all freed)."""

    def test_no_leak(self):
        if not harness.asan_build():
            self.skipTest("forkd is not built with AddressSanitizer")
        options = os.environ.get("ASAN_OPTIONS", "")
        server = Server({"http": {"max_params": "20", "trailing_slash": "redirect"}},
                        env={"ASAN_OPTIONS": (options + ":" if options else "") +
                             "detect_leaks=1"})
        server.start()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        js = {"Content-Type": "application/json"}
        many = "&".join("k%d=1" % i for i in range(21))
        try:
            for _ in range(20):
                for path in ("/api/v1/users/1", "/api/v1/users/0", "/api/v1/users/x",
                             "/api/v1/boom", "/api/v1/silent", "/api/private/whoami",
                             "/api/query?a=1&tag=2&tag=%zz", "/api/query?" + many,
                             "/api/negotiate", "/api/headers", "/api/unsafe", "/api/me",
                             "/api/logout", "/hello/", "/mw/hello", "/api/nope"):
                    server.request("GET", path, headers={"Cookie": "session=x; bad; a=\"q\""})
                server.request("GET", "/api/private/whoami", headers=TOKEN)
                server.request("POST", "/api/v1/echo", b'{"a":[1,{"b":2}]}', js)
                server.request("POST", "/api/v1/echo", b'{"a":', js)
                server.request("POST", "/api/form", b"a=1&b=%41", form)
                server.request("POST", "/api/form", b"a=%zz", form)
                server.request("POST", "/api/form", many.encode(), form)
                server.request("POST", "/api/login", b"user=bob", form)
                server.request("OPTIONS", "/api/v1/users/1")
                for ms in (0, 2, 100):
                    s = server.connect()
                    s.sendall(b"GET /api/private/whoami?lookup_ms=%d HTTP/1.1\r\nHost: t\r\n"
                              b"Authorization: Bearer letmein\r\n\r\n" % ms)
                    s.close()
            time.sleep(0.3)  # let the last lookups' moments pass (a wait, not a measurement)
            self.assertEqual(server.request("GET", "/hello")[0], 200)
        except BaseException:
            server.stop(signal.SIGKILL)
            raise
        server.stop()
        self.assertNotIn(b"LeakSanitizer", server.stderr_text)
        self.assertEqual(server.proc.returncode, 0)


if __name__ == "__main__":
    harness.main()
