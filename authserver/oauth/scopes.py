"""The scope catalogue: every scope a client may be registered for, with the text consent shows."""

SCOPES = {
    "openid": "Sign you in and confirm your identity",
    "profile": "See your name",
    "email": "See your email address",
    "offline_access": "Stay connected when you are not using the app",
    "read_profile": "Read your profile",
    "write_data": "Create and change your data",
    "read:users": "Read user information",
    "write:data": "Create and change data",
    "keys:manage": "Manage your API keys and apps",
}

# What an API key may carry: the API scopes. Not keys:manage (a leaked key must not mint keys),
# nor the OpenID Connect ones (a key signs nobody in).
API_KEY_SCOPES = ("read_profile", "write_data", "read:users", "write:data")


def unknown_scopes(scopes: list[str]) -> list[str]:
    return [scope for scope in scopes if scope not in SCOPES]


def describe(scopes: list[str]) -> list[tuple[str, str]]:
    return [(scope, SCOPES[scope]) for scope in scopes]
