"""`GET /v1/openapi.json`: a valid OpenAPI 3.1 document, public and cacheable, that describes
exactly the app's `/v1` routes, and whose schemas fit what the API really answers."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from ..conftest import REDIRECT_URI
from .token_world import World, world  # noqa: F401 (fixtures)

PATH = "/v1/openapi.json"
IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def document(world) -> dict:
    response = world.api.get(PATH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_the_document_is_public_cacheable_json(world):
    response = world.api.get(PATH)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    again = world.api.get(PATH, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any error


def test_the_document_names_this_server(document):
    assert document["servers"] == [{"url": "http://localhost"}]


def _app_routes(w: World) -> set[tuple[str, str]]:
    """(path in OpenAPI's {name} form, method) of every /v1 route of the app."""
    return {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method)
        for rule in w.app.url_map.iter_rules() if rule.rule.startswith("/v1/")
        for method in rule.methods - IGNORED_METHODS
    }


def _documented(document: dict) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item}


def test_every_documented_operation_is_a_route_of_the_app(world, document):
    assert _documented(document) - _app_routes(world) == set()


def test_every_v1_route_of_the_app_is_documented(world, document):
    assert _app_routes(world) - _documented(document) == set()


def test_every_operation_says_who_may_call_it(document):
    schemes = set(document["components"]["securitySchemes"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "security" in operation, (path, method)
            for requirement in operation["security"]:
                assert set(requirement) <= schemes, (path, method)


def _schema(document: dict, name: str) -> Draft202012Validator:
    """A validator of one component schema, its $refs resolved within the document."""
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": document["components"]})


def test_the_schemas_fit_what_the_apps_and_keys_apis_answer(world, document):
    manager = world.register(name="Schema Check", scope="openid keys:manage")
    headers = {"Authorization": f"Bearer {world.user_tokens(manager, scope='openid keys:manage')['access_token']}"}
    new_app = world.api.post("/v1/apps", headers=headers, json={
        "name": "Schema App", "redirect_uris": [REDIRECT_URI], "public": False, "scopes": ["openid"],
        "grant_types": ["authorization_code"]}).get_json()
    new_key = world.api.post("/v1/api-keys", headers=headers, json={"name": "k", "scopes": ["read_profile"]}).get_json()
    rotated_key = world.api.post(f"/v1/api-keys/{new_key['id']}/rotate", headers=headers).get_json()
    answers = {
        "NewApp": new_app,
        "AppList": world.api.get("/v1/apps", headers=headers).get_json(),
        "ClientSecret": world.api.post(f"/v1/apps/{new_app['client_id']}/rotate-secret", headers=headers).get_json(),
        "NewApiKey": new_key,
        "RotatedApiKey": rotated_key,
        "ApiKeyList": world.api.get("/v1/api-keys", headers=headers).get_json(),
        "UsageSummary": world.api.get("/v1/usage", headers=headers).get_json(),
        "Error": world.api.delete(f"/v1/apps/{new_app['client_id']}x", headers=headers).get_json(),
    }
    for name, answer in answers.items():
        errors = [error.message for error in _schema(document, name).iter_errors(answer)]
        assert errors == [], (name, errors)
    app_schema = document["components"]["schemas"]["App"]
    assert set(app_schema["required"]) == set(new_app) - {"client_secret"}


def test_the_schemas_would_notice_an_answer_that_does_not_fit(document):
    """The check above can fail: a wrong answer does not pass."""
    assert list(_schema(document, "App").iter_errors({"client_id": 5}))
    assert list(_schema(document, "Error").iter_errors({"error": {"code": "TEAPOT", "message": "", "status": 418}}))
