"""Typed Python client for crm-serving: `from clients import CrmClient`."""

from clients.client import CrmClient
from clients.errors import CrmError

__all__ = ["CrmClient", "CrmError"]
