"""gunicorn's threaded worker, taking new connections only while it has a thread free for them.

Every worker of gunicorn's ``gthread`` class watches the shared listening socket, and whichever
wakes first accepts. When clients open several connections at once, one worker often takes all of
them: measured with 8 keep-alive connections on 2 workers × 4 threads, splits of 8:0 and 7:1 were
common, and that worker's requests then queue for its threads and its one interpreter lock while
the other worker idles (single-reading ingest at ~510 requests/s instead of ~900; the same for a
bare view: ~1,130 instead of ~3,200; docs/performance.md, Serving layout). Connections are kept
alive, so a split made at connect time lasts as long as the clients do.

``BalancedThreadWorker`` counts the requests it has handed to its threads; with all of them
taken it stops watching the listening socket, so a new connection goes to a worker with a free
thread, or waits in the kernel's queue until one frees, as it would with sync workers. It watches
again as soon as a request finishes. Kept-alive connections it already holds are served as before.
"""

from gunicorn.workers.gthread import ThreadWorker


class BalancedThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.busy = 0  # connections handed to the thread pool and not finished yet (main thread only)

    def enqueue_req(self, conn):
        self.busy += 1
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        self.busy -= 1
        super().finish_request(conn, fs)  # may hand the connection back to the pool (enqueue_req)

    def accept(self, listener):
        if self.busy >= self.cfg.threads:
            self.set_accept_enabled(False)  # leave this connection to a worker with a free thread
            return
        super().accept(listener)

    def set_accept_enabled(self, enabled):
        # The worker's loop asks to accept whenever it is under worker_connections: only with a free thread.
        super().set_accept_enabled(enabled and self.busy < self.cfg.threads)
