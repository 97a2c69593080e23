"""Every page says which environment each provider is in (a line under the header).

``emulator`` is the local stand-in with made-up holdings, so the line says "not real
money" whenever a provider is on it; ``disabled`` means that provider is never called.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

PROVIDER_NAMES = {"plaid": "Plaid", "snaptrade": "SnapTrade"}
MEANINGS = {
    "emulator": "made-up demo data, not real money",
    "sandbox": "Plaid's test data",
    "production": "real accounts",
    "disabled": "switched off, never called",
}


def environment_banner() -> dict[str, Any]:
    """What the banner shows: each provider's environment, and whether any is made up."""
    services = current_app.extensions.get("services")
    if services is None:
        return {"environment_banner": None}
    envs = services.settings.provider_envs
    return {
        "environment_banner": {
            "providers": [
                {
                    "provider": provider,
                    "name": PROVIDER_NAMES.get(provider, provider),
                    "environment": env,
                    "meaning": MEANINGS.get(env, ""),
                }
                for provider, env in envs.items()
            ],
            "not_real_money": "emulator" in envs.values(),
        }
    }


def install_environment_banner(app: Flask) -> None:
    app.context_processor(environment_banner)
