"""The fuzz tests' world: token_world's app, signed-in account and clients, plus what the
properties need — the stored rows to compare, the secrets no response may hold — and fresh real
codes and tokens for the inputs that name them.

Inputs name real values by placeholder (`Real("code")`), never hold them: Hypothesis replays and
shrinks examples, and a real code or refresh token must be fresh each time (a replayed one would
be rightly refused *and* revoke what it gave, which is a stored change on a rejected request).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ..conftest import PASSWORD, REDIRECT_URI, pkce_pair
from ..flows.token_world import Clients, Registered, World, registered, world  # noqa: F401 (fixtures)
from ..helpers import authorize_query, authorize_url, redirect_params
from .properties import StoredRows, private_key_texts

__all__ = ["Real", "Fuzz", "fuzz", "world", "registered"]


@dataclass(frozen=True)
class Real:
    """A placeholder for a real value, resolved per example by `Fuzz.resolve`."""

    name: str

    def __repr__(self) -> str:
        return f"Real({self.name!r})"


@dataclass
class Fuzz:
    world: World
    clients: Clients
    rows: StoredRows
    secrets: list[str]  # in no response, ever
    _fresh: dict = field(default_factory=dict)

    def secrets_not_in(self, *sent) -> list[str]:
        """The secrets, but those the request itself carried: echoing the caller's own input
        (a `state`, a `login_hint`) is no leak."""
        carried = repr(sent)
        return [secret for secret in self.secrets if secret not in carried]

    def start_example(self) -> None:
        self._fresh = {}

    def code(self, registered: Registered | None = None) -> tuple[str, str]:
        """A fresh authorization code of the main client (PKCE S256), and its verifier."""
        verifier, challenge = pkce_pair()
        sender = registered or self.clients.main
        response = self.world.browser.get(authorize_url(authorize_query(sender.client_id, challenge)))
        assert response.status_code == 302, response.get_data(as_text=True)
        return redirect_params(response)["code"], verifier

    def user_tokens(self, registered: Registered | None = None) -> dict:
        return self.world.user_tokens(registered or self.clients.main)

    def resolve(self, value):
        """`value` with every placeholder replaced by the real thing (fresh for this example)."""
        if isinstance(value, Real):
            return self._value(value.name)
        if isinstance(value, dict):
            return {self.resolve(k): self.resolve(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.resolve(v) for v in value)
        return value

    def _value(self, name: str) -> str:
        if name not in self._fresh:
            self._fresh[name] = self._make(name)
        return self._fresh[name]

    def _make(self, name: str) -> str:
        c = self.clients
        if name in ("code", "code_verifier"):
            self._fresh["code"], self._fresh["code_verifier"] = self.code()
            return self._fresh[name]
        if name in ("access_token", "refresh_token", "id_token"):
            self._fresh.update({k: v for k, v in self.user_tokens().items()
                                if k in ("access_token", "refresh_token", "id_token")})
            return self._fresh[name]
        if name == "machine_token":
            return self.world.machine_token(c.resource)
        fixed = {
            "redirect_uri": REDIRECT_URI, "password": PASSWORD,
            "main_id": c.main.client_id, "main_secret": c.main.secret,
            "post_id": c.post.client_id, "post_secret": c.post.secret,
            "public_id": c.public.client_id,
            "other_id": c.other.client_id, "other_secret": c.other.secret,
            "resource_id": c.resource.client_id, "resource_secret": c.resource.secret,
        }
        return fixed[name]


@pytest.fixture(scope="module")
def fuzz(world, registered, keys_dir):  # noqa: F811 (the imported fixtures)
    """The world, with tokens of another party (the `other` client's) that no response may show."""
    others = world.user_tokens(registered.other)
    secrets = [registered.main.secret, registered.other.secret, registered.post.secret,
               registered.resource.secret, PASSWORD, others["access_token"], others["refresh_token"],
               others["id_token"], world.machine_token(registered.other), *private_key_texts(keys_dir)]
    rows = StoredRows(world.database_url)
    yield Fuzz(world, registered, rows, secrets)
    rows.close()
