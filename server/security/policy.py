"""The security settings of one server, built once from its configuration: who may call
(authenticator), how often (rate limiter), what is written down (audit trail), and whether
reflection is open. The auth and audit stages of the interceptor read it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from server.config import ServerConfig
from server.security.audit import AuditTrail
from server.security.ratelimit import RateLimiter, parse_rate_limits
from server.security.tokens import Authenticator, TokenVerifier, parse_mtls_scopes, settings_from

log = logging.getLogger("server.auth")


@dataclass(frozen=True)
class SecurityPolicy:
    authenticator: Authenticator | None = None  # None: authentication off (development)
    limiter: RateLimiter | None = None
    audit: AuditTrail = field(default_factory=AuditTrail)
    open_reflection: bool = False

    @property
    def auth_required(self) -> bool:
        return self.authenticator is not None

    @classmethod
    def from_config(cls, config: ServerConfig) -> SecurityPolicy:
        """Raises ValueError (naming the file) when a configured key cannot be used."""
        settings = settings_from(
            config.auth_hmac_secret_file,
            config.auth_public_keys,
            config.auth_jwks_file,
            issuer=config.auth_issuer,
            audience=config.auth_audience,
            leeway_seconds=config.auth_leeway_seconds,
            tenant_claim=config.auth_tenant_claim,
        )
        verifier = None if settings is None else TokenVerifier(settings)
        mtls = parse_mtls_scopes(config.mtls_scopes) if config.auth_mtls_identity else None
        authenticator = None
        if verifier is not None or mtls is not None:
            authenticator = Authenticator(verifier, mtls)
        rates = parse_rate_limits(config.rate_limits)
        policy = cls(
            authenticator=authenticator,
            limiter=RateLimiter(rates) if rates else None,
            audit=AuditTrail(config.audit_log),
            open_reflection=config.open_reflection,
        )
        log.info(
            "authentication " + ("on" if policy.auth_required else "off"),
            extra={
                "key_files": [str(p) for p in settings.files] if settings else [],
                "mtls_identity": mtls is not None,
                "rate_limits": {s: r.describe() for s, r in rates.items()},
                "audit_log": config.audit_log or "logger crm.audit",
                "open_reflection": config.open_reflection,
            },
        )
        return policy
