"""Layer 0, the ground every other layer stands on: errors, the normalized schema,
redaction, the secret-store interface and secret names. Imports nothing of the product."""
