"""POST /hash and POST /hash/verify against the real binary.

Hashes are checked with independent bcrypt implementations (Python's crypt
module, and htpasswd from apache2-utils, which scripts/deps installs), bad input is checked status by
status, and the pool's behaviour under a client that leaves and under a flood
is checked through what clients see: the worker keeps answering, overload
turns into 503 with Retry-After, and every accepted job completes.
"""
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import warnings

import harness

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated since 3.11, still the standard library's bcrypt

BCRYPT_RE = re.compile(r"^\$2b\$(\d\d)\$[./A-Za-z0-9]{53}$")
SALT = "abcdefghijklmnopqrstuu"  # 22 characters; the last one carries 2 bits
CRASH_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "Segmentation fault")


def bcrypt(password, setting):
    """The independent implementation: crypt(3) through Python."""
    return crypt.crypt(password, setting)


def post(server, path, body, content_type="application/json", timeout=30):
    """POSTs body (an object to serialise, or bytes as they are); returns
    (status, headers, parsed JSON or None, raw bytes)."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    status, hdrs, raw = server.request("POST", path, data, headers, timeout=timeout)
    parsed = None
    if hdrs.get("content-type", "").startswith("application/json"):
        parsed = json.loads(raw)
    return status, hdrs, parsed, raw


def stop_and_collect(server):
    """Stops server gracefully (the harness fails a hung stop, a crash or a
    sanitizer report); returns (exit code, everything it wrote to stderr)."""
    code = server.stop()
    return code, server.stderr_text.decode(errors="replace")


class HashRoutes(harness.ServerCase):
    SECTIONS = {"hash": {"threads": "2"}, "example": {"bcrypt_cost": "4"}}

    def make(self, password):
        status, hdrs, body, raw = post(self.server, "/hash", {"password": password})
        self.assertEqual(status, 200, raw)
        self.assertTrue(hdrs["content-type"].startswith("application/json"))
        self.assertEqual(list(body), ["hash"])
        self.assertRegex(body["hash"], BCRYPT_RE)
        return body["hash"]

    def verify(self, password, hashed):
        status, _, body, raw = post(self.server, "/hash/verify",
                                    {"password": password, "hash": hashed})
        self.assertEqual(status, 200, raw)
        self.assertEqual(list(body), ["match"])
        self.assertIsInstance(body["match"], bool)
        return body["match"]

    def test_hash_uses_configured_cost_and_verifies_with_crypt(self):
        h = self.make("correct horse battery staple")
        self.assertEqual(BCRYPT_RE.match(h).group(1), "04")
        self.assertEqual(bcrypt("correct horse battery staple", h), h)
        self.assertNotEqual(bcrypt("correct horse battery stapler", h), h)

    def test_hash_verifies_with_htpasswd(self):
        htpasswd = harness.need_tool("htpasswd", "apache2-utils")
        h = self.make("s3cret pass")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "users")
            with open(path, "w") as f:
                f.write("alice:%s\n" % h)
            ok = subprocess.run([htpasswd, "-vbB", path, "alice", "s3cret pass"],
                                capture_output=True)
            bad = subprocess.run([htpasswd, "-vbB", path, "alice", "s3cret pasS"],
                                 capture_output=True)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertNotEqual(bad.returncode, 0, bad.stderr)

    def test_round_trip_through_verify(self):
        h = self.make("hunter2")
        self.assertIs(self.verify("hunter2", h), True)
        self.assertIs(self.verify("hunter3", h), False)
        self.assertIs(self.verify("hunter", h), False)

    def test_verifies_hashes_made_elsewhere(self):
        # Hashes from the independent implementation, in every accepted prefix
        # and at a cost other than the server's own.
        for prefix in ("$2a$05$", "$2b$04$", "$2y$06$"):
            with self.subTest(prefix=prefix):
                h = bcrypt("from elsewhere", prefix + SALT)
                self.assertTrue(h.startswith(prefix), h)
                self.assertIs(self.verify("from elsewhere", h), True)
                self.assertIs(self.verify("from elsewhere!", h), False)

    def test_multibyte_password_of_exactly_72_bytes(self):
        pw = "\u00e9" * 36  # 72 bytes of UTF-8
        self.assertEqual(len(pw.encode()), 72)
        h = self.make(pw)
        self.assertEqual(bcrypt(pw, h), h)
        self.assertIs(self.verify(pw, h), True)
        self.assertIs(self.verify("\u00e9" * 35 + "e", h), False)

    def test_same_password_gets_a_new_salt_each_time(self):
        hashes = {self.make("same password") for _ in range(5)}
        self.assertEqual(len(hashes), 5)
        for h in hashes:
            self.assertIs(self.verify("same password", h), True)

    def test_bad_input(self):
        good = bcrypt("pw", "$2b$04$" + SALT)
        tail = good[7:]
        cases = [
            # (name, path, body, content type, status, text the error must contain)
            ("no body", "/hash", None, "application/json", 400, "empty"),
            ("invalid JSON", "/hash", b'{"password": ', "application/json", 400, "JSON"),
            ("array body", "/hash", b'["pw"]', "application/json", 400, "object"),
            ("string body", "/hash", b'"pw"', "application/json", 400, "JSON"),
            ("text/plain", "/hash", {"password": "pw"}, "text/plain", 415, "Content-Type"),
            ("no Content-Type", "/hash", {"password": "pw"}, None, 415, "Content-Type"),
            ("password missing", "/hash", {"pass": "pw"}, "application/json", 400,
             "password"),
            ("password number", "/hash", {"password": 1234}, "application/json", 400,
             "password"),
            ("password null", "/hash", {"password": None}, "application/json", 400,
             "password"),
            ("password array", "/hash", {"password": ["pw"]}, "application/json", 400,
             "password"),
            ("password empty", "/hash", {"password": ""}, "application/json", 400,
             "password"),
            ("password 73 bytes", "/hash", {"password": "x" * 73}, "application/json", 400,
             "72"),
            ("password 37 chars, 74 bytes", "/hash", {"password": "\u00e9" * 37},
             "application/json", 400, "72"),
            # JSON allows \u0000; a C string would stop there and hash "ab" only.
            ("password with NUL", "/hash", b'{"password": "ab\\u0000cd"}',
             "application/json", 400, "NUL"),
            ("verify: no body", "/hash/verify", None, "application/json", 400, "empty"),
            ("verify: text/plain", "/hash/verify", {"password": "pw", "hash": good},
             "text/plain", 415, "Content-Type"),
            ("verify: password missing", "/hash/verify", {"hash": good}, "application/json",
             400, "password"),
            ("verify: password empty", "/hash/verify", {"password": "", "hash": good},
             "application/json", 400, "password"),
            ("verify: password too long", "/hash/verify", {"password": "y" * 73, "hash": good},
             "application/json", 400, "72"),
            ("verify: password with NUL", "/hash/verify",
             ('{"password": "p\\u0000w", "hash": "%s"}' % good).encode(),
             "application/json", 400, "NUL"),
            ("verify: hash missing", "/hash/verify", {"password": "pw"}, "application/json",
             400, "hash"),
            ("verify: hash number", "/hash/verify", {"password": "pw", "hash": 2},
             "application/json", 400, "hash"),
            ("verify: hash empty", "/hash/verify", {"password": "pw", "hash": ""},
             "application/json", 400, "hash"),
            ("verify: hash too short", "/hash/verify", {"password": "pw", "hash": good[:-1]},
             "application/json", 400, "hash"),
            ("verify: hash too long", "/hash/verify", {"password": "pw", "hash": good + "."},
             "application/json", 400, "hash"),
            ("verify: $2x$ prefix", "/hash/verify", {"password": "pw", "hash": "$2x$04$" + tail},
             "application/json", 400, "hash"),
            ("verify: $2$ prefix", "/hash/verify", {"password": "pw", "hash": "$2$04$" + tail + "."},
             "application/json", 400, "hash"),
            ("verify: md5-crypt", "/hash/verify",
             {"password": "pw", "hash": crypt.crypt("pw", "$1$saltsalt$")},
             "application/json", 400, "hash"),
            ("verify: cost 03", "/hash/verify", {"password": "pw", "hash": "$2b$03$" + tail},
             "application/json", 400, "hash"),
            ("verify: cost 32", "/hash/verify", {"password": "pw", "hash": "$2b$32$" + tail},
             "application/json", 400, "hash"),
            ("verify: cost one digit", "/hash/verify",
             {"password": "pw", "hash": "$2b$4$" + tail + "."}, "application/json", 400, "hash"),
            ("verify: cost not digits", "/hash/verify",
             {"password": "pw", "hash": "$2b$1a$" + tail}, "application/json", 400, "hash"),
            ("verify: '+' in the digest", "/hash/verify",
             {"password": "pw", "hash": good[:-1] + "+"}, "application/json", 400, "hash"),
            ("verify: '$' in the digest", "/hash/verify",
             {"password": "pw", "hash": good[:-1] + "$"}, "application/json", 400, "hash"),
            # Well-formed but too costly to verify: it would hold a thread for hours.
            ("verify: cost 31", "/hash/verify", {"password": "pw", "hash": "$2b$31$" + tail},
             "application/json", 400, "cost"),
            ("verify: cost 16", "/hash/verify", {"password": "pw", "hash": "$2b$16$" + tail},
             "application/json", 400, "cost"),
        ]
        for name, path, body, ctype, want, text in cases:
            with self.subTest(name):
                status, hdrs, parsed, raw = post(self.server, path, body, ctype)
                self.assertEqual(status, want, raw)
                self.assertTrue(hdrs.get("content-type", "").startswith("application/json"),
                                hdrs)
                self.assertIsInstance(parsed, dict, raw)
                self.assertEqual(list(parsed), ["error"], raw)
                self.assertIn(text, parsed["error"])
        # The server is still answering correctly after all of that.
        self.assertIs(self.verify("pw", good), True)

    def test_other_methods_are_refused(self):
        status, hdrs, _ = self.server.request("GET", "/hash")
        self.assertEqual(status, 405)
        self.assertIn("POST", hdrs.get("allow", ""))


class HashUnderPressure(unittest.TestCase):
    """One pool thread and a queue of two, with a cost high enough (12) that
    jobs overlap: the queue fills long before the first job ends."""

    SECTIONS = {"hash": {"threads": "1", "queue_max": "2"}, "example": {"bcrypt_cost": "12"}}

    def setUp(self):
        self.server = harness.Server(self.SECTIONS).start()

    def tearDown(self):
        self.server.stop()  # checked: a graceful stop, every job answered

    def health_pid(self):
        status, _, body = self.server.json("GET", "/health")
        self.assertEqual(status, 200)
        return body["pid"]

    def assert_clean_exit(self):
        rc, err = stop_and_collect(self.server)
        self.assertEqual(rc, 0, err)
        for mark in CRASH_MARKS:
            self.assertNotIn(mark, err)
            self.assertNotIn(mark, self.server.log())

    def all_read(self, socks):
        """Whether forkd has read the request on each of socks: each is in
        flight (its job running or queued) or already answered (503 when the
        queue was full)."""
        answered = select.select(socks, [], [], 0)[0]
        return self.server.in_flight() >= len(socks) - len(answered)

    def send_hash(self, password):
        """Opens a connection and sends one complete /hash request on it;
        returns the socket without reading the answer."""
        body = json.dumps({"password": password}).encode()
        s = self.server.connect()
        s.sendall(b"POST /hash HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        return s

    def test_client_leaving_mid_hash_leaves_the_worker_healthy(self):
        pid = self.health_pid()
        for _ in range(3):
            # The first job runs, the next two wait in the queue: leaving
            # cancels one of each kind. Closing with RST makes the departure
            # immediate.
            socks = [self.send_hash("gone %d" % i) for i in range(3)]
            # The worker has read them all (a job is running, queued or
            # already refused) before the clients leave.
            self.assertTrue(harness.wait_for(lambda: self.all_read(socks), 20))
            for s in socks:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            self.assertEqual(self.health_pid(), pid)
        # The pool is free again: a fresh job is accepted and completes.
        status, hdrs, body, raw = post(self.server, "/hash", {"password": "after"}, timeout=60)
        self.assertEqual(status, 200, raw)
        self.assertEqual(bcrypt("after", body["hash"]), body["hash"])
        self.assertEqual(self.health_pid(), pid)
        self.assert_clean_exit()

    def test_graceful_stop_answers_jobs_in_flight(self):
        socks = [self.send_hash("in flight %d" % i) for i in range(3)]

        # Before the stop, forkd has read every request.
        self.assertTrue(harness.wait_for(lambda: self.all_read(socks), 20))
        self.server.send_signal(signal.SIGTERM)
        accepted = 0
        for i, s in enumerate(socks):
            with s:
                data, closed = harness.read_all(s, timeout=60)
            responses = harness.parse_responses(data)
            self.assertEqual(len(responses), 1, data)
            status, headers, body = responses[0]
            if status == 503:  # the queue was full at that instant: refused, not lost
                self.assertIn(("retry-after", "1"), headers)
                continue
            self.assertEqual(status, 200, body)
            accepted += 1
            h = json.loads(body)["hash"]
            self.assertEqual(bcrypt("in flight %d" % i, h), h)
        self.assertGreater(accepted, 0)
        self.assertEqual(self.server.proc.wait(60), 0)

    def test_flood_beyond_the_queue(self):
        clients = 20
        barrier = threading.Barrier(clients)
        results = [None] * clients

        def one(i):
            pw = "flood %d" % i
            barrier.wait(timeout=30)
            try:
                results[i] = (pw,) + post(self.server, "/hash", {"password": pw}, timeout=120)
            except Exception as e:  # reported below, with the others
                results[i] = (pw, e)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        accepted = refused = 0
        for r in results:
            self.assertIsNotNone(r)
            self.assertEqual(len(r), 5, r)
            pw, status, hdrs, body, raw = r
            if status == 503:
                refused += 1
                self.assertEqual(hdrs.get("retry-after"), "1", hdrs)
                self.assertIsInstance(body, dict, raw)
                self.assertIn("error", body)
            else:
                self.assertEqual(status, 200, raw)
                accepted += 1
                self.assertRegex(body["hash"], BCRYPT_RE)
                self.assertEqual(bcrypt(pw, body["hash"]), body["hash"])
        self.assertGreater(refused, 0)
        self.assertGreater(accepted, 0)
        # Once the queue has drained the server accepts work again.
        status, _, body, raw = post(self.server, "/hash", {"password": "later"}, timeout=60)
        self.assertEqual(status, 200, raw)
        self.assertEqual(bcrypt("later", body["hash"]), body["hash"])
        self.assert_clean_exit()


if __name__ == "__main__":
    harness.main()
