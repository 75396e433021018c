"""The server's Ed25519 tree-head key: created on first start, kept in the data dir (mode 0600);
or one file every replica mounts (`--signing-key-file`), so heads signed by any replica verify
with one public key. `python -m server.integrity.signer PATH` creates such a file."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crm.merkle import tree_head_signing_input

KEY_FILE = "sth-ed25519.pem"
log = logging.getLogger(__name__)


class TreeHeadSigner:
    """Signs tree heads; the private key never leaves this object or its file."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @classmethod
    def load_or_create(cls, directory: Path) -> TreeHeadSigner:
        """Read `directory/KEY_FILE`, or create it atomically if this is the first start."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = directory / KEY_FILE
        if not path.exists():
            create_key_file(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("signing key %s had mode %o; tightening to 0600", path, mode)
            path.chmod(0o600)
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: Path) -> TreeHeadSigner:
        """The key in a PEM file made elsewhere (a secret mounted on every replica)."""
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(key)

    def sign(self, log_name: str, tree_size: int, timestamp_ms: int, root_hash: bytes) -> bytes:
        return self._key.sign(tree_head_signing_input(log_name, tree_size, timestamp_ms, root_hash))


def create_key_file(path: Path) -> bool:
    """Write a new key to a 0600 temp file, fsync, then hard-link it into place; False when
    the file already existed.

    The link fails if another process created the key first; then its key is the one used.
    A crash leaves at worst a stray temp file, never a half-written key.
    """
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False  # another process (a sibling worker) won the race; its key is used
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    log.info("created tree-head signing key %s", path)
    return True


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python -m server.integrity.signer KEY_FILE  (creates it, mode 0600)")
    target = Path(sys.argv[1])
    if not create_key_file(target):
        sys.exit(f"{target} exists; not replaced")
    print(TreeHeadSigner.from_file(target).public_key.hex())
