"""`varco clients ...` and `config/clients/*.toml`, through the real command and stores."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from joserfc.jwk import ECKey, OctKey, RSAKey

from idp.app import create_app
from idp.cli import cli
from idp.oidc.clients import hash_secret


@pytest.fixture
def run(settings, monkeypatch):
    monkeypatch.setenv("VARCO_HOME", str(settings.home))
    monkeypatch.setenv("VARCO_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VARCO_KEYS_DIR", str(settings.keys_dir))
    monkeypatch.setenv("VARCO_REDIS_PREFIX", settings.redis.prefix)
    if settings.redis.url:
        monkeypatch.setenv("VARCO_REDIS_URL", settings.redis.url)
    else:
        monkeypatch.delenv("VARCO_REDIS_URL", raising=False)

    def invoke(*args: str, stdin: str | None = None):
        return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)

    return invoke


def test_add_prints_a_generated_secret_once_and_stores_only_its_hash(run, settings):
    result = run("clients", "add", "lms", "--redirect-uri", "https://lms.uni.example.it/cb", "--json")
    assert result.exit_code == 0, result.output
    secret = json.loads(result.stdout)["client_secret"]
    assert len(secret) >= 43
    shown = json.loads(run("clients", "show", "lms", "--json").stdout)
    assert "client_secret" not in shown and shown["token_endpoint_auth_method"] == "client_secret_basic"
    app = create_app(settings)
    client = app.extensions["varco_oidc"].clients.get("lms")
    assert client.secret_hash == hash_secret(secret) and client.check_client_secret(secret)
    app.extensions["varco"].db.dispose()


def test_add_reads_the_secret_from_stdin_and_accepts_every_documented_option(run):
    result = run(
        "clients", "add", "webmail", "--redirect-uri", "https://mail.uni.example.it/cb", "--secret-stdin",
        "--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid",
        "--scope", "email", "--require-mfa", "--post-logout-redirect-uri", "https://mail.uni.example.it/",
        "--backchannel-logout-uri", "https://mail.uni.example.it/bc", "--json", stdin="s" * 40 + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "client_secret" not in json.loads(result.stdout)
    shown = json.loads(run("clients", "show", "webmail", "--json").stdout)
    assert shown["require_mfa"] is True and shown["scopes"] == ["openid", "email"]


def test_public_client_gets_no_secret(run):
    result = run("clients", "add", "app", "--redirect-uri", "it.uni.app:/cb", "--public", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "client_secret" not in data and data["token_endpoint_auth_method"] == "none"


def test_bad_input_exits_2_naming_the_argument(run):
    result = run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb#frag")
    assert result.exit_code == 2 and "--redirect-uri" in result.output
    result = run("clients", "add", "lms", "--redirect-uri", "http://lms.example/cb")
    assert result.exit_code == 2 and "--redirect-uri" in result.output
    result = run("clients", "add", "bad id!", "--redirect-uri", "https://lms.example/cb")
    assert result.exit_code == 2 and "CLIENT_ID" in result.output
    result = run("clients", "add", "lms")
    assert result.exit_code == 2 and "--redirect-uri" in result.output


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("https://lms.example/c\x01b", "control or non-ASCII"),
        ("https://lms.example/a b", "spaces"),
        ("https://lms.exämple/cb", "non-ASCII"),
        ("https://*.example/cb", "no wildcards"),
        ("https://user:pass@lms.example/cb", "user information"),
        ("https://lms.example:99999/cb", "invalid port"),
        ("https://lms.example:port/cb", "invalid port"),
        ("https://lms.example:0/cb", "invalid port"),
        ("https://-/cb", "DNS name or an IP address"),
        ("https://lms-.example/cb", "DNS name or an IP address"),
        ("https://a%2eit/", "DNS name or an IP address"),
        ("https://lms_1.example/cb", "DNS name or an IP address"),
        ("https://999.1.1.1/cb", "DNS name or an IP address"),
        ("https://[v1.lms]/cb", "DNS name or an IP address"),
        ("https://[fe80::1%25eth0]/cb", "DNS name or an IP address"),
        ("https://[::1/cb", "not a valid URI"),
    ],
)
def test_a_redirect_uri_that_cannot_be_compared_exactly_is_refused(run, uri, said):
    result = run("clients", "add", "lms", "--redirect-uri", uri, "--public")
    assert result.exit_code == 2 and "--redirect-uri" in result.output and said in result.output
    assert json.loads(run("clients", "list", "--json").stdout) == []


@pytest.mark.parametrize("option", ["--redirect-uri", "--post-logout-redirect-uri", "--backchannel-logout-uri"])
@pytest.mark.parametrize("uri", ["https://[::1", "https://[x", "https://[x]/cb"])
def test_a_uri_with_a_broken_ipv6_host_exits_2_naming_the_option(run, option, uri):
    args = ["--redirect-uri", "https://lms.example/cb"] if option != "--redirect-uri" else []
    result = run("clients", "add", "lms", *args, option, uri)
    assert result.exit_code == 2 and option in result.output and "not a valid URI" in result.output, result.output
    assert json.loads(run("clients", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    "uri", ["https://lms.uni.example.it:8443/cb", "https://10.0.0.7/cb", "https://[2001:db8::7]/cb", "http://[::1]:8080/cb"]
)
def test_ip_literals_and_ports_are_accepted_in_redirect_uris(run, uri):
    result = run("clients", "add", "lms", "--redirect-uri", uri, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["redirect_uris"] == [uri]


def rsa_jwk(bits=2048, private=False):
    return RSAKey.generate_key(bits).as_dict(private=private)


def ec_jwk(curve="P-256", private=False):
    return ECKey.generate_key(curve).as_dict(private=private)


def public_jwk(**members):
    return {**ec_jwk(), **members}


# Built when a test runs (keys are generated), named for the test ids.
UNUSABLE_JWK_SETS = {
    "a-list": lambda: [1, 2],
    "a-string": lambda: "str",
    "keys-not-a-list": lambda: {"keys": "garbage"},
    "no-keys": lambda: {"keys": []},
    "key-not-an-object": lambda: {"keys": [1]},
    "key-as-pem": lambda: {"keys": [RSAKey.generate_key(2048).as_pem(private=False).decode()]},
    "rsa-without-modulus": lambda: {"keys": [{"kty": "RSA"}]},
    "unknown-kty-beside-a-good-key": lambda: {"keys": [public_jwk(), {"kty": "XYZ"}]},
    "private-rsa": lambda: {"keys": [rsa_jwk(private=True)]},
    "private-ec": lambda: {"keys": [ec_jwk(private=True)]},
    "symmetric": lambda: {"keys": [OctKey.generate_key(256).as_dict()]},
    "short-rsa": lambda: {"keys": [rsa_jwk(1024)]},
    "ec-not-p256": lambda: {"keys": [ec_jwk("P-384")]},
    "encryption-key": lambda: {"keys": [public_jwk(use="enc")]},
    "for-another-alg": lambda: {"keys": [public_jwk(alg="ES384")]},
}


@pytest.mark.filterwarnings("ignore::joserfc.jwk.SecurityWarning")
@pytest.mark.parametrize("name", list(UNUSABLE_JWK_SETS))
def test_a_jwks_file_that_is_not_a_set_of_public_signing_keys_exits_2(run, tmp_path, name):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(UNUSABLE_JWK_SETS[name]()))
    result = run("clients", "add", "svc", "--grant-type", "client_credentials", "--jwks", str(path))
    assert result.exit_code == 2 and "--jwks" in result.output, result.output
    assert json.loads(run("clients", "list", "--json").stdout) == []


def test_a_jwks_file_of_public_signing_keys_registers_a_private_key_jwt_client(run, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(use="sig", alg="ES256", kid="e1"), rsa_jwk()]}))
    result = run("clients", "add", "svc", "--grant-type", "client_credentials", "--jwks", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["token_endpoint_auth_method"] == "private_key_jwt" and "client_secret" not in data


def test_a_secret_for_a_private_key_jwt_client_is_refused_not_dropped(run, tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk()]}))
    result = run("clients", "add", "svc", "--grant-type", "client_credentials", "--jwks", str(path),
                 "--secret-stdin", stdin="s" * 40 + "\n")
    assert result.exit_code == 2 and "--secret-stdin" in result.output and "not a secret" in result.output
    assert json.loads(run("clients", "list", "--json").stdout) == []


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--name", "Evil\x1b[31m\nName", "control characters"),
        ("--name", "Tab\tName", "control characters"),
        ("--name", "N" * 10_000, "longer than 200 characters"),
        ("--sector-identifier", "uni.example.it\x1b[2J", "not a host name"),
        ("--sector-identifier", "https://uni.example.it/", "not a host name"),
        ("--sector-identifier", "a" * 300, "longer than 255 characters"),
    ],
)
def test_a_name_or_sector_that_would_break_listings_or_columns_exits_2(run, option, value, said):
    result = run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb", "--subject-type", "pairwise",
                 option, value)
    assert result.exit_code == 2 and option in result.output and said in result.output, result.output
    assert json.loads(run("clients", "list", "--json").stdout) == []


def test_a_plain_name_and_a_sector_host_are_listed_on_one_row(run):
    result = run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb", "--name", "Università – LMS",
                 "--subject-type", "pairwise", "--sector-identifier", "uni.example.it")
    assert result.exit_code == 0, result.output
    assert run("clients", "list").stdout.splitlines() == [
        "lms\tUniversità – LMS\tconfidential\tauthorization_code refresh_token\tcli\t"
    ]


def test_duplicate_and_missing_clients_fail_with_exit_1(run):
    assert run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb").exit_code == 0
    assert run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb").exit_code == 1
    assert run("clients", "show", "nobody").exit_code == 1
    assert run("clients", "remove", "nobody").exit_code == 1


def test_list_and_remove(run):
    run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb")
    listed = json.loads(run("clients", "list", "--json").stdout)
    assert [c["client_id"] for c in listed] == ["lms"]
    assert run("clients", "remove", "lms").exit_code == 0
    assert json.loads(run("clients", "list", "--json").stdout) == []


def test_clients_in_config_files_are_loaded_at_start(settings):
    directory = settings.home / "config" / "clients"
    directory.mkdir(parents=True)
    (directory / "portal.toml").write_text(
        'client_id = "portal"\nname = "Student portal"\nredirect_uris = ["https://portal.uni.example.it/cb"]\n'
        f'secret_sha256 = "{hash_secret("x" * 40)}"\nfirst_party = true\n'
    )
    app = create_app(settings)
    client = app.extensions["varco_oidc"].clients.get("portal")
    assert client.name == "Student portal" and client.source == "file" and client.check_client_secret("x" * 40)
    app.extensions["varco"].db.dispose()


def test_replace_updates_a_registration_keeping_its_secret_and_show_names_a_stored_problem(run, settings):
    secret = json.loads(run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb", "--json").stdout)[
        "client_secret"
    ]
    app = create_app(settings)
    from idp.oidc.models import OidcClientRecord

    with app.extensions["varco"].db.session() as session:  # as an earlier Varco could store it
        session.get(OidcClientRecord, "lms").redirect_uris = ["http://lms.example/cb"]
    shown = json.loads(run("clients", "show", "lms", "--json").stdout)
    assert shown["problem"] == "redirect_uri: 'http://lms.example/cb' must be https (or http on localhost)"
    assert json.loads(run("clients", "list", "--json").stdout)[0]["problem"] == shown["problem"]

    result = run("clients", "add", "lms", "--redirect-uri", "https://lms.example/new", "--replace", "--json")
    assert result.exit_code == 0, result.output
    updated = json.loads(result.stdout)
    assert "client_secret" not in updated and updated["problem"] is None
    assert updated["redirect_uris"] == ["https://lms.example/new"]
    client = app.extensions["varco_oidc"].clients.get("lms")
    assert client.redirect_uris == ("https://lms.example/new",) and client.check_client_secret(secret)
    # Without --replace, a registered id is still refused.
    assert run("clients", "add", "lms", "--redirect-uri", "https://lms.example/cb").exit_code == 1
    app.extensions["varco"].db.dispose()


def test_every_client_setting_has_a_file_type():
    from dataclasses import fields

    from idp.oidc.clients import FILE_TYPES, NewClient

    assert set(FILE_TYPES) == {f.name for f in fields(NewClient)}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # A secret made up at start would be shown to nobody.
        ('client_id = "portal"\nredirect_uris = ["https://portal.example/cb"]\n', "secret_sha256: required"),
        (
            'client_id = "portal"\nredirect_uris = ["https://portal.example/cb"]\nsecret_sha256 = "abc"\n',
            "secret_sha256: 64 hex digits",
        ),
        (
            f'client_id = "portal"\npublic = true\nredirect_uris = ["it.uni.app:/cb"]\n'
            f'secret_sha256 = "{"a" * 64}"\n',
            "secret_sha256: 64 hex digits, only for a client_secret",
        ),
        ('client_id = 5\nredirect_uris = ["https://portal.example/cb"]\n', "client_id: must be a string"),
        ('client_id = "portal"\nredirect_uris = "https://portal.example/cb"\n', "redirect_uris: must be a list"),
        ('client_id = "portal"\nredirect_uris = [1]\n', "redirect_uris: must be a list of strings"),
        ('client_id = "portal"\nfirst_party = "yes"\nredirect_uris = []\n', "first_party: must be true or false"),
        ('client_id = "portal"\nredirect_uris = ["https://p.example/cb"]\nsecret_sha256 = 3\n', "must be a string"),
    ],
)
def test_a_bad_client_file_stops_start_up_naming_the_file_and_setting_and_stores_nothing(run, settings, text, said):
    directory = settings.home / "config" / "clients"
    directory.mkdir(parents=True)
    (directory / "portal.toml").write_text(text)
    result = run("serve", "--port", "1")
    assert result.exit_code == 1 and "portal.toml" in result.output and said in result.output, result.output
    (directory / "portal.toml").unlink()
    assert json.loads(run("clients", "list", "--json").stdout) == []


def test_a_client_file_loaded_again_keeps_the_secret_it_names(settings):
    directory = settings.home / "config" / "clients"
    directory.mkdir(parents=True)
    text = 'client_id = "portal"\nredirect_uris = ["https://portal.uni.example.it/cb"]\n'
    (directory / "portal.toml").write_text(text + f'secret_sha256 = "{hash_secret("y" * 40).upper()}"\n')
    for _ in range(2):  # each start loads the files again
        app = create_app(settings)
        client = app.extensions["varco_oidc"].clients.get("portal")
        assert client.check_client_secret("y" * 40)
        app.extensions["varco"].db.dispose()
