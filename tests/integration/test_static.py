"""Static files ([static], app_use_static): what is sent (types, validators,
304, ranges, gzip siblings, index.html, HEAD), that nothing outside the root
is ever sent (the traversal catalogue, directly and through nginx, with
openat2 and with the no-symlink walk), and files replaced, rewritten or
truncated while they are sent.
"""
import gzip
import os
import re
import shutil
import socket
import tempfile
import time
import unittest

import harness
from harness import Server, wait_for
from test_nginx import Nginx

SECRET = b"the secret outside the root\n"
KIB = bytes(range(256)) * 4                      # 1 KiB
BIG = (bytes(range(256)) * 4096) * 3             # 3 MiB: sent with sendfile
HTML = b"<!doctype html><title>index</title>\n"
HUGE = 256 << 20


def make_tree(top):
    """top/secret.txt outside the root, top/root/ the served directory."""
    root = os.path.join(top, "root")
    os.makedirs(os.path.join(root, "sub", "deeper"))
    os.makedirs(os.path.join(root, "docs"))
    files = {"kib.bin": KIB, "big.bin": BIG, "index.html": HTML, "sub/page.html": HTML,
             "docs/index.html": b"docs\n", "style.css": b"body{}\n" * 200,
             "app.js": b"x=1\n", "data.weird": b"?\n", ".env": b"PASSWORD=1\n",
             "sub/deeper/file.txt": b"deep\n"}
    for name, data in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    with open(os.path.join(root, "style.css.gz"), "wb") as f:
        f.write(gzip.compress(files["style.css"], mtime=0))
    with open(os.path.join(top, "secret.txt"), "wb") as f:
        f.write(SECRET)
    os.symlink(os.path.join(top, "secret.txt"), os.path.join(root, "leak.txt"))
    os.symlink(top, os.path.join(root, "up"))
    os.symlink("../secret.txt", os.path.join(root, "sub", "rel-leak.txt"))
    os.symlink("kib.bin", os.path.join(root, "alias.bin"))   # stays inside
    os.mkfifo(os.path.join(root, "pipe"))
    return root


def raw(server_port, target, extra=b""):
    """One request with target sent byte for byte; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", server_port), timeout=10) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                  extra + b"\r\n")
        data, _ = harness.read_all(s)
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return status, headers, body


# Each of these must get 404 and never the secret (nor anything outside).
TRAVERSAL = [
    b"/static/../secret.txt", b"/static/%2e%2e/secret.txt", b"/static/%2E%2E/secret.txt",
    b"/static/..%2fsecret.txt", b"/static/..%2Fsecret.txt", b"/static/%2e%2e%2fsecret.txt",
    b"/static/sub/../../secret.txt", b"/static/sub/%2e%2e/%2e%2e/secret.txt",
    b"/static/..\\secret.txt", b"/static/sub%5c..%5c..%5csecret.txt",
    b"/static/sub%5C..%5C..%5Csecret.txt", b"/static/kib.bin%00.html", b"/static/%00",
    b"/static/leak.txt", b"/static/up/secret.txt", b"/static/sub/rel-leak.txt",
    b"/static/.env", b"/static/./kib.bin", b"/static//kib.bin", b"/static/sub//page.html",
    b"/static/%2fetc/passwd", b"/static/%252e%252e/secret.txt", b"/static/pipe",
    b"/static/nope.txt", b"/static/sub/deeper/../../../secret.txt",
]


class StaticCase(unittest.TestCase):
    OPENAT2 = "on"

    @classmethod
    def setUpClass(cls):
        cls.top = tempfile.mkdtemp(prefix="forkd-static-")
        cls.root = make_tree(cls.top)
        cls.server = Server({"static": {"root": cls.root, "prefix": "/static/",
                                        "openat2": cls.OPENAT2, "types": "weird:text/x-weird"},
                             "http": {"send_timeout": "2"}}, workers=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.top, ignore_errors=True)

    def get(self, path, headers=None, method="GET"):
        return self.server.request(method, path, headers=headers)


class ServeTest(StaticCase):
    def test_small_file(self):
        status, h, body = self.get("/static/kib.bin")
        self.assertEqual((status, body), (200, KIB))
        self.assertEqual(h["content-type"], "application/octet-stream")
        self.assertEqual(h["content-length"], "1024")
        self.assertEqual(h["accept-ranges"], "bytes")
        self.assertEqual(h["vary"], "Accept-Encoding")
        st = os.stat(os.path.join(self.root, "kib.bin"))
        self.assertEqual(h["etag"], '"%x-%x"' % (st.st_mtime_ns, st.st_size))
        self.assertEqual(h["last-modified"],
                         time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(st.st_mtime)))

    def test_large_file_with_sendfile(self):
        status, h, body = self.get("/static/big.bin")
        self.assertEqual((status, h["content-length"], len(body)), (200, str(len(BIG)), len(BIG)))
        self.assertEqual(body, BIG)

    def test_types(self):
        for path, ctype in [("/static/index.html", "text/html; charset=utf-8"),
                            ("/static/app.js", "text/javascript; charset=utf-8"),
                            ("/static/data.weird", "text/x-weird")]:
            self.assertEqual(self.get(path)[1]["content-type"], ctype, path)

    def test_head(self):
        status, h, body = self.get("/static/big.bin", method="HEAD")
        self.assertEqual((status, h["content-length"], body), (200, str(len(BIG)), b""))
        # The connection stays usable after a HEAD of a large file.
        conn = self.server.http()
        conn.request("HEAD", "/static/big.bin")
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b""))
        conn.request("GET", "/static/kib.bin")
        self.assertEqual(conn.getresponse().read(), KIB)
        conn.close()

    def test_index_and_directory_redirect(self):
        self.assertEqual(self.get("/static/")[::2], (200, HTML))
        self.assertEqual(self.get("/static/docs/")[::2], (200, b"docs\n"))
        status, h, _ = self.get("/static/docs?x=1")
        self.assertEqual((status, h["location"]), (301, "/static/docs/?x=1"))
        self.assertEqual(self.get("/static/sub/")[0], 404)  # no index.html there

    def test_symlink_inside_the_root(self):
        self.assertEqual(self.get("/static/alias.bin")[::2], (200, KIB))

    def test_other_methods(self):
        status, h, _ = self.get("/static/kib.bin", method="POST")
        self.assertEqual((status, h["allow"]), (405, "GET, HEAD"))

    def test_routes_outside_the_prefix_still_work(self):
        self.assertEqual(self.get("/hello")[::2], (200, b"Hello World!"))


class ConditionalTest(StaticCase):
    def validators(self):
        h = self.get("/static/kib.bin")[1]
        return h["etag"], h["last-modified"]

    def test_if_none_match(self):
        etag, _ = self.validators()
        for v in (etag, "W/" + etag, '"other", ' + etag, "*"):
            status, h, body = self.get("/static/kib.bin", {"If-None-Match": v})
            self.assertEqual((status, body, h["etag"]), (304, b"", etag), v)
        self.assertEqual(self.get("/static/kib.bin", {"If-None-Match": '"other"'})[0], 200)

    def test_if_modified_since(self):
        _, lm = self.validators()
        self.assertEqual(self.get("/static/kib.bin", {"If-Modified-Since": lm})[0], 304)
        old = "Sat, 01 Jan 2000 00:00:00 GMT"
        self.assertEqual(self.get("/static/kib.bin", {"If-Modified-Since": old})[0], 200)
        self.assertEqual(self.get("/static/kib.bin", {"If-Modified-Since": "yesterday"})[0],
                         200)
        # If-None-Match wins over If-Modified-Since.
        self.assertEqual(self.get("/static/kib.bin", {"If-None-Match": '"x"',
                                                      "If-Modified-Since": lm})[0], 200)


class RangeTest(StaticCase):
    def test_ranges(self):
        for spec, lo, hi in [("bytes=0-9", 0, 9), ("bytes=1000-", 1000, 1023),
                             ("bytes=-5", 1019, 1023), ("bytes=1000-5000", 1000, 1023),
                             ("bytes=-5000", 0, 1023)]:
            status, h, body = self.get("/static/kib.bin", {"Range": spec})
            self.assertEqual((status, body), (206, KIB[lo:hi + 1]), spec)
            self.assertEqual(h["content-range"], "bytes %d-%d/1024" % (lo, hi), spec)
            self.assertEqual(h["content-length"], str(hi - lo + 1), spec)

    def test_range_of_a_large_file(self):
        status, h, body = self.get("/static/big.bin", {"Range": "bytes=100000-2999999"})
        self.assertEqual((status, body), (206, BIG[100000:3000000]))

    def test_unsatisfiable(self):
        for spec in ("bytes=1024-", "bytes=5000-6000", "bytes=-0"):
            status, h, _ = self.get("/static/kib.bin", {"Range": spec})
            self.assertEqual((status, h["content-range"]), (416, "bytes */1024"), spec)

    def test_ignored_ranges_give_the_whole_file(self):
        for spec in ("bytes=0-1,5-6", "lines=1-2", "bytes=x-y", "bytes=9-3"):
            status, _, body = self.get("/static/kib.bin", {"Range": spec})
            self.assertEqual((status, body), (200, KIB), spec)

    def test_if_range(self):
        etag = self.get("/static/kib.bin")[1]["etag"]
        self.assertEqual(self.get("/static/kib.bin", {"Range": "bytes=0-0",
                                                      "If-Range": etag})[0], 206)
        self.assertEqual(self.get("/static/kib.bin", {"Range": "bytes=0-0",
                                                      "If-Range": '"old"'})[0], 200)


class GzipTest(StaticCase):
    def test_sibling_for_clients_that_take_gzip(self):
        plain = open(os.path.join(self.root, "style.css"), "rb").read()
        packed = open(os.path.join(self.root, "style.css.gz"), "rb").read()
        for ae in ("gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.5", "*"):
            status, h, body = self.get("/static/style.css", {"Accept-Encoding": ae})
            self.assertEqual((status, body, h["content-encoding"]), (200, packed, "gzip"), ae)
            self.assertEqual(h["content-type"], "text/css; charset=utf-8")
            self.assertEqual(h["vary"], "Accept-Encoding")
        for ae in (None, "gzip;q=0", "deflate"):
            status, h, body = self.get("/static/style.css",
                                       {"Accept-Encoding": ae} if ae else {})
            self.assertEqual((status, body), (200, plain), ae)
            self.assertNotIn("content-encoding", h)
        # No sibling: the file itself.
        status, h, body = self.get("/static/kib.bin", {"Accept-Encoding": "gzip"})
        self.assertEqual((status, body), (200, KIB))
        self.assertNotIn("content-encoding", h)


class TraversalTest(StaticCase):
    def test_catalogue(self):
        for target in TRAVERSAL:
            status, _, body = raw(self.server.port, target)
            self.assertIn(status, (400, 404), target)
            self.assertNotIn(b"secret", body, target)
            self.assertNotIn(b"PASSWORD", body, target)

    def test_catalogue_through_nginx(self):
        nginx = Nginx(self.server.port).start()
        try:
            for target in TRAVERSAL:
                status, _, body = raw(nginx.port, target)
                self.assertIn(status, (400, 404), target)
                self.assertNotIn(b"secret", body, target)
                self.assertNotIn(b"PASSWORD", body, target)
            # and a good file still comes through
            self.assertEqual(raw(nginx.port, b"/static/kib.bin")[::2], (200, KIB))
        finally:
            nginx.stop()


class WalkTest(TraversalTest):
    """The same catalogue with openat2 off: the walk refuses every symlink."""
    OPENAT2 = "off"

    def test_no_symlink_at_all(self):
        self.assertEqual(self.get("/static/alias.bin")[0], 404)
        self.assertEqual(self.get("/static/sub/page.html")[::2], (200, HTML))
        self.assertIn("a walk that follows no symlink", self.server.log())


class ChangeTest(StaticCase):
    """A file changed while it is sent arrives whole or not at all."""

    def slow_get(self, name):
        """Asks for name, reads the head and a first piece, then returns
        (socket, promised length, body so far)."""
        s = socket.create_connection(("127.0.0.1", self.server.port), timeout=10)
        s.sendall(b"GET /static/" + name + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        return s, length, body

    def read_rest(self, s, length, body):
        """Reads until length or the end; (bytes read, how many were zeros, the last 10)."""
        got, zeros, tail = len(body), body.count(0), body[-10:]
        while got < length:
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got, zeros, tail = got + len(chunk), zeros + chunk.count(0), (tail + chunk)[-10:]
        s.close()
        return got, zeros, tail

    def sparse(self, name, fill=b""):
        """A 256 MiB file (sparse: zeros, cheap), larger than the socket
        buffers on both sides can hold, so most of it is still to send
        when the test changes it; fill, if any, at its start."""
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(fill)
            f.truncate(HUGE)

    def test_replaced_by_rename_is_sent_whole(self):
        self.sparse("r1.bin")
        s, length, body = self.slow_get(b"r1.bin")
        self.sparse("new.bin", b"n" * 4096)
        os.rename(os.path.join(self.root, "new.bin"), os.path.join(self.root, "r1.bin"))
        got, zeros, _ = self.read_rest(s, length, body)
        self.assertEqual((got, zeros), (HUGE, HUGE))

    def test_truncated_while_sent_is_cut_short(self):
        self.sparse("t1.bin")
        s, length, body = self.slow_get(b"t1.bin")
        os.truncate(os.path.join(self.root, "t1.bin"), 100000)
        got, _, _ = self.read_rest(s, length, body)
        self.assertLess(got, length)

    def test_rewritten_in_place_is_cut_short(self):
        self.sparse("w1.bin")
        s, length, body = self.slow_get(b"w1.bin")
        with open(os.path.join(self.root, "w1.bin"), "r+b") as f:
            f.seek(HUGE - 10)
            f.write(b"0123456789")  # same size, new mtime: a mixed copy must not complete
        got, _, tail = self.read_rest(s, length, body)
        self.assertLess(got, length)
        self.assertNotEqual(tail, b"0123456789")
        # The next request gets the new file whole.
        self.assertEqual(self.get("/static/w1.bin", {"Range": "bytes=-10"})[2], b"0123456789")

    def test_client_that_stops_reading_is_cut_by_send_timeout(self):
        self.sparse("huge.bin")
        s, length, body = self.slow_get(b"huge.bin")
        # It reads nothing more; [http] send_timeout = 2 s closes it, which
        # leaves the /metrics request itself as the only connection.
        self.assertEqual(self.connections(), 2)
        self.assertTrue(wait_for(lambda: self.connections() == 1, 30))
        s.close()

    def connections(self):
        text = self.server.request("GET", "/metrics")[2].decode()
        return sum(int(float(v)) for v in re.findall(r"^forkd_connections\{[^}]*\} (\S+)$",
                                                     text, re.M))


if __name__ == "__main__":
    harness.main()
