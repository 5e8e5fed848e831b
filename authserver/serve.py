"""`authserver serve`: the WSGI server (authserver/wsgi_server.py), one worker process per core.

The Flask development server is for development only.
"""

from __future__ import annotations

import sys

from .wsgi_server import run_wsgi_server
from .oauth.keys import KeyStore, KeyStoreError
from .settings import load_settings


def _load_app():
    from .app import create_app

    return create_app()


def run(*, host: str, port: int, workers: int, threads: int) -> None:
    settings = load_settings()  # a bad setting stops here with one line, before any worker starts
    try:
        # A missing, damaged or mismatched key file stops here too: no worker would start without it.
        KeyStore(settings.keys_dir, settings.key_size).ensure_active()
    except KeyStoreError as exc:
        raise SystemExit(f"authserver: error: cannot start: {exc}") from None
    if workers > 1 and not settings.redis_url:
        # Allowed (a development default), but the limits are then per worker: say so once.
        print(f"warning: sign-in throttling counts in each of the {workers} workers' memory, so each allows the "
              "whole limit; set AUTHSERVER_REDIS_URL to share the counts", file=sys.stderr)
    run_wsgi_server(_load_app, host=host, port=port, workers=workers, threads=threads)
