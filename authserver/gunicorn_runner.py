"""gunicorn with a keep-alive worker (gthread), shared by `authserver serve` and `authserver api serve`.

gunicorn's `sync` worker closes every connection and halves token throughput; the Flask
development server is for development only. This module imports no application code: each
command passes a function that builds its WSGI app, called in every worker after the fork.
"""

from __future__ import annotations

from typing import Callable

from gunicorn.app.base import BaseApplication


class GunicornApp(BaseApplication):
    def __init__(self, options: dict, load_app: Callable[[], object]):
        self.options = options
        self.load_app = load_app
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return self.load_app()


def run_gunicorn(load_app: Callable[[], object], *, host: str, port: int, workers: int, threads: int,
                 proc_name: str) -> None:
    GunicornApp(
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
            "proc_name": proc_name,
            # gunicorn's control socket lives at one fixed path per user: it would make two
            # instances on one machine collide, and nothing here uses it.
            "control_socket_disable": True,
        },
        load_app,
    ).run()
