"""Demo relying services for `varco demo`: a learning platform that signs in with OpenID Connect
(authorization code + PKCE, through Authlib's client) and an exam portal that demands 2FA.

They run beside the demo instance on http://localhost:<port+1>, a different host name from Varco's
127.0.0.1, so the browser keeps their cookies apart as it would for a real service.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template_string, session, url_for

from idp.oidc.clients import NewClient

SERVICES = {
    "lms": {"client_id": "demo-lms", "name": "Demo learning platform", "require_mfa": False},
    "exams": {"client_id": "demo-exams", "name": "Demo exam portal (2FA required)", "require_mfa": True},
}

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Demo services</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto}
pre{background:#f4f4f4;padding:1rem}</style>
</head><body><h1>Demo services</h1>
<p>Two relying services of the demo university, signing in through Varco.</p>
{% for key, service in services.items() %}
<h2>{{ service.name }}</h2>
{% if users.get(key) %}<p>Signed in. ID token claims:</p><pre>{{ users[key] }}</pre>
<p><a href="{{ url_for('logout', key=key) }}">Sign out (everywhere)</a></p>
{% else %}<p><a href="{{ url_for('login', key=key) }}">Sign in with Varco</a></p>{% endif %}
{% endfor %}</body></html>"""


def register_demo_clients(registry, base_url: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Register the demo services as OIDC clients; returns their generated secrets."""
    secrets_by_key = {}
    for key, service in SERVICES.items():
        _, secret = registry.add(
            NewClient(
                client_id=service["client_id"],
                name=service["name"],
                redirect_uris=(f"{base_url}/callback/{key}",),
                post_logout_redirect_uris=(f"{base_url}/",),
                first_party=True,
                require_mfa=service["require_mfa"],
            ),
            source="demo",
        )
        secrets_by_key[key] = secret
    return secrets_by_key


def create_demo_services(issuer: str, base_url: str, client_secrets: dict[str, str]) -> Flask:
    app = Flask("varco_demo_services")
    app.secret_key = secrets.token_bytes(32)
    app.config["SESSION_COOKIE_NAME"] = "demo_services"
    oauth = OAuth(app)
    for key, service in SERVICES.items():
        oauth.register(
            key,
            client_id=service["client_id"],
            client_secret=client_secrets[key],
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
        )

    @app.route("/")
    def home():  # type: ignore[no-untyped-def]
        return render_template_string(PAGE, services=SERVICES, users=session.get("users", {}))

    @app.route("/login/<key>")
    def login(key: str):  # type: ignore[no-untyped-def]
        client = oauth.create_client(key) if key in SERVICES else None
        if client is None:
            return redirect(url_for("home"))
        return client.authorize_redirect(f"{base_url}/callback/{key}")

    @app.route("/callback/<key>")
    def callback(key: str):  # type: ignore[no-untyped-def]
        client = oauth.create_client(key) if key in SERVICES else None
        if client is None:
            return redirect(url_for("home"))
        token = client.authorize_access_token()
        users = dict(session.get("users", {}))
        users[key] = "\n".join(f"{name}: {value}" for name, value in sorted(token["userinfo"].items()))
        session["users"] = users
        session[f"id_token_{key}"] = token["id_token"]
        return redirect(url_for("home"))

    @app.route("/logout/<key>")
    def logout(key: str):  # type: ignore[no-untyped-def]
        hint = session.get(f"id_token_{key}", "")
        session.clear()
        client = oauth.create_client(key) if key in SERVICES else None
        if client is None or not hint:
            return redirect(url_for("home"))
        end_session = client.load_server_metadata()["end_session_endpoint"]
        query = urlencode({"id_token_hint": hint, "post_logout_redirect_uri": f"{base_url}/"})
        return redirect(f"{end_session}?{query}")

    return app
