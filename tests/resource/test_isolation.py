"""`authserver.resource` is what resource services import: it must not pull in the server's
models, database, settings or Flask app code, nor SQLAlchemy. Checked in a fresh interpreter,
where nothing else has imported them already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("authserver.storage", "authserver.app", "authserver.oauth", "authserver.settings",
             "authserver.web", "authserver.cli", "authserver.extensions", "sqlalchemy", "alembic", "authlib")

PROBE = """
import json, sys
{imports}
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(imports: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE.format(imports=imports)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("imports", [
    "import authserver.resource",
    "from authserver.resource import TokenVerifier, JWKSCache, Principal, InvalidToken, TokenExpired",
    "from authserver.resource.flask import ResourceAuth, require_auth, current_principal",
    "from authserver.resource import APIKeyVerifier, InvalidAPIKey, ServiceUnavailable",
    "import authserver.resource.api_keys, authserver.resource.api_key_format",
])
def test_the_resource_package_imports_no_server_code(imports):
    modules = imported_by(imports)
    assert "authserver.resource" in modules
    leaked = [name for name in modules if name.split(".")[0] in FORBIDDEN or name.startswith(FORBIDDEN)]
    assert leaked == []


def test_the_verifier_does_not_need_flask():
    assert "flask" not in imported_by("import authserver.resource")


def test_the_probe_sees_what_is_imported():
    # The control: the same probe does see the server's modules when they are imported.
    modules = imported_by("import authserver.app")
    assert "authserver.storage" in modules and "sqlalchemy" in modules
