"""The emulated Plaid API (version 2020-09-14): the subset the project calls.

``api`` is what the server mounts; ``items`` and ``link`` hold the operations,
``render`` the JSON shapes, ``records`` the state look-ups, ``common`` what they
all share (location, error bodies, fault table).
"""
