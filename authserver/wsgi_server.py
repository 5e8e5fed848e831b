"""Granian (a Rust HTTP server) running our WSGI apps, shared by `authserver serve`, `authserver api
serve` and the benchmark's bare view.

Chosen over gunicorn by measurement (bench/RESULTS.md): with the same app, one worker and keep-alive,
gunicorn's `gthread` worker spent ~0.7 ms of CPU per request on accepting, parsing and writing in
Python; granian does that in Rust and hands each request to a pool of Python threads.

Workers are forked processes; a worker that dies (even by kill -9) is replaced. SIGTERM or SIGINT
stops the server gracefully. The workers keep their Prometheus metrics in a private directory made
here before they start (PROMETHEUS_MULTIPROC_DIR, removed when the server stops), so that any
worker's `/metrics` adds up all of them (authserver/metrics.py). This module imports no
application code: each command passes a function that builds its WSGI app, called in every worker
after the fork.

Granian copies the worker's whole environment into every request's WSGI environ, so once the app
is built the worker drops the `AUTHSERVER_*` variables (they hold the secret key, database and
Redis passwords, client secrets): no request, error page or debugging aid can show them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Callable

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings

# Seconds a client may take to send its request headers (slow clients hold no Python thread).
HEADER_READ_TIMEOUT = 10
SETTINGS_PREFIX = "AUTHSERVER_"
# How long a stopping worker may finish the requests it holds.
WORKER_KILL_TIMEOUT = 10


def run_wsgi_server(load_app: Callable[[], object], *, host: str, port: int, workers: int, threads: int) -> None:
    with _metrics_directory():
        _granian(host=host, port=port, workers=workers, threads=threads).serve(
            target_loader=lambda _target: load_app_then_forget_settings(load_app))


@contextmanager
def _metrics_directory():
    """A fresh directory for this server's metrics only (a previous run's counts would add up
    with ours), named to every worker by PROMETHEUS_MULTIPROC_DIR, removed at exit."""
    directory = tempfile.mkdtemp(prefix="authserver-metrics-")  # mode 0700
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield directory
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(directory, ignore_errors=True)


def _granian(*, host: str, port: int, workers: int, threads: int) -> Granian:
    return Granian(
        # Only names the app in granian's messages: `load_app` builds it.
        target="authserver",
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT * 1000),
        websockets=False,
        workers=workers,
        blocking_threads=threads,
        respawn_failed_workers=True,
        workers_kill_timeout=WORKER_KILL_TIMEOUT,
        log_access=False,
    )


def load_app_then_forget_settings(load_app: Callable[[], object]) -> object:
    """Build the app (which reads its settings), then remove the settings from this worker's
    environment, before granian snapshots it for the WSGI environ. A respawned worker is forked
    from the main process, which keeps them."""
    app = load_app()
    for name in [name for name in os.environ if name.startswith(SETTINGS_PREFIX)]:
        del os.environ[name]
    return app
