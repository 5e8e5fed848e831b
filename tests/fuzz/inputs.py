"""Hypothesis strategies for hostile HTTP input: parameter values, bodies in every encoding the
endpoints see (and some they must refuse), and Authorization headers."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from hypothesis import strategies as st

from .world import Real

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
BODY_LIMIT = 64 * 1024  # AUTHSERVER_MAX_BODY_BYTES default

CONTENT_TYPES = [FORM, JSON, f"{FORM}; charset=latin-1", f"{FORM}; charset=bogus", f"{JSON}; charset=utf-16",
                 "text/plain", "multipart/form-data; boundary=x", "application/xml", "", f"{FORM}, {JSON}",
                 "APPLICATION/X-WWW-FORM-URLENCODED", "application/jwt", None]

INTERESTING = [
    "", " ", "\t", "null", "[]", "{}", "0", "-1", "1e309", "true", "%00", "\x00", "\u202e", "\ufeff", "🦀",
    "authorization_code", "refresh_token", "client_credentials", "password", "implicit", "token",
    "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "code", "id_token", "code id_token", "none", "S256", "plain", "s256",
    "openid", "openid profile read:users write:data", "openid keys:manage admin", "read:users  write:data",
    "https://evil.example.com/callback", "https://app.example.com/callback/../evil",
    "https://app.example.com/callback?x=1", "https://app.example.com/callback#frag", "http://app.example.com/callback",
    "https://APP.example.com/callback", "javascript:alert(1)", "//evil.example.com", "/callback",
    "a" * 43, "a" * 128, "a" * 129, "login", "consent", "select_account", "none login",
    "access_token", "refresh_token", "' OR '1'='1", "<script>alert(1)</script>", "{{7*7}}", "../../etc/passwd",
]

PARAMETER_NAMES = [
    "grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope", "client_id",
    "client_secret", "username", "password", "state", "nonce", "resource", "audience", "assertion",
    "client_assertion", "client_assertion_type", "response_type", "code_challenge", "code_challenge_method",
    "prompt", "max_age", "login_hint", "token", "token_type_hint", "request", "request_uri", "response_mode",
    "id_token_hint", "claims", "acr_values", "ui_locales",
]

REAL_NAMES = ["code", "code_verifier", "refresh_token", "access_token", "id_token", "machine_token",
              "redirect_uri", "main_id", "main_secret", "post_id", "post_secret", "public_id", "other_id",
              "other_secret", "resource_id", "resource_secret"]

text = st.text(max_size=40)
latin1 = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
huge = st.sampled_from([1000, 8193, BODY_LIMIT - 100, BODY_LIMIT + 1]).map(lambda n: "x" * n)

values = st.one_of(
    st.sampled_from(INTERESTING),
    text,
    st.builds(Real, st.sampled_from(REAL_NAMES)),
    huge,
)
names = st.one_of(st.sampled_from(PARAMETER_NAMES), text)


def resolved(fuzz, pairs: list[tuple]) -> list[tuple[str, str]]:
    return [(fuzz.resolve(name), fuzz.resolve(value)) for name, value in pairs]


@st.composite
def mutated(draw, base: list[tuple]) -> list[tuple]:
    """`base` (a valid request's parameters, as pairs) with some dropped, changed, repeated or added."""
    pairs = list(base)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3, 4]))):
        action = draw(st.sampled_from(["drop", "change", "repeat", "add"]))
        if action == "add" or not pairs:
            pairs.append((draw(names), draw(values)))
            continue
        at = draw(st.integers(0, len(pairs) - 1))
        if action == "drop":
            pairs.pop(at)
        elif action == "change":
            pairs[at] = (pairs[at][0], draw(values))
        else:
            pairs.append((pairs[at][0], draw(values)))
    return pairs


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


@st.composite
def bodies(draw, pairs: list[tuple[str, str]]) -> dict:
    """Test-client arguments carrying `pairs` (already resolved): a form, JSON, the query string,
    or raw bytes, under some Content-Type."""
    encoding = draw(st.sampled_from(["form"] * 4 + ["json", "json", "json-odd", "query", "raw", "charset"]))
    content_type = draw(st.sampled_from(CONTENT_TYPES)) if draw(st.integers(0, 3)) == 0 else None
    if encoding == "form":
        data = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
        return {"data": data, "content_type": content_type or FORM}
    if encoding == "json":
        # json.dumps of pairs keeps repeated names, which the endpoints must refuse.
        data = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in pairs) + "}"
        return {"data": data, "content_type": content_type or JSON}
    if encoding == "json-odd":
        body = {k: v for k, v in pairs}
        for name in draw(st.lists(st.sampled_from(PARAMETER_NAMES), max_size=3)):
            body[name] = draw(json_values)
        outer = draw(st.sampled_from(["object", "array", "string"]))
        document = body if outer == "object" else list(body.items()) if outer == "array" else str(body)
        return {"data": json.dumps(document), "content_type": content_type or JSON}
    if encoding == "query":
        return {"query_string": "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs),
                "content_type": content_type}
    if encoding == "charset":
        # The same form, in bytes that are not UTF-8 (latin-1, or bytes broken on purpose).
        data = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs).encode()
        data += draw(st.sampled_from([b"&x=\xff\xfe", b"&\xc3\x28=1", b"&code=%ff%fe", b"\x00", b"&%=%%", b""]))
        return {"data": data, "content_type": content_type or FORM}
    return {"data": draw(st.binary(max_size=300)), "content_type": content_type}


def authorizations_or(usual) -> st.SearchStrategy:
    """`usual` (a drawn authorization, e.g. the right client's Basic credentials) half the time."""
    return st.one_of(st.just(usual), authorizations())


@st.composite
def authorizations(draw) -> str | None:
    """An Authorization header, of any shape: None is no header."""
    kind = draw(st.sampled_from(["none", "basic-real", "basic-text", "basic-bytes", "bearer", "raw"]))
    if kind == "none":
        return None
    if kind == "basic-real":
        user = draw(st.sampled_from([Real("main_id"), Real("post_id"), Real("public_id"), Real("other_id"),
                                     Real("resource_id"), "", "unknown"]))
        password = draw(st.sampled_from([Real("main_secret"), Real("other_secret"), Real("resource_secret"),
                                         "", "wrong"]) | text)
        return ("basic", user, password)
    if kind == "basic-text":
        return "Basic " + base64.b64encode(draw(st.text(max_size=40)).encode("utf-8")).decode()
    if kind == "basic-bytes":
        return "Basic " + base64.b64encode(draw(st.binary(max_size=40))).decode()
    if kind == "bearer":
        scheme = draw(st.sampled_from(["Bearer", "bearer", "BEARER", "Bearer  ", "DPoP", "MAC"]))
        token = draw(st.sampled_from([Real("access_token"), Real("machine_token"), Real("id_token"),
                                      Real("refresh_token"), Real("main_secret")]) | latin1)
        return ("scheme", scheme, token)
    return draw(latin1)


def authorization_header(fuzz, drawn) -> dict:
    """The headers for a drawn authorization (placeholders resolved)."""
    if drawn is None:
        return {}
    if isinstance(drawn, tuple) and drawn[0] == "basic":
        user, password = fuzz.resolve(drawn[1]), fuzz.resolve(drawn[2])
        raw = f"{user}:{password}".encode("utf-8")
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    if isinstance(drawn, tuple):
        return {"Authorization": f"{drawn[1]} {fuzz.resolve(drawn[2])}"}
    return {"Authorization": drawn}
