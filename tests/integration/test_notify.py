"""sd_notify: the primary tells a service manager (systemd Type=notify) when it
is ready, reloading and stopping. The test plays systemd's part with its own
NOTIFY_SOCKET."""
import os
import signal
import socket
import tempfile

import harness
from harness import Server


class NotifyTest(harness.unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forkd-notify-")
        self.path = os.path.join(self.dir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.addCleanup(self.sock.close)

    def messages_until(self, word, timeout=20):
        """Datagrams received until one holds word (or the timeout)."""
        self.sock.settimeout(timeout)
        got = []
        while True:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                return got
            got.append(msg)
            if word in msg:
                return got

    def test_ready_reloading_stopping(self):
        s = Server(workers=2, env={"NOTIFY_SOCKET": self.path})
        self.addCleanup(s.stop)
        s.start()
        got = self.messages_until("READY=1")
        self.assertTrue(any("READY=1" in m for m in got), got)
        self.assertIn("2 worker(s) serving on 127.0.0.1:%d" % s.port, got[-1])
        s.send_signal(signal.SIGHUP)
        got = self.messages_until("READY=1")
        self.assertIn("RELOADING=1", got[0], got)
        self.assertIn("READY=1", got[-1])  # back to ready once the new workers serve
        s.send_signal(signal.SIGTERM)
        got = self.messages_until("STOPPING=1")
        self.assertTrue(any("STOPPING=1" in m for m in got), got)
        self.assertEqual(s.stop(), 0)

    def test_no_socket_no_harm(self):
        s = Server()
        self.addCleanup(s.stop)
        s.start()
        self.assertEqual(s.request("GET", "/hello")[0], 200)


if __name__ == "__main__":
    harness.main()
