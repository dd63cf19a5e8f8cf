"""Inputs from every source format, converted once, and a routes file of the tests' own."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.exchange.routes import Routes, load
from gateway.formats import Request, resolve
from mappers.toolkit.registry import ConvertOptions

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
ROUTES = EXAMPLES / "exchange" / "routes.json"
IPS_EXAMPLE = Path("~/.fhir/packages/hl7.fhir.uv.ips#2.0.0/package/example/Bundle-IPS-examples-Bundle-01.json")

# source format → the example document (EU side: an eHDSI Patient Summary and the IPS package's example Bundle)
SOURCES = {
    "ehdsi-cda": EXAMPLES / "ehdsi-ps-all-sections.xml",
    "hl7v2": EXAMPLES / "oru-egfr-somatic.hl7",
    "vcf": EXAMPLES / "germline-grch38.vcf",
    "cda-cn": EXAMPLES / "cn-lab-record.utf8.xml",
    "ws445": EXAMPLES / "cn-ws445-lab.json",
    "fhir-ips": IPS_EXAMPLE,
}
# what identifies each example's patient in the source (checked absent from pseudonymised output)
SECRETS = {
    "ehdsi-cda": ["JORDANA", "Patricia", "+1234567890", "Worcester Drive", "1956-09-30", "21884820"],
    "hl7v2": ["PAT123", "Doe", "Jane", "1970-01-01", "ORD77", "FIL88"],
    "vcf": ["NA12878"],
    "cda-cn": ["110105198503121234", "欧阳明", "13800000001", "1985-03-12"],
    "ws445": ["310115197802230049", "HC3101150001", "慕容秀兰", "13900000002", "示例路", "1978-02-23",
              "MZ20240708015"],
    "fhir-ips": ["574687583", "DeLarosa", "Martha", "+31788700800", "Laan Van Europa", "1972-05-01"],
}


def source_bytes(name: str) -> bytes:
    return SOURCES[name].expanduser().read_bytes()


@pytest.fixture(scope="session")
def converted(validator: Any) -> dict[str, dict[str, Any]]:
    """Each source converted to the hub Bundle (validated), as the pipeline's first step makes it."""
    from gateway.convert import run

    out = {}
    for name in SOURCES:
        data = source_bytes(name)
        src, _ = resolve(data, None, "fhir")
        out[name] = orjson.loads(run(data, Request(src, "fhir", ConvertOptions()), validator).body)
    return out


def key_file(path: Path, kid: str = "k1", seed: bytes = b"test") -> Path:
    import hashlib

    path.write_text(orjson.dumps({"current": kid, "keys": {kid: base64.b64encode(
        hashlib.sha256(seed).digest()).decode()}}).decode())
    path.chmod(0o600)
    return path


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    """The example routes with their demo key, copied where a test may change them."""
    shutil.copy(ROUTES, tmp_path / "routes.json")
    shutil.copy(EXAMPLES / "exchange" / "demo-keys.json", tmp_path / "demo-keys.json")
    (tmp_path / "demo-keys.json").chmod(0o600)
    return tmp_path / "routes.json"


@pytest.fixture
def routes(routes_file: Path) -> Routes:
    return load(routes_file)


def consents() -> list[dict[str, Any]]:
    doc = orjson.loads((EXAMPLES / "exchange" / "consents.json").read_bytes())
    return [e["resource"] for e in doc["entry"]]
