"""TLS for the gRPC port and /metrics, from certificate files that may be rotated in place.

How rotation works. gRPC is given `grpc.dynamic_ssl_server_credentials` with a fetcher; gRPC
calls the fetcher before every new TLS handshake (each new client connection). The fetcher
stats the files (mtime, size, inode: three cheap syscalls, no read) and only when that stamp
changed re-reads and parses them, returning a new `ServerCertificateConfiguration`, which gRPC
uses from that handshake on; it returns None (keep the current one) otherwise. Connections
already open keep the certificate they were made with; there is no restart. /metrics over
HTTPS does the same per accepted connection with an `ssl.SSLContext` (`ReloadingSSLContext`).

A rotation caught half-written (a PEM that does not parse, a key that does not match the
certificate, a file missing for a moment) keeps the previous configuration serving and logs one
warning per distinct state of the files; once the writer finishes, the stamp changes again and
the next handshake picks the new files up. Replace the files atomically (write elsewhere, then
rename) and this window does not arise at all. Only a bad configuration at start-up is fatal.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from server.config import ServerConfig

log = logging.getLogger("server.tls")
T = TypeVar("T")
Stamp = tuple[tuple[int, int, int] | None, ...]


class TlsError(ValueError):
    """The certificate files cannot be used (unreadable, unparseable, key does not match)."""


@dataclass(frozen=True)
class Pem:
    """The bytes of one consistent set of files, checked to parse and to belong together."""

    cert_chain: bytes
    key: bytes
    client_ca: bytes | None


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None

    @classmethod
    def from_config(cls, config: ServerConfig) -> TlsFiles | None:
        if config.tls_cert is None or config.tls_key is None:
            return None
        return cls(config.tls_cert, config.tls_key, config.tls_client_ca)

    def stamp(self) -> Stamp:
        """(mtime_ns, size, inode) per file, None for a missing one: changes on any rewrite,
        including a rename over the file (new inode) with the same size and a coarse mtime."""
        stamps: list[tuple[int, int, int] | None] = []
        for path in (self.cert, self.key, self.client_ca):
            if path is None:
                continue
            try:
                st = os.stat(path)
            except OSError:
                stamps.append(None)
                continue
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def read(self) -> Pem:
        """Read and check the files; TlsError when they are not a usable set."""
        try:
            chain, key = self.cert.read_bytes(), self.key.read_bytes()
            ca = self.client_ca.read_bytes() if self.client_ca is not None else None
        except OSError as err:
            raise TlsError(f"cannot read: {err}") from None
        try:
            certs = x509.load_pem_x509_certificates(chain)
            private = serialization.load_pem_private_key(key, password=None)
            if ca is not None:
                x509.load_pem_x509_certificates(ca)
        except (ValueError, TypeError, UnsupportedAlgorithm) as err:
            raise TlsError(
                f"not a PEM certificate chain, unencrypted key, CA bundle: {err}"
            ) from None
        if _spki(private.public_key()) != _spki(certs[0].public_key()):
            raise TlsError(f"{self.key} is not the key of the first certificate in {self.cert}")
        return Pem(chain, key, ca)


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Watched(Generic[T]):
    """A value built from the files, rebuilt when their stamp changes; a failed rebuild keeps
    the old value. Safe to call from gRPC's and the HTTP server's threads at once."""

    def __init__(self, files: TlsFiles, build: Callable[[TlsFiles], T], what: str) -> None:
        self._files, self._build, self._what = files, build, what
        self._lock = threading.Lock()
        self._stamp = files.stamp()
        self._value = build(files)  # at start-up a bad file is fatal: TlsError propagates
        self._refused: Stamp | None = None

    def current(self) -> T:
        self.changed()
        return self._value

    def changed(self) -> T | None:
        """The new value when the files changed and rebuilt cleanly, else None."""
        stamp = self._files.stamp()
        with self._lock:
            if stamp in (self._stamp, self._refused):
                return None
            try:
                value = self._build(self._files)
            except (TlsError, ssl.SSLError, OSError) as err:
                self._refused = stamp  # one warning per state of the files
                log.warning(
                    "certificate files changed but cannot be used; keeping the previous ones",
                    extra={"what": self._what, "reason": str(err)},
                )
                return None
            # The stamp from before the read: a write racing the read changes it again, so
            # the next handshake re-reads.
            self._stamp, self._value, self._refused = stamp, value, None
        log.info("certificate files reloaded", extra={"what": self._what})
        return value


def _grpc_configuration(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    pem = files.read()
    return grpc.ssl_server_certificate_configuration(
        [(pem.key, pem.cert_chain)], root_certificates=pem.client_ca
    )


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """Credentials for `add_secure_port`, or None when TLS is off. With --tls-client-ca the
    handshake requires a client certificate signed by it (mTLS). TlsError on bad files."""
    files = TlsFiles.from_config(config)
    if files is None:
        return None
    watched = Watched(files, _grpc_configuration, "grpc")

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        try:
            return watched.changed()
        except Exception:  # never let a rotation problem break a handshake
            log.exception("certificate fetcher failed; keeping the previous certificate")
            return None

    return grpc.dynamic_ssl_server_credentials(
        watched.current(), fetch, require_client_authentication=files.client_ca is not None
    )


def _ssl_context(files: TlsFiles) -> ssl.SSLContext:
    files.read()  # the same checks and messages as the gRPC side
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context


class ReloadingSSLContext:
    """The server SSLContext for /metrics over HTTPS, re-made when the files change (checked
    per accepted connection: one stat per file). Client certificates are not asked for."""

    def __init__(self, config: ServerConfig) -> None:
        files = TlsFiles.from_config(config)
        if files is None:
            raise TlsError("metrics_tls needs tls_cert and tls_key")
        self._watched = Watched(TlsFiles(files.cert, files.key), _ssl_context, "metrics")

    def current(self) -> ssl.SSLContext:
        return self._watched.current()
