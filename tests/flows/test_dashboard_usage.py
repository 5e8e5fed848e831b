"""The usage page: the counts resource services reported for the account, per hour and per day
as SVG charts against the plan's limits, and per API key and app."""

from __future__ import annotations

import re
import time
import uuid

from authserver.storage import api_keys, usage

from ..helpers import login

HOUR, DAY = 3600, 86400


def report(app, entries) -> None:
    with app.app_context():
        assert usage.record_batch(uuid.uuid4().hex, entries, int(time.time()))


def text_of(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]*)<', page)
    assert match, f"no #{element_id} on the page"
    return match.group(1)


def test_the_page_needs_a_signed_in_account(client):
    response = client.get("/dashboard/usage")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_an_account_without_requests_sees_empty_charts(app, client, make_user):
    user = make_user()
    login(client, user.email)
    page = client.get("/dashboard/usage").get_data(as_text=True)
    assert text_of(page, "usage-last-30-days") == "0"
    assert page.count('<svg class="chart"') == 2 and "No requests in the last 30 days" in page
    assert "of 1,000 allowed" in page  # the free plan's hourly limit


def test_counts_are_totalled_and_broken_down_by_key_and_app(app, client, make_user, make_client):
    user, other = make_user(plan="pro"), make_user()
    with app.app_context():
        key, _ = api_keys.create(user.id, "<script>alert(1)</script> deploy", ["read:users"])
        key_id = key.public_id
    app_row, _ = make_client(name="Reporting App")
    now = int(time.time())
    this_hour = now - now % HOUR
    report(app, [
        (user.public_id, key_id, this_hour, 7),
        (user.public_id, key_id, this_hour - 2 * HOUR, 5),
        (user.public_id, app_row.client_id, this_hour - 3 * DAY, 40),  # in the 30 days, not the 24 hours
        (user.public_id, "client_gone", this_hour - 40 * DAY, 1000),  # older than 30 days: not shown
        (other.public_id, key_id, this_hour, 99),  # another account's count
    ])
    login(client, user.email)
    response = client.get("/dashboard/usage")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert (text_of(page, "usage-this-hour"), text_of(page, "usage-last-24-hours"),
            text_of(page, "usage-last-30-days")) == ("7", "12", "52")
    assert "of 10,000 allowed" in page  # pro
    rows = re.findall(r"<tr>\s*<td data-label=\"Credential\"><strong>(.*?)</strong><br><code>(.*?)</code>.*?"
                      r"Last 24 hours\" class=\"numeric\">(.*?)</td>.*?Last 30 days\" class=\"numeric\">(.*?)</td>",
                      page, re.S)
    assert rows == [("Reporting App", app_row.client_id, "0", "40"),
                    ("&lt;script&gt;alert(1)&lt;/script&gt; deploy", key_id, "12", "12")]
    assert "<script>alert(1)" not in page
    assert f"{time.strftime('%Y-%m-%d', time.gmtime(this_hour))} " in page  # an hourly bar's tooltip
