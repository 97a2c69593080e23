"""Switches that make the emulator misbehave on purpose, its call counters, and read-outs.

:class:`Controls` (``controls``) is the Python handle on one emulator; its parts
are the fault and latency switches (``rules``), the holds (``holds``) and the
call counters and request recorder (``recorder``).

Endpoint keys are ``"<provider> <path template>"``, for example
``"plaid /investments/holdings/get"`` or
``"snaptrade /accounts/{accountId}/positions/all"``; ``"*"`` means every endpoint.

Faults, latency, holds and counters belong to one emulator instance (memory only).
Connection switches (disabled, trading permission) change the shared state, so
every emulator process sharing the state file sees them; the read-outs
(``plaid_link_token``, ``snaptrade_user``, ...) return copies of that state.

A hold parks every request of an endpoint at the emulator until it is released,
so a test can know, rather than hope, that two operations overlap::

    with controls.hold("snaptrade /trade/{tradeId}") as hold:
        start_the_first_operation_in_a_thread()
        hold.wait_until_held(1)       # it is now in flight at the "broker"
        run_the_second_operation()    # certain to overlap the first
    # leaving the block releases the parked request
"""

# Re-exports only: the submodules import each other, never this package.
from sandbox.faults.controls import Controls
from sandbox.faults.holds import HOLD_LIMIT_SECONDS, Hold
from sandbox.faults.recorder import MASK, RECORDED_REQUESTS, RecordedRequest
from sandbox.faults.rules import ALL_ENDPOINTS, FAULTS_BY_PROVIDER, GENERIC_FAULTS, FaultRule

__all__ = [
    "ALL_ENDPOINTS",
    "FAULTS_BY_PROVIDER",
    "GENERIC_FAULTS",
    "HOLD_LIMIT_SECONDS",
    "MASK",
    "RECORDED_REQUESTS",
    "Controls",
    "FaultRule",
    "Hold",
    "RecordedRequest",
]
