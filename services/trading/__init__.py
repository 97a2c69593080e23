"""Trading through SnapTrade: order checks (``orders``, ``validation``), limits and valuation
(``limits``, ``valuation``, ``policy``), previews and whether one can go on (``previews``,
``unusable``), the audit store (``audit``), the orchestrating service (``service``) and what
the surfaces show (``views``).
"""
