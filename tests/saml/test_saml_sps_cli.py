"""`varco sps` as operators script it (exit 0/1/2, --json), the registry behind it, and config/sps/*.toml."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest
from click.testing import CliRunner
from saml_testkit import sp_metadata_xml
from sqlalchemy import func, select

from idp.app import create_app
from idp.cli import cli
from idp.saml.models import RegisteredSp
from idp.saml.registry import SpConfigError

SP = "https://app.uni.example/sp"


@pytest.fixture
def run(settings):
    env = {
        "VARCO_HOME": str(settings.home),
        "VARCO_DATABASE_URL": settings.database_url,
        "VARCO_REDIS_URL": settings.redis.url,
        "VARCO_REDIS_PREFIX": settings.redis.prefix,
        "VARCO_KEYS_DIR": settings.keys.dir,
    }

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


@pytest.fixture
def metadata_file(tmp_path, sp_keys):
    path = tmp_path / "sp.xml"
    path.write_bytes(sp_metadata_xml(SP, sp_keys[1], encryption=True))
    return path


def stored_sps(services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(RegisteredSp))


def test_add_list_show_and_remove_an_sp(run, metadata_file):
    added = run("sps", "add", "--metadata", str(metadata_file), "--require-mfa", "--release", "mail", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["entity_id"] == SP

    listed = json.loads(run("sps", "list", "--json").output)
    assert [row["entity_id"] for row in listed] == [SP]
    shown = run("sps", "show", SP, "--json")
    assert shown.exit_code == 0
    details = json.loads(shown.output)
    assert details["require_mfa"] is True and details["release"] == ["mail"]
    assert details["acs"] == ["https://app.uni.example/saml/acs"]
    assert details["encryption_certificates"] == 1 and details["encrypt"] is True
    assert SP in run("sps", "list").output

    assert run("sps", "remove", SP).exit_code == 0
    assert run("sps", "show", SP).exit_code == 1
    assert json.loads(run("sps", "list", "--json").output) == []


@pytest.mark.parametrize(
    "content",
    [
        b"this is not XML",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://idp.example/">'
        b"</md:EntityDescriptor>",
    ],
    ids=["not-xml", "xxe", "no-sp-descriptor"],
)
def test_metadata_that_does_not_parse_exits_2_naming_the_argument_and_writes_nothing(run, services, tmp_path, content):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(content)

    result = run("sps", "add", "--metadata", str(bad))

    assert result.exit_code == 2
    assert "--metadata" in result.output
    assert stored_sps(services) == 0


def test_sp_whose_endpoint_is_not_http_is_refused(run, services, tmp_path, sp_keys):
    path = tmp_path / "sp.xml"
    path.write_bytes(sp_metadata_xml(SP, sp_keys[1], acs=((0, "javascript:alert(1)"),)))

    result = run("sps", "add", "--metadata", str(path))

    assert result.exit_code == 2 and "http(s)" in result.output
    assert stored_sps(services) == 0


def test_unknown_attribute_to_release_exits_2_and_writes_nothing(run, services, metadata_file):
    result = run("sps", "add", "--metadata", str(metadata_file), "--release", "mail,shoeSize")

    assert result.exit_code == 2 and "--release" in result.output and "shoeSize" in result.output
    assert stored_sps(services) == 0


@pytest.mark.parametrize(
    "source", ["/nonexistent/sp.xml", "http://sp.example.org/metadata", "ftp://sp.example.org/md.xml"]
)
def test_unreadable_or_insecure_metadata_source_exits_2(run, source):
    result = run("sps", "add", "--metadata", source)
    assert result.exit_code == 2 and "--metadata" in result.output


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("https://[::1", "not a valid URL"),
        ("https://[x]/md", "not a valid URL"),
        ("http://localhost:abc/x", "not a valid URL"),
        ("https://sp.example.org:99999/md", "not a valid URL"),
        ("", "is empty"),
    ],
)
def test_a_malformed_or_empty_metadata_argument_exits_2_saying_what_is_wrong(run, source, said):
    result = run("sps", "add", "--metadata", source)
    assert result.exit_code == 2 and "--metadata" in result.output and said in result.output, result.output


def sp_metadata_with(sp_keys, entity_id=SP, acs="https://app.uni.example/saml/acs", index="0", slo=""):
    """SP metadata as the kit writes it, with one attribute of the hostile sweep put in place."""
    body = sp_metadata_xml(entity_id, sp_keys[1]).decode()
    body = body.replace('index="0"', f'index="{index}"').replace("https://app.uni.example/saml/acs", acs)
    return body.replace("</md:SPSSODescriptor>", f"{slo}</md:SPSSODescriptor>").encode()


SLO = '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"index": "²"}, "AssertionConsumerService index"),
        ({"index": "٣"}, "AssertionConsumerService index"),
        ({"index": "7" * 5000}, "AssertionConsumerService index"),
        ({"index": "65536"}, "AssertionConsumerService index"),
        ({"index": "-1"}, "AssertionConsumerService index"),
        ({"entity_id": " "}, "entityID"),
        ({"entity_id": "https://sp.example/&#155;2J&#10;x"}, "entityID has control characters"),
        ({"entity_id": "https://sp.example/" + "e" * 1024}, "entityID is longer than 1024"),
        ({"acs": "https://app.uni.example/acs&#10;Set-Cookie: x=1"}, "AssertionConsumerService Location"),
        ({"acs": "https://app.uni.example/a b"}, "AssertionConsumerService Location"),
        ({"acs": "https://app.uni.example/" + "a" * 20_000}, "AssertionConsumerService Location is longer"),
        ({"acs": "https://[::1/acs"}, "AssertionConsumerService Location"),
        ({"slo": SLO + 'Location="https://app.uni.example/slo" ResponseLocation="javascript:alert(1)"/>'},
         "SingleLogoutService ResponseLocation"),
    ],
    ids=["superscript-index", "arabic-digit-index", "huge-index", "index-over-65535", "negative-index",
         "blank-entity-id", "entity-id-with-escape", "long-entity-id", "acs-with-newline", "acs-with-space",
         "long-acs", "acs-with-broken-ipv6", "slo-response-to-javascript"],
)
def test_hostile_sp_metadata_exits_2_naming_the_element_and_writes_nothing(
    run, services, tmp_path, sp_keys, changes, said
):
    path = tmp_path / "sp.xml"
    path.write_bytes(sp_metadata_with(sp_keys, **changes))

    result = run("sps", "add", "--metadata", str(path))

    assert result.exit_code == 2 and "--metadata" in result.output and said in result.output, result.output
    assert stored_sps(services) == 0


def test_an_index_of_ascii_digits_up_to_65535_is_accepted(run, tmp_path, sp_keys):
    path = tmp_path / "sp.xml"
    path.write_bytes(sp_metadata_with(sp_keys, index="65535"))

    result = run("sps", "add", "--metadata", str(path))

    assert result.exit_code == 0, result.output


def test_metadata_can_be_fetched_from_a_url(run, metadata_file):
    body = metadata_file.read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run("sps", "add", "--metadata", f"http://127.0.0.1:{server.server_port}/md", "--json")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["source"].startswith("http://127.0.0.1:")


def test_adding_an_sp_twice_fails_unless_replacing(run, metadata_file):
    assert run("sps", "add", "--metadata", str(metadata_file)).exit_code == 0
    again = run("sps", "add", "--metadata", str(metadata_file))
    assert again.exit_code == 1 and "already registered" in again.output
    replaced = run("sps", "add", "--metadata", str(metadata_file), "--replace", "--require-mfa", "--json")
    assert replaced.exit_code == 0 and json.loads(replaced.output)["require_mfa"] is True


def test_removing_an_unknown_sp_fails(run):
    result = run("sps", "remove", "https://nobody.example/sp")
    assert result.exit_code == 1 and "not a registered SP" in result.output


def test_a_running_app_sees_an_sp_added_from_the_cli_within_a_second(app, run, metadata_file):
    registry = app.extensions["varco_saml"].registry
    assert registry.lookup(SP) is None

    assert run("sps", "add", "--metadata", str(metadata_file), "--require-mfa").exit_code == 0
    time.sleep(1.1)

    sp = registry.lookup(SP)
    assert sp is not None and sp.require_mfa
    assert run("sps", "remove", SP).exit_code == 0
    time.sleep(1.1)
    assert registry.lookup(SP) is None


def test_unchanged_sps_are_not_parsed_again_on_reload(app, run, metadata_file, sp_keys, tmp_path):
    registry = app.extensions["varco_saml"].registry
    assert run("sps", "add", "--metadata", str(metadata_file)).exit_code == 0
    time.sleep(1.1)
    first = registry.lookup(SP)
    other = tmp_path / "other.xml"
    other.write_bytes(sp_metadata_xml("https://other.uni.example/sp", sp_keys[1]))
    assert run("sps", "add", "--metadata", str(other)).exit_code == 0
    time.sleep(1.1)

    assert registry.lookup(SP) is first
    assert registry.lookup("https://other.uni.example/sp") is not None


def test_sps_in_config_files_are_loaded_at_start(settings, run, metadata_file):
    folder = settings.home / "config" / "sps"
    folder.mkdir(parents=True)
    (folder / "app.toml").write_text(
        f'metadata = "{metadata_file}"\nrequire_mfa = true\nrelease = ["mail", "eduPersonPrincipalName"]\n'
    )

    application = create_app(settings)
    try:
        sp = application.extensions["varco_saml"].registry.lookup(SP)
    finally:
        application.extensions["varco"].db.dispose()

    assert sp is not None and sp.require_mfa and sp.release == {"mail", "eduPersonPrincipalName"}
    listed = json.loads(run("sps", "list", "--json").output)
    assert listed[0]["origin"].endswith("app.toml")
    removed = run("sps", "remove", SP)
    assert removed.exit_code == 1 and "app.toml" in removed.output


@pytest.mark.parametrize(
    "content",
    ['metadata = "missing.xml"', "metadata = 3", 'metadata = "x.xml"\ncolour = "red"', "not toml ["],
    ids=["missing-file", "not-a-path", "unknown-key", "not-toml"],
)
def test_a_bad_config_file_stops_start_up_naming_the_file(settings, content):
    folder = settings.home / "config" / "sps"
    folder.mkdir(parents=True)
    (folder / "broken.toml").write_text(content)

    with pytest.raises(SpConfigError, match="broken.toml"):
        create_app(settings)


def test_registry_changes_are_audited(run, services, metadata_file):
    from idp.store.models import AuditEvent

    run("sps", "add", "--metadata", str(metadata_file), "--release", "mail")
    run("sps", "add", "--metadata", str(metadata_file), "--replace")
    run("sps", "remove", SP)

    with services.db.session() as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.actor, e.detail["entity_id"]) for e in events] == [
        ("saml_sp_added", "cli", SP),
        ("saml_sp_replaced", "cli", SP),
        ("saml_sp_removed", "cli", SP),
    ]
    assert events[0].detail["policy"]["release"] == ["mail"]
