"""Measure and MeasureReport rules the HL7 validator applies in code (its MeasureValidator).

Measure (http://hl7.org/fhir/R4/measure.html): the Libraries it names are resolved, groups / populations /
stratifiers carry codes when there is more than one of them, and CQL stratifier criteria name a definition that
exists in the compiled (ELM) content of one of those Libraries.

MeasureReport (http://hl7.org/fhir/R4/measurereport.html): checked against the Measure it reports on
(`MeasureReport.measure`, a loaded definition or a contained resource): report groups, populations and stratifiers
are matched by code to the Measure's, none may be unknown or duplicated and none may be missing; the measureScore
follows the Measure's scoring (none for cohort measures or data-collection reports, a 0..1 unitless value for
proportions, a value for ratios and continuous variables); the subjectResults follow the report type (only
'subject-list' reports list subjects, and then the count is the number of subjects).
"""

from __future__ import annotations

import base64
import binascii
import weakref
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from profiles.rules import rule

_ELM_NS = "urn:hl7-org:elm:r1"
_CQL = ("text/cql", "text/cql.identifier", "text/cql-identifier", "text/cql.expression", "text/cql-expression")
_SCORINGS = ("proportion", "ratio", "continuous-variable", "cohort")
_POPULATION_CS = "http://terminology.hl7.org/CodeSystem/measure-population"
_CQM_SCORING = "http://hl7.org/fhir/uv/cqm/StructureDefinition/cqm-scoring"
_Q_UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
_DEQM_ALT_SCORE = "http://hl7.org/fhir/us/davinci-deqm/StructureDefinition/extension-alternateScoreType"


def _list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _cc(v: Any) -> dict[str, Any] | None:
    """A CodeableConcept (the first, where the element repeats, as the HL7 validator reads it)."""
    for c in _list(v):
        if isinstance(c, dict):
            return c
    return None


def _codings(cc: Any) -> list[dict[str, Any]]:
    return [c for c in _list(cc.get("coding")) if isinstance(c, dict)] if isinstance(cc, dict) else []


def _has_coding(cc: Any, system: Any, code: Any) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in _codings(cc))


def _matches(cc: dict[str, Any], definition: dict[str, Any] | None) -> bool:
    """Whether a report code carries one of the (system, code) pairs of a Measure element's code."""
    return any(c.get("code") is not None and _has_coding(cc, c.get("system"), c.get("code"))
               for c in _codings(definition))


def _display(cc: dict[str, Any] | None) -> str:
    if not cc:
        return ""
    if cc.get("text"):
        return str(cc["text"])
    return ", ".join(str(c.get("display") or c.get("code") or "") for c in _codings(cc))


def _missing(kind: str, definition: dict[str, Any]) -> str:
    ident = f" (id = '{definition['id']}')" if definition.get("id") else ""
    code = _display(_cc(definition.get("code")))
    return f"The MeasureReport does not include a {kind} for the {kind} with code '{code}'{ident}"


# --- Measure -------------------------------------------------------------------------------------------------------

# Libraries come from the definitions: each one's ELM is decoded and parsed once per Definitions
_ELM_CACHE: weakref.WeakKeyDictionary[Any, dict[int, tuple[dict[str, Any], Element | str | None]]] = (
    weakref.WeakKeyDictionary())


def _elm(defs: Any, lib: dict[str, Any]) -> Element | str | None:
    """The compiled CQL (ELM XML) of a Library: the parsed root, an error message, or None when there is none."""
    cache = _ELM_CACHE.setdefault(defs, {})
    hit = cache.get(id(lib))
    if hit is not None and hit[0] is lib:
        return hit[1]
    out: Element | str | None = None
    for att in _list(lib.get("content")):
        if isinstance(att, dict) and att.get("contentType") == "application/elm+xml":
            try:
                out = fromstring(base64.b64decode(att.get("data") or "", validate=False))
            except (ParseError, DefusedXmlException, binascii.Error, ValueError) as e:
                out = str(e)
    cache[id(lib)] = (lib, out)
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _has_cql_target(elm: Element, name: str) -> bool:
    for stmts in elm:
        if _local(stmts.tag) == "statements":
            return any(_local(d.tag) == "def" and d.get("name") == name for d in stmts)
    return False


def _criteria(defs: Any, crit: dict[str, Any], libs: list[dict[str, Any]], path: str, run: Any) -> None:
    language = crit.get("language")
    if not language:
        return  # required by the Expression datatype: reported elsewhere
    if language not in _CQL:
        run.add("warning", "required", path, f"The expression language {language} is not supported, so can't be "
                "validated")
        return
    if not libs:
        run.add("error", "invalid", path, "No CQL Libraries found on this Measure")
        return
    ref = str(crit.get("expression") or "")
    lib = None
    if "." in ref:  # Library.definition: the Library is the one of that name
        name, ref = ref.split(".", 1)
        for candidate in libs:
            if candidate.get("name") == name:
                if lib is not None:
                    run.add("error", "invalid", path, f"Multiple matching libraries found for the namespace {name}")
                    continue
                lib = candidate
        if lib is None:
            run.add("error", "invalid", path, f"No matching Library found for the namespace {name}")
            return
    elif len(libs) != 1:
        run.add("error", "invalid", path, "If the CQL expression does not include a namespace, there can only be "
                "one Library for the measure")
        return
    else:
        lib = libs[0]
    url = lib.get("url", "")
    elm = _elm(defs, lib)
    if elm is None:
        run.add("error", "invalid", path, f"Error in {url}: No compiled version of CQL found")
    elif isinstance(elm, str):
        run.add("error", "invalid", path, f"Error in {url}: '{elm}'")
    elif elm.tag != f"{{{_ELM_NS}}}library":
        run.add("error", "invalid", path, f"Error in {url}: Compiled version of CQL is not valid")
    elif not _has_cql_target(elm, ref):
        run.add("error", "invalid", path, f"The function {ref} does not exist in the library {url}")


@rule("Measure")
def measure(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    libs = []
    for ref in _list(resource.get("library")):
        if not isinstance(ref, str) or not ref:
            continue
        lib = validator.defs.canonical(ref, "Library")
        if lib is None:
            run.add("information", "not-found", path, f"The Library {ref} could not be resolved, so expression "
                    "validation may not be correct")
        else:
            libs.append(lib)
    groups = [g for g in _list(resource.get("group")) if isinstance(g, dict)]
    if not groups:
        run.add("warning", "required", path, "A measure should contain at least one group")
        return
    for i, group in enumerate(groups):
        gpath = f"{path}.group[{i}]"
        if len(groups) > 1 and not group.get("code"):
            run.add("warning", "required", gpath, "The groups SHALL have codes if there is more than one group")
        pops = _list(group.get("population"))
        if not pops:
            run.add("warning", "required", gpath, "Measure Groups should have at least one population")
        for j, pop in enumerate(pops):
            if len(pops) > 1 and isinstance(pop, dict) and not pop.get("code"):
                run.add("warning", "required", f"{gpath}.population[{j}]", "A measure group population should have "
                        "a code when there is more than one population")
        strata = _list(group.get("stratifier"))
        for j, st in enumerate(strata):
            if not isinstance(st, dict):
                continue
            spath = f"{gpath}.stratifier[{j}]"
            if len(strata) > 1 and not st.get("code"):
                run.add("warning", "required", spath, "A measure group stratifier should have a code when there is "
                        "more than one population")
            if isinstance(st.get("criteria"), dict):
                _criteria(validator.defs, st["criteria"], libs, f"{spath}.criteria", run)
            # The HL7 validator's walk over stratifier components reads group.component, which does not exist,
            # so component criteria are never checked there; nor are they here.


# --- MeasureReport -------------------------------------------------------------------------------------------------

def _scoring(measure_res: dict[str, Any], group: dict[str, Any] | None) -> str | None:
    """The group's scoring (the CQM IG's group-level extension) or else the Measure's."""
    for ext in _list((group or {}).get("extension")):
        if isinstance(ext, dict) and ext.get("url") == _CQM_SCORING:
            codings = _codings(ext.get("valueCodeableConcept"))
            return codings[0].get("code") if codings else None
    codings = _codings(measure_res.get("scoring"))
    return codings[0].get("code") if codings else None


def _find(cc: dict[str, Any], definitions: list[dict[str, Any]], by_text: bool = False) -> dict[str, Any] | None:
    for d in definitions:
        code = _cc(d.get("code"))
        if not code:
            continue
        if _matches(cc, code):
            return d
        if by_text and not _codings(cc) and not _codings(code) and cc.get("text") and cc.get("text") == code.get(
                "text"):
            return d
    return None


def _score(mres: dict[str, Any], mgroup: dict[str, Any], report: dict[str, Any], group: dict[str, Any],
           path: str, run: Any) -> None:
    ms = group.get("measureScore")
    mspath = f"{path}.measureScore"
    scoring = _scoring(mres, mgroup)
    if report.get("type") == "data-collection":
        if ms is not None:
            run.add("error", "business-rule", mspath, "No measureScore when the type of the report is "
                    "'data-collection'")
        return
    if scoring == "cohort":
        if ms is not None:
            run.add("error", "business-rule", mspath, "No measureScore when the scoring of the message is 'cohort'")
        return
    if scoring not in ("proportion", "ratio", "continuous-variable"):
        return  # unknown scoring: hinted at MeasureReport.measure
    if not isinstance(ms, dict):
        run.add("error", "required", path, f"A measureScore is required when the Measure.scoring={scoring}")
        return
    value = ms.get("value")
    if value is None:
        for ext in _list(ms.get("extension")):  # DEQM's alternate score type stands in for the value
            if isinstance(ext, dict) and ext.get("url") == _DEQM_ALT_SCORE:
                value = next((v for k, v in ext.items() if k.startswith("value")), None)
    if value is None:
        run.add("error", "required", mspath, f"A value is required when the Measure.scoring = {scoring}")
        return
    if scoring == "proportion":  # a unitless number from 0 to 1
        for name in ("unit", "system", "code"):
            if ms.get(name) is not None:
                run.add("error", "business-rule", f"{mspath}.{name}", "A measureScore for this Measure Scoring "
                        "(proportion) should not have units")
        try:
            dec = Decimal(str(value))
        except (InvalidOperation, ValueError):
            return  # not a decimal: reported by the datatype checks
        if not 0 <= dec <= 1:
            run.add("error", "required", f"{mspath}.value", "The value is invalid - it must be between 0 and 1")
        return
    unit = next((e.get("valueCoding") for e in _list(mres.get("extension"))
                 if isinstance(e, dict) and e.get("url") == _Q_UNIT and isinstance(e.get("valueCoding"), dict)), None)
    if ms.get("code") is not None:
        if unit is not None:
            if unit.get("code") != ms.get("code"):
                run.add("error", "code-invalid", f"{mspath}.code", f"This value is fixed by the Measure to "
                        f"'{unit.get('code')}'")
            if unit.get("system") != ms.get("system"):
                run.add("error", "code-invalid", mspath, f"This value is fixed by the Measure to "
                        f"'{unit.get('system')}'")
    elif unit is not None:
        run.add("error", "not-found", mspath, f"This value is fixed by the Measure to "
                f"'{unit.get('display') or unit.get('code')}'")
    elif scoring == "ratio":
        run.add("warning", "not-found", mspath, "A unit should be present when the scoring type is ratio")


def _by_code(items: list[Any], definitions: list[dict[str, Any]], element: str, name: str, other: str, path: str,
             run: Any, by_text: bool = False) -> tuple[list[tuple[str, dict[str, Any], dict[str, Any]]], set[int]]:
    """Match a report's groups, populations or stratifiers to the Measure's by code, reporting items with no code,
    no match or a match already taken. Returns (path, item, definition) per match and the ids of those matched."""
    matched: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[int] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        where = f"{path}.{element}[{i}]"
        cc = _cc(item.get("code"))
        if cc is None:
            run.add("error", "business-rule", where, f"Group should have a code that matches the {name} definition "
                    "in the measure")
            continue
        found = _find(cc, definitions, by_text=by_text)
        if found is None:
            run.add("error", "business-rule", where, f"The code for this {name} has no match in the measure "
                    "definition")
        elif id(found) in seen:
            run.add("error", "business-rule", where, f"The code for this {name} is duplicated with another {other}")
        else:
            seen.add(id(found))
            matched.append((where, item, found))
    return matched, seen


def _populations(mgroup: dict[str, Any], report: dict[str, Any], group: dict[str, Any], path: str,
                 run: Any) -> None:
    definitions = [p for p in _list(mgroup.get("population")) if isinstance(p, dict)]
    subject_list = report.get("type") == "subject-list"
    matched, seen = _by_code(_list(group.get("population")), definitions, "population", "group population", "group",
                             path, run)
    for ppath, pop, _ in matched:
        subjects = len(_list(pop.get("subjectResults")))
        if subject_list:  # the count is the number of subjects listed
            count = pop.get("count")
            if isinstance(count, int) and not isinstance(count, bool) and count != subjects:
                run.add("error", "business-rule", ppath, f"Mismatch between count {count} and number of subjects "
                        f"{subjects}")
        else:
            if subjects:
                run.add("error", "business-rule", ppath, "Reports where type is not 'subject-list' don't have "
                        "subjects listed")
            if pop.get("count") is None:
                run.add("warning", "business-rule", ppath, "Count should be present for reports where type is not "
                        "'subject-list'")
    for mp in definitions:
        # measure-observation populations hold the observations of a continuous variable, not a count
        if id(mp) not in seen and not _has_coding(_cc(mp.get("code")), _POPULATION_CS, "measure-observation"):
            run.add("error", "business-rule", path, _missing("population", mp))


def _stratifiers(mgroup: dict[str, Any], group: dict[str, Any], path: str, run: Any) -> None:
    definitions = [s for s in _list(mgroup.get("stratifier")) if isinstance(s, dict)]
    _, seen = _by_code(_list(group.get("stratifier")), definitions, "stratifier", "group stratifier", "stratifier",
                       path, run, by_text=True)
    for ms in definitions:
        if id(ms) not in seen:
            run.add("error", "business-rule", path, _missing("stratifier", ms))


def _group(mres: dict[str, Any], mgroup: dict[str, Any], report: dict[str, Any], group: dict[str, Any], path: str,
           run: Any) -> None:
    _populations(mgroup, report, group, path, run)
    _score(mres, mgroup, report, group, path, run)
    _stratifiers(mgroup, group, path, run)


@rule("MeasureReport")
def measure_report(validator: Any, resource: dict[str, Any], path: str, run: Any) -> None:
    ref = resource.get("measure")
    if isinstance(ref, dict):  # STU3-style Reference, accepted as the HL7 validator does
        ref = ref.get("reference")
    if not isinstance(ref, str) or not ref:
        run.add("information", "required", path, "No Measure is identified, so no validation can be performed "
                "against the Measure")
        return
    mres = run.resolve(ref) if ref.startswith("#") else validator.defs.canonical(ref, "Measure")
    if not isinstance(mres, dict) or mres.get("resourceType") != "Measure":
        run.add("warning", "required", path, f"The Measure '{ref}' could not be resolved, so no validation can be "
                "performed against the Measure")
        return
    if _scoring(mres, None) not in _SCORINGS:
        run.add("information", "business-rule", f"{path}.measure", "The scoring system in this measure is unknown, "
                "so the measureScore values cannot be checked")
    mgroups = [g for g in _list(mres.get("group")) if isinstance(g, dict)]
    if not mgroups:
        return  # nothing to check the report's groups against
    groups = [g for g in _list(resource.get("group")) if isinstance(g, dict)]
    if len(groups) == 1 and len(mgroups) == 1:
        # a single group may be (and usually is) anonymous; if both have a code, they must agree
        group, mgroup, gpath = groups[0], mgroups[0], f"{path}.group[0]"
        cc, mcc = _cc(group.get("code")), _cc(mgroup.get("code"))
        if cc is not None and mcc is not None:
            if not any(c.get("system") and c.get("code") for c in _codings(cc)):
                run.add("error", "business-rule", gpath, "None of the codes provided are usable for comparison - "
                        "need both system and code on at least one code")
            elif not _matches(cc, mcc):
                run.add("error", "business-rule", gpath, f"The code provided ({_display(cc)}) does not match the "
                        f"code defined for this group in the measure ({_display(mcc)})")
        _group(mres, mgroup, resource, group, gpath, run)
        return
    matched, seen = _by_code(groups, mgroups, "group", "group", "group", path, run)
    for gpath, group, mgroup in matched:
        _group(mres, mgroup, resource, group, gpath, run)
    if resource.get("type") != "data-collection":  # a data collection may report on some groups only
        for mgroup in mgroups:
            if id(mgroup) not in seen:
                run.add("error", "business-rule", path, _missing("group", mgroup))
