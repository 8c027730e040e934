"""The password login, answered beneath the web framework when nothing but the password is at stake.

A login is two requests: GET /login (a flow, a form token, the page) and POST of the credentials
(argon2id, the SSO session, a redirect). The hash is meant to be nearly the whole cost of a login
(bench/login.py), yet after each 19 MiB argon2id run the processor caches hold little of Flask,
Werkzeug's routing and Jinja, and running them again cost about a third as much as the hash.

This layer answers the two requests of a plain password login itself, with the very functions
the login view uses: the same flow store, form tokens, step (`PasswordStep.submit`), step order
(`runner.current_step`) and finish (`finish.complete_login`). What it leaves out is only the
framework around them: routing, the request object, and the template, which it renders once per
language through the framework and then fills in.

- GET /login with no query string and no SSO cookie: a new local flow, the login page.
- POST /login?flow=ID with a well-formed form for a flow still at its password step, a valid
  browser cookie and no SSO cookie: the step runs here. The account is looked up first, so that
  the flow, the form token and the account's failed-login count are read in one round trip
  (`AccountService.authenticate`'s `looked_up`). A login that is complete answers 303 to
  where the flow returns; a login that needs another step (a temporary password, a second factor)
  answers 303 to /login?flow=ID, as the view does. A refusal (wrong password, unknown user,
  throttled, disabled) is handed to the view with the step's outcome, since it needs a page.

Every other request, and every request the checks here are not sure of (a form token that does
not verify or was used, an odd content type or length, a field sent twice, a percent-escape
that is not UTF-8, a username or password the step refuses as input, any query parameter...),
goes on untouched to the framework, which gives the page and message it always gives.
`tests/flows/test_login_fastpath.py` holds both paths to the same answers, request by request.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
import threading
from collections.abc import Callable
from typing import Any

from markupsafe import escape
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import dump_cookie, parse_accept_header
from werkzeug.sansio.http import parse_cookie
from werkzeug.urls import iri_to_uri
from werkzeug.utils import redirect

from idp.accounts.service import LoginLookup
from idp.flow.finish import complete_login
from idp.flow.request import LoginRequest
from idp.flow.runner import current_step
from idp.flow.state import FlowExpired, FlowState
from idp.flow.steps import FlowContext, PasswordStep, credential_errors
from idp.flow.views import SUBMITTED_BENEATH, render_step_page
from idp.mfa.policy import request_requires_mfa
from idp.sessions import SSO_COOKIE
from idp.store.db import DatabaseUnavailable
from idp.store.ephemeral import EphemeralUnavailable
from idp.web import (
    BROWSER_COOKIE,
    FORM_TOKEN_FIELD,
    LANG_COOKIE,
    FormTokenError,
    choose_locale,
    form_token_claim,
    new_form_token,
    secure_cookies,
    sign_browser_cookie,
    split_plain_form,
    verify_browser_cookie,
)

FLOW_QUERY = re.compile(r"flow=([A-Za-z0-9_-]{1,64})")
FORM_TYPE = "application/x-www-form-urlencoded"
# Varco at the root or under a plain path (/idp); a mount path needing escapes or decoding is the
# framework path's to interpret.
MOUNT_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*")
# A login form is three or four short fields; anything longer goes to the framework path.
MAX_BODY = 4096
FIELDS = frozenset({FORM_TOKEN_FIELD, "username", "password", "remember"})
# Marks rendered into the page in place of the flow id and the form token, then replaced.
FLOW_MARK = "VarcoFlowMark0000000000000000"
TOKEN_MARK = "VarcoTokenMark000000000000000"  # noqa: S105 (a placeholder, not a secret)
PASSWORD_STEP = PasswordStep()
log = logging.getLogger("varco.login")
HTML = "text/html; charset=utf-8"
# The page werkzeug's redirect() answers with, its target marked (filled in by `redirect_answer`).
LOCATION_MARK = "/VarcoLocationMark"
REDIRECT_PAGE = redirect(LOCATION_MARK, 303).get_data(as_text=True)


class Answer:
    """A whole response of this layer, as WSGI takes it: status, header list, body. (werkzeug's
    Response object builds and copies header collections on every answer, which costs more than
    the answer itself.)"""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


def read_cookies(environ: dict) -> dict[str, str]:
    """The request's cookies, the first of each name as MultiDict.get gives it, in a plain dict
    (MultiDict.get raises and catches a KeyError for every cookie the browser did not send).
    Parsed as request.cookies parses them, from the header's text as the server gave it (werkzeug's
    parse_cookie(environ) decodes it as UTF-8 first, and raises for a byte that is not)."""
    return parse_cookie(environ.get("HTTP_COOKIE")).to_dict()


def read_form(body: bytes) -> dict[str, str] | None:
    """The login form's fields, or None when the body is anything but plain: every field known,
    each at most once, `name=value`, valid percent-encoded UTF-8 (what the framework path would
    refuse or read differently is left to it)."""
    form = split_plain_form(body)
    if form is None or not form.keys() <= FIELDS or not {FORM_TOKEN_FIELD, "username", "password"} <= form.keys():
        return None
    return form


class LoginFastPath:
    """WSGI middleware around Varco's Flask application (`flask_app.wsgi_app`, inside ProxyFix)."""

    def __init__(self, app: Callable, flask_app: Any, security_headers: tuple[tuple[str, str], ...]) -> None:
        self.app = app
        self.flask_app = flask_app
        self.svc = flask_app.extensions["varco"]
        self.security_headers = security_headers
        self.pages: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO") == "/login" and MOUNT_PATH.fullmatch(environ.get("SCRIPT_NAME", "")):
            method = environ.get("REQUEST_METHOD")
            try:
                if method == "GET":
                    response = self.login_page(environ)
                elif method == "POST":
                    response = self.submit(environ)
                else:
                    response = None
            except (DatabaseUnavailable, EphemeralUnavailable):
                # The framework path answers the outage with its 503 page.
                response = None
            except Exception:
                # A fault of this layer's own, met before anything was used up (see `submit`):
                # logged, and the framework path answers the request.
                log.exception("login fast path failed on %s /login", method)
                response = None
            if response is not None:
                return response(environ, start_response)
        return self.app(environ, start_response)

    # --- GET /login -----------------------------------------------------------------------
    def login_page(self, environ: dict) -> Answer | None:
        if environ.get("QUERY_STRING"):
            return None
        cookies = read_cookies(environ)
        if SSO_COOKIE in cookies:
            return None  # a live session goes straight on; the view checks it
        svc = self.svc
        svc.db.ping(max_age=1.0)
        svc.ephemeral.ping(max_age=1.0)
        key = svc.keys.cookie_key
        browser = verify_browser_cookie(key, cookies.get(BROWSER_COOKIE, ""))
        new_browser = browser is None
        if browser is None:
            browser = secrets.token_urlsafe(24)
        accepted = parse_accept_header(environ.get("HTTP_ACCEPT_LANGUAGE"), LanguageAccept)
        locale = choose_locale(svc.settings.i18n, cookies.get(LANG_COOKIE), accepted)
        state = svc.flows.start_fresh(browser)
        token = new_form_token(svc, browser, f"flow:{state.id}", svc.flows.ttl)
        html = self.page(locale, environ.get("SCRIPT_NAME", ""))
        body = html.replace(FLOW_MARK, state.id).replace(TOKEN_MARK, token).encode()
        headers = [("Content-Type", HTML), ("Content-Length", str(len(body)))]
        if new_browser:
            headers.append(self.cookie(environ, BROWSER_COOKIE, sign_browser_cookie(key, browser)))
        return self.answer("200 OK", headers, body)

    def page(self, locale: str, script_name: str) -> str:
        """The login page of a new flow in `locale`, rendered by the framework with marks for
        the flow id and the form token."""
        key = f"{locale}|{script_name}"
        page = self.pages.get(key)
        if page is None:
            with self.lock, self.flask_app.test_request_context(
                "/login", base_url=f"http://localhost{script_name}", headers={"Cookie": f"{LANG_COOKIE}={locale}"}
            ):
                state = FlowState(id=FLOW_MARK, browser="", request=LoginRequest(), created=0)
                page, _ = render_step_page(FlowContext(state, self.svc), PASSWORD_STEP, TOKEN_MARK)
            self.pages[key] = page
        return page

    # --- POST /login?flow=ID ----------------------------------------------------------------
    def submit(self, environ: dict) -> Answer | None:
        found = FLOW_QUERY.fullmatch(environ.get("QUERY_STRING", ""))
        length = environ.get("CONTENT_LENGTH", "")
        if (
            found is None
            or environ.get("CONTENT_TYPE") != FORM_TYPE
            or "HTTP_TRANSFER_ENCODING" in environ
            or not (length.isascii() and length.isdigit() and 0 < int(length) <= MAX_BODY)
        ):
            return None
        body = environ["wsgi.input"].read(int(length))
        # Whoever answers, it reads the body as sent.
        environ["wsgi.input"] = io.BytesIO(body)
        form = read_form(body) if len(body) == int(length) else None
        if form is None:
            return None
        cookies = read_cookies(environ)
        svc = self.svc
        browser = verify_browser_cookie(svc.keys.cookie_key, cookies.get(BROWSER_COOKIE, ""))
        if browser is None or SSO_COOKIE in cookies:
            return None
        flow_id = found.group(1)
        try:
            claim = form_token_claim(svc, browser, f"flow:{flow_id}", form[FORM_TOKEN_FIELD])
        except FormTokenError:
            return None  # nothing was used up: the view finds the same
        if credential_errors(svc.settings, form["username"], form["password"]):
            return None  # the view answers with each field's message (nothing was used up)
        # The account is looked up first (a read, from a database that must answer anyway), so that
        # the flow, the form token and the account's failed-login count take one round trip.
        lookup = svc.accounts.find_for_login(form["username"])
        flow_key = svc.flows.key_of(flow_id)
        raw, claimed, failures = svc.ephemeral.batch([("get", flow_key), claim, ("get", lookup.throttle_key)])
        try:
            state = svc.flows.loaded(flow_id, browser, raw)
        except FlowExpired:
            state = None
        # The password is the flow's first step (runner.STEPS): it is the current one exactly while
        # no account is known. A request that wants more than a password is left to the view.
        if not claimed or state is None or state.account_id is not None or request_requires_mfa(state.request):
            if claimed:
                # Given back: the view uses the token up itself, or tells what is wrong with it.
                svc.ephemeral.delete(claim[1])
            return None  # (a token used before: the view finds the same)
        try:
            return self.run_password_step(environ, state, form, (lookup, failures))
        except Exception as exc:  # noqa: BLE001 - raised again by the view
            # The token is spent: the view must not call the form a replay. It answers the fault
            # as it answers one of its own (a store outage with its 503 page, anything else with 500).
            environ[SUBMITTED_BENEATH] = (state.id, exc)
            return None

    def run_password_step(
        self, environ: dict, state: FlowState, form: dict[str, str], looked_up: tuple[LoginLookup, str | None]
    ) -> Answer | None:
        svc = self.svc
        ctx = FlowContext(state, svc, remote_addr=environ.get("REMOTE_ADDR"), looked_up=looked_up)
        outcome = PASSWORD_STEP.submit(ctx, form)
        if outcome is not None:
            svc.flows.save(state)
            environ[SUBMITTED_BENEATH] = (state.id, outcome)
            return None
        if current_step(ctx) is not None:
            svc.flows.save(state)
            return self.redirect_answer(f"{environ.get('SCRIPT_NAME', '')}/login?flow={state.id}")
        target, session = complete_login(svc, state, None)
        max_age = svc.sessions.lifetime(True) if state.remember else None
        return self.redirect_answer(target, self.cookie(environ, SSO_COOKIE, session.id, max_age))

    # --- the answers, as the framework path gives them ------------------------------------------
    def redirect_answer(self, location: str, *cookies: tuple[str, str]) -> Answer:
        """303 to `location`, with werkzeug redirect()'s page, headers and header order."""
        body = REDIRECT_PAGE.replace(LOCATION_MARK, str(escape(location))).encode()
        headers = [("Content-Type", HTML), ("Content-Length", str(len(body))), ("Location", iri_to_uri(location))]
        return self.answer("303 SEE OTHER", [*headers, *cookies], body)

    def cookie(self, environ: dict, name: str, value: str, max_age: int | None = None) -> tuple[str, str]:
        secure = secure_cookies(self.svc.settings.sessions.cookie_secure, environ.get("wsgi.url_scheme", ""))
        return "Set-Cookie", dump_cookie(name, value, max_age=max_age, httponly=True, samesite="Lax", secure=secure)

    def answer(self, status: str, headers: list[tuple[str, str]], body: bytes) -> Answer:
        """With what the framework's after-request hooks add."""
        return Answer(status, [*headers, *self.security_headers, ("Cache-Control", "no-store")], body)
