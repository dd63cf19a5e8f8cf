"""Vital signs: "If implementations use this code (a LOINC code of the vital signs table) they SHALL conform
to the vital signs profile" (http://hl7.org/fhir/R4/observation-vitalsigns.html). The HL7 validator applies
the matching profile to every Observation carrying one of these codes (or a SNOMED CT equivalent), whether
or not meta.profile claims it; so does this rule."""

from __future__ import annotations

import dataclasses
from typing import Any

from profiles.rules import rule, validate_against

_VS = "http://hl7.org/fhir/StructureDefinition/"
# (system, profile, name, codes): the first row with a matching coding wins, LOINC rows before SNOMED CT ones.
_TABLE: list[tuple[str, str, str, frozenset[str]]] = [
    ("LOINC", "vitalspanel", "Vital Signs Panel", frozenset({"85353-1"})),
    ("LOINC", "resprate", "Respiratory Rate", frozenset({
        "9279-1", "76170-0", "76172-6", "76171-8", "19840-8", "33438-3", "76270-8", "11291-2"})),
    ("LOINC", "heartrate", "Heart rate", frozenset({
        "60978-4", "73795-7", "73799-9", "76476-1", "76477-9", "8867-4", "8889-8", "8890-6", "8891-4", "8892-2",
        "8893-0", "40443-4", "55425-3", "68999-2", "11328-2", "69000-8", "8886-4"})),
    ("LOINC", "oxygensat", "Oxygen saturation", frozenset({
        "2708-6", "19224-5", "20564-1", "2709-4", "2710-2", "2711-0", "2713-6", "51733-4", "59408-5", "59417-6",
        "89276-0", "97549-0"})),
    ("LOINC", "bodytemp", "Body temperature", frozenset({
        "8310-5", "60834-9", "60835-6", "60836-4", "60838-0", "60955-2", "61009-7", "75539-7", "75987-8", "76010-8",
        "76011-6", "76278-1", "8309-7", "8328-7", "8329-5", "8330-3", "8331-1", "8332-9", "8333-7", "8334-5",
        "91371-5", "98657-0", "98663-8"})),
    ("LOINC", "bodyheight", "Body height", frozenset({"8302-2", "3137-7", "3138-5", "8306-3", "8308-9"})),
    ("LOINC", "headcircum", "Head circumference", frozenset({"9843-4", "8287-5"})),
    ("LOINC", "bodyweight", "Body weight", frozenset({
        "29463-7", "3141-9", "3142-7", "75292-3", "79348-9", "8350-1", "8351-9"})),
    ("LOINC", "bmi", "Body mass index", frozenset({"39156-5", "59574-4", "89270-3"})),
    ("LOINC", "bp", "Blood pressure systolic and diastolic", frozenset({
        "85354-9", "35094-2", "8459-0", "76534-7", "55284-4", "8480-6"})),
    ("SNOMED CT", "vitalspanel", "Vital Signs Panel", frozenset({"46680005"})),
    ("SNOMED CT", "resprate", "Respiratory Rate", frozenset({"86290005", "271625008", "271306003"})),
    ("SNOMED CT", "heartrate", "Heart rate", frozenset({
        "249043002", "444981005", "399017001", "251670001", "429525003", "429614003"})),
    ("SNOMED CT", "oxygensat", "Oxygen saturation", frozenset({
        "103228002", "442349007", "442476006", "442440005", "431314004", "442734002", "713194001"})),
    ("SNOMED CT", "bodytemp", "Body temperature", frozenset({
        "386725007", "276885007", "300076005", "1222808002", "364246006", "307047009", "708499008", "431598003",
        "698831002", "698832009", "415882003", "415974002", "415929009", "415945006"})),
    ("SNOMED CT", "bodyheight", "Body height", frozenset({
        "1153637007", "1162419008", "50373000", "1162418000", "1230278008", "1162392001", "1162417005"})),
    ("SNOMED CT", "headcircum", "Head circumference", frozenset({"363812007", "169876006", "1269262007"})),
    ("SNOMED CT", "bodyweight", "Body weight", frozenset({
        "363811000", "735395000", "425024002", "424927000", "784399000", "1162416001", "1162415002"})),
    ("SNOMED CT", "bmi", "Body mass index", frozenset({"60621009"})),
    ("SNOMED CT", "bp", "Blood pressure systolic and diastolic", frozenset({
        "75367002", "251076008", "163033001", "163035008", "386534000", "386536003", "271649006", "271650006",
        "407556006", "407554009", "716579001", "399304008"})),
]
_SYSTEMS = {"LOINC": "http://loinc.org", "SNOMED CT": "http://snomed.info/sct"}


_BY_CODE: dict[tuple[str, str], int] = {}
for _row, (_sysname, _, _, _codes) in enumerate(_TABLE):
    for _code in _codes:
        _BY_CODE.setdefault((_SYSTEMS[_sysname], _code), _row)


def vital_signs_profile(code: Any) -> tuple[str, str, str, str] | None:
    """(profile url, name, code system name, code) that an Observation.code requires, or None."""
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        return None
    hits = [(_BY_CODE[key], key[1]) for c in codings if isinstance(c, dict) and isinstance(c.get("system"), str)
            and isinstance(c.get("code"), str) and (key := (c["system"], c["code"])) in _BY_CODE]
    if not hits:
        return None
    row, hit = min(hits)  # the table's order: LOINC rows before SNOMED CT ones
    sysname, profile, name, _ = _TABLE[row]
    return _VS + profile, name, sysname, hit


@rule("Observation")
def check_vital_signs(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    found = vital_signs_profile(resource.get("code"))
    if found is None:
        return
    url, name, sysname, code = found
    if url in run.applied:
        return  # checked already as a claimed (or requested) profile
    node = validator.node(url)
    if node is None:
        return
    run.add("information", "informational", path, f"Validate Observation against the {name} profile ({url}) "
            f"which is required by the FHIR specification because the {sysname} code {code} was found")
    start = len(run.issues)
    validate_against(validator, resource, node, path, run)
    # The profiles bind every component's units to ucum-vitals-common (required), which the spec's own examples
    # leave (FiO2 flow in L/min beside an oxygen saturation): the HL7 validator reports that binding, and only
    # that one, as a warning.
    for k in range(start, len(run.issues)):
        i = run.issues[k]
        if i.severity == "error" and i.code == "code-invalid" and "/ValueSet/ucum-vitals-common" in i.message:
            run.issues[k] = dataclasses.replace(i, severity="warning")
