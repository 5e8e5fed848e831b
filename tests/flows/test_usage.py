"""`/v1/usage`: resource services report batched counts (`POST`, client authentication, each
batch applied once), the account owner reads them (`GET`, a user's access token)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from ..helpers import assert_envelope
from .stored_state import differences, snapshot, unchanged
from .tokens import user_tokens

USAGE = "/v1/usage"
HOUR = 3600


def this_hour() -> int:
    now = int(time.time())
    return now - now % HOUR


def batch(*counts, batch_id: str | None = None) -> dict:
    return {"batch_id": batch_id or uuid.uuid4().hex, "counts": list(counts)}


def entry(account="user_abc", credential="client_xyz", hour=None, count=1) -> dict:
    return {"account": account, "credential": credential, "hour": this_hour() if hour is None else hour, "count": count}


@pytest.fixture
def service(make_client):
    """The resource service's own client: confidential, with the client_credentials grant."""
    row, secret = make_client(grant_types=["client_credentials"], redirect_uris=[], scope="read:users")
    return row.client_id, secret


@pytest.fixture
def owner(app, client, make_user, make_client):
    """A user, their access token (issued to an authorization_code client) and that client's id."""
    user = make_user(plan="pro")
    row, secret = make_client()
    tokens = user_tokens(app.test_client(), row.client_id, secret, user.email)
    return user.public_id, tokens["access_token"], row.client_id


def report(client, body, auth):
    # Compact, as the meter sends it: 1001 short entries stay under the 64 KiB body limit.
    return client.post(USAGE, data=json.dumps(body, separators=(",", ":")), content_type="application/json", auth=auth)


def usage_of(client, token):
    return client.get(USAGE, headers={"Authorization": f"Bearer {token}"})


# -- POST: accepted, duplicate ---------------------------------------------------------

def test_a_batch_is_accepted_and_summed(client, service, owner):
    account, token, client_id = owner
    hour = this_hour()
    response = report(client, batch(entry(account, client_id, hour, 5), entry(account, "tdk_key1", hour - HOUR, 2),
                                    entry(account, client_id, hour, 1)), service)
    assert response.status_code == 200 and response.get_json() == {"status": "accepted"}
    assert report(client, batch(entry(account, client_id, hour, 4)), service).get_json() == {"status": "accepted"}

    body = usage_of(client, token).get_json()
    assert body["hourly"][-1] == {"hour": hour, "count": 10, "by_credential": {client_id: 10}}
    assert body["hourly"][-2] == {"hour": hour - HOUR, "count": 2, "by_credential": {"tdk_key1": 2}}


def test_a_batch_sent_again_adds_nothing(client, service, database_url, owner):
    account, token, client_id = owner
    body = batch(entry(account, client_id, count=7))
    assert report(client, body, service).get_json() == {"status": "accepted"}
    with unchanged(database_url):
        response = report(client, body, service)
        # Same id with other counts: still the batch already applied.
        other = report(client, {**body, "counts": [entry(account, client_id, count=99)]}, service)
    assert response.status_code == 200 and response.get_json() == {"status": "duplicate"}
    assert other.get_json() == {"status": "duplicate"}
    assert usage_of(client, token).get_json()["hourly"][-1]["count"] == 7


def test_an_empty_batch_is_remembered(client, service, database_url):
    before = snapshot(database_url)
    body = batch()
    assert report(client, body, service).get_json() == {"status": "accepted"}
    changed = differences(before, snapshot(database_url))
    assert set(changed) == {"usage_batches"}
    assert report(client, body, service).get_json() == {"status": "duplicate"}


# -- POST: bad input, nothing stored -------------------------------------------------------

HOUR_NOW = this_hour()  # read at collection; every case below stays bad however long the run takes
BAD_BODIES = {
    "not an object": [1, 2],
    "extra field": {**batch(entry()), "more": 1},
    "no batch id": {"counts": [entry()]},
    "short batch id": batch(entry(), batch_id="abc"),
    "long batch id": batch(entry(), batch_id="a" * 65),
    "batch id with spaces": batch(entry(), batch_id="abc def ghi"),
    "counts not a list": {"batch_id": uuid.uuid4().hex, "counts": {"a": 1}},
    "too many entries": batch(*[entry(account=f"u{i}", credential="c") for i in range(1001)]),
    "entry not an object": batch("user_abc"),
    "entry missing count": batch({"account": "a", "credential": "c", "hour": HOUR_NOW}),
    "entry extra field": batch({**entry(), "plan": "pro"}),
    "empty account": batch(entry(account="")),
    "long account": batch(entry(account="u" * 65)),
    "credential not a string": batch(entry(credential=5)),
    "account with NUL": batch(entry(account="user\x00")),
    "hour not on the hour": batch(entry(hour=HOUR_NOW + 1)),
    "hour in the future": batch(entry(hour=HOUR_NOW + 48 * HOUR)),
    "hour a string": batch(entry(hour=str(HOUR_NOW))),
    "hour zero": batch(entry(hour=0)),
    "count zero": batch(entry(count=0)),
    "count negative": batch(entry(count=-3)),
    "count too large": batch(entry(count=10**7 + 1)),
    "count a float": batch(entry(count=1.5)),
    "count a boolean": batch(entry(count=True)),
    "one bad entry among good ones": batch(entry(), entry(count=0)),
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_input_is_refused_and_stores_nothing(client, service, database_url, body):
    with unchanged(database_url):
        response = report(client, body, service)
    assert_envelope(response, 400, "INVALID_REQUEST")


RAW_BODIES = {
    "not json": (b"{nope", "application/json"),
    "repeated key": (b'{"batch_id": "abcdefgh", "batch_id": "abcdefgi", "counts": []}', "application/json"),
    "NaN count": (b'{"batch_id": "abcdefgh", "counts": [{"account": "a", "credential": "c", "hour": 3600, "count": NaN}]}',
                  "application/json"),
    "form body": (b"batch_id=abcdefgh", "application/x-www-form-urlencoded"),
    "deep nesting": (b"[" * 100000 + b"]" * 100000, "application/json"),
}


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
def test_malformed_bodies_are_refused(client, service, database_url, raw):
    data, content_type = raw
    with unchanged(database_url):
        response = client.post(USAGE, data=data, content_type=content_type, auth=service)
    assert response.status_code in (400, 413)
    assert_envelope(response, response.status_code, "INVALID_REQUEST" if response.status_code == 400 else
                    response.get_json()["error"]["code"])


# -- POST: client authentication ------------------------------------------------------------

def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("case", ["none", "wrong secret", "unknown client", "bearer", "no client_credentials grant",
                                  "public client", "undecodable", "credentials in body"])
def test_only_a_service_client_may_report(client, make_client, service, database_url, owner, case):
    client_id, secret = service
    headers = {}
    body = batch(entry())
    if case == "wrong secret":
        headers = basic(client_id, secret + "x")
    elif case == "unknown client":
        headers = basic("client_nobody", secret)
    elif case == "bearer":
        headers = {"Authorization": f"Bearer {owner[1]}"}
    elif case == "no client_credentials grant":
        row, other_secret = make_client(grant_types=["authorization_code"])
        headers = basic(row.client_id, other_secret)
    elif case == "public client":
        row, _ = make_client(public=True, grant_types=["authorization_code", "client_credentials"])
        headers = basic(row.client_id, "anything")
    elif case == "undecodable":
        headers = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()}
    elif case == "credentials in body":
        body = {**body, "client_id": client_id, "client_secret": secret}
    with unchanged(database_url):
        response = client.post(USAGE, json=body, headers=headers)
    assert_envelope(response, 401, "INVALID_CLIENT")
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


# -- GET ---------------------------------------------------------------------------------------

def test_the_owner_sees_hourly_and_daily_usage(client, service, owner):
    account, token, client_id = owner
    hour = this_hour()
    day = hour - hour % 86400
    old = day - 40 * 86400  # beyond 30 days: not shown
    report(client, batch(entry(account, client_id, hour, 3), entry(account, "tdk_a", hour, 2),
                         entry(account, client_id, day - 86400, 4), entry(account, client_id, old, 100),
                         entry("user_someone_else", client_id, hour, 50)), service)

    response = usage_of(client, token)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"account", "plan", "hourly", "daily"}
    assert body["account"] == account and body["plan"] == "pro"
    assert len(body["hourly"]) == 24 and len(body["daily"]) == 30
    assert [h["hour"] for h in body["hourly"]] == [hour - i * HOUR for i in range(23, -1, -1)]
    assert body["hourly"][-1] == {"hour": hour, "count": 5, "by_credential": {client_id: 3, "tdk_a": 2}}
    assert body["daily"][-1] == {"day": time.strftime("%Y-%m-%d", time.gmtime(day)), "start": day, "count": 5,
                                 "by_credential": {client_id: 3, "tdk_a": 2}}
    assert body["daily"][-2] == {"day": time.strftime("%Y-%m-%d", time.gmtime(day - 86400)), "start": day - 86400,
                                 "count": 4, "by_credential": {client_id: 4}}
    assert sum(d["count"] for d in body["daily"]) == 9  # neither the old hour nor someone else's
    assert response.headers["Cache-Control"] == "no-store"


def test_another_account_sees_only_its_own(client, service, app, make_user, make_client, owner):
    account, _, client_id = owner
    report(client, batch(entry(account, client_id, count=8)), service)
    other = make_user()
    row, secret = make_client()
    token = user_tokens(app.test_client(), row.client_id, secret, other.email)["access_token"]
    body = usage_of(client, token).get_json()
    assert body["account"] == other.public_id
    assert sum(h["count"] for h in body["hourly"]) == 0 and sum(d["count"] for d in body["daily"]) == 0


def test_a_client_token_is_not_an_account(client, service):
    client_id, secret = service
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret))
    response = usage_of(client, token.get_json()["access_token"])
    assert_envelope(response, 401, "INVALID_TOKEN")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not.a.token"}, {"Authorization": "Basic abc"},
                                     {"Authorization": "Bearer "}])
def test_get_without_a_valid_token(client, headers):
    response = client.get(USAGE, headers=headers)
    assert_envelope(response, 401, "INVALID_TOKEN")
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
