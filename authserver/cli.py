"""The `authserver` command. Scriptable: JSON on stdout for what it creates, messages on stderr,
and on any error a non-zero exit with one line saying what went wrong."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone

from .registration import RegistrationError, check_client_registration
from .settings import SettingsError, load_settings


class CommandError(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args) or 0
    except (CommandError, SettingsError, RegistrationError) as exc:
        print(f"authserver: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # One line: the first line of the message, never the SQL parameters or a traceback.
        first_line = (str(exc).splitlines() or [""])[0]
        print(f"authserver: error: {type(exc).__name__}: {first_line}", file=sys.stderr)
        return 1


def _emit(payload: dict) -> None:
    print(json.dumps(payload, indent=2))


# -- db ------------------------------------------------------------------------

def db_upgrade(_args) -> None:
    from .storage.migrate import upgrade

    settings = load_settings()
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    print("database is at the latest revision", file=sys.stderr)


def db_prune(args) -> None:
    """Delete expired codes, refresh tokens, deny-list entries and old usage batch ids in batches
    (storage/prune.py); one JSON line of counts by table. Safe while servers run."""
    import time

    from .storage import prune
    from .storage.db import make_engine

    settings = load_settings()
    batch_size = settings.prune_batch_size if args.batch_size is None else _batch_size(args.batch_size)
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            now = int(time.time())
            if args.dry_run:
                result = {"would_delete": prune.count_prunable(connection, now)}
            else:
                result = {"deleted": prune.prune(connection, now, batch_size)}
    finally:
        engine.dispose()
    print(json.dumps(result, separators=(",", ":")))


def _batch_size(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100_000:
        raise CommandError("--batch-size must be a whole number from 1 to 100000")
    return int(text)


# -- users ---------------------------------------------------------------------

def users_create(args) -> None:
    from .storage.users import DuplicateEmail, create_user

    if not args.password_stdin:
        raise CommandError("pass the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        raise CommandError("the password must be at least 8 characters")
    if "@" not in args.email or len(args.email) > 320:
        raise CommandError("--email must be an email address")
    with _app_context():
        try:
            user = create_user(args.email, args.name, password, args.plan)
        except DuplicateEmail as exc:
            raise CommandError(str(exc)) from None
        _emit({"id": user.public_id, "email": user.email, "name": user.name, "plan": user.plan})


def users_set_plan(args) -> None:
    from .storage.users import UnknownAccount, set_plan

    if args.plan != "enterprise" and (args.hourly is not None or args.burst is not None):
        raise CommandError("--hourly and --burst are for --plan enterprise only")
    per_hour, per_minute = _limit("--hourly", args.hourly), _limit("--burst", args.burst)
    with _app_context():
        try:
            user = set_plan(args.email, args.plan, per_hour=per_hour, per_minute=per_minute)
        except (UnknownAccount, ValueError) as exc:
            raise CommandError(str(exc)) from None
        custom = user.rate_limit_per_hour is not None or user.rate_limit_per_minute is not None
        _emit({"id": user.public_id, "email": user.email, "plan": user.plan,
               "rate_limits": {"per_hour": user.rate_limit_per_hour, "per_minute": user.rate_limit_per_minute}
               if custom else None})


def _limit(option: str, text: str | None) -> int | None:
    """A custom limit as given: digits only (the range is checked by storage.users.set_plan)."""
    from .storage.users import MAX_CUSTOM_LIMIT

    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise CommandError(f"{option} must be a whole number from 1 to {MAX_CUSTOM_LIMIT}")
    return int(text)


# -- clients -------------------------------------------------------------------

def clients_create(args) -> None:
    from .storage.clients import create_client

    registration = dict(
        name=args.name,
        redirect_uris=args.redirect_uri or [],
        post_logout_redirect_uris=args.post_logout_redirect_uri or [],
        grant_types=args.grant_type,
        scope=" ".join(args.scope.split()),
        public=args.public,
        auth_method=args.auth_method,
        require_pkce=not args.no_pkce,
    )
    check_client_registration(**registration)
    with _app_context():
        client, secret = create_client(**registration)
        output = {"client_id": client.client_id}
        if secret:
            output["client_secret"] = secret
        output.update(
            name=client.name,
            redirect_uris=client.redirect_uris,
            post_logout_redirect_uris=client.post_logout_redirect_uris,
            grant_types=client.grant_types,
            scope=client.scope,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            require_pkce=client.require_pkce,
        )
        _emit(output)


# -- keys ----------------------------------------------------------------------

def _key_store():
    from .oauth.keys import KeyStore

    settings = load_settings()
    return KeyStore(settings.keys_dir, settings.key_size), settings


def _key_command(action):
    """A key-store failure (a damaged manifest, a refused rotation) is one line, like any error."""
    from .oauth.keys import KeyStoreError

    try:
        return action()
    except KeyStoreError as exc:
        raise CommandError(str(exc)) from None


def keys_generate(_args) -> None:
    store, _ = _key_store()
    key = _key_command(store.generate)
    _emit(_describe_key(key))


def keys_list(_args) -> None:
    store, _ = _key_store()
    _emit({"keys": [_describe_key(key) for key in _key_command(store.load)]})


def keys_rotate(args) -> None:
    from .oauth.signing import RotationPolicy

    store, settings = _key_store()
    policy = RotationPolicy.from_settings(settings)
    keys = _key_command(lambda: store.rotate(
        retired_lifetime=policy.retired_lifetime,
        min_next_age=policy.min_next_age,
        force=args.force,
    ))
    active = next(key.kid for key in keys if key.state == "active")
    print(f"now signing with {active}; running servers switch within {policy.reload_interval} s", file=sys.stderr)
    _emit({"keys": [_describe_key(key) for key in keys]})


def _describe_key(key) -> dict:
    return {"kid": key.kid, "state": key.state, "created_at": _iso(key.created_at), "retired_at": _iso(key.retired_at)}


def _iso(timestamp: int | None) -> str | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


# -- serve ---------------------------------------------------------------------

def serve(args) -> None:
    from .serve import run

    run(host=args.host, port=args.port, workers=args.workers, threads=args.threads)


# -- api -----------------------------------------------------------------------

def api_serve(args) -> None:
    """The sample API service under the WSGI server (wsgi_server.py). Imports only authserver.api (no server code)."""
    from .api.config import ApiConfigError, load_api_config
    from .wsgi_server import run_wsgi_server
    from .resource.ratelimit import RateLimiter, StorageConfigError, check_storage_for_workers

    try:
        config = load_api_config()
        if args.workers is None:  # one per core with shared (Redis) counters, else the one that is right
            args.workers = 1 if config.redis_url.startswith("memory://") else (os.cpu_count() or 1)
        if args.workers < 1 or args.threads < 1:
            raise CommandError("--workers and --threads must be at least 1")
        check_storage_for_workers(config.redis_url, args.workers)
        RateLimiter(config.redis_url, key_prefix=config.ratelimit_prefix).close()  # a bad URL stops here
    except (ApiConfigError, StorageConfigError) as exc:
        raise CommandError(str(exc)) from None

    def load_app():  # in each worker, after the fork
        from .api.app import create_api_app

        return create_api_app(config)

    run_wsgi_server(load_app, host=args.host, port=args.port, workers=args.workers, threads=args.threads)


# -- plumbing ------------------------------------------------------------------

class _app_context:
    """An app context for commands that use storage (no HTTP)."""

    def __enter__(self):
        from .app import create_app

        self._ctx = create_app().app_context()
        self._ctx.push()

    def __exit__(self, *exc):
        self._ctx.pop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authserver", description="OAuth 2.0 / OpenID Connect authorization server")
    commands = parser.add_subparsers(title="commands")

    db = commands.add_parser("db", help="database").add_subparsers(title="db commands")
    db.add_parser("upgrade", help="migrate the database to the latest revision").set_defaults(run=db_upgrade)
    prune_parser = db.add_parser(
        "prune", help="delete expired codes, refresh tokens and deny-list entries in batches; prints counts by table"
    )
    prune_parser.add_argument("--batch-size", metavar="N",
                              help="rows per transaction (default: AUTHSERVER_PRUNE_BATCH_SIZE, 1000)")
    prune_parser.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    prune_parser.set_defaults(run=db_prune)

    users = commands.add_parser("users", help="accounts").add_subparsers(title="users commands")
    create = users.add_parser("create", help="create an account; prints its id (the sub of its tokens)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--plan", choices=["free", "pro", "enterprise"], default="free")
    create.set_defaults(run=users_create)
    set_plan = users.add_parser(
        "set-plan", help="change an account's plan; enterprise may have custom limits (else unlimited)"
    )
    set_plan.add_argument("--email", required=True)
    set_plan.add_argument("--plan", choices=["free", "pro", "enterprise"], required=True)
    set_plan.add_argument("--hourly", metavar="N", help="enterprise only: requests per hour")
    set_plan.add_argument("--burst", metavar="M", help="enterprise only: requests per minute")
    set_plan.set_defaults(run=users_set_plan)

    clients = commands.add_parser("clients", help="OAuth clients").add_subparsers(title="clients commands")
    create = clients.add_parser("create", help="register a client; prints client_id and (once) client_secret")
    create.add_argument("--name", required=True)
    create.add_argument("--redirect-uri", nargs="+", metavar="URI")
    create.add_argument("--post-logout-redirect-uri", nargs="+", metavar="URI",
                        help="where /oauth/logout may send the browser afterwards (exact match)")
    create.add_argument("--public", action="store_true", help="a public client (no secret, PKCE required)")
    create.add_argument("--grant-type", nargs="+", required=True, metavar="G")
    create.add_argument("--scope", required=True, help='space-separated, e.g. "openid read:users"')
    create.add_argument("--auth-method", default="client_secret_basic",
                        help="client_secret_basic (default) or client_secret_post")
    create.add_argument("--no-pkce", action="store_true", help="confidential clients only: do not require PKCE")
    create.set_defaults(run=clients_create)

    keys = commands.add_parser("keys", help="signing keys").add_subparsers(title="keys commands")
    keys.add_parser("generate", help="add a signing key (active if none is)").set_defaults(run=keys_generate)
    keys.add_parser("list", help="list signing keys and their states").set_defaults(run=keys_list)
    rotate = keys.add_parser(
        "rotate", help="next key signs, active key retires, a new next key is published; old retired keys are removed"
    )
    rotate.add_argument(
        "--force", action="store_true",
        help="rotate even if the next key is too new for every verifier's cached JWKS to hold it",
    )
    rotate.set_defaults(run=keys_rotate)

    serve_parser = commands.add_parser("serve", help="run the server (granian, one worker per core)")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=5000)
    serve_parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    serve_parser.add_argument("--threads", type=int, default=4)
    serve_parser.set_defaults(run=serve)

    api = commands.add_parser("api", help="the sample API service").add_subparsers(title="api commands")
    api_serve_parser = api.add_parser("serve", help="run the sample API service (granian)")
    api_serve_parser.add_argument("--host", default="127.0.0.1")
    api_serve_parser.add_argument("--port", type=int, default=5001)
    api_serve_parser.add_argument("--workers", type=int, default=None,
                                  help="default: one per core with AUTHSERVER_REDIS_URL, else 1; "
                                       "several need AUTHSERVER_REDIS_URL (shared rate-limit counters)")
    api_serve_parser.add_argument("--threads", type=int, default=4)
    api_serve_parser.set_defaults(run=api_serve)
    return parser


if __name__ == "__main__":
    sys.exit(main())
