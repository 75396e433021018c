"""Checks that let a client trust nothing the integrity server says without proof.

Only crm.merkle (shared code) and `cryptography`, no server code: a tree head is trusted once its
Ed25519 signature verifies under a key the caller pinned, a leaf once its audit path leads to
that head's root, and a newer head once a consistency proof links it to an older trusted one.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from clients.integrity_types import ConsistencyProof, InclusionProof, TreeHead
from crm import merkle


class VerificationError(Exception):
    """A signature, proof or head that does not check out: the server cannot be trusted."""


def verify_tree_head(head: TreeHead, trusted_key: bytes | None = None) -> None:
    """Check a head's signature; with `trusted_key`, also that it is that key which signed.

    Without a trusted key the head's own key is used, which proves integrity but not origin:
    pin the key (trust on first use) to detect a different signer.
    """
    if trusted_key is not None and head.public_key != trusted_key:
        raise VerificationError(
            f"tree head signed by key {head.public_key.hex()}, expected {trusted_key.hex()}"
        )
    try:
        key = Ed25519PublicKey.from_public_bytes(head.public_key)
        message = merkle.tree_head_signing_input(
            head.log, head.tree_size, head.timestamp_ms, head.root_hash
        )
        key.verify(head.signature, message)
    except (InvalidSignature, ValueError) as err:
        raise VerificationError(f"bad tree head signature for log {head.log!r}: {err}") from None


def verify_inclusion(proof: InclusionProof, head: TreeHead, leaf_data: bytes | None = None) -> None:
    """Check that the proved leaf (and `leaf_data`, if given) is in the tree `head` signs."""
    if (proof.log, proof.tree_size, proof.root_hash) != (head.log, head.tree_size, head.root_hash):
        raise VerificationError(
            f"proof is for {proof.log!r} size {proof.tree_size}, head is {head.log!r} "
            f"size {head.tree_size} (or their roots differ)"
        )
    if leaf_data is not None and merkle.leaf_hash(leaf_data) != proof.leaf_hash:
        raise VerificationError(f"leaf {proof.leaf_index}: data does not match its leaf hash")
    if not merkle.verify_inclusion(
        proof.leaf_hash, proof.leaf_index, proof.tree_size, proof.audit_path, head.root_hash
    ):
        raise VerificationError(
            f"inclusion proof of leaf {proof.leaf_index} in size {proof.tree_size} fails"
        )


def verify_consistency(old: TreeHead, new: TreeHead, proof: ConsistencyProof) -> None:
    """Check that `new` extends `old`: the log was appended to, never rewritten.

    Only the proof's hashes are used, against the two trusted roots; the roots the server
    reports alongside serve to explain a failure.
    """
    if old.log != new.log:
        raise VerificationError(f"heads of different logs: {old.log!r} and {new.log!r}")
    if old.tree_size > new.tree_size:
        raise VerificationError(f"log shrank from {old.tree_size} to {new.tree_size} leaves")
    if (proof.first_tree_size, proof.second_tree_size) != (old.tree_size, new.tree_size):
        raise VerificationError(
            f"consistency proof is for sizes {proof.first_tree_size} -> "
            f"{proof.second_tree_size}, not {old.tree_size} -> {new.tree_size}"
        )
    if not merkle.verify_consistency(
        old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof.proof
    ):
        rewritten = (
            f"; the server now gives root {proof.first_root_hash.hex()} for size "
            f"{old.tree_size}, the trusted head has {old.root_hash.hex()}"
            if proof.first_root_hash != old.root_hash
            else ""
        )
        raise VerificationError(
            f"log {new.log!r} size {new.tree_size} is not an extension of the trusted size "
            f"{old.tree_size}{rewritten}"
        )
