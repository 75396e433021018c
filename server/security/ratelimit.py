"""Rate limits: token buckets per (tenant, scope) and per (caller, scope).

Configured per scope (`--rate-limits 'score=200/s:400,campaign:write=5/s:10'`: a rate per second,
or per minute with `/m`, and a burst). A call takes one token from its caller's bucket and, when
the caller has a tenant, one from the tenant's: one noisy caller cannot starve its tenant's other
callers beyond its own rate, and a tenant cannot exceed its rate by minting more callers. Both
buckets are checked before either is taken from, so a refused call costs nothing.

The buckets live in one bounded LRU (MAX_BUCKETS): a bucket evicted is full again when next
seen, which only ever errs towards letting a call through.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from server.errors import ResourceExhausted
from server.security.principal import Principal

MAX_BUCKETS = 10_000
_UNITS = {"s": 1.0, "m": 60.0}


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: float

    def describe(self) -> str:
        return f"{self.per_second:g} calls per second, burst {self.burst:g}"


def parse_rate_limits(text: str) -> dict[str, Rate]:
    """'score=200/s:400,campaign:write=5/s:10' -> {scope: Rate}. A scope name may contain ':',
    so each item splits at its '=' first."""
    out: dict[str, Rate] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        scope, sep, spec = item.partition("=")
        rate, _, burst = spec.partition(":")
        count, slash, unit = rate.partition("/")
        try:
            if not sep or not scope.strip() or not slash or unit not in _UNITS:
                raise ValueError
            per_second = float(count) / _UNITS[unit]
            depth = float(burst) if burst else max(1.0, per_second)
        except ValueError:
            raise ValueError(f"rate limit {item!r} is not SCOPE=N/s[:BURST]") from None
        if not (per_second > 0 and depth >= 1):
            raise ValueError(f"rate limit {item!r}: the rate must be > 0 and the burst >= 1")
        out[scope.strip()] = Rate(per_second, depth)
    return out


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp

    def wait(self, rate: Rate, now: float) -> float:
        """Refill to `now`; seconds until one token is there (0: one is there now)."""
        self.tokens = min(rate.burst, self.tokens + (now - self.stamp) * rate.per_second)
        self.stamp = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / rate.per_second


class RateLimiter:
    def __init__(
        self,
        rates: Mapping[str, Rate],
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        self._rates = dict(rates)
        self._clock = clock
        self._max = max_buckets
        self._lock = threading.Lock()
        self._buckets: OrderedDict[tuple[str, str, str], _Bucket] = OrderedDict()

    def limits(self, scope: str) -> bool:
        """Whether calls needing `scope` are rate-limited at all (bound once per method)."""
        return scope in self._rates

    def take(self, principal: Principal, scope: str) -> None:
        """One call of `principal` needing `scope`, or ResourceExhausted with QuotaFailure
        naming the bucket and RetryInfo saying when it has a token again."""
        rate = self._rates.get(scope)
        if rate is None:
            return
        keys = [("caller", principal.caller, scope)]
        if principal.tenant is not None:
            keys.insert(0, ("tenant", principal.tenant, scope))
        with self._lock:
            now = self._clock()
            buckets = [self._bucket(key, rate, now) for key in keys]
            for key, bucket in zip(keys, buckets, strict=True):
                wait = bucket.wait(rate, now)
                if wait > 0:
                    kind, name, _ = key
                    raise ResourceExhausted(
                        f"rate limit of {kind} for scope {scope!r} reached; retry later",
                        subject=f"{kind}:{name}/{scope}",
                        description=rate.describe(),
                        retry_after=wait,
                    )
            for bucket in buckets:
                bucket.tokens -= 1

    def _bucket(self, key: tuple[str, str, str], rate: Rate, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(rate.burst, now)
            if len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket
