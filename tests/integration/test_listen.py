"""Listen forms, against the real binary: several listen lines, IPv6, host
names, a bare port, unix sockets (mode, owner, removal on stop, a stale file
replaced, a live one never touched), and systemd socket activation
(LISTEN_FDS). Requests go over loopback or the unix socket; what forkd did
is read from its error log and the file system.
"""
import grp
import http.client
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import tempfile
import unittest

import harness
from harness import Server, free_port, wait_for


def read_text(path):
    with open(path) as f:
        return f.read()


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAVE_V6 = ipv6_loopback()


def get(host, port, path="/hello", family=socket.AF_INET):
    """(status, body) of one GET over TCP to host:port."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


def get_unix(path, url="/hello"):
    conn = UnixConnection(path)
    try:
        conn.request("GET", url)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


class ListenCase(unittest.TestCase):
    def server(self, listens, workers=2, extra=None, start=True):
        """A forkd whose [server] listen lines are listens (the harness's
        own TCP port stays the first, so it knows when forkd is up)."""
        s = Server(extra, workers=workers)
        self.addCleanup(s.stop)
        self.sock_dir = tempfile.mkdtemp(prefix="forkd-sock-")
        lines = ["listen = 127.0.0.1:%d" % s.port] + ["listen = %s" % l for l in listens]
        text = ""
        for section, keys in s.sections.items():
            text += "[%s]\n" % section
            if section == "server":
                text += "\n".join(lines) + "\n"
            text += "".join("%s = %s\n" % (k, v) for k, v in keys.items() if k != "listen")
        s.write_conf(raw=text)
        if start:
            s.start()
        return s

    def start_fails(self, s, message):
        """forkd exits with the configuration-error code, logging message."""
        s.start(wait=False)
        self.assertEqual(s.proc.wait(harness.STOP_WAIT), 1, s.log())
        self.assertIn(message, s.log() + harness.drain(s.proc.stderr).decode())


class Forms(ListenCase):
    def test_several_lines_names_ipv6_and_a_bare_port(self):
        p1, p2, p3 = free_port(), free_port(), free_port()
        listens = ["localhost:%d" % p1, "%d" % p2]
        if HAVE_V6:
            listens.append("[::1]:%d" % p3)
        s = self.server(listens)
        self.assertEqual(get("127.0.0.1", s.port), (200, b"Hello World!"))
        self.assertEqual(get("127.0.0.1", p1)[0], 200)
        self.assertEqual(get("127.0.0.1", p2)[0], 200)  # a bare port: every IPv4 address
        if HAVE_V6:
            self.assertEqual(get("::1", p2)[0], 200)      # ... and every IPv6 address
            self.assertEqual(get("::1", p3)[0], 200)
            self.assertTrue(refused("127.0.0.1", p3))

    def test_unix_socket_mode_owner_and_removal(self):
        owner = ""
        if os.geteuid() == 0:
            owner = "nobody:%s" % grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
        s = self.server([], extra={"server": {"unix_mode": "0600", "unix_owner": owner}},
                        start=False)
        path = os.path.join(self.sock_dir, "forkd.sock")
        s.write_conf(raw=read_text(s.conf).replace(
            "[server]\n", "[server]\nlisten = unix:%s\n" % path, 1))
        s.start()
        st = os.stat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        if owner:
            self.assertEqual(st.st_uid, pwd.getpwnam("nobody").pw_uid)
        # Every worker accepts from the one socket: over enough requests, both answer.
        pids = set()
        for _ in range(200):
            status, body = get_unix(path, "/health")
            self.assertEqual(status, 200)
            pids.add(json.loads(body)["pid"])
        self.assertEqual(len(pids), 2, pids)
        self.assertEqual(s.stop(), 0)
        self.assertFalse(os.path.exists(path))

    def unix_server(self, path, start=True):
        s = self.server([], start=False)
        s.write_conf(raw=read_text(s.conf).replace(
            "[server]\n", "[server]\nlisten = unix:%s\n" % path, 1))
        if start:
            s.start()
        return s

    def test_stale_socket_file_is_replaced(self):
        path = os.path.join(tempfile.mkdtemp(prefix="forkd-sock-"), "forkd.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()  # the file stays, nobody listens: what a crash leaves
        self.assertTrue(os.path.exists(path))
        self.unix_server(path)
        self.assertEqual(get_unix(path), (200, b"Hello World!"))

    def test_live_socket_is_never_taken(self):
        path = os.path.join(tempfile.mkdtemp(prefix="forkd-sock-"), "other.sock")
        other = socket.socket(socket.AF_UNIX)
        self.addCleanup(other.close)
        other.bind(path)
        other.listen(4)
        inode = os.stat(path).st_ino
        s = self.unix_server(path, start=False)
        self.start_fails(s, "listen unix:%s: a server answers on that socket already; "
                            "not replacing it" % path)
        self.assertEqual(os.stat(path).st_ino, inode)
        c = socket.socket(socket.AF_UNIX)
        c.connect(path)  # still the other server's
        c.close()

    def test_missing_directory_and_a_file_that_is_not_a_socket(self):
        folder = tempfile.mkdtemp(prefix="forkd-sock-")
        missing = os.path.join(folder, "no", "such", "forkd.sock")
        self.start_fails(self.unix_server(missing, start=False),
                         "listen unix:%s: No such file or directory" % missing)
        plain = os.path.join(folder, "plain")
        with open(plain, "w") as f:
            f.write("keep me\n")
        self.start_fails(self.unix_server(plain, start=False),
                         "listen unix:%s: the path exists and is not a socket" % plain)
        self.assertEqual(read_text(plain), "keep me\n")

    def test_bad_unix_path_on_reload_keeps_serving(self):
        """A reload to a unix path in a missing folder, then to one a live
        server holds: each fails with the reason, and forkd serves on."""
        s = self.server([], workers=1)
        good = read_text(s.conf)
        folder = tempfile.mkdtemp(prefix="forkd-sock-")
        other_path = os.path.join(folder, "other.sock")
        other = socket.socket(socket.AF_UNIX)
        self.addCleanup(other.close)
        other.bind(other_path)
        other.listen(4)
        for path, why in ((os.path.join(folder, "missing", "x.sock"),
                           "No such file or directory"),
                          (other_path, "a server answers on that socket already")):
            before = s.log().count("reload failed")
            s.write_conf(raw=good.replace("[server]\n", "[server]\nlisten = unix:%s\n" % path, 1))
            s.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: s.log().count("reload failed") > before, 30))
            self.assertIn("reload failed: listen unix:%s: %s" % (path, why), s.log())
            self.assertEqual(get("127.0.0.1", s.port)[0], 200)

    def test_upgrade_keeps_the_unix_socket(self):
        path = os.path.join(tempfile.mkdtemp(prefix="forkd-sock-"), "forkd.sock")
        s = self.unix_server(path)
        inode = os.stat(path).st_ino
        old = s.proc.pid
        s.send_signal(signal.SIGUSR2)
        self.assertTrue(wait_for(lambda: s.proc.poll() is not None, 60), s.log())
        new = int(read_text(s.pidfile))
        self.addCleanup(self.stop_pid, new)
        self.assertNotEqual(new, old)
        # The old primary left the file to the new one: the same socket serves.
        self.assertEqual(os.stat(path).st_ino, inode)
        self.assertEqual(get_unix(path), (200, b"Hello World!"))
        self.stop_pid(new)
        self.assertFalse(os.path.exists(path))

    def stop_pid(self, pid):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        wait_for(lambda: not os.path.exists("/proc/%d" % pid) or
                 read_text("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()[0] == "Z",
                 harness.STOP_WAIT)


class ActivatedServer(Server):
    """forkd started the way systemd starts a socket-activated service: the
    sockets from descriptor 3 on, LISTEN_FDS and LISTEN_PID (this process's
    pid, set by the shell that then becomes forkd) in the environment."""

    def __init__(self, fds, count=None, **kw):
        super().__init__(**kw)
        self.fds = fds
        self.count = len(fds) if count is None else count

    def start(self, wait=True):
        moves = " ".join("%d<&%d" % (3 + i, fd) for i, fd in enumerate(self.fds))
        script = 'exec %s; export LISTEN_PID=$$ LISTEN_FDS=%d; exec "$@"' % (moves, self.count)
        self.wrapper = ["bash", "-c", script, "forkd"]
        self.proc = None
        env = dict(os.environ)
        self.ready_lines = self.log().count(harness.READY_LINE)
        self.checked = False
        self.proc = subprocess.Popen(self.wrapper + [self.bin, "-c", self.conf] + self.args,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     cwd=self.dir, pass_fds=self.fds)
        if wait and not wait_for(self.ready):
            self.stop(signal.SIGKILL)
            raise RuntimeError("forkd did not start; log:\n" + self.log())
        return self


class Activation(unittest.TestCase):
    def activated(self, fds, count=None):
        s = ActivatedServer(fds, count, workers=2)
        self.addCleanup(s.stop)
        return s

    def listening(self):
        sock = socket.socket()
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        return sock

    def test_serves_on_the_sockets_it_is_given(self):
        sock = self.listening()
        s = self.activated([sock.fileno()])
        # The harness's own port is the config's listen line: never bound.
        s.port = sock.getsockname()[1]
        configured = int(s.sections["server"]["listen"].rsplit(":", 1)[1])
        s.start()
        sock.close()  # forkd holds its own copies now
        self.assertEqual(get("127.0.0.1", s.port), (200, b"Hello World!"))
        self.assertTrue(refused("127.0.0.1", configured))
        self.assertIn("a socket from the service manager", s.log())
        # A reload keeps the service manager's socket.
        before = s.log().count("reload complete")
        s.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: s.log().count("reload complete") > before, 60))
        self.assertEqual(get("127.0.0.1", s.port)[0], 200)
        self.assertTrue(refused("127.0.0.1", configured))

    def test_descriptor_that_does_not_exist(self):
        sock = self.listening()
        s = self.activated([sock.fileno()], count=2)
        s.start(wait=False)
        self.assertEqual(s.proc.wait(harness.STOP_WAIT), 1, s.log())
        self.assertIn("socket activation: descriptor 4 (LISTEN_FDS): no such open descriptor",
                      s.log())

    def test_descriptor_that_is_not_a_listening_socket(self):
        unbound = socket.socket()
        self.addCleanup(unbound.close)
        f = open(__file__)
        self.addCleanup(f.close)
        for fd, why in ((unbound.fileno(), "a socket that does not listen"),
                        (f.fileno(), "not a socket")):
            s = self.activated([fd])
            s.start(wait=False)
            self.assertEqual(s.proc.wait(harness.STOP_WAIT), 1, s.log())
            self.assertIn("socket activation: descriptor 3 (LISTEN_FDS): %s" % why, s.log())
            s.stop()


if __name__ == "__main__":
    harness.main()
