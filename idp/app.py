"""`create_app(settings)`: wiring only."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, request
from flask_babel import Babel
from werkzeug.middleware.proxy_fix import ProxyFix

from federation.base import StrongLoginBroker
from idp.accounts.passwords import Passwords
from idp.accounts.service import AccountService
from idp.errors import register_error_pages
from idp.flow.state import FlowStore
from idp.keys import KeyRing
from idp.mail import Mailer
from idp.mfa.service import MfaService
from idp.mfa.sms import open_sms_gateway
from idp.saml.views import init_app as init_saml
from idp.sessions import SsoSessions
from idp.settings import Settings, load_settings
from idp.store.db import Database
from idp.store.ephemeral import Ephemeral, open_ephemeral
from idp.web import (
    WholeBody,
    attach_browser_cookie,
    install_request_translations,
    reject_undecodable_input,
    remember_locale,
    select_locale,
)

SECURITY_HEADERS = (
    # No form-action: browsers apply it to the redirects that follow a form, and a login form
    # ends in a redirect to the relying service's own origin.
    ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
NO_STORE_PATHS = ("/login", "/logout", "/account", "/mfa")


class VarcoFlask(Flask):
    """Varco has no async views or hooks: Flask's per-call coroutine check (inspect, five times a
    request) is skipped."""

    def ensure_sync(self, func):  # type: ignore[no-untyped-def]
        return func


@dataclass
class Services:
    """Everything a request needs, built once per process."""

    settings: Settings
    db: Database
    ephemeral: Ephemeral
    keys: KeyRing
    passwords: Passwords
    accounts: AccountService
    sessions: SsoSessions
    flows: FlowStore
    mfa: MfaService
    mailer: Mailer
    # Upstream brokers able to give a strong login (SPID, CIE, eIDAS); see federation/base.py.
    strong_brokers: list[StrongLoginBroker] = field(default_factory=list)


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url, settings.database.pool_size)
    ephemeral = open_ephemeral(settings.redis.url, settings.redis.prefix, db)
    keys = KeyRing.load(settings.keys_dir)
    passwords = Passwords(settings.passwords)
    sms_file = settings.home / settings.mfa.sms_file
    sms = open_sms_gateway(
        settings.mfa.sms_gateway_url, settings.mfa.sms_gateway_template, settings.mfa.sms_gateway_token, str(sms_file)
    )
    return Services(
        settings=settings,
        db=db,
        ephemeral=ephemeral,
        keys=keys,
        passwords=passwords,
        accounts=AccountService(settings, db, ephemeral, passwords),
        sessions=SsoSessions(ephemeral, settings.sessions),
        flows=FlowStore(ephemeral, settings.sessions.flow_ttl_minutes * 60, keys.derive(b"varco fresh flows")),
        mfa=MfaService(settings.mfa, db, ephemeral, keys, sms),
        mailer=Mailer(settings.smtp),
    )


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = VarcoFlask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.server.max_request_kib * 1024,
        MAX_FORM_MEMORY_SIZE=settings.server.max_request_kib * 1024,
        BABEL_DEFAULT_LOCALE=settings.i18n.default_locale,
        BABEL_TRANSLATION_DIRECTORIES="translations",
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["varco"] = build_services(settings)
    Babel(app, locale_selector=select_locale)
    install_request_translations(app)

    from idp.flow.views import bp as flow_bp
    from idp.mfa.views import bp as mfa_bp
    from idp.ops.health import bp as health_bp

    app.register_blueprint(flow_bp)
    app.register_blueprint(mfa_bp)
    services = app.extensions["varco"]
    if settings.federation.mock_brokers:
        from federation.mocks.strong import MockStrongBroker
        from federation.mocks.strong import bp as mock_strong_bp

        app.register_blueprint(mock_strong_bp)
        services.strong_brokers.extend(MockStrongBroker(name) for name in settings.federation.mock_brokers)
    from idp.flow.upstream import strong_login_returned

    app.extensions["varco_upstream_return"] = strong_login_returned
    app.register_blueprint(health_bp)
    # Next to the framework: the fast paths above leave a body without a Content-Length to it.
    app.wsgi_app = WholeBody(app.wsgi_app, settings.server.max_request_kib * 1024)  # type: ignore[method-assign]
    import idp.oidc

    idp.oidc.init_app(app)
    register_error_pages(app)
    init_saml(app)

    @app.context_processor
    def page_globals() -> dict:
        from flask_babel import get_locale

        def lang_url(code: str, flow_id: str | None = None) -> str:
            args = request.args.to_dict(flat=False)
            args["lang"] = [code]
            if flow_id:
                args["flow"] = [flow_id]
            return request.path + "?" + urlencode(args, doseq=True)

        return {
            "locale": str(get_locale()),
            "organization": settings.organization,
            "other_locales": settings.i18n.locales,
            "lang_url": lang_url,
        }

    app.before_request(reject_undecodable_input)

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        attach_browser_cookie(response)
        remember_locale(response)
        # A view may have set its own (e.g. a CSP with frame-src); only the missing ones are added.
        present = {name.lower() for name, _ in response.headers.items()}
        for name, value in SECURITY_HEADERS:
            if name.lower() not in present:
                response.headers.add(name, value)
        if request.path.startswith(NO_STORE_PATHS):
            response.headers["Cache-Control"] = "no-store"
        return response

    from idp.flow.fastpath import LoginFastPath

    app.wsgi_app = LoginFastPath(app.wsgi_app, app, SECURITY_HEADERS)  # type: ignore[method-assign]
    app.extensions["varco_login_fastpath"] = app.wsgi_app
    if settings.server.trusted_proxies:
        # Outermost, so every layer beneath sees the client's address and scheme.
        n = settings.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)  # type: ignore[method-assign]
    return app
