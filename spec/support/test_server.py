"""The tail every test server in spec/support shares: serve in a thread, print
the line the spec reads, then live until the parent goes or the lifetime passes.

The servers run as scripts from spec/support, so Python puts this folder on
sys.path and `import test_server` finds this file.
"""

import argparse
import os
import threading
import time
from http.server import ThreadingHTTPServer


class QuietHTTPServer(ThreadingHTTPServer):
    """Its threads do not hold the exit, and a client that breaks the
    connection is not worth a traceback."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


def start(server):
    """Serves `server` in a daemon thread; returns its port."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def run_until_orphaned(parent, lifetime):
    """Returns never: exits once `parent` (taken before the first line was
    printed, so a parent that exits right after reading it is still seen to
    go) is gone or `lifetime` seconds have passed."""
    deadline = time.monotonic() + lifetime
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.2)
    os._exit(0)


def serve(server, lifetime):
    """One server: prints "pid=<pid> http=<port>", then runs until orphaned."""
    parent = os.getppid()
    port = start(server)
    print("pid=%d http=%d" % (os.getpid(), port), flush=True)
    run_until_orphaned(parent, lifetime)


def run(server_class, handler, lifetime):
    """The main of a server whose one argument is --lifetime (default
    `lifetime` seconds): serves `handler` on a free loopback port."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=lifetime)
    args = ap.parse_args()
    serve(server_class(("127.0.0.1", 0), handler), args.lifetime)
