"""The OpenID Connect provider (issue 4): Authlib's server with Varco's grants, checks and pages."""

from __future__ import annotations

from typing import Any

from idp.oidc import models  # noqa: F401  (registers the OIDC tables on Base.metadata)


def init_app(app: Any) -> None:
    """Build the provider, load `config/clients/*.toml` and register the OIDC blueprints."""
    from idp.oidc.authorize import bp as authorize_bp
    from idp.oidc.consent import bp as consent_bp
    from idp.oidc.device import bp as device_bp
    from idp.oidc.endpoints import API_PATHS, http_error
    from idp.oidc.endpoints import bp as api_bp
    from idp.oidc.logout import bp as logout_bp
    from idp.oidc.provider import OpenIDProvider

    services = app.extensions["varco"]
    op = OpenIDProvider(services)
    app.extensions["varco_oidc"] = op
    clients_dir = services.settings.home / "config" / "clients"
    if clients_dir.is_dir():
        op.clients.load_directory(clients_dir)
    app.extensions["varco_api_errors"] = (API_PATHS, http_error)
    for bp in (api_bp, authorize_bp, consent_bp, device_bp, logout_bp):
        app.register_blueprint(bp)
    app.extensions.setdefault("varco_logout_hooks", []).append(op.backchannel.session_ended)
    from idp.app import SECURITY_HEADERS
    from idp.oidc.fastpath import ClientCredentialsFastPath
    from idp.oidc.provider import PATHS

    app.wsgi_app = ClientCredentialsFastPath(app.wsgi_app, op, PATHS["token"], SECURITY_HEADERS)
