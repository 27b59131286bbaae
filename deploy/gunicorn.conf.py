"""gunicorn settings of the web process; every value can be overridden from the environment."""

import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('IOTFLOW_PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads overlap each request's database and Redis waits: 2 workers × 4 threads served both a bare view and
# single-reading ingest faster than 2 or 4 sync workers (docs/performance.md, Serving layout).
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# gthread, except that a worker with every thread busy leaves new connections to the others
# (iotflow/gunicorn_worker.py); one thread per worker gives sync workers, as in gunicorn.
worker_class = os.environ.get(
    "GUNICORN_WORKER_CLASS", "iotflow.gunicorn_worker.BalancedThreadWorker" if threads > 1 else "sync"
)
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", None)
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):
    """The application is loaded: what it loaded lives as long as the worker, so the collector stops walking it,
    and young collections run less often (measured: see docs/performance.md, latest_p99_ms)."""
    import gc

    gc.freeze()
    gc.set_threshold(7_000, 10, 10)


def child_exit(server, worker):
    """Tell the Prometheus multiprocess registry that a worker's files are no longer live."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
