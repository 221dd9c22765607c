"""Bearer-token authentication of driftd's HTTP write paths.

One shared secret per server (the daemon's port, the sidecar), read from the
configuration, the environment or a file (mount it from a Kubernetes Secret or a
Docker secret). Requests carry it as ``Authorization: Bearer <token>``, the way
Alertmanager's ``http_config.authorization`` and Prometheus's scrape
``authorization`` send it; the comparison runs in constant time
(:func:`hmac.compare_digest`).

Authentication is on by default outside loopback: :func:`require_token` refuses a
non-loopback bind address without a token unless the operator passed
``--insecure``.

>>> auth = BearerAuth("s3cret-token-of-16+")
>>> auth.allows("Bearer s3cret-token-of-16+"), auth.allows("Bearer nope"), auth.allows(None)
(True, False, False)
>>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
(True, True, True, False)
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

__all__ = [
    "CHALLENGE",
    "MIN_TOKEN_CHARS",
    "UNAUTHORIZED_BODY",
    "AuthSettings",
    "BearerAuth",
    "InsecureBind",
    "is_loopback",
    "require_token",
    "resolve_token",
]

# A token shorter than this is a password someone typed, not a generated secret.
MIN_TOKEN_CHARS = 16
MAX_TOKEN_CHARS = 4096


class InsecureBind(ValueError):
    """A non-loopback bind address without a token (and without ``--insecure``)."""


class AuthSettings(BaseModel):
    """Bearer token of one HTTP server; ``token`` or ``token_file``, not both.

    ``token`` usually comes from the environment (``DRIFTD_HTTP__AUTH__TOKEN``);
    ``token_file`` is a file holding only the token (a trailing newline is ignored).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr | None = None
    token_file: Path | None = None
    # Also require the token on GET /metrics (Prometheus then needs scrape `authorization`).
    metrics: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> AuthSettings:
        if self.token is not None and self.token_file is not None:
            raise ValueError("set token or token_file, not both")
        if self.token is not None:
            _check_token(self.token.get_secret_value(), "token")
        return self


def _check_token(token: str, key: str) -> str:
    if len(token) < MIN_TOKEN_CHARS or len(token) > MAX_TOKEN_CHARS:
        raise ValueError(
            f"{key}: a token must have {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} characters "
            "(generate one with `openssl rand -hex 32`)"
        )
    if any(c.isspace() or not c.isprintable() for c in token) or not token.isascii():
        raise ValueError(f"{key}: a token must be printable ASCII without spaces")
    return token


def resolve_token(settings: AuthSettings, key: str) -> str | None:
    """The token of ``settings`` (read from ``token_file`` when set), or None.

    Raises
    ------
    ValueError
        When the file cannot be read or does not hold a usable token; the message
        names ``key`` (e.g. ``http.auth.token_file``) but never the token.
    """
    if settings.token is not None:
        return settings.token.get_secret_value()
    if settings.token_file is None:
        return None
    try:
        text = Path(settings.token_file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ValueError(f"{key}.token_file: cannot read {settings.token_file}: {reason}") from None
    return _check_token(text.strip(), f"{key}.token_file ({settings.token_file})")


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a DNS name other than localhost may resolve anywhere


def require_token(host: str, token: str | None, *, insecure: bool, key: str) -> None:
    """Refuse a non-loopback ``host`` without a token, unless ``insecure``.

    Raises
    ------
    InsecureBind
        Naming the bind address, the settings that would fix it and ``--insecure``.
    """
    if token is None and not insecure and not is_loopback(host):
        raise InsecureBind(
            f"{key}.host {host!r} is reachable from other machines, but no token is set "
            f"({key}.auth.token_file, or the environment variable "
            f"DRIFTD_{key.upper()}__AUTH__TOKEN): anyone on the network could write to it. "
            "Set a token, bind to 127.0.0.1, or pass --insecure to run without authentication."
        )


class BearerAuth:
    """Checks ``Authorization: Bearer <token>`` headers against one token.

    Parameters
    ----------
    token
        The expected token; None lets every request through (loopback, or ``--insecure``).
    metrics
        Whether ``GET /metrics`` needs the token too.
    """

    def __init__(self, token: str | None, *, metrics: bool = False) -> None:
        self._expected = None if token is None else token.encode("ascii")
        self.metrics = metrics and token is not None

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self.enabled}, metrics={self.metrics})"

    def allows(self, authorization: str | bytes | None) -> bool:
        """Whether a request with this ``Authorization`` header value may pass."""
        if self._expected is None:
            return True
        if authorization is None:
            return False
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        scheme, _, credentials = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        # Constant time in the token's content; only the length of the header leaks.
        return hmac.compare_digest(credentials.strip(), self._expected)


UNAUTHORIZED_BODY = b'{"error":"unauthorized","detail":"send Authorization: Bearer <token>"}'
CHALLENGE = 'Bearer realm="driftd"'
