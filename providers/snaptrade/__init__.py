"""SnapTrade through ``snaptrade-python-sdk``: the only package that imports ``snaptrade_client``.

``client`` builds the SDK client and wraps every call (retries, error mapping,
redaction of the user secret), ``errors`` maps SnapTrade's failures once, and one
module per job holds the calls: ``accounts``, ``holdings``, ``connections``,
``health`` and ``broker`` (orders). Every function takes the client as a parameter.

The SnapTrade user id is the person's email; the user secret lives in the secret
store at ``snaptrade/user_secret/<email>`` and is never logged.
"""
