"""Accounts: create and look up users, change their password."""

from __future__ import annotations

import re

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from .. import credentials
from ..passwords import hash_password
from .db import session
from .models import PLANS, User


# Custom limits are stored as 32-bit integers (PostgreSQL INTEGER); a billion requests an hour
# or a minute is far beyond any real account and well inside that.
MAX_CUSTOM_LIMIT = 1_000_000_000


class DuplicateEmail(ValueError):
    pass


class UnknownAccount(LookupError):
    pass


# A plain shape check: a local part, one @, a domain of dot-separated labels, and no spaces,
# controls or characters that only quoted local parts use. Whether mail arrives only mail can tell.
_LOCAL_PART = r'[^\s@\x00-\x1f\x7f"(),:;<>\[\\\]]{1,64}'
_LABEL = r'[^\s@\x00-\x1f\x7f"(),:;<>\[\\\]/.]+'
EMAIL_SHAPE = re.compile(rf"{_LOCAL_PART}@(?:{_LABEL}\.)+{_LABEL}")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    """Whether `email`, once normalised, has the shape of an address (at most 320 characters)."""
    normalised = normalise_email(email)
    return len(normalised) <= 320 and EMAIL_SHAPE.fullmatch(normalised) is not None


def create_user(email: str, name: str, password: str, plan: str = "free") -> User:
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    user = User(
        public_id=credentials.new_identifier("user"),
        email=normalise_email(email),
        name=name.strip(),
        password_hash=hash_password(password),
        plan=plan,
    )
    db = session()
    db.add(user)
    try:
        db.commit()
    except IntegrityError:
        db.rollback()
        raise DuplicateEmail("an account with this email already exists") from None
    return user


def set_password(user: User, password: str) -> None:
    """Store a new Argon2id hash for `password` and commit (with whatever the caller added to the
    transaction before)."""
    user.password_hash = hash_password(password)
    session().commit()


def set_plan(email: str, plan: str, *, per_hour: int | None = None, per_minute: int | None = None) -> User:
    """Put the account on `plan`. The call states the whole plan: custom limits (requests per hour,
    per minute; None is "no limit of that kind") only with enterprise, where none means unlimited;
    any other plan clears them. Raises UnknownAccount, or ValueError for a refused combination.
    Tokens minted from now on carry the change; introspection shows it at once."""
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    for option, value in (("hourly limit", per_hour), ("burst limit", per_minute)):
        if value is None:
            continue
        if plan != "enterprise":
            raise ValueError(f"custom limits ({option}) are for the enterprise plan only")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CUSTOM_LIMIT:
            raise ValueError(f"the {option} must be a whole number from 1 to {MAX_CUSTOM_LIMIT}")
    if per_hour is not None and per_minute is not None and per_minute > per_hour:
        raise ValueError("the burst limit (per minute) cannot exceed the hourly limit (per hour)")
    user = find_by_email(email)
    if user is None:
        raise UnknownAccount("no account has this email")
    user.plan = plan
    user.rate_limit_per_hour = per_hour
    user.rate_limit_per_minute = per_minute
    session().commit()
    return user


def find_by_email(email: str) -> User | None:
    if "\x00" in email:
        return None  # no address holds NUL, which PostgreSQL refuses with an error (a 500)
    return session().scalar(select(User).where(User.email == normalise_email(email)))


# Built once: every signed-in request loads its user with it (Flask-Login's user_loader), and
# building a statement costs more CPU than running it.
_BY_PUBLIC_ID = select(User).where(User.public_id == bindparam("public_id"))


def find_by_public_id(public_id: str) -> User | None:
    return session().scalar(_BY_PUBLIC_ID, {"public_id": public_id})


def get(user_id: int) -> User | None:
    return session().get(User, user_id)
