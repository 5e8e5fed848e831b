"""The comparison point of scenario 5: the sample API service's own app (`create_api_app`, same
config, hooks and error handlers) under the same server settings as `authserver api serve`,
with `GET /v1/users` running its bare view: no `require_auth` (no JWT verification) and no rate
limiter (nor the usage count that sits behind it). The principal the view reads is the one the
benchmark's JWT stands for, verified once per worker at start-up, so the answer is the same JSON.

    python -m bench.bare_api --port P --workers N     (BENCH_BARE_TOKEN: the JWT; AUTHSERVER_*: as the API)

Built here, in bench/, because the API service has no switch for this: authserver/ is unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os

from flask import g


def create_bare_app():
    from authserver.api import app as api_module
    from authserver.api.config import load_api_config

    config = dataclasses.replace(load_api_config(), client_id=None, client_secret=None)  # no metering
    app = api_module.create_api_app(config)
    assert app.view_functions["list_users"] is api_module.list_users
    principal = app.extensions[api_module.EXTENSION].verifier.verify(os.environ["BENCH_BARE_TOKEN"])
    view = inspect.unwrap(api_module.list_users)  # the view under @protected (require_auth + limiter)

    def list_users_bare():
        g.principal = principal
        return view()

    app.view_functions["list_users"] = list_users_bare
    return app


def main() -> None:
    from authserver.wsgi_server import run_wsgi_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    run_wsgi_server(create_bare_app, host=args.host, port=args.port, workers=args.workers, threads=args.threads)


if __name__ == "__main__":
    main()
