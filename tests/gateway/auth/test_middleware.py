"""The auth middleware on a real gateway: every route of the app is in the access table and, without credentials,
answers 401 (the public ones excepted); 403 names the missing scope; API keys valid, wrong, revoked (by the CLI, in
another process), expired; the access class each request gets; smart-configuration and the CapabilityStatement."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from gateway.app import create_app
from gateway.auth.config import AuthConfig
from gateway.auth.table import ACCESS, TABLE, RouteIndex, request_need, unlisted
from gateway.settings import Settings
from tests.conftest import ROOT
from tests.gateway.auth.served import AuthServed, Client

UPSTREAM = "http://127.0.0.1:9/fhir"  # the facade's routes exist; nothing listens there (no request reaches it)
TRANSLATE = "/fhir/ConceptMap/$translate?system=urn:oid:2.16.156.10011.2.3.3.4&code=2"
PUBLIC = {("GET", e.path) for e in TABLE if e.access == "public"}
SAMPLE = {"type": "Observation", "rest": "1", "id": "1", "job": "0" * 32, "file": "Observation.ndjson",
          "name": "app.js"}


def app_routes(**settings: object) -> list[Route]:
    return [r for r in create_app(Settings(**settings), auth=AuthConfig()).routes if isinstance(r, Route)]


def test_every_route_of_the_app_is_in_the_access_table() -> None:
    for routes in (app_routes(), app_routes(upstream_url=UPSTREAM)):
        assert unlisted(routes) == []
    listed = {(e.path, m) for e in TABLE for m in e.methods}
    served = {(r.path, m) for r in app_routes(upstream_url=UPSTREAM) for m in (r.methods or set()) - {"HEAD"}}
    assert listed == served  # and nothing in the table that the app does not have
    assert {e.access for e in TABLE} <= set(ACCESS)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServed]:
    clients = {"everything": Client(["system/$convert", "system/$validate", "system/$translate", "system/*.cruds"]),
               "validator": Client(["system/$validate"]),
               "translator": Client(["system/$translate"]),
               "reader": Client(["system/Observation.rs"])}
    settings = Settings(upstream_url=UPSTREAM, upstream_retries=0, upstream_timeout_ms=2000)
    with AuthServed(settings, tmp_path_factory.mktemp("keys"), clients) as app:
        yield app


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: SAMPLE[m.group(1)], path)


def test_every_route_without_credentials_is_a_401_but_the_public_ones(keyed: AuthServed) -> None:
    walked = 0
    for route in keyed.app.routes:
        for method in sorted((route.methods or set()) - {"HEAD"}):
            r = httpx.request(method, keyed.url + _url(route.path), content=b"{}", timeout=10,
                              headers={"Content-Type": "application/fhir+json"})
            walked += 1
            if (method, route.path) in PUBLIC:
                assert r.status_code != 401, f"{method} {route.path}"
                continue
            assert r.status_code == 401, f"{method} {route.path}: {r.status_code} {r.text[:200]}"
            assert r.headers["www-authenticate"] == 'ApiKey realm="helixgate"'
            assert r.json()["issue"][0]["code"] == "login"
    assert walked >= 20
    # Paths no route takes, and methods a route does not have: credentials first, so they tell nobody anything.
    for method, path in (("GET", "/nothing"), ("PUT", "/fhir/$convert"), ("DELETE", "/healthz/x")):
        assert httpx.request(method, keyed.url + path, timeout=10).status_code == 401


def test_the_public_routes_answer_without_credentials(keyed: AuthServed) -> None:
    assert httpx.get(f"{keyed.url}/healthz", timeout=10).status_code == 200
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        doc = httpx.get(keyed.url + path, timeout=10).json()
        assert "system/$convert" in doc["scopes_supported"] and "permission-v2" in doc["capabilities"]
        assert doc["helixgate_access"]["enabled"] and doc["helixgate_access"]["mechanisms"] == ["api-key"]
        assert {(r["path"], r["access"]) for r in doc["helixgate_access"]["routes"]} >= {
            ("/fhir/$convert", "convert"), ("/fhir/{type:str}", "read"), ("/healthz", "public")}
        assert "token_endpoint" not in doc  # no authorization server configured
    meta = httpx.get(f"{keyed.url}/fhir/metadata", timeout=20).json()
    security = meta["rest"][0]["security"]
    assert "system/$convert" in security["description"] and "service" not in security  # no OAuth: not SMART


def test_a_missing_scope_is_a_403_naming_it(keyed: AuthServed) -> None:
    r = httpx.get(keyed.url + TRANSLATE, headers=keyed.auth("validator"), timeout=10)
    assert r.status_code == 403
    assert r.headers["www-authenticate"] == ('Bearer realm="helixgate", error="insufficient_scope", '
                                             'scope="system/$translate"')
    issue = r.json()["issue"][0]
    assert issue["code"] == "forbidden" and "system/$translate" in issue["details"]["text"]
    r = httpx.get(f"{keyed.url}/fhir/Patient", headers=keyed.auth("reader"), timeout=10)
    assert r.status_code == 403 and "system/Patient.s" in r.text
    r = httpx.get(f"{keyed.url}/fhir/Observation/$lastn", headers=keyed.auth("reader"), timeout=10)
    assert r.status_code == 403 and "system/*.r" in r.text  # an upstream operation may return any type
    r = httpx.get(f"{keyed.url}/fhir/Observation", params={"_include": "Observation:subject"},
                  headers=keyed.auth("reader"), timeout=10)
    assert r.status_code == 403 and "_include" in r.text
    r = httpx.put(f"{keyed.url}/fhir/Observation/1", json={"resourceType": "Observation"},
                  headers=keyed.auth("reader"), timeout=10)
    assert r.status_code == 403 and "system/Observation.u" in r.text


def test_a_valid_key_is_let_through(keyed: AuthServed) -> None:
    r = httpx.get(keyed.url + TRANSLATE, headers=keyed.auth("translator"), timeout=20)
    assert r.status_code == 200, r.text
    assert r.json()["parameter"][0] == {"name": "result", "valueBoolean": True}
    # the scope string is not case-folded, but the scheme is (RFC 9110 §11.1)
    r = httpx.get(keyed.url + TRANSLATE, headers={"Authorization": f"apikey {keyed.keys['translator']}"}, timeout=20)
    assert r.status_code == 200


@pytest.mark.parametrize(("header", "says"), [
    ({"Authorization": "ApiKey hgk_aaaaaaaaaaaa_" + "A" * 43}, "not valid"),
    ({"Authorization": "ApiKey not-a-key"}, "malformed"),
    ({"Authorization": "ApiKey"}, "no credential"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "unsupported Authorization scheme"),
    ({"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}, "no authorization server"),
])
def test_a_bad_credential_is_a_401_saying_why(keyed: AuthServed, header: dict[str, str], says: str) -> None:
    r = httpx.get(keyed.url + TRANSLATE, headers=header, timeout=10)
    assert r.status_code == 401
    assert says in r.json()["issue"][0]["details"]["text"]
    assert 'error="invalid_' in r.headers["www-authenticate"]
    assert header["Authorization"].partition(" ")[2] not in (r.text + r.headers["www-authenticate"]) or \
        not header["Authorization"].partition(" ")[2]


def test_a_wrong_secret_for_a_real_key_id_is_refused(keyed: AuthServed) -> None:
    key = keyed.keys["translator"]
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    r = httpx.get(keyed.url + TRANSLATE, headers={"Authorization": f"ApiKey {wrong}"}, timeout=10)
    assert r.status_code == 401 and "not valid" in r.text


def test_a_key_sent_as_x_api_key_is_refused_pointing_to_authorization(keyed: AuthServed) -> None:
    r = httpx.get(keyed.url + TRANSLATE, headers={"X-API-Key": keyed.keys["translator"]}, timeout=10)
    assert r.status_code == 401 and "Authorization: ApiKey" in r.text


def _cli(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli.main", "keys", "--file", str(env_file), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_keys_created_and_revoked_by_the_cli_reach_the_running_server(keyed: AuthServed) -> None:
    made = _cli("create", "cli-client", "--scope", "system/$translate", "--expires", "2h", env_file=keyed.store.path)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("hgk_") and key not in made.stderr
    assert key not in keyed.store.path.read_text()  # only its hash is stored
    headers = {"Authorization": f"ApiKey {key}"}
    assert httpx.get(keyed.url + TRANSLATE, headers=headers, timeout=20).status_code == 200
    listed = _cli("list", env_file=keyed.store.path)
    assert re.search(r"cli-client\s+\w{12}\s+active", listed.stdout) and key not in listed.stdout
    revoked = _cli("revoke", "cli-client", env_file=keyed.store.path)
    assert revoked.returncode == 0, revoked.stderr
    r = httpx.get(keyed.url + TRANSLATE, headers=headers, timeout=10)
    assert r.status_code == 401 and "revoked" in r.text
    assert re.search(r"cli-client\s+\w{12}\s+revoked", _cli("list", env_file=keyed.store.path).stdout)
    assert _cli("revoke", "cli-client", env_file=keyed.store.path).returncode == 2  # nothing left to revoke
    bad = _cli("create", "x", "--scope", "system/Observation.read?x=1", env_file=keyed.store.path)
    assert bad.returncode == 2 and "grant nothing" in bad.stderr


def test_an_expired_key_is_refused(keyed: AuthServed) -> None:
    past = datetime.now(UTC) - timedelta(days=2)
    key, _ = keyed.store.create("short-lived", ["system/$translate"], past + timedelta(days=1), now=past)
    r = httpx.get(keyed.url + TRANSLATE, headers={"Authorization": f"ApiKey {key}"}, timeout=10)
    assert r.status_code == 401 and "expired" in r.text


@pytest.mark.parametrize(("method", "path", "headers", "access"), [
    ("GET", "/healthz", {}, "public"),
    ("GET", "/fhir/metadata", {}, "public"),
    ("POST", "/fhir/$convert", {"content-type": "x-application/hl7-v2+er7"}, "convert"),
    ("POST", "/fhir/$convert", {"prefer": "respond-async"}, "bulk"),
    ("POST", "/fhir/$convert", {"content-type": "application/fhir+ndjson"}, "bulk"),
    ("POST", "/fhir/Observation/$validate", {}, "validate"),
    ("GET", "/fhir/ConceptMap/x/$translate", {}, "translate"),
    ("GET", "/fhir/bulk/" + "0" * 32, {}, "bulk"),
    ("DELETE", "/fhir/bulk/" + "0" * 32, {}, "bulk"),
    ("GET", "/fhir/Observation", {}, "read"),
    ("GET", "/fhir/Observation/1/_history/2", {}, "read"),
    ("POST", "/fhir/Observation", {}, "write"),
    ("PUT", "/fhir/Observation/1", {}, "write"),
    ("POST", "/fhir", {}, "write"),
])
def test_each_request_gets_its_access_class(method: str, path: str, headers: dict[str, str], access: str) -> None:
    index = RouteIndex(create_app(Settings(upstream_url=UPSTREAM), auth=AuthConfig()).routes)
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    from starlette.datastructures import Headers

    need, _ = request_need(index, scope, Headers(scope=scope))
    assert need.access == access


def test_without_credentials_configured_every_route_answers_as_before(embedded_gateway: object) -> None:
    url = embedded_gateway.url  # type: ignore[attr-defined]
    r = httpx.get(url + TRANSLATE, timeout=20)
    assert r.status_code == 200
    doc = httpx.get(f"{url}/.well-known/smart-configuration", timeout=10).json()
    assert doc["helixgate_access"]["enabled"] is False
    assert "off" in httpx.get(f"{url}/fhir/metadata", timeout=20).json()["rest"][0]["security"]["description"]


def test_the_readme_shows_the_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for e in TABLE:
        assert f"| `{'/'.join(e.methods)} {e.path}` | {e.access} |" in readme, e.path


def test_with_oauth_the_discovery_documents_name_the_token_endpoint(tmp_path: Path) -> None:
    token = "https://as.example.org/oauth2/token"
    clients = {"kit": Client(["system/$translate"])}
    with AuthServed(Settings(), tmp_path, clients, token_url=token) as app:
        doc = httpx.get(f"{app.url}/fhir/.well-known/smart-configuration", timeout=10).json()
        assert doc["token_endpoint"] == token
        assert doc["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        assert doc["helixgate_access"]["mechanisms"] == ["api-key", "oauth"]
        security = httpx.get(f"{app.url}/fhir/metadata", timeout=20).json()["rest"][0]["security"]
        assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
        assert security["extension"][0]["url"].endswith("/oauth-uris")
        assert security["extension"][0]["extension"] == [{"url": "token", "valueUri": token}]
        r = httpx.get(app.url + TRANSLATE, timeout=10)
        assert r.headers["www-authenticate"] == 'Bearer realm="helixgate", ApiKey realm="helixgate"'


def test_refusals_are_logged_without_the_ids_in_the_path(keyed: AuthServed, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="helixgate.auth"):
        assert httpx.get(f"{keyed.url}/fhir/Patient/zhang-san-110101/_history/2", timeout=10).status_code == 401
        r = httpx.get(f"{keyed.url}/fhir/Patient/zhang-san-110101", timeout=10, headers=keyed.auth("translator"))
        assert r.status_code == 403
    lines = [r.getMessage() for r in caplog.records if r.name == "helixgate.auth"]
    assert any(line.startswith("401 GET /fhir/Patient/{id}/_history/{id}") for line in lines), lines
    assert any(line.startswith("403 GET /fhir/Patient/{id} for translator") for line in lines), lines
    assert not any("zhang" in line for line in lines)
