"""One plain test per bug the fuzz tests found, so that each stays fixed whatever the fuzzer
happens to generate next time."""

from __future__ import annotations

import pytest

from ..flows.token_world import assert_oauth_error
from .world import fuzz, registered, world  # noqa: F401 (fixtures)


# Found by test_token_endpoint: Authlib splits an Authorization header that holds a space at its
# whitespace and unpacks two parts; "Basic " (nothing after the scheme) or " " raised ValueError,
# a 500 at every endpoint that authenticates clients.
@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("authorization", ["Basic ", " ", "x ", "Basic\t "])
def test_an_authorization_header_with_nothing_after_the_scheme_is_invalid_client(fuzz, path, authorization):
    before = fuzz.rows.snapshot()
    response = fuzz.world.api.post(path, data={"grant_type": "client_credentials", "token": "x"},
                                   headers={"Authorization": authorization})
    assert_oauth_error(response, 401, "invalid_client")
    assert fuzz.rows.snapshot() == before
