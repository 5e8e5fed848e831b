"""`authserver serve`: gunicorn with a keep-alive worker (gthread), one process per core.

gunicorn's `sync` worker closes every connection and halves token throughput; the Flask
development server is for development only.
"""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from .oauth.keys import KeyStore
from .settings import load_settings


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from .app import create_app

        return create_app()


def run(*, host: str, port: int, workers: int, threads: int) -> None:
    settings = load_settings()  # a bad setting stops here with one line, before any worker starts
    KeyStore(settings.keys_dir, settings.key_size).ensure_active()
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "keepalive": 5,
            # Forwarded headers are honoured by the app (AUTHSERVER_TRUSTED_PROXIES), not by gunicorn.
            "forwarded_allow_ips": "",
            "proxy_allow_ips": "",
            "accesslog": None,
            "errorlog": "-",
            "proc_name": "authserver",
            # gunicorn's control socket lives at one fixed path per user: it would make two
            # instances on one machine collide, and nothing here uses it.
            "control_socket_disable": True,
        }
    ).run()
