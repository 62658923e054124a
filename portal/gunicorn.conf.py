"""gunicorn's settings for the portal's web server: ``gunicorn -c portal/gunicorn.conf.py portal.wsgi``.

Sized for webhook bursts: a shop (or many) may deliver dozens of webhooks at once, each
needing a few milliseconds of CPU and one short database transaction. Processes give the
CPU parallelism that one Python process's threads cannot; threads in each process keep
kept-alive connections and answer while another request waits on the database; the listen
backlog takes a burst without refusing connections. Every value can be set from the
environment.
"""

import multiprocessing
import os

bind = os.environ.get("PORTAL_BIND", f"127.0.0.1:{os.environ.get('PORTAL_PORT', '8000')}")
# One process per core: more only queue up on SQLite's single write lock (measured: 2 cores,
# 2 x 4 threads 404 webhooks/s, 3 x 4 283/s, 5 x 2 264/s).
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", 4))
backlog = int(os.environ.get("WEB_BACKLOG", 2048))
keepalive = 5
timeout = int(os.environ.get("WEB_TIMEOUT", 30))  # a webhook or a page: seconds, never minutes
graceful_timeout = 30
# A worker is replaced now and then, so that a slow leak never grows without bound; not often: a
# new worker loads the whole application again (about a second of CPU), and at a webhook burst's
# rate 5,000 requests were 8 seconds (a worker's memory stays at about 76 MB meanwhile).
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", 50000))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None  # "": none
