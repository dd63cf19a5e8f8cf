"""Composition.date is 1..1: the document time, else the next best source time named in a warning, else a refusal.
Bundle.timestamp, Provenance.recorded and DiagnosticReport.issued come from the document time or are left out."""

from __future__ import annotations

import re

import pytest

from mappers.cda_cn import Options, to_fhir
from mappers.cda_cn.format import FORMAT
from mappers.exceptions import UnsupportedMessage
from mappers.toolkit.registry import ConvertOptions
from tests.mappers.cda_cn.helpers import SAMPLES, details, one, resources

NO_TIME = (SAMPLES / "edge" / "lab-no-time.utf8.xml").read_bytes()
LAB = (SAMPLES / "lab-cbc.utf8.xml").read_bytes()


def test_empty_effective_time_takes_the_author_time() -> None:
    c = to_fhir(NO_TIME)
    comp = one(c.bundle, "Composition")
    assert comp["date"] == "2024-06-12T09:10:00+08:00"
    warning = next(i for i in c.issues if i.details == "cda-document-time-substituted")
    assert warning.severity == "warning" and warning.expression == "/ClinicalDocument/author/time"
    assert "ClinicalDocument/effectiveTime is empty or absent; Composition.date is the author time" in warning.message
    assert c.origins[f"{comp['id']}:date"] == "/ClinicalDocument/author/time"
    # no document instant: nothing else claims one
    assert "timestamp" not in c.bundle and "issued" not in one(c.bundle, "DiagnosticReport")
    assert not resources(c.bundle, "Provenance") and not resources(c.bundle, "Device")
    assert "cn-no-provenance" in details(c.issues)


def test_the_caller_may_state_the_recorded_instant() -> None:
    c = to_fhir(NO_TIME, Options(recorded="2024-06-12T10:00:00+08:00"))
    prov = one(c.bundle, "Provenance")
    assert prov["recorded"] == "2024-06-12T10:00:00+08:00" and "occurredDateTime" not in prov
    assert "timestamp" not in c.bundle  # the option states when it was recorded, not when the document was made
    bad = to_fhir(NO_TIME, Options(recorded="yesterday"))
    assert not resources(bad.bundle, "Provenance") and "cn-bad-recorded-option" in details(bad.issues)


@pytest.mark.parametrize(("drop", "source", "expected"), [
    (("author",), "/ClinicalDocument/legalAuthenticator/time", "2024-03-15T10:25:00+08:00"),
    (("author", "legalAuthenticator"), "/ClinicalDocument/component/structuredBody/component[2]/section/entry[3]/"
     "organizer/component[1]/observation/effectiveTime", "2024-03-15T09:30:00+08:00"),
])
def test_the_next_best_time_in_order(drop: tuple[str, ...], source: str, expected: str) -> None:
    data = LAB.replace(b'<effectiveTime value="20240315103000"/>', b"")
    for name in drop:
        data = re.sub(rb"<%s[ >].*?</%s>" % (name.encode(), name.encode()), b"", data, count=1, flags=re.S)
    c = to_fhir(data)
    comp = one(c.bundle, "Composition")
    assert comp["date"] == expected
    assert next(i for i in c.issues if i.details == "cda-document-time-substituted").expression == source


def test_an_invalid_effective_time_is_dropped_and_substituted() -> None:
    c = to_fhir(LAB.replace(b'<effectiveTime value="20240315103000"/>', b'<effectiveTime value="20240230103000"/>'))
    bad = next(i for i in c.issues if i.details == "cn-bad-time")
    assert bad.expression == "/ClinicalDocument/effectiveTime" and "'20240230103000'" in bad.message
    assert one(c.bundle, "Composition")["date"] == "2024-03-15T10:20:00+08:00"  # author/time
    assert "invalid ('20240230103000')" in next(i.message for i in c.issues
                                                if i.details == "cda-document-time-substituted")


def test_a_date_only_document_time_is_a_date_and_no_instant() -> None:
    c = to_fhir(LAB.replace(b'<effectiveTime value="20240315103000"/>', b'<effectiveTime value="20240315"/>'))
    assert one(c.bundle, "Composition")["date"] == "2024-03-15"
    assert "timestamp" not in c.bundle and not resources(c.bundle, "Provenance")


def test_no_time_anywhere_is_refused_naming_the_element() -> None:
    data = re.sub(rb'<(effectiveTime|time|low|high) value="\d+"/>', b"", NO_TIME)
    with pytest.raises(UnsupportedMessage) as e:
        to_fhir(data)
    issue = e.value.issues[0]
    assert issue.details == "cda-no-document-time" and issue.expression == "/ClinicalDocument/effectiveTime"
    assert "Composition.date (required) cannot be set" in issue.message


def test_document_instant_feeds_timestamp_recorded_and_issued() -> None:
    c = to_fhir(LAB)
    assert c.bundle["timestamp"] == "2024-03-15T10:30:00+08:00"
    assert one(c.bundle, "Provenance")["recorded"] == "2024-03-15T10:30:00+08:00"
    assert one(c.bundle, "DiagnosticReport")["issued"] == "2024-03-15T10:30:00+08:00"
    utc = to_fhir(LAB, Options(timezone="+00:00")).bundle  # the zone option applies to zoneless source times
    assert utc["timestamp"] == "2024-03-15T10:30:00+00:00"


def test_the_received_option_is_gone_and_the_format_passes_recorded() -> None:
    with pytest.raises(TypeError):
        Options(received="2024-01-01T00:00:00Z")  # type: ignore[call-arg]
    conv = FORMAT.to_fhir(NO_TIME, ConvertOptions(recorded="2024-06-12T10:00:00+08:00"))  # type: ignore[misc]
    device = one(conv.bundle, "Device")
    assert device["version"] == [{"value": "cda-cn/0.2.0"}] and FORMAT.version == "cda-cn/0.2.0"
    assert one(conv.bundle, "Provenance")["recorded"] == "2024-06-12T10:00:00+08:00"
