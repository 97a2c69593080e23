"""Connections: the last known state of every Plaid Item and SnapTrade authorization, and
the way to the providers.

``registry`` keeps each connection's state (status, last error, last sync, the Plaid
item_id); ``provider_access`` holds one person's SDK clients and credentials from the
secret store; ``health`` checks connections without disturbing fragile ones and records
what it finds; ``overview`` is the connections page's view of all of them.

Guarantees: a passive health check makes no call that could change a connection; a state
a provider reports (ITEM_LOGIN_REQUIRED, a disabled connection) is recorded before the
error is raised.
"""

from services.connections.health import HealthService
from services.connections.overview import connections_overview
from services.connections.provider_access import ProviderAccess
from services.connections.registry import ConnectionRegistry, ConnectionState

__all__ = [
    "ConnectionRegistry",
    "ConnectionState",
    "HealthService",
    "ProviderAccess",
    "connections_overview",
]
