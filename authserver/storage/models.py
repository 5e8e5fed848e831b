"""Database schema. Issued secrets (client secrets, codes, refresh tokens, API keys) are stored
only as SHA-256 digests and looked up by digest; times that protocol checks compare are epoch
seconds."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    MetaData,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .. import credentials

PLANS = ("free", "pro", "enterprise")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    # Named constraints, so that later migrations can alter them on every database.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("plan IN ('free', 'pro', 'enterprise')", name="plan"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    # Stored normalised (trimmed, lower-case), which makes the unique index case-insensitive.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    plan: Mapped[str] = mapped_column(String(20), default="free")
    # Custom rate limits (requests per hour, per minute), set for enterprise accounts only; None is
    # "no limit of that kind". Changing to another plan clears them (storage.users.set_plan).
    rate_limit_per_hour: Mapped[int | None] = mapped_column(Integer)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    # Flask-Login: the session stores the public id, never the row id.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return self.public_id

    @property
    def rate_limits(self) -> dict[str, int] | None:
        """The custom limits that apply, only those set, as in the `rate_limits` token claim:
        None unless the plan is enterprise and at least one limit is set."""
        if self.plan != "enterprise":
            return None
        limits = {"per_hour": self.rate_limit_per_hour, "per_minute": self.rate_limit_per_minute}
        return {kind: value for kind, value in limits.items() if value is not None} or None


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint(
            "token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'none')",
            name="auth_method",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_digest: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    # OpenID Connect RP-Initiated Logout: where the client may send the browser after sign-out.
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSON, default=list)
    grant_types: Mapped[list] = mapped_column(JSON, default=list)
    scope: Mapped[str] = mapped_column(Text, default="")
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(40))
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def allowed_scopes(self) -> list[str]:
        return self.scope.split()

    # -- Authlib's ClientMixin: the client's own rules, no I/O -------------------

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        # Deliberate: redirect_uri is always required, even with one registered (OAuth 2.1).
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string match, no normalisation (RFC 9700 §4.1.3).
        return redirect_uri in self.redirect_uris

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client may have; all of its scopes when none are requested."""
        if not scope:
            return self.scope
        allowed = set(self.allowed_scopes)
        return " ".join(s for s in dict.fromkeys(scope.split()) if s in allowed)

    def check_client_secret(self, client_secret: str) -> bool:
        return credentials.matches(client_secret, self.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


class Consent(Base):
    """The scopes a user has granted a client; a request within them skips the consent screen."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "client_id", name="uq_consents_user_client"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    # OpenID Connect: echoed in the ID token, and the browser session the user signed in with.
    nonce: Mapped[str | None] = mapped_column(String(255))
    auth_time: Mapped[int | None] = mapped_column(Integer)
    sid: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[int] = mapped_column(Integer, index=True)  # the prune job deletes by it
    used_at: Mapped[int | None] = mapped_column(Integer)
    # What the redemption issued, so that a replayed code can revoke it (RFC 6749 §4.1.2).
    access_token_jti: Mapped[str | None] = mapped_column(String(64))
    access_token_expires_at: Mapped[int | None] = mapped_column(Integer)
    refresh_family: Mapped[str | None] = mapped_column(String(64))

    # Authlib's AuthorizationCodeMixin
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # Every token rotated from the same grant shares a family; reuse of any revokes them all.
    family: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(Text)
    # The original authentication, repeated in ID tokens issued on refresh (OIDC Core §12.2).
    auth_time: Mapped[int | None] = mapped_column(Integer)
    sid: Mapped[str | None] = mapped_column(String(64))
    # The access token issued together with this refresh token, revoked with its family (RFC 7009 §2.1).
    access_token_jti: Mapped[str | None] = mapped_column(String(64))
    access_token_expires_at: Mapped[int | None] = mapped_column(Integer)
    issued_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)  # the prune job deletes by it
    used_at: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(Integer)
    # The response its rotation returned, sealed under a key derived from this token, for retries
    # within the grace window (oauth/grants.py); None when there is none or it has been wiped.
    successor: Mapped[str | None] = mapped_column(Text)

    # Authlib's TokenMixin, as far as the refresh grant uses it
    def check_client(self, client: Client) -> bool:
        return self.client_id == client.id

    def get_scope(self) -> str:
        return self.scope


class RevokedAccessToken(Base):
    """Deny list of access-token ids, kept until the token would have expired anyway."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(Integer, index=True)


class UsageCount(Base):
    """Requests a resource service counted for one account, with one credential (API key id or
    OAuth client_id), in one hour (epoch seconds at the start of the hour)."""

    __tablename__ = "usage_counts"
    __table_args__ = (UniqueConstraint("account", "credential", "hour", name="uq_usage_counts_account_credential_hour"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(64))
    credential: Mapped[str] = mapped_column(String(64))
    hour: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(BigInteger)  # sums of many batches can pass 2^31


class UsageBatch(Base):
    """Batch ids already applied: a resource service retries a batch until acknowledged, and a
    batch seen again adds nothing."""

    __tablename__ = "usage_batches"

    batch_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[int] = mapped_column(Integer, index=True)


class ApiKey(Base):
    """An account's API key, stored as the SHA-256 digest of the key; only the display parts
    (`tdk_` and 6 characters, the last 4) are kept to let the owner tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(16))
    last_four: Mapped[str] = mapped_column(String(4))
    scope: Mapped[str] = mapped_column(Text)  # space-separated
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[int | None] = mapped_column(Integer)
    last_used_at: Mapped[int | None] = mapped_column(Integer)
    # The key this one replaced (rotation); kept as history, so deleting it only clears the link.
    rotated_from_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))

    owner: Mapped[User] = relationship()
    rotated_from: Mapped[ApiKey | None] = relationship(remote_side=[id])

    @property
    def scopes(self) -> list[str]:
        return self.scope.split()

    def is_usable(self, now: float) -> bool:
        """Neither revoked nor expired (whether its owner is enabled is the account's business)."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
