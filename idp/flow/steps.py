"""Login steps. A step says whether it is `needed` for a flow and handles its own form.

The flow is the ordered list `STEPS`; adding a step is adding a class (ARCHITECTURE.md, point 2).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from idp.accounts.identifiers import InvalidInput, check_text
from idp.accounts.passwords import PasswordRejected
from idp.accounts.service import LoginLookup
from idp.flow.state import FlowState
from idp.store.models import Account

ACR_SINGLE_FACTOR = "https://refeds.org/profile/sfa"
ACR_MFA = "https://refeds.org/profile/mfa"


@dataclass
class FlowContext:
    state: FlowState
    services: Any
    _account: Account | None = field(default=None, repr=False)
    # The browser's address, for the audit log.
    remote_addr: str | None = None
    # Set when rendering a step changed the flow state (e.g. a WebAuthn challenge), so it is saved.
    dirty: bool = False
    # The account lookup of the typed identifier and its failed-login count, when the caller has
    # read them already (`AccountService.authenticate`'s `looked_up`).
    looked_up: tuple[LoginLookup, str | None] | None = field(default=None, repr=False)

    def reload(self) -> None:
        self._account = None

    @property
    def account(self) -> Account | None:
        if self.state.account_id is None:
            return None
        if self._account is None or self._account.id != self.state.account_id:
            self._account = self.services.accounts.get(self.state.account_id)
        return self._account


@dataclass
class StepErrors:
    """Field -> error code, plus the HTTP status the page is answered with."""

    fields: dict[str, str]
    status: int = 400


@dataclass
class StepRedirect:
    """Leave the flow for a while (an upstream broker); it comes back to /login?flow=ID."""

    url: str


@dataclass
class StepAbort:
    """End the flow: the person must start again (e.g. too many wrong codes)."""

    code: str
    status: int = 400


class Step:
    name: ClassVar[str]
    template: ClassVar[str]

    def template_for(self, ctx: FlowContext) -> str:
        return self.template

    def needed(self, ctx: FlowContext) -> bool:
        raise NotImplementedError

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        return {}

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | None:
        raise NotImplementedError


def credential_errors(settings: Any, username: str, password: str) -> dict[str, str]:
    """Field -> message for a username and password that cannot be checked at all (empty, too
    long, control characters); empty when both can."""
    errors: dict[str, str] = {}
    for name, value, limit in (
        ("username", username, settings.login.max_identifier_length),
        ("password", password, settings.passwords.max_length),
    ):
        try:
            check_text(name, value, limit)
        except InvalidInput as exc:
            errors[name] = exc.message
    return errors


class PasswordStep(Step):
    """Local credentials: any identifier of the account (username, person code, e-mail, student ID)."""

    name = "password"
    template = "flow/login.html"

    def needed(self, ctx: FlowContext) -> bool:
        return ctx.state.account_id is None

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        return {
            "username": ctx.state.data.get("username") or ctx.state.request.login_hint or "",
            # Upstream brokers (SPID, CIE, eIDAS; eduGAIN with the federation) put their buttons here.
            "brokers": list(ctx.services.strong_brokers),
            "upstream_error": ctx.state.data.get("upstream_error"),
        }

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | None:
        username = form.get("username", "")
        password = form.get("password", "")
        errors = credential_errors(ctx.services.settings, username, password)
        if "username" not in errors:
            ctx.state.data["username"] = username.strip()
        if errors:
            return StepErrors(errors)
        outcome = ctx.services.accounts.authenticate(
            username, password, remote_addr=ctx.remote_addr, looked_up=ctx.looked_up
        )
        if outcome.status == "invalid":
            return StepErrors({"form": "invalid_credentials"}, 401)
        if outcome.status == "throttled":
            return StepErrors({"form": "throttled"}, 429)
        if outcome.status == "disabled":
            return StepErrors({"form": "account_disabled"}, 403)
        ctx.state.account_id = outcome.account.id
        ctx._account = outcome.account
        ctx.state.amr = ["pwd"]
        ctx.state.auth_time = int(time.time())
        ctx.state.remember = form.get("remember") == "on"
        ctx.state.data.pop("username", None)
        return None


class ChangePasswordStep(Step):
    """Required action: a temporary (helpdesk) or expired password must be changed before going on."""

    name = "change_password"
    template = "flow/change_password.html"

    def needed(self, ctx: FlowContext) -> bool:
        account = ctx.account
        if account is None:
            return False
        if account.password_must_change:
            return True
        expires = ctx.services.accounts.password_expires_at(account)
        return expires is not None and expires <= dt.datetime.now(dt.UTC)

    def context(self, ctx: FlowContext) -> dict[str, Any]:
        account = ctx.account
        return {"temporary": bool(account and account.password_must_change)}

    def submit(self, ctx: FlowContext, form: Mapping[str, str]) -> StepErrors | None:
        limit = ctx.services.settings.passwords.max_length
        new = form.get("new_password", "")
        confirm = form.get("confirm_password", "")
        try:
            check_text("new_password", new, limit)
            check_text("confirm_password", confirm, limit)
        except InvalidInput as exc:
            return StepErrors({exc.field: exc.message})
        if new != confirm:
            return StepErrors({"confirm_password": "mismatch"})
        try:
            ctx.services.accounts.change_password(ctx.state.account_id, new, actor=ctx.account.username)
        except PasswordRejected as exc:
            return StepErrors({"new_password": exc.reason})
        ctx.reload()  # the change cleared the must-change flag
        return None
