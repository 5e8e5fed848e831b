#!/usr/bin/env python3
"""The two set-up commands, needing only Python 3.11+:

    python3 dev.py up      build .venv, migrate SQLite, make a signing key, a demo account and a
                           demo client (printed with a ready-to-open authorize URL), serve on :5000
                           and run the sample API service on :5001
    python3 dev.py test    build .venv and run the whole test suite (extra arguments go to pytest)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import venv
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed-from"
DEMO_FILE = ROOT / "instance" / "demo.json"
DEMO_REDIRECT_URI = "http://127.0.0.1:8765/callback"
DEMO_SCOPE = "openid profile email read:users write:data"


def ensure_venv() -> None:
    """Create .venv and install the project (with test tools) whenever pyproject.toml changed."""
    if not (BIN / "python").exists():
        print("creating .venv …", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("installing dependencies into .venv …", file=sys.stderr)
    subprocess.run([BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([BIN / "python", "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def authserver(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run([BIN / "authserver", *args], input=stdin, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(result.stderr.strip() or f"authserver {' '.join(args)} failed")
    return result.stdout


def demo_credentials() -> dict:
    """Create the demo account, the demo client and the sample API service's own client once;
    later runs reuse them (and add what an older instance/demo.json lacks)."""
    demo = json.loads(DEMO_FILE.read_text()) if DEMO_FILE.exists() else {}
    if "client_id" not in demo:
        password = secrets.token_urlsafe(12)
        user = json.loads(authserver("users", "create", "--email", "demo@example.com", "--name", "Demo User",
                                     "--password-stdin", "--plan", "pro", stdin=password + "\n"))
        client = json.loads(authserver("clients", "create", "--name", "Demo App", "--redirect-uri", DEMO_REDIRECT_URI,
                                       "--grant-type", "authorization_code", "refresh_token", "client_credentials",
                                       "--scope", DEMO_SCOPE))
        demo.update(email=user["email"], password=password, user_id=user["id"],
                    client_id=client["client_id"], client_secret=client["client_secret"])
    if "api_client_id" not in demo:
        # The API service's own confidential client: it reports usage and introspects API keys.
        service = json.loads(authserver("clients", "create", "--name", "Sample API service",
                                        "--grant-type", "client_credentials", "--scope", "read:users"))
        demo.update(api_client_id=service["client_id"], api_client_secret=service["client_secret"])
        write_private(DEMO_FILE, json.dumps(demo, indent=2))
    return demo


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from the start, never world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def up() -> None:
    ensure_venv()
    os.chdir(ROOT)
    authserver("db", "upgrade")
    if not json.loads(authserver("keys", "list"))["keys"]:
        authserver("keys", "generate")
    demo = demo_credentials()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({"client_id": demo["client_id"], "redirect_uri": DEMO_REDIRECT_URI, "response_type": "code",
                       "scope": DEMO_SCOPE, "state": secrets.token_urlsafe(8), "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    print(f"""
Demo account   {demo['email']}  password {demo['password']}  (id {demo['user_id']})
Demo client    client_id {demo['client_id']}
               client_secret {demo['client_secret']}

1. Open this in a browser, sign in and allow:
   http://127.0.0.1:5000/oauth/authorize?{query}
2. The browser lands on {DEMO_REDIRECT_URI}?code=… (nothing listens there: copy the code).
3. Exchange it:
   curl -s -u '{demo['client_id']}:{demo['client_secret']}' http://127.0.0.1:5000/oauth/token \\
     -d grant_type=authorization_code -d redirect_uri={DEMO_REDIRECT_URI} \\
     -d code_verifier={verifier} -d code=PASTE_CODE_HERE
4. Call the sample API (http://127.0.0.1:5001) with the access_token:
   curl -s -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:5001/v1/users
   (or get a token without a browser:
   curl -s -u '{demo['client_id']}:{demo['client_secret']}' http://127.0.0.1:5000/oauth/token \\
     -d grant_type=client_credentials -d scope=read:users)
""", flush=True)
    serve_stack(demo)


def serve_stack(demo: dict) -> None:
    """The authorization server on :5000 in the foreground, the sample API on :5001 beside it with
    its own client credentials; when the server stops (Ctrl-C), the API is stopped by its PID."""
    api_env = {**os.environ, "AUTHSERVER_API_CLIENT_ID": demo["api_client_id"],
               "AUTHSERVER_API_CLIENT_SECRET": demo["api_client_secret"]}
    api = subprocess.Popen([BIN / "authserver", "api", "serve", "--host", "127.0.0.1", "--port", "5001"], cwd=ROOT,
                           env=api_env)
    try:
        subprocess.run([BIN / "authserver", "serve", "--host", "127.0.0.1", "--port", "5000"], cwd=ROOT)
    except KeyboardInterrupt:
        pass
    finally:
        api.terminate()
        try:
            api.wait(timeout=15)
        except subprocess.TimeoutExpired:
            api.kill()


def test(pytest_args: list[str]) -> None:
    ensure_venv()
    os.chdir(ROOT)
    os.execv(BIN / "python", [str(BIN / "python"), "-m", "pytest", *pytest_args])


if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "up":
        up()
    elif command == "test":
        test(rest)
    else:
        sys.exit(__doc__)
