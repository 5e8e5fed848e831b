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

    users = commands.add_parser("users", help="accounts").add_subparsers(title="users commands")
    create = users.add_parser("create", help="create an account; prints its id (the sub of its tokens)")
    create.add_argument("--email", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--plan", choices=["free", "pro", "enterprise"], default="free")
    create.set_defaults(run=users_create)

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

    serve_parser = commands.add_parser("serve", help="run the server under gunicorn")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=5000)
    serve_parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    serve_parser.add_argument("--threads", type=int, default=4)
    serve_parser.set_defaults(run=serve)
    return parser


if __name__ == "__main__":
    sys.exit(main())
