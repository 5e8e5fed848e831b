"""What every fuzzed response must satisfy, whatever was sent:

- no 5xx;
- no stack trace or Python exception text, and no secret (a client secret, the password, signing
  key material, a token of another party) in the body or any header;
- a rejected request (4xx, or an authorization error redirected to the client) stored nothing:
  every row of every table is as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, select

from authserver.storage.models import Base

from ..flows.stored_state import Snapshot, differences

# What a Python error looks like when it leaks: a traceback, a frame, an exception's repr, the
# database driver's or ORM's messages.
LEAK = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]*\", line \d+|\b[A-Z]\w*(?:Error|Exception)\b\s*[:(]"
    r"|<class '|sqlalchemy|psycopg|sqlite3|werkzeug\.|authlib\.|joserfc\.|site-packages",
    re.IGNORECASE,
)
# A private JWK (RFC 7518 §6.3.2) or a PEM private key.
KEY_MATERIAL = re.compile(r'"(?:d|p|q|dp|dq|qi)"\s*:|PRIVATE KEY')


def private_key_texts(keys_dir: Path) -> list[str]:
    """The base64 lines of every PEM file in the key directory (any one of them leaking is a leak)."""
    lines = []
    for path in Path(keys_dir).glob("*.pem"):
        lines += [line for line in path.read_text().splitlines() if len(line) >= 32 and "-----" not in line]
    return lines


class StoredRows:
    """Every committed row, read on a connection of its own (what another process would see)."""

    def __init__(self, database_url: str):
        self.engine = create_engine(database_url)

    def snapshot(self) -> Snapshot:
        with self.engine.connect() as conn:
            return {
                table.name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for table in Base.metadata.sorted_tables
            }

    def close(self) -> None:
        self.engine.dispose()


def rejected(response) -> bool:
    """A 4xx, or an authorization error sent to the client's redirect URI (RFC 6749 §4.1.2.1)."""
    if 400 <= response.status_code < 500:
        return True
    if response.status_code in (302, 303) and "Location" in response.headers:
        parts = urlsplit(response.headers["Location"])
        return "error" in parse_qs(parts.query) or "error" in parse_qs(parts.fragment)
    return False


def assert_safe(response, secrets: Iterable[str]) -> None:
    """No 5xx, no leaked error text or secret anywhere in the response."""
    body = response.get_data()
    assert response.status_code < 500, (response.status_code, body[:2000])
    text = body.decode("utf-8", "replace")
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    for where, content in (("body", text), ("headers", headers)):
        leak = LEAK.search(content)
        assert leak is None, f"error text in the {where}: {leak.group(0)!r}\n{content[:2000]}"
        key = KEY_MATERIAL.search(content)
        assert key is None, f"key material in the {where}: {key.group(0)!r}"
        for secret in secrets:
            assert secret not in content, f"a secret in the {where}: {secret[:6]}…"


def assert_nothing_stored_if_rejected(response, before: Snapshot, after: Snapshot) -> None:
    if rejected(response):
        assert after == before, (f"rejected with {response.status_code}, yet stored: "
                                 f"{differences(before, after)}")
