"""The emulator's outgoing webhooks: one queue per emulator, sent in order by a background
thread, with delivery fault switches and a record of every attempt.

Nothing is sent inside the request (or control call) that caused it: :meth:`Outbox.post`
only queues the message, so an app served by a single thread that causes a webhook to
itself cannot deadlock. A worker thread is started when a message is queued and ends when
the queue is empty (an emulator that sends nothing runs no thread). Each attempt has a
short timeout and is recorded whatever happens (``deliveries``); nothing is retried.

A message is signed by its provider's ``render`` callable on the worker thread, with the
emulator-clock time of the event it reports, so the signature says when the event
happened, not when the thread got to it.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sandbox.state import StateStore

DELIVERY_TIMEOUT_SECONDS = 3.0  # per attempt: a receiver that hangs delays the next delivery
LATE_SECONDS = 600  # the "late" fault signs a delivery as if it had been sent 10 minutes ago
KEPT_DELIVERIES = 1000  # the record keeps the latest attempts (the count keeps them all)
PROVIDERS = ("plaid", "snaptrade")
# late: signed 10 minutes in the past; duplicate: sent twice, same body and signature;
# reorder: held and sent after the next message; forged: a signature that does not verify;
# unsigned: no signature header at all.
WEBHOOK_FAULTS = ("late", "duplicate", "reorder", "forged", "unsigned")

# What a provider's signer returns for a message: the headers and the exact body bytes.
Rendered = tuple[dict[str, str], bytes]
Render = Callable[[frozenset[str]], Rendered]


def is_webhook_url(value: Any) -> bool:
    """Whether ``value`` is a URL the emulator can deliver to (http or https)."""
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to deliver a webhook, as the receiver saw it (headers and body bytes)."""

    provider: str  # "plaid" or "snaptrade"
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # the receiver's HTTP status; None when it gave no answer
    error: str | None  # why there was no answer (refused, timed out, not an http URL, ...)
    event_time: float  # emulator clock (unix seconds) of the event the webhook reports
    attempted_at: float  # wall clock (unix seconds) when the attempt ended
    faults: tuple[str, ...]  # the delivery faults applied to this message

    def payload(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "url": self.url,
            "headers": self.headers,
            "body": self.body.decode("utf-8", "replace"),
            "status": self.status,
            "error": self.error,
            "event_time": self.event_time,
            "attempted_at": self.attempted_at,
            "faults": list(self.faults),
        }


@dataclass
class _Envelope:
    provider: str
    url: str
    event_time: float
    render: Render
    faults: frozenset[str]


@dataclass
class _FaultSwitch:
    kind: str
    remaining: int
    provider: str | None


class Outbox:
    """The webhook queue, fault switches and delivery record of one emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attempted = threading.Condition(self._lock)
        self._queue: deque[_Envelope] = deque()
        self._held: list[_Envelope] = []  # "reorder": waiting for the next message
        self._faults: list[_FaultSwitch] = []
        self._deliveries: deque[WebhookDelivery] = deque(maxlen=KEPT_DELIVERIES)
        self._attempts = 0
        self._worker: threading.Thread | None = None

    # --- sending -----------------------------------------------------------------------

    def post(self, provider: str, url: str, event_time: float, render: Render) -> None:
        """Queue a message for ``url``; the worker signs it (``render``) and sends it."""
        with self._lock:
            envelope = _Envelope(provider, url, event_time, render, self._take_faults(provider))
            if "reorder" in envelope.faults:
                self._held.append(envelope)
                return
            self._queue.append(envelope)
            self._queue.extend(self._held)  # a held message goes after the one that follows
            self._held.clear()
            self._start_worker_locked()

    def _start_worker_locked(self) -> None:
        if self._worker is None and self._queue:
            self._worker = threading.Thread(
                target=self._run, name="provider-emulator:webhooks", daemon=True
            )
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._worker = None
                    return
                envelope = self._queue.popleft()
            self._deliver(envelope)

    def _deliver(self, envelope: _Envelope) -> None:
        try:
            headers, body = envelope.render(envelope.faults)
        except Exception as exc:  # a signing failure is recorded, never kills the worker
            self._record(envelope, {}, b"", None, f"not signed: {type(exc).__name__}: {exc}")
            return
        for _ in range(2 if "duplicate" in envelope.faults else 1):
            status, error = self._send(envelope.url, headers, body)
            self._record(envelope, headers, body, status, error)

    def _send(
        self, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int | None, str | None]:
        """One POST, straight to the URL's host: header names exactly as given (urllib would
        rewrite "Plaid-Verification" as "Plaid-verification"), no proxy, no redirect
        followed (a 3xx is the receiver's answer)."""
        try:
            parts = urlsplit(url)
            if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
                return None, f"not an http(s) URL: {url[:200]!r}"
            connection_class = (
                http.client.HTTPSConnection
                if parts.scheme.lower() == "https"
                else http.client.HTTPConnection
            )
            connection = connection_class(
                parts.hostname, parts.port, timeout=DELIVERY_TIMEOUT_SECONDS
            )
        except ValueError as exc:  # a port that is not a number, ...
            return None, f"not a usable URL: {exc}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", target, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read(65536)
            return int(answer.status), None
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    def _record(
        self,
        envelope: _Envelope,
        headers: dict[str, str],
        body: bytes,
        status: int | None,
        error: str | None,
    ) -> None:
        delivery = WebhookDelivery(
            provider=envelope.provider,
            url=envelope.url,
            headers=dict(headers),
            body=body,
            status=status,
            error=error,
            event_time=envelope.event_time,
            attempted_at=time.time(),
            faults=tuple(sorted(envelope.faults)),
        )
        with self._attempted:
            self._deliveries.append(delivery)
            self._attempts += 1
            self._attempted.notify_all()

    # --- faults ------------------------------------------------------------------------

    def add_fault(self, kind: str, times: int = 1, provider: str | None = None) -> None:
        """Apply delivery fault ``kind`` to the next ``times`` messages (of ``provider``)."""
        if kind not in WEBHOOK_FAULTS:
            raise ValueError(f"unknown webhook fault {kind!r}; known: {list(WEBHOOK_FAULTS)}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be a whole number >= 1, not {times!r}")
        if provider is not None and provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; known: {list(PROVIDERS)}")
        with self._lock:
            self._faults.append(_FaultSwitch(kind, times, provider))

    def _take_faults(self, provider: str) -> frozenset[str]:
        taken: set[str] = set()
        for switch in self._faults:
            if switch.kind not in taken and switch.provider in (None, provider):
                switch.remaining -= 1
                taken.add(switch.kind)
        self._faults = [s for s in self._faults if s.remaining > 0]
        return frozenset(taken)

    def clear_faults(self) -> None:
        """Drop every delivery fault; a message held by "reorder" is sent now."""
        with self._lock:
            self._faults.clear()
            self._queue.extend(self._held)
            self._held.clear()
            self._start_worker_locked()

    # --- the record ----------------------------------------------------------------------

    def deliveries(self, provider: str | None = None) -> list[WebhookDelivery]:
        """Every attempt so far (the latest KEPT_DELIVERIES), oldest first."""
        with self._lock:
            return [d for d in self._deliveries if provider in (None, d.provider)]

    def attempts(self) -> int:
        with self._lock:
            return self._attempts

    def pending(self) -> int:
        """Messages queued or held by "reorder", not attempted yet."""
        with self._lock:
            return len(self._queue) + len(self._held)

    def wait_for(self, count: int, timeout: float) -> list[WebhookDelivery]:
        """Block until ``count`` attempts have been made; TimeoutError after ``timeout`` s."""
        with self._attempted:
            if not self._attempted.wait_for(lambda: self._attempts >= count, timeout):
                raise TimeoutError(
                    f"{self._attempts} of {count} webhook deliveries attempted after "
                    f"{timeout} s ({len(self._queue) + len(self._held)} still queued or held)"
                )
            return list(self._deliveries)

    def forget(self) -> None:
        """Forget the attempts made so far (the count starts again at 0)."""
        with self._lock:
            self._deliveries.clear()
            self._attempts = 0


# One outbox per emulator: its Plaid API, SnapTrade API and controls each look it up by
# the emulator's StateStore (each emulator has its own), so they share one queue.
_OUTBOXES: weakref.WeakKeyDictionary[StateStore, Outbox] = weakref.WeakKeyDictionary()
_OUTBOXES_LOCK = threading.Lock()


def outbox_for(store: StateStore) -> Outbox:
    """The outbox of the emulator that owns ``store`` (made on first use)."""
    with _OUTBOXES_LOCK:
        outbox = _OUTBOXES.get(store)
        if outbox is None:
            outbox = _OUTBOXES[store] = Outbox()
        return outbox
