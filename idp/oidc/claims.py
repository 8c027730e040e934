"""Subject identifiers and the claims each scope releases (OIDC Core 5.1, 5.4, 8)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from idp.oidc.config import SCOPE_CLAIMS

# eduPerson affiliations per population (eduPerson 201602, eduPersonAffiliation).
AFFILIATIONS = {
    "student": ("student", "member"),
    "staff": ("staff", "employee", "member"),
    "guest": ("affiliate",),
    "service": (),
}


class SubjectIds:
    """`sub` is the account id, or for pairwise clients a keyed hash per sector (OIDC Core 8.1)."""

    def __init__(self, key: bytes) -> None:
        self.key = key

    def sub(self, account_id: str, client: Any) -> str:
        if client.subject_type != "pairwise":
            return account_id
        message = f"{client.sector}|{account_id}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()


def released_claims(account: Any, scope: str, client: Any, organization_scope: str) -> dict[str, Any]:
    """The claims the granted scopes allow for this client; `fiscal_number` only when it is allowed."""
    scopes = set(scope.split())
    wanted: set[str] = set()
    for name in scopes:
        wanted.update(SCOPE_CLAIMS.get(name, ()))
    if not client.allow_fiscal_number:
        wanted.discard("fiscal_number")
    affiliations = AFFILIATIONS.get(account.population, ())
    values: dict[str, Any] = {
        "name": account.display_name,
        "given_name": account.given_name,
        "family_name": account.family_name,
        "preferred_username": account.username,
        "email": account.email,
        "email_verified": True,  # institutional addresses are assigned by the university
        "eduperson_affiliation": list(affiliations),
        "eduperson_scoped_affiliation": [f"{a}@{organization_scope}" for a in affiliations],
        "eduperson_principal_name": f"{account.username}@{organization_scope}",
        "schac_home_organization": organization_scope,
        "person_code": account.person_code,
        "student_id": account.student_id,
        "fiscal_number": account.fiscal_code,
    }
    return {name: values[name] for name in sorted(wanted) if name in values and values[name] not in (None, "")}
