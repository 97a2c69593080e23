"""Provider text on the web: what a page prints and what a JSON answer carries is inert.

Names, descriptions and error texts come from the brokerages and aggregators, and may carry
markup, bidi overrides, zero-width or control characters (``core.untrusted``).

* Pages: the templates escape markup (autoescape); every value a template prints also goes
  through ``core.untrusted.shown_text`` (Jinja's ``finalize``), so no invisible, bidi or
  control character reaches a page (line breaks stay, for a block of ours to copy).
* JSON answers: ``<``, ``>`` and ``&`` are written as ``\\u003c`` ... (the same JSON to
  a parser), so a provider's ``<script>`` never appears as markup in any answer, even one a
  browser were to read as HTML; non-ASCII characters are escaped as they always were.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from markupsafe import Markup

from core.untrusted import shown_text

_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def shown(value: Any) -> Any:
    """A value as a template prints it: text without invisible, bidi or control characters
    (markup a template built on purpose, ``Markup``, is ours and stays as it is)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return shown_text(value)
    return value


class HtmlSafeJSONProvider(DefaultJSONProvider):
    """Flask's JSON, with the characters HTML gives a meaning to written as escapes."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return super().dumps(obj, **kwargs).translate(_HTML_SAFE)


def install_provider_text_rules(app: Flask) -> None:
    """Before any template is compiled: ``finalize`` is part of each compiled template."""
    json_provider = HtmlSafeJSONProvider(app)
    json_provider.sort_keys = getattr(app.json, "sort_keys", json_provider.sort_keys)
    json_provider.ensure_ascii = True
    app.json = json_provider
    app.jinja_env.finalize = shown
