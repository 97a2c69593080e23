"""Moving an institution from Plaid to SnapTrade without losing data or leaving a billed Item.

Steps (each printed, each recorded in the run's report; the first failed gate stops):

1. GATE     SnapTrade's connection to the brokerage is enabled and returns data.
2. VERIFY   Holdings fetched fresh from both providers describe the same positions.
3. DRY RUN  Exactly one Plaid token secret matches the institution.
4. (without ``execute``: stop here and say what would happen, with the monthly saving)
5. EXECUTE  Remove the Plaid Item, then schedule its secret for deletion (7-day window).
6. RESYNC   Refresh the remaining Plaid Items' rows.
7. VERIFY   The institution is only under SnapTrade, the others only under Plaid, the
            remaining tokens are listed, and the totals equal the pre-migration totals
            with the institution counted once.

A run is stored before anything irreversible happens, so a run interrupted after
step 5 is completed by running the same command again; a run after success says
so and changes nothing. ``plan`` runs steps 1-4 only.

``report`` holds a run's report and argument checks, ``runs`` the stored runs, ``service``
the steps.

Guarantees: a dry run by default; one active run per institution across workers; nothing
irreversible before the run is stored, so a run interrupted anywhere completes when run
again.
"""

from services.migration.report import validate_migration
from services.migration.runs import MigrationInProgress, MigrationRuns
from services.migration.service import MigrationService

__all__ = [
    "MigrationInProgress",
    "MigrationRuns",
    "MigrationService",
    "validate_migration",
]
