"""A strong upstream login (SPID, CIE, eIDAS) coming back into a login flow."""

from __future__ import annotations

import time

from flask import request, url_for

from federation.base import UpstreamIdentity
from idp.accounts.identifiers import InvalidInput, canonical_fiscal_code
from idp.flow.mfa_steps import grant_second_factor
from idp.flow.state import FlowExpired
from idp.flow.steps import FlowContext
from idp.keys import same_text
from idp.ops.audit import record
from idp.web import browser_id, services


def upstream_fiscal_code(value: str) -> str:
    """The fiscal code an upstream identity carries (`TINIT-` prefix, any case) in its stored form;
    one that is no valid code compares equal to none."""
    try:
        return canonical_fiscal_code(value)
    except InvalidInput:
        return ""


def strong_login_returned(flow_id: str, identity: UpstreamIdentity) -> str:
    """Record the upstream login in the flow if it is the same person; returns where to send the browser."""
    svc = services()
    try:
        state = svc.flows.load(flow_id, browser_id())
    except FlowExpired:
        return url_for("flow.login")
    ctx = FlowContext(state, svc, remote_addr=request.remote_addr)
    if state.account_id is None and identity.fiscal_code:
        # SPID/CIE/eIDAS as the way in: the identity is linked to the account by its fiscal code.
        found = svc.accounts.find_by_fiscal_code(identity.fiscal_code)
        if found is None or found.status != "active":
            state.data["upstream_error"] = "upstream_unknown_person"
            svc.flows.save(state)
            return url_for("flow.login", flow=flow_id)
        state.account_id = found.id
        state.amr = []
        state.auth_time = int(time.time())
        svc.accounts.record_upstream_login(found.id)
    account = ctx.account
    same_person = (
        account is not None
        and account.fiscal_code is not None
        and identity.fiscal_code is not None
        and same_text(account.fiscal_code, upstream_fiscal_code(identity.fiscal_code))
    )
    with svc.db.session() as session:
        record(
            session,
            "login.upstream" if same_person else "login.upstream_mismatch",
            identity.subject,
            account.id if account else None,
            {"broker": identity.broker, "assertion_id": identity.assertion_id},
        )
    if not same_person:
        state.data["upstream_error"] = "upstream_other_person"
        svc.flows.save(state)
        return url_for("flow.login", flow=flow_id)
    grant_second_factor(ctx, identity.broker)
    state.data.pop("upstream_error", None)
    if state.data.pop("enable_upstream", False):
        svc.mfa.set_upstream_mfa(account.id, True, actor=account.username)
    svc.flows.save(state)
    return url_for("flow.login", flow=flow_id)
