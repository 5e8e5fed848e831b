"""The strength rule for passwords people choose (sign-up, password change): at least 12 and at
most 1024 characters, not the account's email, and not a well-known password.

Length is what makes a password hard to guess (NIST SP 800-63B §3.1.1.2); composition rules
("a digit and a symbol") are left out on purpose. The upper bound caps the Argon2 work one
request can ask for. Passwords are never trimmed: every character counts.
"""

from __future__ import annotations

from .common_passwords import COMMON_PASSWORDS

MIN_LENGTH = 12
MAX_LENGTH = 1024


def password_problem(password: str, email: str) -> str | None:
    """Why `password` may not be used by the account with `email`, or None if it may."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if password.strip().lower() == email.strip().lower():
        return "Your password cannot be your email address."
    if password.lower() in COMMON_PASSWORDS:
        return "This password is too common. Choose one that is harder to guess."
    return None
