"""Integrity log storage: RFC 6962 trees kept as stored perfect subtrees, signed tree heads."""
