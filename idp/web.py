"""Request-edge helpers shared by every page: the browser cookie, form tokens, safe redirects, locale."""

from __future__ import annotations

import hmac
import io
import secrets
import time
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, Response, current_app, g, request
from flask_babel import get_locale, get_translations
from werkzeug.datastructures import LanguageAccept
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from idp.keys import same_text
from idp.store.ephemeral import Op

BROWSER_COOKIE = "varco_browser"
LANG_COOKIE = "varco_lang"
FORM_TOKEN_FIELD = "csrf_token"  # noqa: S105 (a field name, not a secret)


class FormTokenError(Exception):
    """The form's token is missing, forged or already used; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # missing | invalid | form_expired | replayed


def services():  # type: ignore[no-untyped-def]
    return current_app.extensions["varco"]


def secure_cookies(mode: str, scheme: str) -> bool:
    """Whether cookies carry the Secure flag: `mode` always, never, or auto (when served over https)."""
    return mode == "always" or (mode == "auto" and scheme == "https")


def cookie_secure() -> bool:
    return secure_cookies(services().settings.sessions.cookie_secure, request.scheme)


def set_cookie(response: Response, name: str, value: str, max_age: int | None = None, httponly: bool = True) -> None:
    response.set_cookie(
        name, value, max_age=max_age, httponly=httponly, samesite="Lax", secure=cookie_secure(), path="/"
    )


def browser_id() -> str:
    """A random id bound to this browser by a signed cookie; flows and form tokens are tied to it."""
    if "browser_id" in g:
        return g.browser_id
    value = verify_browser_cookie(services().keys.cookie_key, request.cookies.get(BROWSER_COOKIE, ""))
    if value is None:
        value = secrets.token_urlsafe(24)
        g.set_browser_cookie = True
    g.browser_id = value
    return value


def attach_browser_cookie(response: Response) -> Response:
    if g.get("set_browser_cookie"):
        set_cookie(response, BROWSER_COOKIE, sign_browser_cookie(services().keys.cookie_key, g.browser_id))
    return response


# The signed values below take the key as an argument: the login fast path (idp/flow/fastpath.py)
# uses them beneath the framework, with no request or application context.
def mac(key: bytes, message: str) -> str:
    return hmac.digest(key, message.encode("utf-8", "surrogatepass"), "sha256").hex()[:32]


def sign_browser_cookie(key: bytes, value: str) -> str:
    return f"{value}.{mac(key, 'browser|' + value)}"


def verify_browser_cookie(key: bytes, signed: str) -> str | None:
    value, _, tag = signed.rpartition(".")
    if not value or len(signed) > 200 or not same_text(tag, mac(key, "browser|" + value)):
        return None
    return value


def new_form_token(svc, browser: str, scope: str, ttl: int) -> str:  # type: ignore[no-untyped-def]
    """A single-use token for one rendering of one form: its MAC binds it to this browser, the scope
    and its expiry. Rendering a form writes nothing; the store learns of a token when it is used."""
    nonce = secrets.token_urlsafe(16)
    expires = int(time.time()) + ttl
    return f"{nonce}.{expires}.{mac(svc.keys.cookie_key, f'form|{browser}|{scope}|{nonce}|{expires}')}"


def check_form_token(svc, browser: str, scope: str, token: str) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """(nonce, expiry) of a token whose MAC holds for this browser and scope; nothing is used up yet."""
    if not token:
        raise FormTokenError("missing")
    nonce, _, rest = token.partition(".")
    expires, _, tag = rest.partition(".")
    if (
        len(token) > 200
        or not (expires.isascii() and expires.isdigit() and len(expires) <= 12)
        or not same_text(tag, mac(svc.keys.cookie_key, f"form|{browser}|{scope}|{nonce}|{expires}"))
    ):
        raise FormTokenError("invalid")
    if int(expires) <= time.time():
        raise FormTokenError("form_expired")
    return nonce, int(expires)


def form_token_claim(svc, browser: str, scope: str, token: str) -> Op:  # type: ignore[no-untyped-def]
    """The store operation that uses a valid token up: the first use claims its nonce
    (set-if-absent) until the token would have expired. Raises FormTokenError for one not valid."""
    nonce, expires = check_form_token(svc, browser, scope, token)
    return ("add", f"form:{scope}:{nonce}", "used", max(1, expires - int(time.time())))


def take_form_token(svc, browser: str, scope: str, token: str) -> None:  # type: ignore[no-untyped-def]
    """Use the token up (`form_token_claim`)."""
    if not svc.ephemeral.batch([form_token_claim(svc, browser, scope, token)])[0]:
        raise FormTokenError("replayed")


def issue_form_token(scope: str, ttl: int) -> str:
    return new_form_token(services(), browser_id(), scope, ttl)


def consume_form_token(scope: str) -> None:
    take_form_token(services(), browser_id(), scope, request.form.get(FORM_TOKEN_FIELD, ""))


def safe_return_path(target: str | None, default: str = "/account") -> str:
    """Only same-origin paths: no scheme, no host, no `//`, no backslash (open-redirect guard)."""
    if not target or len(target) > 2048:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 32 for ch in target):
        return default
    return target


def select_locale() -> str:
    requested = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    return choose_locale(services().settings.i18n, requested, request.accept_languages)


def choose_locale(i18n, requested: str | None, accepted: LanguageAccept) -> str:  # type: ignore[no-untyped-def]
    """`?lang=` or the language cookie, else the browser's Accept-Language, else the default."""
    supported = list(i18n.locales)
    if requested in supported:
        return requested
    return accepted.best_match(supported) or i18n.default_locale


def request_translations():  # type: ignore[no-untyped-def]
    """The catalogue for the request's locale, looked up once per request and locale. Flask-Babel's
    own template callables look it up through several context layers for every string, which
    was about a third of the cost of rendering the login page."""
    locale = get_locale()
    cached = g.get("_varco_translations")
    if cached is None or cached[0] is not locale:
        cached = g._varco_translations = (locale, get_translations())
    return cached[1]


def install_request_translations(app: Flask) -> None:
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )


def remember_locale(response: Response) -> Response:
    lang = request.args.get("lang")
    if lang and lang in services().settings.i18n.locales and request.cookies.get(LANG_COOKIE) != lang:
        set_cookie(response, LANG_COOKIE, lang, max_age=365 * 86400, httponly=False)
    return response


def split_plain_form(body: bytes) -> dict[str, str] | None:
    """A form body read strictly, for the layers beneath the framework (idp/flow/fastpath.py,
    idp/oidc/fastpath.py): ASCII `name=value` pairs joined by `&`, each name present and sent once,
    `+` and percent-escapes decoding to valid UTF-8. None for anything else, which those layers
    leave to the framework path."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        return None
    fields: dict[str, str] = {}
    for pair in text.split("&"):
        name, sep, value = pair.partition("=")
        if not sep or not name or name in fields:
            return None
        try:
            fields[name] = unquote_to_bytes(value.replace("+", " ")).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return fields


class UndecodableForm(BadRequest):
    """A form body that is not valid percent-encoded UTF-8. Werkzeug would quietly keep the escapes
    or drop the field; Varco refuses the whole form instead (OWASP ASVS 5.1.4)."""

    user_message = "bad_encoding"


class UndecodableQuery(BadRequest):
    """A query string that is not valid percent-encoded UTF-8: refused whole, as a form is. Werkzeug
    would put U+FFFD in place of the bytes, and a parameter echoed back (an OAuth `state`, a SAML
    RelayState) would no longer be the one the client sent."""

    user_message = "bad_address"


def reject_undecodable_input() -> None:
    """Before every view: the query string, and a form body, must be percent-encoded UTF-8."""
    body_error = request.environ.get(BODY_ERROR)
    if body_error is not None:
        raise body_error
    query = request.environ.get("QUERY_STRING", "")
    if query and not (query.isascii() and "%" not in query) and not percent_encoded_utf8(query):
        raise UndecodableQuery()
    if request.method != "POST" or request.mimetype != "application/x-www-form-urlencoded":
        return
    raw = request.get_data(cache=True)
    if not raw.isascii() or (b"%" in raw and not percent_encoded_utf8(raw.decode("ascii"))):
        raise UndecodableForm()


def percent_encoded_utf8(text: str) -> bool:
    """Whether `text` (bytes as latin-1 characters, as WSGI gives them) is UTF-8 once its escapes
    are undone. "&", "=" and "+" are ASCII, so a query or form is valid exactly when every name and
    value is: one pass over the whole instead of one per field."""
    try:
        unquote_to_bytes(text.encode("latin-1")).decode("utf-8")
    except (UnicodeError, ValueError):
        return False
    return True


# Set by WholeBody when a body sent with a transfer coding is refused; raised before the view.
BODY_ERROR = "varco.body_error"


class WholeBody:
    """WSGI middleware for a request body sent with a transfer coding (chunked): read whole, up to
    the size limit, before anything beneath sees it, which then sees a body with a length.

    Werkzeug cuts such a body at MAX_CONTENT_LENGTH without a word (a form loses its later fields
    instead of being refused), and a malformed chunk raises from the server's reader in the middle
    of a view (a 500). Here the first is a 413 and the second a 400, answered by the framework in
    the format of the endpoint (an OAuth JSON error, an error page)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict, start_response: Any) -> Any:
        coding = environ.get("HTTP_TRANSFER_ENCODING")
        if coding is not None:
            body = b""
            # RFC 9112 6.1: chunked is the one coding a request's body may end with. 6.3: beside it,
            # a Content-Length is overridden (the server de-chunked the body and says where it
            # ends: wsgi.input_terminated), or else ambiguous, a smuggling attempt. gunicorn refuses
            # both cases itself; the development server does not.
            if coding.strip().lower() != "chunked" or (
                environ.get("CONTENT_LENGTH") and not environ.get("wsgi.input_terminated")
            ):
                environ[BODY_ERROR] = MalformedBody("Transfer-Encoding other than chunked, or an ambiguous length")
            else:
                try:
                    body = self._read(environ["wsgi.input"])
                except RequestEntityTooLarge as exc:
                    environ[BODY_ERROR] = exc
                except Exception as exc:  # noqa: BLE001 - the server's chunk reader, whatever it raises
                    # (gunicorn's ParseException, OSError when the client went away, the development
                    # server's IOError): a body that could not be read is the client's fault.
                    environ[BODY_ERROR] = MalformedBody(str(exc) or type(exc).__name__)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.app(environ, start_response)

    def _read(self, stream: Any) -> bytes:
        parts, size = [], 0
        while True:
            part = stream.read(min(65536, self.limit + 1 - size))
            if not part:
                return b"".join(parts)
            parts.append(part)
            size += len(part)
            if size > self.limit:
                raise RequestEntityTooLarge()


class MalformedBody(BadRequest):
    """A body whose transfer coding cannot be read: not chunked, or chunked in error."""

    description = "The request body's transfer coding is malformed or not supported."
