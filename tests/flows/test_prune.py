"""The prune job (storage/prune.py): what is no longer needed goes, in batches of at most the batch
size, each its own transaction; what is live stays and keeps working. Also `authserver db prune`
and the schedule inside the server (web/prune_schedule.py), with its clock injected."""

from __future__ import annotations

import json
import logging
import os
import time

import pytest
from sqlalchemy import create_engine, event, func, insert, select, text, update

from authserver import cli
from authserver.app import create_app
from authserver.credentials import digest
from authserver.settings import SettingsError, load_settings
from authserver.storage import clients, consents, prune
from authserver.storage.db import EXTENSION_KEY as DATABASE_KEY
from authserver.storage.db import session
from authserver.storage.models import (
    AuthorizationCode, Base, Client, Consent, RefreshToken, RevokedAccessToken, UsageBatch,
)
from authserver.storage.usage import BATCH_ID_RETENTION
from authserver.web.prune_schedule import EXTENSION_KEY as SCHEDULE_KEY
from authserver.web.prune_schedule import PruneSchedule

from ..databases import wants_postgres
from .tokens import refresh, user_tokens

MARGIN = prune.MARGIN_SECONDS
RETENTION = prune.REFRESH_RETENTION_SECONDS
HOUR = 3600
MODELS = {"authorization_codes": AuthorizationCode, "refresh_tokens": RefreshToken,
          "revoked_access_tokens": RevokedAccessToken, "usage_batches": UsageBatch}


@pytest.fixture
def engine(app):
    return app.extensions[DATABASE_KEY].engine


@pytest.fixture
def owner(make_user, make_client):
    """An account and a client, for the foreign keys of the rows inserted here."""
    return make_user().id, make_client()[0].id


# -- rows ----------------------------------------------------------------------------------------

class Rows:
    """Builds rows of each table, numbered so that each is unique."""

    def __init__(self, user_id: int, client_id: int):
        self.user_id, self.client_id, self.serial = user_id, client_id, 0

    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def code(self, expires_at: int, used: bool = True) -> dict:
        n = self._next()
        return dict(digest=f"code-{n:059d}", client_id=self.client_id, user_id=self.user_id,
                    redirect_uri="https://app.example.com/callback", scope="openid read:users",
                    code_challenge="c" * 43, code_challenge_method="S256", nonce=None, auth_time=expires_at - 600,
                    sid=None, expires_at=expires_at, used_at=expires_at - 590 if used else None,
                    access_token_jti=f"jti-code-{n}" if used else None,
                    access_token_expires_at=expires_at - 590 + HOUR if used else None,
                    refresh_family=f"family-code-{n}" if used else None)

    def refresh_token(self, expires_at: int, access_expires_at: int | None = None, *, used: bool = False,
                      revoked: bool = False) -> dict:
        n = self._next()
        issued_at = expires_at - 30 * 24 * HOUR
        return dict(digest=f"refresh-{n:056d}", family=f"family-{n // 4}", client_id=self.client_id,
                    user_id=self.user_id, scope="openid read:users", auth_time=issued_at, sid=None,
                    access_token_jti=f"jti-refresh-{n}",
                    access_token_expires_at=issued_at + HOUR if access_expires_at is None else access_expires_at,
                    issued_at=issued_at, expires_at=expires_at, used_at=issued_at + 60 if used else None,
                    revoked_at=issued_at + 120 if revoked else None, successor=None)

    def denied(self, expires_at: int) -> dict:
        return dict(jti=f"jti-denied-{self._next()}", expires_at=expires_at)

    def batch(self, received_at: int) -> dict:
        return dict(batch_id=f"batch-{self._next()}", received_at=received_at)


def add(engine, model, rows: list[dict]) -> None:
    """Insert in one executemany."""
    with engine.begin() as connection:
        connection.execute(insert(model.__table__), rows)


def keys(engine, model) -> set:
    key = model.__table__.primary_key.columns.values()[0]
    with engine.connect() as connection:
        return set(connection.scalars(select(key)))


def sizes(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {name: connection.scalar(select(func.count()).select_from(model)) for name, model in MODELS.items()}


def run_prune(engine, now: int, batch_size: int = prune.DEFAULT_BATCH_SIZE) -> dict[str, int]:
    with engine.connect() as connection:
        return prune.prune(connection, now, batch_size)


# -- what goes, what stays -----------------------------------------------------------------------

def test_each_table_loses_what_nothing_needs_and_keeps_the_rest(engine, owner):
    now = int(time.time())
    rows = Rows(*owner)
    codes = {
        "expired, as has its access token": rows.code(now - HOUR),
        "expired unused": rows.code(now - MARGIN - 1, used=False),
        "within the margin": rows.code(now - MARGIN + 5, used=False),
        "expired, its access token live": rows.code(now - MARGIN - 1),
        "live": rows.code(now + 600, used=False),
    }
    tokens = {
        "expired past retention": rows.refresh_token(now - RETENTION - 1, used=True),
        "revoked, expired past retention": rows.refresh_token(now - RETENTION - 1, revoked=True),
        "no access token, expired past retention": rows.refresh_token(now - RETENTION - 1),
        "expired within retention": rows.refresh_token(now - RETENTION + 5),
        "expired, its access token live": rows.refresh_token(now - RETENTION - 1, access_expires_at=now + 60),
        "rotated, live": rows.refresh_token(now + HOUR, used=True),
        "revoked, live": rows.refresh_token(now + HOUR, revoked=True),
        "live": rows.refresh_token(now + 30 * 24 * HOUR),
    }
    tokens["no access token, expired past retention"].update(access_token_jti=None, access_token_expires_at=None)
    denied = {
        "expired": rows.denied(now - MARGIN - 1),
        "within the verifiers' leeway": rows.denied(now - 1),
        "live": rows.denied(now + HOUR),
    }
    batches = {"past the dedupe window": rows.batch(now - BATCH_ID_RETENTION - 1),
               "within it": rows.batch(now - BATCH_ID_RETENTION + 5)}
    add(engine, AuthorizationCode, list(codes.values()))
    add(engine, RefreshToken, list(tokens.values()))
    add(engine, RevokedAccessToken, list(denied.values()))
    add(engine, UsageBatch, list(batches.values()))

    deleted = run_prune(engine, now, batch_size=2)

    assert deleted == {"authorization_codes": 2, "refresh_tokens": 3, "revoked_access_tokens": 1, "usage_batches": 1}
    with engine.connect() as connection:
        assert set(connection.scalars(select(AuthorizationCode.digest))) == {
            codes[name]["digest"] for name in ("within the margin", "expired, its access token live", "live")}
        assert set(connection.scalars(select(RefreshToken.digest))) == {
            tokens[name]["digest"] for name in ("expired within retention", "expired, its access token live",
                                                "rotated, live", "revoked, live", "live")}
    assert keys(engine, RevokedAccessToken) == {denied["within the verifiers' leeway"]["jti"], denied["live"]["jti"]}
    assert keys(engine, UsageBatch) == {batches["within it"]["batch_id"]}
    assert run_prune(engine, now) == dict.fromkeys(prune.TABLES, 0)


def test_a_rotated_token_still_live_survives_and_its_reuse_still_revokes_the_family(app, client, make_user,
                                                                                       make_client):
    user = make_user()
    row, secret = make_client()
    first = user_tokens(client, row.client_id, secret, user.email)
    second = refresh(client, row.client_id, secret, first["refresh_token"]).get_json()
    # Long after every access token has expired, and within the refresh tokens' lifetime.
    engine = app.extensions[DATABASE_KEY].engine
    assert run_prune(engine, int(time.time()) + 2 * HOUR)["refresh_tokens"] == 0

    with engine.begin() as conn:  # rotated an hour ago: past the grace window for retries
        conn.execute(update(RefreshToken).where(RefreshToken.digest == digest(first["refresh_token"]))
                     .values(used_at=RefreshToken.used_at - HOUR))
    assert refresh(client, row.client_id, secret, first["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert refresh(client, row.client_id, secret, second["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_no_consent_is_left_behind_to_prune(app, make_user, make_client):
    """Withdrawing a consent deletes its row, and so does deleting the client (the foreign keys
    cascade): the consents table holds only standing permissions."""
    user = make_user()
    withdrawn, _ = make_client(name="Withdrawn")
    deleted, _ = make_client(name="Deleted")
    kept, _ = make_client(name="Kept")
    with app.app_context():
        for granted in (withdrawn, deleted, kept):
            consents.remember(user.id, granted.id, {"openid"})
        assert consents.withdraw(user.id, withdrawn.client_id)
        clients.delete_owned(session().get(Client, deleted.id))
    with app.app_context():
        assert set(session().scalars(select(Consent.client_id))) == {kept.id}


# -- 100,000 expired tokens ----------------------------------------------------------------------

class StatementLog:
    """The DELETE statements an engine runs (table, rows deleted) and its commits, in order."""

    def __init__(self, engine):
        self.engine, self.events = engine, []

    def __enter__(self):
        event.listen(self.engine, "after_cursor_execute", self._executed)
        event.listen(self.engine, "commit", self._committed)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "after_cursor_execute", self._executed)
        event.remove(self.engine, "commit", self._committed)

    def _executed(self, _connection, cursor, statement, _parameters, _context, _executemany):
        words = statement.split()
        if words[0].upper() == "DELETE":
            self.events.append(("DELETE", words[2].strip('"'), cursor.rowcount))

    def _committed(self, _connection):
        self.events.append(("COMMIT",))


def test_a_hundred_thousand_expired_tokens_go_in_short_batches_leaving_the_live_rows(
        engine, client, make_user, make_client):
    user = make_user()
    # Real grants through the token endpoint: two run out, one stays live.
    grants = []
    for name in ("Expiring A", "Expiring B", "Live"):
        row, secret = make_client(name=name)
        grants.append((row, secret, user_tokens(client, row.client_id, secret, user.email)))
    now = int(time.time())
    expired_refresh = [digest(tokens["refresh_token"]) for _, _, tokens in grants[:2]]
    with engine.begin() as connection:
        connection.execute(update(RefreshToken).where(RefreshToken.digest.in_(expired_refresh))
                           .values(expires_at=now - RETENTION - 60, access_token_expires_at=now - RETENTION))
        # All three codes have expired; the live grant's records an access token still live, so it stays.
        connection.execute(update(AuthorizationCode).where(AuthorizationCode.client_id.in_([grants[0][0].id,
                                                                                          grants[1][0].id]))
                           .values(expires_at=now - HOUR, access_token_expires_at=now - HOUR))
        connection.execute(update(AuthorizationCode).where(AuthorizationCode.client_id == grants[2][0].id)
                           .values(expires_at=now - HOUR))

    rows = Rows(user.id, grants[0][0].id)
    past = now - RETENTION - 24 * HOUR
    add(engine, RefreshToken, [rows.refresh_token(past - i % 1000, used=i % 4 != 3) for i in range(100_000)]
        + [rows.refresh_token(now + 30 * 24 * HOUR) for _ in range(50)])
    add(engine, AuthorizationCode, [rows.code(now - HOUR - i % 600) for i in range(20_000)]
        + [rows.code(now + 600, used=False) for _ in range(10)])
    add(engine, RevokedAccessToken, [rows.denied(now - HOUR - i) for i in range(20_000)]
        + [rows.denied(now + HOUR) for _ in range(10)])
    add(engine, UsageBatch, [rows.batch(now - BATCH_ID_RETENTION - 1 - i) for i in range(5_000)]
        + [rows.batch(now) for _ in range(10)])
    assert sizes(engine) == {"authorization_codes": 20_013, "refresh_tokens": 100_053,
                             "revoked_access_tokens": 20_010, "usage_batches": 5_010}

    with StatementLog(engine) as log:
        deleted = run_prune(engine, now, batch_size=1000)

    assert deleted == {"authorization_codes": 20_002, "refresh_tokens": 100_002,
                       "revoked_access_tokens": 20_000, "usage_batches": 5_000}
    assert sizes(engine) == {"authorization_codes": 11, "refresh_tokens": 51,
                             "revoked_access_tokens": 10, "usage_batches": 10}
    # Every DELETE removed at most 1,000 rows and was committed before the next one began.
    assert log.events[0::2] == [event for event in log.events if event[0] == "DELETE"]
    assert log.events[1::2] == [("COMMIT",)] * (len(log.events) // 2) and len(log.events) % 2 == 0
    for table, count in deleted.items():
        counts = [rowcount for _, name, rowcount in log.events[0::2] if name == table]
        assert sum(counts) == count and max(counts) <= 1000
        assert len(counts) == count // 1000 + 1  # full batches, then a short one that ends it

    live_row, live_secret, live_tokens = grants[2]
    assert refresh(client, live_row.client_id, live_secret, live_tokens["refresh_token"]).status_code == 200


# -- `authserver db prune` -----------------------------------------------------------------------

def test_the_command_prints_one_json_line_of_counts_and_dry_run_deletes_nothing(
        engine, owner, database_url, monkeypatch, capsys):
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", database_url)
    now = int(time.time())
    rows = Rows(*owner)
    add(engine, RevokedAccessToken, [rows.denied(now - HOUR) for _ in range(5)] + [rows.denied(now + HOUR)])
    add(engine, AuthorizationCode, [rows.code(now - HOUR), rows.code(now + 600, used=False)])

    assert cli.main(["db", "prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"would_delete": {"authorization_codes": 1, "refresh_tokens": 0,
                                                "revoked_access_tokens": 5, "usage_batches": 0}}
    assert sizes(engine)["revoked_access_tokens"] == 6

    assert cli.main(["db", "prune", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out) == {"deleted": {"authorization_codes": 1, "refresh_tokens": 0,
                                           "revoked_access_tokens": 5, "usage_batches": 0}}
    assert sizes(engine)["revoked_access_tokens"] == 1 and sizes(engine)["authorization_codes"] == 1


@pytest.mark.parametrize("batch_size", ["0", "-1", "ten", "100001"])
def test_the_command_refuses_a_bad_batch_size_in_one_line(database_url, monkeypatch, capsys, batch_size):
    monkeypatch.setenv("AUTHSERVER_DATABASE_URL", database_url)
    assert cli.main(["db", "prune", f"--batch-size={batch_size}"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "authserver: error: --batch-size must be a whole number from 1 to 100000\n"


@pytest.mark.parametrize(("variable", "value"), [
    ("AUTHSERVER_PRUNE_INTERVAL_SECONDS", "59"), ("AUTHSERVER_PRUNE_INTERVAL_SECONDS", "-1"),
    ("AUTHSERVER_PRUNE_INTERVAL_SECONDS", "hourly"), ("AUTHSERVER_PRUNE_BATCH_SIZE", "0"),
])
def test_bad_prune_settings_are_refused_by_name(variable, value):
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ={variable: value})


def test_prune_settings_default_to_hourly_batches_of_a_thousand():
    settings = load_settings(environ={})
    assert (settings.prune_interval_seconds, settings.prune_batch_size) == (3600, 1000)
    assert load_settings(environ={"AUTHSERVER_PRUNE_INTERVAL_SECONDS": "0"}).prune_interval_seconds == 0


# -- the schedule inside the server --------------------------------------------------------------

class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def next_round(schedule: PruneSchedule, clock: Clock) -> None:
    """Move the clock to the schedule's next round, wake its thread and wait for the round to end."""
    done = schedule.rounds + 1
    clock.now = schedule.next_round
    schedule.wake()
    deadline = time.monotonic() + 30  # a bound for a hung thread, not a measure of speed
    while schedule.rounds < done:
        assert time.monotonic() < deadline, "the prune thread did not run its round"
        time.sleep(0.01)


def test_the_schedule_prunes_every_interval_with_jitter(engine, owner):
    now = int(time.time())
    rows = Rows(*owner)
    add(engine, RevokedAccessToken, [rows.denied(now - HOUR), rows.denied(now + HOUR)])
    clock = Clock(now)
    factors = iter([0.8, 1.2, 1.0])
    schedule = PruneSchedule(engine, HOUR, 1000, clock=clock, jitter=lambda low, high: next(factors))

    schedule.ensure_started()
    assert schedule.running_in == os.getpid()
    assert schedule.next_round == now + 0.8 * HOUR
    next_round(schedule, clock)
    assert schedule.last_deleted == {"authorization_codes": 0, "refresh_tokens": 0, "revoked_access_tokens": 1,
                                     "usage_batches": 0}
    assert schedule.next_round == clock.now + 1.2 * HOUR

    next_round(schedule, clock)  # 2 hours on: the other entry has expired too
    assert schedule.last_deleted["revoked_access_tokens"] == 1
    assert keys(engine, RevokedAccessToken) == set()
    schedule.ensure_started()  # already running in this process: no second thread
    assert schedule.rounds == 2 and schedule.next_round == clock.now + HOUR


def test_a_failed_round_is_logged_in_one_line_and_the_next_round_retries(tmp_path, caplog):
    engine = create_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no tables: every DELETE fails
    clock = Clock(time.time())
    schedule = PruneSchedule(engine, HOUR, 1000, clock=clock, jitter=lambda low, high: 1.0)
    schedule.ensure_started()
    with caplog.at_level(logging.WARNING, logger="authserver.web.prune_schedule"):
        next_round(schedule, clock)
    [record] = caplog.records
    message = record.getMessage()
    assert message.startswith("prune failed (OperationalError: ") and "no such table" in message
    assert "\n" not in message and "DELETE" not in message and "[SQL" not in message
    assert schedule.last_deleted is None

    Base.metadata.create_all(engine)
    add(engine, RevokedAccessToken, [{"jti": "expired", "expires_at": int(clock.now) - HOUR}])
    next_round(schedule, clock)
    assert schedule.last_deleted["revoked_access_tokens"] == 1 and keys(engine, RevokedAccessToken) == set()
    engine.dispose()


def test_a_round_is_skipped_while_another_instance_prunes(engine, owner, database_url):
    if not wants_postgres():
        pytest.skip("the lock across instances is PostgreSQL's advisory lock (SQLite serves one host)")
    now = int(time.time())
    add(engine, RevokedAccessToken, [Rows(*owner).denied(now - HOUR)])
    clock = Clock(now)
    schedule = PruneSchedule(engine, HOUR, 1000, clock=clock, jitter=lambda low, high: 1.0)
    schedule.ensure_started()
    other_instance = create_engine(database_url)
    with other_instance.connect() as connection:
        assert connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": prune.LOCK_KEY})
        next_round(schedule, clock)
        assert schedule.last_deleted is None and len(keys(engine, RevokedAccessToken)) == 1
    other_instance.dispose()  # its session ends, and the lock with it

    next_round(schedule, clock)
    assert schedule.last_deleted["revoked_access_tokens"] == 1


def test_the_server_starts_its_schedule_at_its_first_request_not_when_built(app, client):
    schedule = app.extensions[SCHEDULE_KEY]
    assert schedule.running_in is None  # built (as by the CLI, or before granian forks): no thread
    assert client.get("/healthz").status_code == 200
    assert schedule.running_in == os.getpid()
    assert schedule.next_round > time.time() + 0.7 * HOUR  # the first round after an interval, not now


def test_an_interval_of_zero_schedules_nothing(settings_overrides):
    app = create_app({**settings_overrides, "prune_interval_seconds": "0"})
    assert SCHEDULE_KEY not in app.extensions
    assert app.test_client().get("/healthz").status_code == 200
