"""Flags and environment variables -> the server's typed configuration (server.config).

Every field of the config dataclass is a CLI flag (`--max-message-mb`) and an environment
variable (`CRM_MAX_MESSAGE_MB`); the flag wins over the variable, the variable over the default.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

ENV_PREFIX = "CRM_"
EPILOG = """tokens for trying authentication (server/security/mint.py):
  crm-server keys --out DIR [--alg HS256|ES256]
      write a signing key (0600): DIR/hmac.key, or DIR/es256-private.pem + es256-public.pem;
      serve with --auth-hmac-secret-file DIR/hmac.key or --auth-public-keys DIR/es256-public.pem
  crm-server token --key FILE --scopes 'score campaign:read' [--tenant acme] [--ttl 3600]
                   [--sub NAME] [--issuer ISS] [--audience AUD]
      print a signed JWT; send it as metadata 'authorization: Bearer <jwt>'"""
C = TypeVar("C")


def parse_config(cls: type[C], argv: Sequence[str] | None, env: Mapping[str, str]) -> C:
    """An instance of the frozen dataclass `cls`: one flag and one `CRM_<NAME>` variable per
    field (help and choices from the field's metadata); the flag wins over the variable."""
    hints = get_type_hints(cls)
    parser = argparse.ArgumentParser(
        prog="python -m server",
        description="crm-serving gRPC server. Each flag can also be set as CRM_<NAME>.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for f in dataclasses.fields(cls):
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=_converter(hints[f.name]),
            default=None,
            choices=f.metadata.get("choices"),
            help=f"{f.metadata['help']} (env {ENV_PREFIX}{f.name.upper()}, default {f.default})",
        )
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        cli = getattr(args, f.name)
        raw_env = env.get(ENV_PREFIX + f.name.upper())
        if cli is not None:
            values[f.name] = cli
        elif raw_env is not None:
            try:
                values[f.name] = _converter(hints[f.name])(raw_env)
            except ValueError:
                parser.error(f"{ENV_PREFIX}{f.name.upper()}={raw_env!r} is not a valid value")
    try:
        return cls(**values)
    except ValueError as err:
        parser.error(str(err))
        raise  # unreachable: parser.error exits


def _converter(hint: Any) -> Any:
    """Text -> value for a field type; one rule for flags and environment variables."""
    if hint is bool:
        return _parse_bool
    if hint == Path | None:
        return _optional_path
    return hint


def _optional_path(text: str) -> Path | None:
    """An empty value (`CRM_TLS_CERT=`) means unset, like leaving the flag out."""
    return Path(text) if text.strip() else None


def _parse_bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}
