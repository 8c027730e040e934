"""Who the assertion is about, as the login flow hands it over (from its AuthnResult)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamlSubject:
    """The authenticated user, from the flow's AuthnResult.

    ``attributes`` are keyed by friendly name (see attributes.ATTRIBUTES); ``acr`` is the
    AuthnContextClassRef the flow achieved; ``auth_time`` is epoch seconds.
    """

    account_id: str
    username: str
    attributes: dict[str, list[str]]
    amr: list[str]
    acr: str
    auth_time: int
    session_index: str
