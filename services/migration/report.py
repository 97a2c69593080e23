"""A migration run's report, and the checks on its arguments."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInput
from core.normalized import PROVIDERS
from core.untrusted import quoted_name

log = logging.getLogger(__name__)

SUPPORTED_ROUTES = (("plaid", "snaptrade"),)
INSTITUTION_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
MAX_SLUG_LENGTH = 100  # migration_runs.institution_slug


@dataclass
class MigrationReport:
    institution_slug: str
    institution: str
    source: str
    target: str
    execute: bool
    status: str = "running"
    steps: list[dict[str, Any]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None

    @property
    def named(self) -> str:
        """The institution as the run's sentences quote it: provider text (``quoted_name``)."""
        return quoted_name(self.institution)

    @property
    def ok(self) -> bool:
        return self.status in ("planned", "completed", "already_completed")

    def step(self, name: str, ok: bool, summary: str, **detail: Any) -> bool:
        self.steps.append({"step": name, "ok": ok, "summary": summary, **detail})
        log.info("migration %s %s: %s", self.institution_slug, name, summary)
        return ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "institution": self.institution,
            "institution_slug": self.institution_slug,
            "from": self.source,
            "to": self.target,
            "execute": self.execute,
            "status": self.status,
            "ok": self.ok,
            "steps": self.steps,
            **self.facts,
        }


def validate_migration(institution_slug: str, source: str, target: str, tolerance: float) -> None:
    if not isinstance(institution_slug, str) or not institution_slug.strip():
        raise InvalidInput("institution is required, e.g. interactive-brokers", field="institution")
    # The slug names the token secret and is stored with the run (at most 100 characters;
    # Postgres refuses longer values and NUL characters): check it before anything else.
    if len(institution_slug) > MAX_SLUG_LENGTH or not INSTITUTION_SLUG.fullmatch(institution_slug):
        shown = institution_slug if len(institution_slug) <= 60 else institution_slug[:60] + "..."
        raise InvalidInput(
            f"institution {shown!r} is not an institution slug: lowercase letters and digits "
            "joined by single hyphens, e.g. interactive-brokers",
            field="institution",
        )
    for name, value in (("from", source), ("to", target)):
        if value not in PROVIDERS:
            raise InvalidInput(
                f"--{name} {value!r} is not a provider: allowed values are {', '.join(PROVIDERS)}",
                field=name,
            )
    if (source, target) not in SUPPORTED_ROUTES:
        raise InvalidInput(
            f"moving from {source} to {target} is not supported: only plaid -> snaptrade",
            field="to",
        )
    if not (0 <= tolerance < 1):
        raise InvalidInput(
            f"tolerance {tolerance!r} is not valid: a relative tolerance from 0 to below 1",
            field="tolerance",
        )


def same_institution(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()
