"""The Python API (gateway.api, re-exported as `helixgate`): types in, typed results out, the same answers as the
HTTP operations; and with the `fhir` extra, every resource helixgate emits — each format's example converted to FHIR,
and the FHIR documents written from it (IPS, EU lab report) — reads into the fhir.resources R4B models and writes
back unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import helixgate
from gateway import api
from mappers.exceptions import MappingError, ParseError
from mappers.toolkit.registry import HUB, get, registry
from tests.conftest import ROOT
from tests.corpora import params

# the inputs in examples/ (not the *.facts.json beside some of them: what a test expects of the input)
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_file() and ".facts." not in p.name)
ORU = ROOT / "examples" / "oru-egfr-somatic.hl7"


def test_helixgate_is_the_api() -> None:
    assert (helixgate.convert, helixgate.validate, helixgate.translate) == (api.convert, api.validate, api.translate)


def test_convert_types_in_typed_result_out() -> None:
    for given in (ORU, ORU.read_bytes(), ORU.read_text()):
        result = helixgate.convert(given)
        assert isinstance(result, helixgate.Conversion)
        assert (result.source, result.target) == ("hl7v2", HUB)
        assert result.media_type.startswith("application/fhir+json")
        bundle = result.json()
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection" and bundle["entry"]
        assert result.report["resourceType"] == "OperationOutcome"
        assert all(isinstance(i, helixgate.Issue) for i in result.issues)
        assert len(result.issues) == len(result.report.get("issue", []))
    back = helixgate.convert(bundle, source="fhir", target="hl7v2")
    assert back.text().startswith("MSH|") and "ORU^R01" in back.text()
    with pytest.raises(ValueError, match="not FHIR JSON"):
        back.resource()
    as_transaction = helixgate.convert(ORU, bundle_type="transaction")
    assert as_transaction.json()["type"] == "transaction"


def test_conversion_errors_are_raised_with_their_outcome() -> None:
    with pytest.raises(ParseError) as e:
        helixgate.convert(b"MSH|not a message", source="hl7v2")
    outcome = e.value.outcome()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
    with pytest.raises(MappingError):
        helixgate.convert(ORU, options={"assembly": "GRCh99"}, target="vcf")
    with pytest.raises(TypeError):
        helixgate.convert(42)  # type: ignore[arg-type]


def test_validate_and_translate() -> None:
    bad = helixgate.validate({"resourceType": "Patient", "gender": "nope"})
    assert not bad.valid and bad.errors >= 1
    assert any(i.expression == ("Patient.gender",) and i.severity == "error" for i in bad.issues)
    good = helixgate.validate(b'{"resourceType": "Patient", "gender": "female"}')
    assert good.valid, good.issues
    with pytest.raises(ParseError):
        helixgate.validate(b"[1, 2]")
    t = helixgate.translate("F", "http://terminology.hl7.org/CodeSystem/v2-0001")
    assert isinstance(t, helixgate.Translation) and t.result
    assert ("equivalent", "http://hl7.org/fhir/administrative-gender", "female") in {
        (m.equivalence, m.system, m.code) for m in t.matches}
    assert t.parameters["resourceType"] == "Parameters" and all(m.source for m in t.matches)
    missing = helixgate.translate("F", "http://example.org/no-maps-from-here")
    assert not missing.result and missing.message
    with pytest.raises(LookupError):
        helixgate.translate("x", url="urn:no-such-map")


ROUTES = ROOT / "examples" / "exchange" / "routes.json"
CONSENTS = [e["resource"] for e in orjson.loads((ROOT / "examples/exchange/consents.json").read_bytes())["entry"]]


def test_exchange_permits_refuses_and_answers_as_the_route_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELIXGATE_EXCHANGE_ROUTES", raising=False)
    monkeypatch.delenv("HELIXGATE_REDIS_URL", raising=False)  # counters and trail in process
    common = {"route": "cn-eu-treatment", "purpose": "treatment", "routes": ROUTES, "consents": CONSENTS,
              "mechanisms": ["CN-SC-2026-0042"]}
    done = helixgate.exchange(ORU, filing="MOST-HGR-2026-0001", **common)
    assert isinstance(done, helixgate.Exchange) and done.decision == "permit"
    document = orjson.loads(done.output)
    assert document["resourceType"] == "Bundle" and document["type"] == "document"  # the route's target: IPS
    names = [p["name"] for p in done.parameters["parameter"]]
    assert names[0] == "decision" and "output" in names and "provenance" in names
    with pytest.raises(helixgate.Refused) as refused:  # genetic content without the HGR filing id
        helixgate.exchange(ORU, **common)
    issue = refused.value.outcome()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "genetic" and "filing" in issue["diagnostics"]
    research = helixgate.exchange(ROOT / "examples/cn-lab-record.utf8.xml", route="eu-cn-research",
                                  purpose="research", routes=ROUTES, mechanisms=["EU-SCC-2021-914-M1-0007"],
                                  dry_run=True)
    assert research.decision == "permit" and research.output == b"" and research.changes
    assert all({"rule", "action", "path"} <= set(c) for c in research.changes)
    with pytest.raises(ValueError, match="HELIXGATE_EXCHANGE_ROUTES"):
        helixgate.exchange(ORU, route="x", purpose="treatment")


def _emitted(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The FHIR documents helixgate emits for one input: its conversion to FHIR, and each FHIR-writing target's
    document from that (a target that refuses this content — e.g. no time of day for a document — is left out)."""
    first = api.convert(path)
    out = [(f"{first.source}->fhir", first.json())]
    for fmt in registry().values():
        if fmt.fhir_of is None or fmt.from_fhir is None or fmt.media_type.startswith("application/fhir+xml"):
            continue  # FHIR XML writes the same resources as the JSON above
        try:
            written = api.convert(first.output, source=HUB, target=fmt.name)
        except MappingError:
            continue
        out.append((f"{first.source}->{fmt.name}", get(fmt.name).fhir_of(written.output)))
    return out


def _differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return [d for k in a for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [(path, a, b)]


def known(before: Any, after: Any) -> bool:
    """The one change the models make (gateway.api's docstring and README list it): a time in UTC written with
    '+00:00' comes back with 'Z' — the same instant (FHIR allows both, R4 datatypes.html#dateTime)."""
    return (isinstance(before, str) and isinstance(after, str) and before.endswith("+00:00")
            and after == before[:-6] + "Z")


def _round_trip(label: str, resource: dict[str, Any]) -> None:
    for doc in (resource, *(e["resource"] for e in resource.get("entry", []))):
        back = api.from_model(api.as_model(doc))
        changed = [d for d in _differences(doc, back) if not known(d[1], d[2])]
        assert not changed, f"{label}: {doc['resourceType']}/{doc.get('id')} changed through fhir.resources R4B: " \
                            f"{changed[:5]}"


def test_the_known_change_is_the_utc_offset_only() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "timestamp": "2013-06-19T00:00:00+00:00"}
    back = api.from_model(api.as_model(bundle))
    assert _differences(bundle, back) == [(".timestamp", "2013-06-19T00:00:00+00:00", "2013-06-19T00:00:00Z")]
    assert not known("2013-06-19T00:00:00+01:00", "2013-06-19T00:00:00Z")
    other = {**bundle, "timestamp": "2013-06-19T08:00:00+08:00"}
    assert api.from_model(api.as_model(other)) == other  # other offsets are kept as written


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_emitted_resource_round_trips_through_fhir_resources(path: Path) -> None:
    pytest.importorskip("fhir.resources", reason="the fhir extra (the test extra installs it)")
    for label, doc in _emitted(path):
        _round_trip(label, doc)


def _ehdsi(folder: Path) -> list[Any]:
    summaries = [p for p in sorted(folder.glob("*.xml")) if "-eP-" not in p.name]
    return [pytest.param(p, id=p.name) for p in summaries[:2]]


@pytest.mark.parametrize("path", params("ehdsi-cda", _ehdsi))
def test_ehdsi_outputs_round_trip_through_fhir_resources(path: Path) -> None:
    for label, doc in _emitted(path):
        _round_trip(label, doc)


def test_every_format_that_reads_has_an_example_here() -> None:
    readers = {f.name for f in registry().values() if f.to_fhir} - {HUB}
    covered = {api.convert(p).source for p in EXAMPLES} | {"ehdsi-cda"}  # its inputs: the eHDSI corpus, above
    assert readers <= covered, f"no example in examples/ for {sorted(readers - covered)}"


def test_models_are_r4b_and_say_what_is_missing() -> None:
    model = api.as_model({"resourceType": "Patient", "gender": "female"})
    assert type(model).__module__.startswith("fhir.resources.R4B.")
    assert orjson.loads(model.model_dump_json(by_alias=True, exclude_none=True))["gender"] == "female"


DOCS = ROOT / "docs" / "python-api.md"


def _examples() -> list[Any]:
    import re

    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    return [pytest.param(b, id=f"block{i}") for i, b in enumerate(blocks)]


def test_the_docs_page_has_examples() -> None:
    assert len(_examples()) >= 4


@pytest.mark.parametrize("block", _examples())
def test_docs_examples_run(block: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each ```python block of docs/python-api.md, run from the repository's root as written: it must not raise,
    and it prints what it shows."""
    monkeypatch.chdir(ROOT)
    exec(compile(block, str(DOCS), "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.strip()
