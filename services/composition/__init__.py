"""The composition root (``root``), the SDK clients it makes (``clients``) and the embedded
default's emulator (``embedded``). ``build_services()`` is the one way in."""

from services.composition.configured import configured_secret_store, configured_services
from services.composition.root import Services, build_services, system_clock

__all__ = [
    "Services",
    "build_services",
    "configured_secret_store",
    "configured_services",
    "system_clock",
]
