"""Usage counts that resource services report: per account, credential and hour.

A batch is applied exactly once: its id is inserted in the same transaction as its counts, and a
batch id already present (a retry of an acknowledged batch, or the same batch sent twice at once)
adds nothing. Batch ids are kept for `BATCH_ID_RETENTION` seconds, far longer than any service
holds an unacknowledged batch.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .db import session
from .models import ApiKey, Client, UsageBatch, UsageCount

HOUR = 3600
DAY = 24 * HOUR
HOURLY_HOURS = 24
DAILY_DAYS = 30
BATCH_ID_RETENTION = 30 * DAY

_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}

Entry = tuple[str, str, int, int]  # account, credential, hour, count


def record_batch(batch_id: str, entries: list[Entry], now: int) -> bool:
    """Apply one batch and commit; False (and nothing added) when the batch id was applied before."""
    db = session()
    insert = _INSERTS[db.get_bind().dialect.name]
    try:
        # RETURNING, not rowcount (which psycopg reports as -1 here): no row back means a conflict.
        inserted = db.execute(
            insert(UsageBatch).values(batch_id=batch_id, received_at=now).on_conflict_do_nothing()
            .returning(UsageBatch.batch_id)
        ).scalar()
        if inserted is None:
            db.rollback()
            return False
        totals: dict[tuple[str, str, int], int] = defaultdict(int)
        for account, credential, hour, count in entries:
            totals[(account, credential, hour)] += count
        if totals:
            statement = insert(UsageCount)
            statement = statement.on_conflict_do_update(
                index_elements=["account", "credential", "hour"],
                set_={"count": UsageCount.count + statement.excluded["count"]},
            )
            db.execute(statement, [{"account": a, "credential": c, "hour": h, "count": n}
                                   for (a, c, h), n in totals.items()])
        db.execute(delete(UsageBatch).where(UsageBatch.received_at < now - BATCH_ID_RETENTION))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return True


def summary(account: str, now: int) -> dict:
    """`hourly`: the last 24 hours, the current one last; `daily`: the last 30 UTC days, today
    last. Every hour and day is listed, with count 0 when nothing was counted; `by_credential`
    maps credential id to count and holds only credentials with requests."""
    this_hour = now - now % HOUR
    today = now - now % DAY
    first_day = today - (DAILY_DAYS - 1) * DAY
    first_hour = this_hour - (HOURLY_HOURS - 1) * HOUR
    rows = session().execute(
        select(UsageCount.credential, UsageCount.hour, UsageCount.count)
        .where(UsageCount.account == account, UsageCount.hour >= min(first_day, first_hour))
    ).all()

    hours = {first_hour + i * HOUR: defaultdict(int) for i in range(HOURLY_HOURS)}
    days = {first_day + i * DAY: defaultdict(int) for i in range(DAILY_DAYS)}
    for credential, hour, count in rows:
        if hour in hours:
            hours[hour][credential] += count
        day = hour - hour % DAY
        if day in days:
            days[day][credential] += count

    def entry(by_credential: dict) -> dict:
        return {"count": sum(by_credential.values()), "by_credential": dict(sorted(by_credential.items()))}

    return {
        "hourly": [{"hour": hour, **entry(counts)} for hour, counts in hours.items()],
        "daily": [{"day": datetime.fromtimestamp(day, timezone.utc).strftime("%Y-%m-%d"), "start": day, **entry(counts)}
                  for day, counts in days.items()],
    }


def credential_names(user_id: int, credential_ids: set[str]) -> dict[str, tuple[str, str]]:
    """What the dashboard calls each credential: id → (kind, name), kind "API key" (the account's
    own keys, revoked ones included: their past requests still count) or "App" (any client the
    account used). Ids that are neither are left out."""
    db = session()
    keys = db.execute(select(ApiKey.public_id, ApiKey.name)
                      .where(ApiKey.user_id == user_id, ApiKey.public_id.in_(credential_ids)))
    apps = db.execute(select(Client.client_id, Client.name).where(Client.client_id.in_(credential_ids)))
    return {**{client_id: ("App", name) for client_id, name in apps},
            **{key_id: ("API key", name) for key_id, name in keys}}
