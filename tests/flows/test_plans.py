"""Plans and an enterprise account's custom rate limits, as resource services learn them: the
`rate_limits` access-token claim (enterprise with custom limits only, just the limits that are
set) and the same field in introspection, which always describes the account as it is now. A plan
change shows in introspection at once and in every token minted afterwards, so it reaches every
resource service within one access-token lifetime."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from authserver.storage import users
from authserver.storage.models import User

from .token_world import (  # noqa: F401 (fixtures)
    EMAIL,
    World,
    claims_of,
    post,
    registered,
    world,
)


def set_plan(w: World, plan: str, **limits) -> None:
    with w.app.app_context():
        users.set_plan(EMAIL, plan, **limits)


@pytest.fixture(autouse=True)
def back_to_pro(world):
    yield
    set_plan(world, "pro")


def introspected(w: World, token: str, sender) -> dict:
    response = post(w.api, "/oauth/introspect", sender, {"token": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["active"] is True
    return body


@pytest.mark.parametrize(("plan", "limits"), [
    ("free", {}),
    ("pro", {}),
    ("enterprise", {}),  # enterprise without custom limits: unlimited, nothing to say
])
def test_no_rate_limits_claim_without_custom_limits(world, registered, plan, limits):
    set_plan(world, plan, **limits)
    tokens = world.user_tokens(registered.main)
    claims = claims_of(tokens["access_token"])
    assert claims["plan"] == plan
    assert "rate_limits" not in claims
    for token, sender in ((tokens["access_token"], registered.resource), (tokens["refresh_token"], registered.main)):
        body = introspected(world, token, sender)
        assert body["plan"] == plan
        assert "rate_limits" not in body


@pytest.mark.parametrize(("limits", "claim"), [
    ({"per_hour": 50_000, "per_minute": 2_000}, {"per_hour": 50_000, "per_minute": 2_000}),
    ({"per_hour": 50_000}, {"per_hour": 50_000}),  # only the limits that are set: no nulls
    ({"per_minute": 300}, {"per_minute": 300}),
])
def test_enterprise_custom_limits_are_in_the_token_and_introspection(world, registered, limits, claim):
    set_plan(world, "enterprise", **limits)
    tokens = world.user_tokens(registered.main)
    claims = claims_of(tokens["access_token"])
    assert (claims["plan"], claims["rate_limits"]) == ("enterprise", claim)
    for token, sender in ((tokens["access_token"], registered.resource), (tokens["refresh_token"], registered.main)):
        body = introspected(world, token, sender)
        assert (body["plan"], body["rate_limits"]) == ("enterprise", claim)


def test_stored_limits_count_for_enterprise_only(world, registered):
    """Limits left on a pro account (written by hand: set-plan clears them) are not announced."""
    world.execute(update(User).where(User.id == world.user_id).values(
        plan="pro", rate_limit_per_hour=10**6, rate_limit_per_minute=10**4))
    tokens = world.user_tokens(registered.main)
    assert "rate_limits" not in claims_of(tokens["access_token"])
    assert "rate_limits" not in introspected(world, tokens["access_token"], registered.resource)


def test_client_credentials_tokens_carry_no_plan_nor_limits(world, registered):
    set_plan(world, "enterprise", per_hour=50_000, per_minute=2_000)
    token = world.machine_token(registered.main)
    assert "plan" not in claims_of(token) and "rate_limits" not in claims_of(token)
    body = introspected(world, token, registered.resource)
    assert "plan" not in body and "rate_limits" not in body


def test_an_upgrade_shows_in_introspection_at_once_and_in_the_next_token(world, registered):
    tokens = world.user_tokens(registered.main)
    assert "rate_limits" not in claims_of(tokens["access_token"])

    set_plan(world, "enterprise", per_hour=40_000, per_minute=1_000)

    expected = {"per_hour": 40_000, "per_minute": 1_000}
    # The token already issued keeps what it was signed with; introspection tells the present.
    assert claims_of(tokens["access_token"])["plan"] == "pro"
    body = introspected(world, tokens["access_token"], registered.resource)
    assert (body["plan"], body["rate_limits"]) == ("enterprise", expected)
    body = introspected(world, tokens["refresh_token"], registered.main)
    assert (body["plan"], body["rate_limits"]) == ("enterprise", expected)
    # The next access token, here from a refresh, carries the new plan and limits.
    claims = claims_of(world.rotate(registered.main, tokens["refresh_token"])["access_token"])
    assert (claims["plan"], claims["rate_limits"]) == ("enterprise", expected)


def test_changed_limits_and_a_downgrade_show_the_same_way(world, registered):
    set_plan(world, "enterprise", per_hour=40_000, per_minute=1_000)
    tokens = world.user_tokens(registered.main)

    set_plan(world, "enterprise", per_minute=10)
    assert introspected(world, tokens["access_token"], registered.resource)["rate_limits"] == {"per_minute": 10}
    tokens = world.rotate(registered.main, tokens["refresh_token"])
    assert claims_of(tokens["access_token"])["rate_limits"] == {"per_minute": 10}

    set_plan(world, "pro")  # clears the custom limits
    body = introspected(world, tokens["access_token"], registered.resource)
    assert body["plan"] == "pro" and "rate_limits" not in body
    claims = claims_of(world.rotate(registered.main, tokens["refresh_token"])["access_token"])
    assert claims["plan"] == "pro" and "rate_limits" not in claims


def test_the_servers_claim_is_what_the_resource_verifier_accepts(world, registered):
    """The server's claim shape passes the resource side's checks and gives PlanLimits."""
    from authserver.resource.ratelimit import PlanLimits, custom_limits, limits_for
    from authserver.resource.verifier import rate_limits_of

    set_plan(world, "enterprise", per_minute=25)
    claims = claims_of(world.user_tokens(registered.main)["access_token"])
    assert limits_for(claims["plan"], custom_limits(rate_limits_of(claims))) == PlanLimits(None, 25)
