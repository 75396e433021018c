"""`crm-server keys` and `crm-server token`: a local signing key and tokens signed with it, so
trying authentication takes a minute. For development and tests; production tokens come from
the organisation's identity provider, whose public keys the server is given.

    crm-server keys --out DIR [--alg HS256|ES256]
    crm-server token --key FILE --scopes 'score campaign:read' [--tenant acme] [--ttl 3600]
                     [--sub NAME] [--issuer ISS] [--audience AUD]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

COMMANDS = ("keys", "token")
HMAC_FILE = "hmac.key"
ES256_PRIVATE = "es256-private.pem"
ES256_PUBLIC = "es256-public.pem"
DEFAULT_SUB = "crm-dev"


def _write_private(path: Path, data: bytes) -> None:
    """Created 0600 from the start (never readable by others, not even for a moment); an
    existing key is never overwritten."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def write_keys(out: Path, alg: str) -> list[Path]:
    """The key files written for `alg` (HS256: a secret; ES256: a P-256 pair)."""
    out.mkdir(parents=True, exist_ok=True)
    if alg == "HS256":
        path = out / HMAC_FILE
        _write_private(path, secrets.token_urlsafe(48).encode() + b"\n")
        return [path]
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    paths = [out / ES256_PRIVATE, out / ES256_PUBLIC]
    for path, data in zip(paths, (private, public), strict=True):
        _write_private(path, data)
    return paths


def signing_key(path: Path) -> tuple[Any, str]:
    """(key, algorithm) from a key file: a PEM private key (EC P-256 -> ES256, RSA -> RS256)
    or else an HMAC secret (HS256)."""
    data = path.read_bytes()
    if not data.startswith(b"-----BEGIN"):
        return data.strip(), "HS256"
    key = serialization.load_pem_private_key(data, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key, "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    raise ValueError(f"{path}: an EC P-256 or RSA private key, or an HMAC secret")


def mint(
    key_file: Path,
    scopes: str,
    *,
    tenant: str = "",
    ttl: int = 3600,
    sub: str = DEFAULT_SUB,
    issuer: str = "",
    audience: str = "",
) -> str:
    key, alg = signing_key(key_file)
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "scope": scopes, "iat": now, "exp": now + ttl}
    if tenant:
        claims["tenant"] = tenant
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, key, algorithm=alg)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="crm-server", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="write a signing key (0600) into --out")
    keys.add_argument("--out", type=Path, required=True)
    keys.add_argument("--alg", choices=("HS256", "ES256"), default="HS256")
    token = commands.add_parser("token", help="print a JWT signed with --key")
    token.add_argument("--key", type=Path, required=True, help="hmac.key or a private PEM")
    token.add_argument("--scopes", required=True, help="space-separated, e.g. 'score admin'")
    token.add_argument("--tenant", default="")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--sub", default=DEFAULT_SUB, help="the caller")
    token.add_argument("--issuer", default="")
    token.add_argument("--audience", default="")
    args = parser.parse_args(argv)
    try:
        if args.command == "keys":
            for path in write_keys(args.out, args.alg):
                print(path)
            return 0
        print(
            mint(
                args.key,
                args.scopes,
                tenant=args.tenant,
                ttl=args.ttl,
                sub=args.sub,
                issuer=args.issuer,
                audience=args.audience,
            )
        )
        return 0
    except (OSError, ValueError) as err:
        print(f"crm-server {args.command}: {err}", file=sys.stderr)
        return 2
