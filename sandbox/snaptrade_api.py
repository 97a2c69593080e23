"""The old import path of the SnapTrade emulator, kept for the tests that sign requests.

The emulator itself is the ``sandbox.snaptrade`` package.
"""

from sandbox.snaptrade.api import SnapTradeApi
from sandbox.snaptrade.auth import request_signature
from sandbox.snaptrade.common import SNAPTRADE_FAULTS

__all__ = ["SNAPTRADE_FAULTS", "SnapTradeApi", "request_signature"]
