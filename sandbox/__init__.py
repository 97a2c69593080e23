"""A local emulator of the Plaid and SnapTrade HTTP APIs (see ``sandbox.server``)."""
