"""Layer 1, the adapters: the only modules that import a provider SDK (plaid, snaptrade_client,
boto3). Calls go in, the project's own plain types come out, and every foreign error is
mapped once to ``core.errors``."""
