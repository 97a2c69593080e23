"""Where ``make run`` listens: ``python -m cli.run_address`` prints ``--host H --port P``.

PUBLIC_BASE_URL's host and port when it is a loopback ``http://`` URL, so that setting it
is all a second local instance needs (``PUBLIC_BASE_URL=http://127.0.0.1:5001 make run``),
and the address every provider sends the person back to is the one being served. Any other
PUBLIC_BASE_URL (https, a public name) is reached through a proxy or a real server: ``make
run`` then keeps to 127.0.0.1:5000. Read with the app's own settings (the environment, then
``.env``), without building the app.
"""

from __future__ import annotations

import ipaddress
import sys
from urllib.parse import urlsplit

from core.errors import ConfigError
from settings import load_settings

DEFAULT_ADDRESS = ("127.0.0.1", 5000)


def run_address(public_base_url: str) -> tuple[str, int]:
    """The host and port to listen on for ``public_base_url``."""
    parts = urlsplit(public_base_url.strip())
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return DEFAULT_ADDRESS
    if parts.scheme != "http" or not host:
        return DEFAULT_ADDRESS
    if host == "localhost":
        host = "127.0.0.1"  # what browsers reach for localhost, whatever /etc/hosts says first
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return DEFAULT_ADDRESS
    return host, port or 80


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        # The same one line the app prints; `flask run` would stop on it too.
        print(f"brokerage-hub: {exc.message}", file=sys.stderr)
        return 2
    host, port = run_address(settings.public_base_url)
    print(f"--host {host} --port {port}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
