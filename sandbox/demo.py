"""Fixed identities of the emulator's demo user.

Every emulator instance serves the same demo user with the same ids, access
tokens and user secret, so a token stored by one process is valid against an
emulator started by another. These values are public test fixtures, not secrets.
"""

DEMO_USER_EMAIL = "demo@brokerage-hub.local"

# App credentials the emulator accepts.
PLAID_CLIENT_ID = "emulator-plaid-client-id"
PLAID_SECRET = "emulator-plaid-secret"
SNAPTRADE_CLIENT_ID = "EMULATOR-SNAPTRADE-CLIENT"
SNAPTRADE_CONSUMER_KEY = "emulator-snaptrade-consumer-key"

# Plaid: one Item per institution, keyed by the institution slug used in secret names.
PLAID_ACCESS_TOKENS = {
    "merrill-lynch": "access-sandbox-8c1f0b8e-6d0a-4a8e-9d43-merrill000001",
    "interactive-brokers": "access-sandbox-2f7d9a41-5b3c-4e0f-8a11-ibkr00000001",
}

# SnapTrade: the demo user is registered under its email as userId.
SNAPTRADE_USER_ID = DEMO_USER_EMAIL
SNAPTRADE_USER_SECRET = "5b0c7c1e-3f7a-4d2b-9a51-6f2e8d4c1a90"
