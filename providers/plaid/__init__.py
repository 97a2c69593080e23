"""Plaid through ``plaid-python``: the only package that imports ``plaid``.

``client`` builds the SDK client, ``errors`` maps Plaid's failures once, and one module
per job holds the calls: ``holdings``, ``items`` (Items and their tokens), ``linking``
(Hosted Link) and ``health``. Every function takes the client as a parameter.
"""
