#!/usr/bin/env python3
"""Requests lost to a reload or an upgrade, under wrk -c32, on loopback.

  scripts/bench.d/reload.py [--duration S] [--every S] [--pm2 PATH]

For each server: start it with two workers answering GET /hello, run
`wrk -t1 -c32 -dS` against it, and every --every seconds ask for:
  forkd upgrade   kill -USR2 (binary upgrade: a new primary takes the sockets)
  forkd reload    kill -HUP (new configuration, workers replaced slot by slot)
  nginx reload    nginx -s reload (HUP: new workers, old ones close their
                  idle keep-alive connections and exit)
  pm2 reload      pm2 reload (cluster mode, 2 instances of a Node.js http
                  server), when --pm2 names a pm2 binary
and print wrk's requests, non-2xx answers and socket errors as a markdown
table. forkd is the release build (build-release/forkd, built when missing).
Nothing here is a test: the numbers go into docs/operations-upgrade.md.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build-release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on %d" % port)


def wrk_under(port, duration, every, action):
    """wrk for duration seconds, action() every `every` seconds meanwhile;
    (requests, non-2xx, socket errors, actions done)."""
    wrk = subprocess.Popen(["wrk", "-t1", "-c32", "-d%ds" % duration,
                            "http://127.0.0.1:%d/hello" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    done = 0
    t0 = time.monotonic()
    while True:
        time.sleep(max(0.0, t0 + every * (done + 1) - time.monotonic()))
        if time.monotonic() - t0 > duration - every / 2 or wrk.poll() is not None:
            break
        action()
        done += 1
    out = wrk.communicate()[0]
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return reqs, int(non2xx.group(1)) if non2xx else 0, \
        sum(map(int, errs.groups())) if errs else 0, done, out


def forkd(tmp, mode, duration, every):
    port = free_port()
    conf = os.path.join(tmp, "forkd-%s.conf" % mode)
    pidfile = os.path.join(tmp, "forkd-%s.pid" % mode)
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nworkers = 2\npidfile = %s\n"
                "[log]\nerror_log = %s/forkd-%s.log\naccess_log = off\n"
                % (port, pidfile, tmp, mode))
    binary = os.path.join(tmp, "forkd-" + mode)
    shutil.copy(os.path.join(BUILD, "forkd"), binary)
    proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_listening(port)
    time.sleep(0.5)
    sig = signal.SIGUSR2 if mode == "upgrade" else signal.SIGHUP

    def action():
        with open(pidfile) as f:
            os.kill(int(f.read()), sig)
    try:
        return wrk_under(port, duration, every, action)
    finally:
        with open(pidfile) as f:
            pid = int(f.read())
        os.kill(pid, signal.SIGTERM)
        proc.wait(60)
        deadline = time.monotonic() + 60
        while os.path.exists("/proc/%d" % pid) and time.monotonic() < deadline:
            time.sleep(0.1)


NGINX = """\
worker_processes 2;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 4096; }}
http {{
	access_log off;
	client_body_temp_path {p}/body;
	proxy_temp_path {p}/proxy;
	fastcgi_temp_path {p}/fastcgi;
	uwsgi_temp_path {p}/uwsgi;
	scgi_temp_path {p}/scgi;
	server {{
		listen 127.0.0.1:{port} reuseport;
		location = /hello {{ default_type text/plain; return 200 "Hello World!"; }}
	}}
}}
"""


def nginx(tmp, duration, every):
    port = free_port()
    p = os.path.join(tmp, "nginx")
    os.makedirs(p)
    os.chmod(tmp, 0o755)
    os.chmod(p, 0o755)
    conf = os.path.join(p, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX.format(p=p, port=port))
    proc = subprocess.Popen(["nginx", "-p", p, "-c", conf, "-e", p + "/error.log",
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_listening(port)
    time.sleep(0.5)
    try:
        return wrk_under(port, duration, every, lambda: subprocess.run(
            ["nginx", "-p", p, "-c", conf, "-e", p + "/error.log", "-s", "reload"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    finally:
        proc.terminate()
        proc.wait(30)


APP = """\
const http = require('http');
http.createServer((req, res) => {
  res.writeHead(200, {'Content-Type': 'text/plain'});
  res.end('Hello World!');
}).listen(process.env.PORT, '127.0.0.1');
"""


def pm2(tmp, pm2_bin, duration, every):
    port = free_port()
    app = os.path.join(tmp, "app.js")
    with open(app, "w") as f:
        f.write(APP)
    env = dict(os.environ, PORT=str(port), PM2_HOME=os.path.join(tmp, "pm2"))
    run = lambda *a: subprocess.run([pm2_bin] + list(a), env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    run("start", app, "-i", "2", "--name", "hello")
    wait_listening(port)
    time.sleep(1)
    try:
        return wrk_under(port, duration, every, lambda: run("reload", "hello"))
    finally:
        run("kill")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--every", type=float, default=4)
    ap.add_argument("--pm2")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(BUILD, "build.ninja")):
        subprocess.run(["meson", "setup", BUILD, "-Dbuildtype=release"], cwd=ROOT, check=True)
    subprocess.run(["ninja", "-C", BUILD, "forkd"], check=True, stdout=subprocess.DEVNULL)
    tmp = tempfile.mkdtemp(prefix="forkd-reload-")
    rows = []
    try:
        for name, fn in (("forkd upgrade (USR2)", lambda: forkd(tmp, "upgrade", args.duration,
                                                                 args.every)),
                         ("forkd reload (HUP)", lambda: forkd(tmp, "reload", args.duration,
                                                               args.every)),
                         ("nginx -s reload (HUP)", lambda: nginx(tmp, args.duration,
                                                                  args.every))) + (
                ((("pm2 reload (cluster, 2 instances)",
                   lambda: pm2(tmp, args.pm2, args.duration, args.every)),) if args.pm2 else ())):
            reqs, non2xx, errors, done, out = fn()
            print("%s: %s" % (name, out), file=sys.stderr)
            rows.append("| %s | %d | %d | %d | %d |" % (name, done, reqs, non2xx, errors))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| wrk -t1 -c32 -d%ds, one action every %g s | actions | requests | non-2xx | "
          "socket errors |" % (args.duration, args.every))
    print("|---|--:|--:|--:|--:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
