"""`authserver db prune` as an operator runs it: a real process, against a deployment whose server
(`authserver serve`, two workers) is serving; one JSON line of counts on stdout, and the live
grant keeps working."""

from __future__ import annotations

import json
import time

import requests
from sqlalchemy import create_engine, func, insert, select, update

from authserver.storage.models import AuthorizationCode, RevokedAccessToken

from .by_hand import user_tokens
from .conftest import EMAIL, PASSWORD, REDIRECT_URI, SCOPE
from .processes import run_cli

EXPECTED = {"authorization_codes": 1, "refresh_tokens": 0, "revoked_access_tokens": 5, "usage_batches": 0}


def test_db_prune_deletes_expired_rows_while_the_server_serves(server, deployment, e2e_database_url):
    client = (deployment.client_id, deployment.client_secret)
    tokens = user_tokens(server, client=client, redirect_uri=REDIRECT_URI, email=EMAIL, password=PASSWORD,
                         scope=SCOPE)
    now = int(time.time())
    engine = create_engine(e2e_database_url)
    with engine.begin() as connection:
        connection.execute(insert(RevokedAccessToken.__table__),
                           [{"jti": f"expired-{n}", "expires_at": now - 3600} for n in range(5)])
        # The code just redeemed, as if it and its access token had expired an hour ago.
        connection.execute(update(AuthorizationCode).values(expires_at=now - 3600, access_token_expires_at=now - 3600))

    dry_run = run_cli("db", "prune", "--dry-run", env=deployment.env, cwd=deployment.workdir)
    assert dry_run.returncode == 0, dry_run.stderr
    assert json.loads(dry_run.stdout) == {"would_delete": EXPECTED}

    pruned = run_cli("db", "prune", "--batch-size", "2", env=deployment.env, cwd=deployment.workdir)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.count("\n") == 1 and json.loads(pruned.stdout) == {"deleted": EXPECTED}
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(RevokedAccessToken)) == 0
        assert connection.scalar(select(func.count()).select_from(AuthorizationCode)) == 0
    engine.dispose()

    refreshed = requests.post(server.url("/oauth/token"), auth=client, timeout=10,
                              data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
