"""The rules trading runs under, from the settings: one object the trade service is built with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from services.trading.orders import SNAPTRADE_TRADE_LIFETIME
from services.trading.valuation import ValueRules

if TYPE_CHECKING:
    from settings import Settings

# Who may confirm an order: a person, on one of these.
CONFIRMED_ON = ("web", "cli", "mcp-elicitation", "emulator-demo")


@dataclass(frozen=True)
class TradingPolicy:
    trading_enabled: bool = False
    value_rules: ValueRules = field(
        default_factory=lambda: ValueRules(
            max_order_value=10_000.0, market_buffer_percent=5.0, far_limit_percent=10.0
        )
    )
    max_daily_order_value: float = 10_000.0
    # The currency MAX_DAILY_ORDER_VALUE is counted in (BASE_CURRENCY).
    base_currency: str = "USD"
    max_order_quantity: float = 100_000.0
    preview_ttl_seconds: int = 120
    # Only ever true with the emulator (settings refuse it otherwise): demos without a
    # person at hand.
    skip_confirmation: bool = False
    # SNAPTRADE_ENV=production: orders reach a real brokerage.
    real_brokerage: bool = False
    # Where the person confirms an order in a browser ("" when the web app has no address).
    public_base_url: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> TradingPolicy:
        return cls(
            trading_enabled=settings.trading_enabled,
            value_rules=ValueRules(
                max_order_value=settings.max_order_value,
                market_buffer_percent=settings.market_order_buffer_percent,
                far_limit_percent=settings.far_limit_percent,
            ),
            max_daily_order_value=settings.max_daily_order_value,
            base_currency=settings.base_currency,
            max_order_quantity=settings.max_order_quantity,
            preview_ttl_seconds=settings.preview_ttl_seconds,
            skip_confirmation=settings.skip_order_confirmation,
            real_brokerage=settings.snaptrade_env == "production",
            public_base_url=settings.public_base_url,
        )

    @property
    def preview_lifetime(self) -> timedelta:
        # SnapTrade's trade id lives 5 minutes; a preview never outlives it.
        return min(SNAPTRADE_TRADE_LIFETIME, timedelta(seconds=max(1, self.preview_ttl_seconds)))

    def trades_page(self, preview_id: str) -> str | None:
        return f"{self.public_base_url}/trades/{preview_id}" if self.public_base_url else None

    def describe(self) -> dict[str, object]:
        """What every trade answer says about where orders go."""
        return {
            "trading_enabled": self.trading_enabled,
            "real_brokerage": self.real_brokerage,
            "orders_go_to": "a real brokerage (SnapTrade production)"
            if self.real_brokerage
            else "the SnapTrade emulator (no real money)",
        }
