"""What every provider call shares: a timeout, bounded retries, and a line in the call ledger.

The SDK-specific parts (building clients, mapping the SDK's exceptions to
``core.errors``) live in the loader modules; this module never imports an SDK.

Answers are bounded: a body larger than ``MAX_ANSWER_BYTES`` (after decompression) is not
read to its end, let alone parsed; it is a :class:`MalformedResponse`, as an answer nested
too deeply for the SDK's parser is (mapped in each provider's ``errors``).

Retries: 429, 5xx and network failures (``ProviderError.retryable``) are retried
with exponential backoff and full jitter, at most ``RetryPolicy.attempts`` calls
in all. A 429's Retry-After is honoured; one longer than ``max_wait_seconds`` is
not waited for at all, because an MCP client gives up on a tool after ~60 s.
"""

from __future__ import annotations

import contextvars
import io
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.stop import stop_base

from core.errors import MalformedResponse, ProviderError, ProviderTimeout, ProviderUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Far above any real answer (a page of 500 transactions is well under 1 MB).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
_READ_CHUNK_BYTES = 256 * 1024
_DISPLAY_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}


class CallSink(Protocol):
    """Receives one record per HTTP request sent to a provider (the call ledger)."""

    def record(
        self,
        *,
        provider: str,
        endpoint: str,
        subject: str | None,
        status: str,
        http_status: int | None,
        duration_ms: float,
    ) -> None: ...


@dataclass
class RetryPolicy:
    attempts: int = 3
    base_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    max_wait_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep


_POLICY_ATTRIBUTE = "brokerage_hub_retry_policy"


def attach_retry_policy(client: Any, policy: RetryPolicy) -> None:
    """Every call made with ``client`` retries by ``policy``."""
    setattr(client, _POLICY_ATTRIBUTE, policy)


def retry_policy_of(client: Any) -> RetryPolicy:
    """The policy attached to ``client``, or the default one for a client made elsewhere."""
    policy = getattr(client, _POLICY_ATTRIBUTE, None)
    return policy if isinstance(policy, RetryPolicy) else RetryPolicy()


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.retryable


class stop_when(stop_base):  # noqa: N801 - reads like tenacity's own stop_* helpers
    def __init__(self, predicate: Callable[[RetryCallState], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._predicate(retry_state)


def _retry_after_longer_than(limit: float) -> Callable[[RetryCallState], bool]:
    def too_long(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return retry_after is not None and retry_after > limit

    return too_long


def _wait_seconds(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        ceiling = min(
            policy.max_backoff_seconds, policy.base_seconds * 2 ** (state.attempt_number - 1)
        )
        return random.uniform(ceiling / 2, ceiling)

    return wait


def retry_after_seconds(headers: Any) -> float | None:
    """The Retry-After header (seconds) of a provider's answer, read case-insensitively."""
    value = None
    for key in headers or {}:
        if str(key).lower() == "retry-after":
            value = headers[key]
    try:
        seconds = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP date, or garbage: fall back to our own backoff
    # "inf", "nan" and "1e999" read as floats too: no number of seconds to wait or to say.
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def map_network_error(
    exc: BaseException, *, provider: str, display: str, endpoint: str
) -> ProviderError | None:
    """urllib3 failures (both SDKs send through urllib3) as our errors; None for anything else."""
    import urllib3

    # urllib3's NewConnectionError (refused, no route, DNS) subclasses ConnectTimeoutError:
    # it is not slowness, and saying "in time" would send the person the wrong way.
    if isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
        exc, urllib3.exceptions.NewConnectionError
    ):
        return ProviderTimeout(
            f"{display} did not answer {endpoint} in time", provider=provider, endpoint=endpoint
        )
    if isinstance(exc, urllib3.exceptions.HTTPError):
        # urllib3's message holds the URL, and SnapTrade puts the userSecret in the query
        # string: name the failure's class only.
        return ProviderUnavailable(
            f"{display} could not be reached for {endpoint} ({type(exc).__name__})",
            provider=provider,
            endpoint=endpoint,
        )
    return None


def call_with_retry(fn: Callable[[], T], policy: RetryPolicy) -> T:
    """Call ``fn`` (which raises only ProviderError for provider failures) with retries."""
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts)
        | stop_when(_retry_after_longer_than(policy.max_wait_seconds)),
        retry=retry_if_exception(_is_retryable),
        wait=_wait_seconds(policy),
        sleep=policy.sleep,
        reraise=True,
        before_sleep=lambda state: log.info(
            "retrying %s after attempt %d", getattr(fn, "__name__", "call"), state.attempt_number
        ),
    )
    return retrying(fn)


# --- the call ledger hook -------------------------------------------------------------

# Plaid puts the access token in the body, not the path, so the loader names the
# Item (its institution slug) for the ledger through this context variable.
current_subject: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_subject", default=None
)


@contextmanager
def ledger_subject(subject: str | None) -> Iterator[None]:
    token = current_subject.set(subject)
    try:
        yield
    finally:
        current_subject.reset(token)


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def endpoint_of(url: str, base_path: str) -> tuple[str, str | None]:
    """('/accounts/{id}/balances', '<account uuid>') from a request URL; no query, no secrets."""
    path = urlsplit(url).path
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :] or "/"
    ids = _UUID.findall(path)
    return _UUID.sub("{id}", path), (ids[0] if ids else None)


def instrument_rest_client(
    rest_client: Any,
    *,
    provider: str,
    base_path: str,
    timeout_kwarg: str,
    timeout: tuple[float, float],
    sink: CallSink | None,
) -> None:
    """Give every request of an SDK's REST client a timeout, and record it in the ledger."""
    original = rest_client.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get(timeout_kwarg):
            kwargs[timeout_kwarg] = timeout
        endpoint, path_subject = endpoint_of(url, base_path)
        subject = current_subject.get() or path_subject
        started = time.perf_counter()
        status, http_status = "ok", None
        try:
            response = original(method, url, *args, **kwargs)
            # Plaid's REST client returns a response with .status; SnapTrade's
            # wraps the urllib3 response and raises its ApiException later.
            http_status = getattr(response, "status", None) or getattr(
                getattr(response, "http_response", None), "status", None
            )
            if http_status is not None and http_status >= 400:
                status = "http_error"
            return response
        except Exception as exc:
            http_status = getattr(exc, "status", None)
            status = "http_error" if http_status else type(exc).__name__
            raise
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            log.debug("%s %s %s -> %s in %.0f ms", provider, method, endpoint, status, duration_ms)
            if sink is not None:
                try:
                    sink.record(
                        provider=provider,
                        endpoint=f"{method} {endpoint}",
                        subject=subject,
                        status=status,
                        http_status=http_status,
                        duration_ms=duration_ms,
                    )
                except Exception:  # the ledger must never break a provider call
                    log.warning("could not record a %s call in the ledger", provider, exc_info=True)

    rest_client.request = request
    pool_manager = getattr(rest_client, "pool_manager", None)
    if pool_manager is not None:
        bound_answers(pool_manager, provider=provider, base_path=base_path)


def bound_answers(
    pool_manager: Any, *, provider: str, base_path: str, max_bytes: int = MAX_ANSWER_BYTES
) -> None:
    """Read every answer of ``pool_manager`` (urllib3, under both SDKs) at most ``max_bytes``
    far; a longer one is a MalformedResponse, its connection closed with the rest unread."""
    import urllib3

    original = pool_manager.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("preload_content") is False:
            return original(method, url, *args, **kwargs)  # a caller that streams reads itself
        response = original(method, url, *args, **{**kwargs, "preload_content": False})
        # Counted as read, not taken from Content-Length: a chunked answer has none.
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = response.read(_READ_CHUNK_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:
            response.close()
            response.release_conn()
            endpoint = endpoint_of(url, base_path)[0]
            raise MalformedResponse(
                f"{_DISPLAY_NAMES.get(provider, provider)} answered {endpoint} with more than "
                f"{max_bytes // 2**20} MB: not read any further",
                provider=provider,
                endpoint=endpoint,
            )
        response.release_conn()
        headers = urllib3.HTTPHeaderDict(response.headers)
        for name in ("Content-Length", "Content-Encoding", "Transfer-Encoding"):
            headers.discard(name)  # the body below is whole and already decoded
        return urllib3.HTTPResponse(
            body=io.BytesIO(b"".join(chunks)),
            headers=headers,
            status=response.status,
            version=response.version,
            reason=response.reason,
            preload_content=True,
            decode_content=False,
            enforce_content_length=False,
            request_method=method,
            request_url=url,
        )

    pool_manager.request = request
