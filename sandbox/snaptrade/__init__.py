"""The emulated SnapTrade API: the subset the project calls (paths at the root, as in the SDK).

``api`` is what the server mounts; ``auth`` checks signatures and user
credentials; ``accounts``, ``trading`` and ``connections`` hold the operations;
``render`` the JSON shapes, ``access`` who owns what and what a connection may
do, ``common`` what they all share (location, error bodies, fault table).
"""
