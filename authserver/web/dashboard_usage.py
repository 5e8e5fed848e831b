"""`/dashboard/usage`: the account's requests per hour (last 24 hours) and per day (last 30 UTC
days) as server-rendered SVG charts against the plan's limits, and a breakdown by API key and
app. The counts are those resource services report (`POST /v1/usage`), so they trail the
requests by the services' flush interval (10 s by default)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from ..resource.ratelimit import custom_limits, limits_for
from ..storage import usage
from .charts import Bar, bar_chart
from .dashboard import PLAN_NAMES, plan_limit_rows

bp = Blueprint("dashboard_usage", __name__, url_prefix="/dashboard")


@bp.get("/usage")
@login_required
def usage_page():
    user = current_user._get_current_object()
    summary = usage.summary(user.public_id, int(time.time()))
    limits = limits_for(user.plan, custom_limits(user.rate_limits))
    hourly, daily = summary["hourly"], summary["daily"]
    return render_template(
        "dashboard/usage.html", active="usage",
        plan_name=PLAN_NAMES.get(user.plan, user.plan), limits=plan_limit_rows(limits),
        this_hour=hourly[-1]["count"], hourly_limit=limits.per_hour,
        last_24_hours=sum(entry["count"] for entry in hourly), last_30_days=sum(entry["count"] for entry in daily),
        hourly_chart=bar_chart(
            [Bar(_utc(entry["hour"], "%H:00"), entry["count"],
                 f"{_utc(entry['hour'], '%Y-%m-%d %H:00')} UTC: {entry['count']:,} requests") for entry in hourly],
            title="Requests per hour, last 24 hours (UTC)", limit=limits.per_hour, limit_label="hourly limit",
            label_every=3,
        ),
        daily_chart=bar_chart(
            [Bar(entry["day"][5:], entry["count"], f"{entry['day']}: {entry['count']:,} requests") for entry in daily],
            title="Requests per day, last 30 days (UTC)", label_every=5,
        ),
        breakdown=_breakdown(user.id, hourly, daily),
    )


def _breakdown(user_id: int, hourly: list[dict], daily: list[dict]) -> list[dict]:
    """One row per credential with requests in the last 30 days, busiest first."""
    per_day, per_hour = _totals(daily), _totals(hourly)
    names = usage.credential_names(user_id, set(per_day))
    rows = [{"id": credential, "kind": names.get(credential, ("Other", credential))[0],
             "name": names.get(credential, ("Other", credential))[1],
             "last_24_hours": per_hour.get(credential, 0), "last_30_days": count}
            for credential, count in per_day.items()]
    return sorted(rows, key=lambda row: (-row["last_30_days"], row["name"]))


def _totals(entries: list[dict]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for entry in entries:
        for credential, count in entry["by_credential"].items():
            totals[credential] = totals.get(credential, 0) + count
    return totals


def _utc(epoch: int, pattern: str) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime(pattern)
