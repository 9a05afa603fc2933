"""Rate limits of the API: moving windows per API key and per client address.

One limiter per API process (in memory): with `serve --workers N` each process counts
apart, so a client may reach N times a limit across them; docs/api.md says so. Over a
limit the request is refused with 429, a Retry-After, and nothing is read or written.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many, storage, strategies

from casebook.settings import Settings
from domain.errors import DomainError


class RateLimited(DomainError):
    """Too many requests in the window: wait Retry-After seconds, then retry."""

    rule = "requests-within-rate-limit"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthenticationFailuresLimited(RateLimited):
    """Too many requests without a valid key came from this address."""

    rule = "authentication-failures-limited"


class RateLimits:
    """The API's limits, read from settings; `hit` counts one request or refuses it."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
        self._limits: dict[str, list[RateLimitItem]] = {
            "writes": parse_many(settings.api_rate_limit_writes),
            "reads": parse_many(settings.api_rate_limit_reads),
            "address": parse_many(settings.api_rate_limit_per_address),
            "auth_failures": parse_many(settings.api_rate_limit_auth_failures),
            "verifications": parse_many(settings.api_rate_limit_verifications),
        }

    def hit(self, kind: str, who: str) -> None:
        """Count one request of `kind` by `who`; RateLimited when a limit is spent."""
        for item in self._limits[kind]:
            if not self._limiter.hit(item, kind, who):
                raise self._refusal(kind, item, who)

    def refuse_if_spent(self, kind: str, who: str) -> None:
        """RateLimited if `who` has no `kind` left, without counting this request."""
        for item in self._limits[kind]:
            if not self._limiter.test(item, kind, who):
                raise self._refusal(kind, item, who)

    def _refusal(self, kind: str, item: RateLimitItem, who: str) -> RateLimited:
        reset = self._limiter.get_window_stats(item, kind, who).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        if kind == "auth_failures":
            return AuthenticationFailuresLimited(
                f"Too many requests without a valid API key from this address "
                f"(limit {item}); retry after {wait} s.",
                wait,
            )
        return RateLimited(f"Rate limit for {kind} reached ({item}); retry after {wait} s.", wait)
