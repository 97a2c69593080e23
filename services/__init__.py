"""Brokerage Hub's service layer.

Everything the entry points (Flask routes, MCP tools, CLI commands) need is
built in one place, :func:`services.composition.build_services`. This package
import stays light on purpose: the MCP server must answer its handshake before
SQLAlchemy, pandas or any provider SDK is imported.
"""
