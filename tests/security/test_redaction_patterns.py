"""Credentials are masked by their shape too, not only when they were registered.

A Plaid token that never passed through the secret store (pasted into an error by a
provider, logged by an SDK before any adapter saw it) and a credential written as
``name=value`` are masked by ``redact_text`` and by the logging filter. The registry is
empty in every test (``_fresh_redaction_registry``), so nothing here is masked by luck.
"""

from __future__ import annotations

import io
import logging

import pytest

from core.redaction import MASK, RedactingFilter, redact_text, redact_url

# Made-up tokens in Plaid's documented shapes; none is ever registered.
UNREGISTERED_TOKENS = [
    "access-sandbox-4d1a9b2c-7e3f-4a5b-8c6d-0e1f2a3b4c5d",
    "access-production-0f9e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f",
    "public-development-11aa22bb-33cc-44dd-55ee-66ff77aa88bb",
]


def logged(message: str, *args: object, exc: BaseException | None = None) -> str:
    """What one record says after the app's redacting filter, formatted as a handler would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.redaction_patterns")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        if exc is None:
            logger.warning(message, *args)
        else:
            try:
                raise exc
            except BaseException:
                logger.exception(message, *args)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


@pytest.mark.parametrize("token", UNREGISTERED_TOKENS)
def test_an_unregistered_plaid_token_is_masked_in_any_text(token: str) -> None:
    text = f"Plaid said: invalid access_token {token!r} for item abc; raw {token}"
    redacted = redact_text(text)
    assert token not in redacted
    assert redacted.count(MASK) >= 2
    assert "for item abc" in redacted  # the rest of the text stays readable


@pytest.mark.parametrize("token", UNREGISTERED_TOKENS)
def test_an_unregistered_plaid_token_is_masked_in_a_log_line_and_its_traceback(
    token: str,
) -> None:
    line = logged("holdings for %s failed", token)
    assert token not in line and MASK in line
    traced = logged("refresh failed", exc=RuntimeError(f"upstream echoed {token}"))
    assert "RuntimeError" in traced
    assert token not in traced and MASK in traced


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (
            "GET /accounts?userId=a%40b.c&userSecret=4f6b1c0e-made-up&clientId=X",
            "4f6b1c0e-made-up",
        ),
        ('{"secret": "a-made-up-plaid-secret-value", "id": "x"}', "a-made-up-plaid-secret-value"),
        ("consumerKey: made-up-consumer-key-value", "made-up-consumer-key-value"),
        ("password=hunter2-made-up", "hunter2-made-up"),
    ],
)
def test_a_credential_written_as_name_and_value_is_masked_unregistered(
    text: str, value: str
) -> None:
    assert value not in redact_text(text)
    assert value not in logged("request %s", text)


def test_a_url_keeps_its_harmless_query_fields_and_loses_the_credentials() -> None:
    url = "https://api.example/accounts?userId=someone&userSecret=made-up-secret&clientId=C1"
    redacted = redact_url(url)
    assert "made-up-secret" not in redacted
    assert "userId=someone" in redacted and "clientId=C1" in redacted
