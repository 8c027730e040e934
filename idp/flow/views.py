"""Login, logout and the account page: the browser side of the flow."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from idp.accounts.identifiers import CONTROL_CHARACTERS
from idp.flow.finish import complete_login
from idp.flow.messages import message
from idp.flow.request import LoginRequest
from idp.flow.runner import current_step
from idp.flow.state import FlowExpired
from idp.flow.steps import FlowContext, StepAbort, StepErrors, StepRedirect
from idp.sessions import SSO_COOKIE, current_sso_session
from idp.web import (
    FormTokenError,
    browser_id,
    consume_form_token,
    issue_form_token,
    safe_return_path,
    services,
    set_cookie,
)

bp = Blueprint("flow", __name__)
# The WSGI environ key under which the login fast path hands over a form it has already submitted
# (flow id, step outcome); the environ is the server's, so a client cannot set it.
SUBMITTED_BENEATH = "varco.login.submitted"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int] | str:
    svc = services()
    flow_id = request.args.get("flow")
    # Fail early: no one should type a password into a page that cannot check it.
    svc.db.ping(max_age=1.0)
    svc.ephemeral.ping(max_age=1.0)
    if flow_id is None:
        if request.method == "POST":
            return expired_page()
        return start_local_flow()
    try:
        state = svc.flows.load(flow_id, browser_id())
    except FlowExpired as exc:
        return expired_page("replayed" if exc.finished and request.method == "POST" else "flow_expired")
    ctx = FlowContext(state, svc, remote_addr=request.remote_addr)
    step = current_step(ctx)
    if step is not None and request.method == "POST":
        submitted = request.environ.get(SUBMITTED_BENEATH)
        if submitted is not None and submitted[0] == state.id:
            # The login fast path took the form token and ran the step; only the page is left to render
            # (or the store fault it met, answered as the view answers one).
            outcome = submitted[1]
            if isinstance(outcome, Exception):
                raise outcome
        else:
            try:
                consume_form_token(f"flow:{state.id}")
            except FormTokenError as exc:
                if exc.reason in ("replayed", "form_expired"):
                    return expired_page(exc.reason)
                return render_step(ctx, step, StepErrors({"form": exc.reason}))
            outcome = step.submit(ctx, request.form)
        if isinstance(outcome, StepAbort):
            svc.flows.abandon(state)
            return expired_page(outcome.code, outcome.status)
        errors = outcome if isinstance(outcome, StepErrors) else None
        step = current_step(ctx) if not errors else step
        if errors or step is not None:
            svc.flows.save(state)
        if isinstance(outcome, StepRedirect):
            return redirect(outcome.url, 303)
        if errors:
            return render_step(ctx, step, errors)
        if step is not None:
            return redirect(url_for(".login", flow=state.id), 303)
    if step is None:
        return finish(ctx)
    return render_step(ctx, step)


def start_local_flow() -> Response | tuple[str, int]:
    return_to = safe_return_path(request.args.get("next"))
    if current_sso_session() is not None:
        return redirect(return_to, 303)
    hint = request.args.get("login_hint", "")[:256] or None
    if hint is not None and CONTROL_CHARACTERS.search(hint):
        hint = None  # only a prefill: one the form itself would refuse is left out
    login_request = LoginRequest(return_to=return_to, login_hint=hint)
    if login_request == LoginRequest():
        state = services().flows.start_fresh(browser_id())
    else:
        state = services().flows.start(login_request, browser_id())
    # Rendered at once (no redirect): the form posts to /login?flow=<id>.
    ctx = FlowContext(state, services(), remote_addr=request.remote_addr)
    return render_step(ctx, current_step(ctx))


def render_step(ctx: FlowContext, step, errors: StepErrors | None = None) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    token = issue_form_token(f"flow:{ctx.state.id}", services().flows.ttl)
    return render_step_page(ctx, step, token, errors)


def render_step_page(ctx: FlowContext, step, token: str, errors: StepErrors | None = None) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    field_errors = {name: message(code) for name, code in (errors.fields if errors else {}).items()}
    # A 200 "error" is a notice (e.g. "code sent"), not a problem.
    notice = field_errors.pop("form") if errors and errors.status == 200 else None
    values = step.context(ctx)
    if ctx.dirty:
        services().flows.save(ctx.state)
    html = render_template(
        step.template_for(ctx),
        flow=ctx.state,
        csrf_token=token,
        errors=field_errors,
        notice=notice,
        request_info=ctx.state.request,
        **values,
    )
    return html, (errors.status if errors else 200)


def finish(ctx: FlowContext) -> Response:
    svc = services()
    target, session = complete_login(svc, ctx.state, request.cookies.get(SSO_COOKIE))
    response = redirect(target, 303)
    set_cookie(response, SSO_COOKIE, session.id, max_age=svc.sessions.lifetime(True) if ctx.state.remember else None)
    return response


def expired_page(code: str = "flow_expired", status: int = 400) -> tuple[str, int]:
    return render_template("message.html", title_code="expired", text=message(code), restart=True), status


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response | tuple[str, int] | str:
    session = current_sso_session()
    scope = f"logout:{browser_id()}"
    if request.method == "POST":
        try:
            consume_form_token(scope)
        except FormTokenError as exc:
            return render_template("message.html", title_code="error", text=message(exc.reason), restart=False), 400
        end_sso_session(request.cookies.get(SSO_COOKIE))
        response = Response(render_template("message.html", title_code="logged_out", text=None, restart=True))
        response.delete_cookie(SSO_COOKIE, path="/")
        return response
    if session is None:
        return render_template("message.html", title_code="not_logged_in", text=None, restart=True)
    return render_template("logout.html", csrf_token=issue_form_token(scope, 900))


def end_sso_session(sid: str | None) -> None:
    """End the SSO session everywhere: each frontend's logout hook notifies its relying services."""
    from flask import current_app

    session = services().sessions.get(sid)
    participants = services().sessions.end(sid)
    if session is not None:
        for hook in current_app.extensions.get("varco_logout_hooks", []):
            hook(session, participants)


@bp.route("/account")
def account() -> Response | str:
    svc = services()
    session = current_sso_session()
    if session is None:
        return redirect(url_for(".login", next="/account"), 303)
    account = svc.accounts.get(session.account_id)
    if account is None or account.status != "active":
        svc.sessions.end(session.id)
        return redirect(url_for(".login", next="/account"), 303)
    return render_template(
        "account.html", account=account, session=session, password_expires=svc.accounts.password_expires_at(account)
    )


@bp.route("/")
def index() -> Response:
    return redirect(url_for(".account"), 303)
