"""Where each credential lives in the secret store: names, not values.

Plaid access tokens at ``plaid/access_token/<email>/<institution-slug>`` (one per
Item), the SnapTrade user secret at ``snaptrade/user_secret/<email>``. Names carry
the person's e-mail (not a credential) and are checked so that no value can change
a name's shape.
"""

from __future__ import annotations

import re

from core.errors import InvalidInput

# Name prefixes, not credentials (S105 mistakes "token"/"secret" in the names for passwords).
PLAID_TOKEN_PREFIX = "plaid/access_token/"  # noqa: S105
SNAPTRADE_USER_SECRET_PREFIX = "snaptrade/user_secret/"  # noqa: S105

_SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_EMAIL_RE = re.compile(r"[A-Za-z0-9_+=.-]+@[A-Za-z0-9_+=.-]+")


def plaid_token_name(user_email: str, institution_slug: str) -> str:
    """Name of the secret holding one Plaid Item's access token.

    One secret per (user, institution) so unlinking one institution schedules exactly one
    token for deletion and listing ``plaid/access_token/<email>/`` finds all of a user's Items.
    """
    return f"{PLAID_TOKEN_PREFIX}{_checked_email(user_email)}/{_checked_slug(institution_slug)}"


def plaid_tokens_prefix(user_email: str) -> str:
    """Listing prefix for all of one user's Plaid tokens.

    It ends in "/" so that listing ``a@x.co`` cannot also return ``a@x.com``'s tokens.
    """
    return f"{PLAID_TOKEN_PREFIX}{_checked_email(user_email)}/"


def snaptrade_user_secret_name(user_email: str) -> str:
    """Name of the secret holding a user's SnapTrade ``userSecret`` (one per user)."""
    return f"{SNAPTRADE_USER_SECRET_PREFIX}{_checked_email(user_email)}"


def _checked_email(user_email: str) -> str:
    """Reject e-mails that would change the name's shape or that Secrets Manager refuses.

    A "/" would add a path level (``a/b@x.com`` would list under another prefix), so it is the
    one character an e-mail can never carry here; the other restrictions are AWS's name rules.
    """
    if not isinstance(user_email, str) or not user_email:
        raise InvalidInput("user_email must be a non-empty string", field="user_email")
    if "/" in user_email:
        raise InvalidInput(
            "user_email must not contain '/': it separates the parts of a secret name",
            field="user_email",
        )
    if not _EMAIL_RE.fullmatch(user_email):
        raise InvalidInput(
            "user_email must look like local@domain and use only letters, digits and "
            "_ + = . - around a single '@'",
            field="user_email",
        )
    return user_email


def _checked_slug(institution_slug: str) -> str:
    """Institution slugs are lowercase words joined by hyphens, e.g. ``interactive-brokers``."""
    if not isinstance(institution_slug, str) or not _SLUG_RE.fullmatch(institution_slug):
        raise InvalidInput(
            "institution_slug must use only lowercase letters, digits and single hyphens "
            "between them (e.g. 'merrill-lynch')",
            field="institution_slug",
        )
    return institution_slug
