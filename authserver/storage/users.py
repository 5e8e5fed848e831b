"""Accounts: create and look up users."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import credentials
from ..passwords import hash_password
from .db import session
from .models import PLANS, User


class DuplicateEmail(ValueError):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


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


def find_by_email(email: str) -> User | None:
    if "\x00" in email:
        return None  # no address holds NUL, which PostgreSQL refuses with an error (a 500)
    return session().scalar(select(User).where(User.email == normalise_email(email)))


def find_by_public_id(public_id: str) -> User | None:
    return session().scalar(select(User).where(User.public_id == public_id))


def get(user_id: int) -> User | None:
    return session().get(User, user_id)
