"""Who a call comes from: a verified bearer JWT, or (optionally) a verified client certificate.

Keys come from files the operator configures: an HMAC secret (HS256), PEM public keys (RS256 for
RSA, ES256 for P-256) and a local JWKS file. Each key verifies only the algorithms its type
allows, so `alg: none` verifies against nothing and an HS256 token signed with an RSA public key
as the secret (algorithm confusion) finds no HMAC key to try. `exp` is required; `nbf`, `iss`
and `aud` are checked (an `aud` in a token is refused when the server has no audience
configured: PyJWT's rule). Every failure is the same `Unauthenticated`: which check failed is
logged at DEBUG, never told to the caller.

Verified tokens are cached (bounded LRU keyed by the token string, each entry until its `exp`),
so a client sending the same token on every call pays one dict lookup, not a signature check.
Key files are re-read when they change (checked at most every KEY_RECHECK_S), and a change
empties the cache, so a removed key stops verifying within seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from server.errors import Unauthenticated
from server.security.principal import TENANT_NAME, Principal

log = logging.getLogger("server.auth")

AUTHORIZATION = "authorization"  # gRPC metadata keys are lower case
BEARER = "bearer "
MAX_TOKEN_CHARS = 8_192
MIN_HMAC_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
CACHE_ENTRIES = 10_000
KEY_RECHECK_S = 2.0
_HS, _RS, _ES = ("HS256",), ("RS256",), ("ES256",)


@dataclass(frozen=True)
class TokenSettings:
    hmac_secret_file: Path | None = None
    public_keys: tuple[Path, ...] = ()
    jwks_file: Path | None = None
    issuer: str = ""
    audience: str = ""
    leeway_seconds: float = 30.0
    tenant_claim: str = "tenant"

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(
            p for p in (self.hmac_secret_file, *self.public_keys, self.jwks_file) if p is not None
        )


@dataclass(frozen=True)
class _Key:
    key: Any
    algorithms: tuple[str, ...]
    kid: str | None = None


class KeyFileError(ValueError):
    """A configured key file that cannot be used: the server does not start."""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise KeyFileError(f"{path}: cannot be read ({err.strerror})") from None


def _public_key_algorithms(key: Any) -> tuple[str, ...]:
    if isinstance(key, rsa.RSAPublicKey):
        return _RS
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return _ES
    raise KeyFileError("a public key must be RSA (RS256) or EC P-256 (ES256)")


def load_keys(settings: TokenSettings) -> list[_Key]:
    """The configured verification keys; raises KeyFileError naming a file that is unusable."""
    keys: list[_Key] = []
    if settings.hmac_secret_file is not None:
        secret = _read(settings.hmac_secret_file).strip()
        if len(secret) < MIN_HMAC_BYTES:
            raise KeyFileError(f"{settings.hmac_secret_file}: HMAC secret under 32 bytes")
        if secret.startswith(b"-----BEGIN"):
            raise KeyFileError(f"{settings.hmac_secret_file}: a PEM key is not an HMAC secret")
        keys.append(_Key(secret, _HS))
    for path in settings.public_keys:
        pem = _read(path)
        try:
            key = load_pem_public_key(pem)
        except (ValueError, TypeError):
            raise KeyFileError(f"{path}: not a PEM public key") from None
        keys.append(_Key(key, _public_key_algorithms(key)))
    if settings.jwks_file is not None:
        text = _read(settings.jwks_file)
        try:
            jwks = jwt.PyJWKSet.from_json(text.decode())
        except (ValueError, jwt.PyJWKSetError, jwt.PyJWKError) as err:
            raise KeyFileError(f"{settings.jwks_file}: not a usable JWKS ({err})") from None
        for jwk in jwks.keys:
            algorithms = (
                _HS if jwk.key_type == "oct" else _public_key_algorithms(_public_of(jwk.key))
            )
            keys.append(_Key(jwk.key, algorithms, jwk.key_id))
    return keys


def _public_of(key: Any) -> Any:
    """A JWKS may hold private keys; verification only ever needs the public half."""
    return key.public_key() if hasattr(key, "public_key") else key


class TokenVerifier:
    """Bearer JWT -> Principal, or `Unauthenticated`."""

    def __init__(self, settings: TokenSettings, clock: Any = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._stamps = self._file_stamps()
        self._keys = load_keys(settings)  # a bad file stops the server at start-up
        self._checked = time.monotonic()
        self._options = {"require": ["exp", "sub"]}

    def _file_stamps(self) -> tuple[tuple[int, int], ...]:
        stamps = []
        for path in self._settings.files:
            try:
                st = path.stat()
                stamps.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamps.append((0, 0))
        return tuple(stamps)

    def _current_keys(self) -> list[_Key]:
        """The keys, re-read when a key file changed (a bad new file keeps the old keys)."""
        now = time.monotonic()
        if now - self._checked < KEY_RECHECK_S:
            return self._keys
        with self._lock:
            self._checked = now
            stamps = self._file_stamps()
            if stamps != self._stamps:
                try:
                    self._keys = load_keys(self._settings)
                    self._cache.clear()
                    log.info("verification keys re-read", extra={"keys": len(self._keys)})
                except KeyFileError as err:
                    log.error("key files changed but cannot be read", extra={"reason": str(err)})
                self._stamps = stamps
        return self._keys

    def verify(self, token: str) -> Principal:
        self._current_keys()  # a changed key file empties the cache before it is read
        now = self._clock()
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                if hit[1] + self._settings.leeway_seconds > now:
                    self._cache.move_to_end(token)
                    return hit[0]
                del self._cache[token]
        principal, exp = self._verify(token)
        with self._lock:
            self._cache[token] = (principal, exp)
            if len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        if len(token) > MAX_TOKEN_CHARS:
            raise Unauthenticated()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            log.debug("token refused: malformed")
            raise Unauthenticated() from None
        alg, kid = header.get("alg"), header.get("kid")
        s = self._settings
        for key in self._current_keys():
            if alg not in key.algorithms or (kid and key.kid and kid != key.kid):
                continue
            try:
                claims = jwt.decode(
                    token,
                    key.key,
                    algorithms=[alg],
                    options=self._options,
                    audience=s.audience or None,
                    issuer=s.issuer or None,
                    leeway=s.leeway_seconds,
                )
            except jwt.InvalidSignatureError:
                continue  # maybe the next key of this algorithm
            except jwt.PyJWTError as err:
                log.debug("token refused", extra={"reason": type(err).__name__})
                raise Unauthenticated() from None
            return self._principal(claims), float(claims["exp"])
        log.debug("token refused: no key verifies it", extra={"alg": str(alg)[:20]})
        raise Unauthenticated()

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        sub = claims.get("sub")
        tenant = claims.get(self._settings.tenant_claim)
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated()
        if tenant is not None and not (isinstance(tenant, str) and TENANT_NAME.match(tenant)):
            log.debug("token refused: tenant claim is not a safe name")
            raise Unauthenticated()
        return Principal(sub, tenant, scopes_of(claims))


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """OAuth's space-separated `scope` string, or a `scp` list (Azure AD and others)."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(s for s in scp if isinstance(s, str))
    if isinstance(scp, str):
        return frozenset(scp.split())
    return frozenset()


def parse_mtls_scopes(text: str) -> dict[str, frozenset[str]]:
    """'CN=svc-a:score,alerts;CN=svc-b:*' -> {"svc-a": {score, alerts}, "svc-b": {*}}."""
    out: dict[str, frozenset[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        subject, sep, scopes = part.partition(":")
        name = subject.strip()
        if not sep or not name.startswith("CN=") or len(name) == 3:
            raise ValueError(f"mtls_scopes {part!r} is not CN=NAME:scope,scope")
        out[name[3:]] = frozenset(filter(None, (s.strip() for s in scopes.split(","))))
    return out


class Authenticator:
    """A call's principal from its metadata: the bearer token when there is one, else the
    verified client certificate's subject CN when mTLS identity is on."""

    def __init__(
        self,
        verifier: TokenVerifier | None,
        mtls_scopes: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self._verifier = verifier
        self._mtls = None if mtls_scopes is None else dict(mtls_scopes)

    def authenticate(self, context: grpc.ServicerContext) -> Principal:
        for key, value in context.invocation_metadata() or ():
            if key == AUTHORIZATION:
                return self._bearer(value)
        if self._mtls is not None:
            return self._certificate(context)
        raise Unauthenticated()

    def _bearer(self, value: str | bytes) -> Principal:
        if self._verifier is None or not isinstance(value, str):
            raise Unauthenticated()
        if value[: len(BEARER)].lower() != BEARER:
            raise Unauthenticated()
        return self._verifier.verify(value[len(BEARER) :].strip())

    def _certificate(self, context: grpc.ServicerContext) -> Principal:
        """grpc puts the peer's CN in the auth context only for a certificate it verified."""
        names = context.auth_context().get("x509_common_name") or ()
        if not names:
            raise Unauthenticated()
        cn = names[0].decode("utf-8", "replace")
        assert self._mtls is not None
        return Principal(cn, None, self._mtls.get(cn, frozenset()))


def settings_from(
    hmac_secret_file: str,
    public_keys: str,
    jwks_file: str,
    *,
    issuer: str,
    audience: str,
    leeway_seconds: float,
    tenant_claim: str,
) -> TokenSettings | None:
    """TokenSettings from the configuration's text fields, or None when no key is configured."""
    pems: Sequence[Path] = tuple(Path(p.strip()) for p in public_keys.split(",") if p.strip())
    if not (hmac_secret_file or pems or jwks_file):
        return None
    return TokenSettings(
        hmac_secret_file=Path(hmac_secret_file) if hmac_secret_file else None,
        public_keys=tuple(pems),
        jwks_file=Path(jwks_file) if jwks_file else None,
        issuer=issuer,
        audience=audience,
        leeway_seconds=leeway_seconds,
        tenant_claim=tenant_claim,
    )
