"""The production secret store: AWS Secrets Manager through boto3 (the only boto3 user)."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from core.errors import (
    BrokerageHubError,
    ConfigError,
    InvalidInput,
    SecretAlreadyExists,
    SecretNotFound,
    SecretScheduledForDeletion,
    SecretStoreError,
)
from core.redaction import register_secret
from core.secret_store import (
    DEFAULT_RECOVERY_DAYS,
    Clock,
    SecretDescription,
    SecretStore,
    as_utc,
    checked_name,
    checked_prefix,
    checked_recovery_days,
    checked_value,
    scheduled_message,
    utc_now,
)

logger = logging.getLogger(__name__)


@functools.cache
def _botocore_exceptions() -> tuple[type[Exception], type[Exception]]:
    """(ClientError, BotoCoreError), imported on first use: the MCP server must be able to
    answer its handshake before any AWS SDK module is loaded."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError


def _map_client_error(exc: Exception, *, operation: str, name: str) -> BrokerageHubError:
    """Translate one botocore ``ClientError`` into the project's error; the only place that does.

    Only the AWS error *code* is repeated. AWS's message text is left in the chained exception:
    validation messages can quote request parameters, and a parameter may be the secret value.
    """
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "Unknown"))
    if code == "ResourceNotFoundException":
        return SecretNotFound(f"no secret named {name!r}")
    if code == "ResourceExistsException":
        return SecretAlreadyExists(f"a secret named {name!r} already exists")
    if code == "InvalidRequestException":
        # For the calls this store makes (get/put value, delete), AWS documents this as "the
        # secret is scheduled for deletion".
        return SecretScheduledForDeletion(scheduled_message(name))
    if code in ("InvalidParameterException", "ValidationException"):
        return InvalidInput(
            f"Secrets Manager rejected the {operation} request for {name!r} ({code})"
        )
    return SecretStoreError(f"Secrets Manager {operation} failed for {name!r} ({code})")


class AwsSecretStore(SecretStore):
    """Secrets in AWS Secrets Manager (one region).

    Every boto3 call goes through :meth:`_call` (or :meth:`_list`), which maps botocore errors
    exactly once. ``page_size`` exists so tests can exercise pagination with a few secrets.
    """

    def __init__(
        self,
        region_name: str,
        client: Any | None = None,
        clock: Clock | None = None,
        *,
        page_size: int = 100,
    ) -> None:
        if not 1 <= page_size <= 100:
            raise ConfigError("page_size must be from 1 to 100 (the Secrets Manager maximum)")
        self._region_name = region_name
        self._clock: Clock = clock or utc_now
        self._page_size = page_size
        if client is None:
            import boto3

            client = boto3.client("secretsmanager", region_name=region_name)
        self._client = client

    def __repr__(self) -> str:
        return f"{type(self).__name__}(region_name={self._region_name!r})"

    # -- public API

    def put(self, name: str, value: str) -> None:
        checked_name(name)
        checked_value(value)
        register_secret(value)  # a value written here is a credential: mask it from now on
        try:
            self._call("create_secret", name, Name=name, SecretString=value)
            logger.info("secret created: %s", name)
            return
        except SecretAlreadyExists:
            pass
        # AWS refuses put_secret_value on a scheduled secret, but moto (and therefore our tests)
        # accepts it, so check explicitly rather than rely on the service to refuse.
        if self._describe(name).get("DeletedDate") is not None:
            raise SecretScheduledForDeletion(scheduled_message(name))
        self._call("put_secret_value", name, SecretId=name, SecretString=value)
        logger.info("secret updated: %s", name)

    def get(self, name: str) -> str:
        checked_name(name)
        response = self._call("get_secret_value", name, SecretId=name)
        value = response.get("SecretString")
        if value is None:
            raise SecretStoreError(f"secret {name!r} holds binary data, not a text value")
        register_secret(value)
        return str(value)

    def list_names(self, prefix: str) -> list[str]:
        checked_prefix(prefix)
        return sorted(
            entry["Name"]
            for entry in self._list(prefix, include_planned_deletion=False)
            if entry.get("DeletedDate") is None
        )

    def schedule_deletion(self, name: str, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> datetime:
        checked_name(name)
        checked_recovery_days(recovery_days)
        # ForceDeleteWithoutRecovery is never sent: the recovery window is the safety net.
        response = self._call(
            "delete_secret", name, SecretId=name, RecoveryWindowInDays=recovery_days
        )
        deletion_date = response.get("DeletionDate")
        deletion_at = (
            as_utc(deletion_date)
            if isinstance(deletion_date, datetime)
            else as_utc(self._clock()) + timedelta(days=recovery_days)
        )
        logger.info("secret scheduled for deletion at %s: %s", deletion_at.isoformat(), name)
        return deletion_at

    def restore(self, name: str) -> None:
        checked_name(name)
        self._call("restore_secret", name, SecretId=name)
        logger.info("secret restored (or was live): %s", name)

    def exists(self, name: str) -> bool:
        checked_name(name)
        try:
            response = self._describe(name)
        except SecretNotFound:
            return False
        return response.get("DeletedDate") is None

    def describe(self, name: str) -> SecretDescription:
        checked_name(name)
        response = self._describe(name)
        deleted_date = response.get("DeletedDate")
        return {
            "name": str(response.get("Name", name)),
            "scheduled_deletion_at": as_utc(deleted_date) if deleted_date else None,
        }

    def list_scheduled(self, prefix: str) -> list[str]:
        checked_prefix(prefix)
        return sorted(
            entry["Name"]
            for entry in self._list(prefix, include_planned_deletion=True)
            if entry.get("DeletedDate") is not None
        )

    # -- internals

    def _describe(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("describe_secret", name, SecretId=name)
        return result

    def _call(self, operation: str, name: str, **params: Any) -> dict[str, Any]:
        client_error, botocore_error = _botocore_exceptions()
        try:
            result: dict[str, Any] = getattr(self._client, operation)(**params)
        except client_error as exc:
            raise _map_client_error(exc, operation=operation, name=name) from exc
        except botocore_error as exc:
            # Only the class name: some botocore messages quote parameter values.
            raise SecretStoreError(
                f"Secrets Manager {operation} failed for {name!r} ({type(exc).__name__})"
            ) from exc
        return result

    def _list(self, prefix: str, *, include_planned_deletion: bool) -> list[dict[str, Any]]:
        """All entries whose name starts with ``prefix``, across every page.

        The server-side ``name`` filter narrows the listing; ``startswith`` makes it exact
        whatever the service's matching rules turn out to be.
        """
        client_error, botocore_error = _botocore_exceptions()
        params: dict[str, Any] = {
            "IncludePlannedDeletion": include_planned_deletion,
            "PaginationConfig": {"PageSize": self._page_size},
        }
        if prefix:
            params["Filters"] = [{"Key": "name", "Values": [prefix]}]
        entries: list[dict[str, Any]] = []
        try:
            for page in self._client.get_paginator("list_secrets").paginate(**params):
                entries.extend(
                    entry
                    for entry in page.get("SecretList", [])
                    if str(entry.get("Name", "")).startswith(prefix)
                )
        except client_error as exc:
            raise _map_client_error(exc, operation="list_secrets", name=prefix) from exc
        except botocore_error as exc:
            raise SecretStoreError(
                f"Secrets Manager list_secrets failed for prefix {prefix!r} ({type(exc).__name__})"
            ) from exc
        return entries
