"""Consent (GDPR Art. 9(2)(a) explicit consent, Art. 49(1)(a); PIPL Art. 29 and 39 separate consent for sensitive
personal information and for export): a FHIR R4 Consent must permit the transfer for every patient of the Bundle.

A Consent matches when (R4 Consent, consent.html): status is `active`; scope is patient-privacy or research;
`patient` names the patient (a reference to its entry, or an identifier it carries); the base provision is a
`permit` whose `period` (when stated) covers the day of the transfer; `provision.purpose` holds the transfer's
purpose (v3 ActReason, e.g. TREAT, HRESCH); `provision.actor` names the route's destination partner with role IRCP
(information recipient, v3 ParticipationType) by identifier; `provision.class` covers each data class the route
asks for and, when the content holds genetic information, `urn:helixgate:exchange:data-class|genetic`. A nested
provision of type `deny` that matches the purpose or a needed class withdraws it. A matching Consent of status
`rejected`/`inactive`, or one whose period has ended, is named in the refusal.

Where the route asks for separate consent for sensitive data (`separateConsent`), a Consent given for that alone,
carrying the route's category (default `urn:helixgate:exchange:consent-category|separate-sensitive`), must match
the same way; `separateConsent: {"geneticOnly": true}` asks for it only when the content holds genetic data.
"""

from __future__ import annotations

from typing import Any

from gateway.exchange.rules import Refused, Step
from gateway.exchange.rules.bundle import aliases, patients
from gateway.exchange.rules.facts import Transfer
from gateway.exchange.rules.genetic import HGR, census, withheld

DATA_CLASS = "urn:helixgate:exchange:data-class"
CATEGORY = "urn:helixgate:exchange:consent-category"
SEPARATE = {"system": CATEGORY, "code": "separate-sensitive"}
RECIPIENT_ROLE = ("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")


def _codings(concepts: Any) -> list[dict[str, Any]]:
    items = concepts if isinstance(concepts, list) else [concepts]
    out: list[dict[str, Any]] = []
    for c in items:
        if isinstance(c, dict):
            out += [x for x in c.get("coding") or [] if isinstance(x, dict)] if "coding" in c else [c]
    return out


def _has(codings: list[dict[str, Any]], system: str | None, code: str) -> bool:
    return any(c.get("code") == code and (system is None or c.get("system") == system) for c in codings)


def _identifiers(patient: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i.get("system", ""), i.get("value", "")) for i in patient.get("identifier") or [] if isinstance(i, dict)}


def _names_patient(consent: dict[str, Any], index: int, patient: dict[str, Any], names: dict[str, int]) -> bool:
    ref = consent.get("patient")
    if not isinstance(ref, dict):
        return False
    if isinstance(ref.get("reference"), str) and names.get(ref["reference"]) == index:
        return True
    ident = ref.get("identifier")
    return isinstance(ident, dict) and (ident.get("system", ""), ident.get("value", "")) in _identifiers(patient)


def _covers(period: Any, day: str) -> bool:
    if not isinstance(period, dict):
        return True
    start, end = str(period.get("start", ""))[:10], str(period.get("end", ""))[:10]
    return (not start or start <= day) and (not end or day <= end)


def _recipient(provision: dict[str, Any], partner: dict[str, str]) -> bool:
    for actor in provision.get("actor") or []:
        if not isinstance(actor, dict) or not _has(_codings(actor.get("role")), *RECIPIENT_ROLE):
            continue
        ident = (actor.get("reference") or {}).get("identifier") or {}
        if ident.get("system") == partner.get("system") and ident.get("value") == partner.get("value"):
            return True
    return False


def _denied(provision: dict[str, Any], purpose: str, classes: list[dict[str, str]], day: str) -> str | None:
    for sub in provision.get("provision") or []:
        if not isinstance(sub, dict) or sub.get("type") != "deny" or not _covers(sub.get("period"), day):
            continue
        if _has(_codings(sub.get("purpose")), None, purpose):
            return f"a deny provision for purpose {purpose}"
        for c in classes:
            if _has(_codings(sub.get("class")), c["system"], c["code"]):
                return f"a deny provision for data class {c['code']}"
    return None


def mismatch(consent: dict[str, Any], transfer: Transfer, partner: dict[str, str], classes: list[dict[str, str]],
             category: dict[str, str] | None = None) -> str | None:
    """Why `consent` (already known to name the patient) does not permit the transfer; None when it does."""
    if consent.get("status") != "active":
        return f"its status is {consent.get('status')!r}, not active"
    if not (_has(_codings(consent.get("scope")), None, "patient-privacy") or
            _has(_codings(consent.get("scope")), None, "research")):
        return "its scope is neither patient-privacy nor research"
    if category and not _has(_codings(consent.get("category")), category["system"], category["code"]):
        return f"it is not a {category['code']} consent (category {category['system']}|{category['code']})"
    provision = consent.get("provision")
    if not isinstance(provision, dict) or provision.get("type", "permit") != "permit":
        return "its base provision does not permit"
    if not _covers(provision.get("period"), transfer.day):
        return f"its period does not cover {transfer.day}"
    if not _has(_codings(provision.get("purpose")), None, transfer.purpose_code):
        return f"it does not permit purpose {transfer.purpose_code}"
    if not _recipient(provision, partner):
        return f"it does not name the recipient {partner.get('system')}|{partner.get('value')} (role IRCP)"
    listed = _codings(provision.get("class"))
    for c in classes:
        if not _has(listed, c["system"], c["code"]):
            return f"it does not cover data class {c['system']}|{c['code']}"
    return _denied(provision, transfer.purpose_code, classes, transfer.day)


def apply(bundle: dict[str, Any], route: dict[str, Any], transfer: Transfer) -> Step:
    rule = (route.get("rules") or {}).get("consent") or {}
    if not rule.get("required"):
        return Step(bundle, [], {})
    partner = (route.get("destination") or {}).get("partner") or {}
    classes = [dict(c) for c in rule.get("dataClasses") or []]
    genetic = census(bundle)["class"] == HGR and not withheld(route, transfer.filing)
    if genetic:
        classes.append({"system": DATA_CLASS, "code": "genetic"})
    separate = rule.get("separateConsent")
    category = (separate.get("category") if isinstance(separate, dict) else None) or SEPARATE
    needs_separate = bool(separate) and (genetic or not (isinstance(separate, dict) and separate.get("geneticOnly")))
    names = aliases(bundle)
    found = patients(bundle)
    if not found:
        raise Refused("consent", "the content names no Patient, so no consent can be matched to it",
                      "send content whose subject is a Patient")
    used: list[str] = []
    for index, patient in found:
        mine = [c for c in transfer.consents if isinstance(c, dict) and c.get("resourceType") == "Consent"
                and _names_patient(c, index, patient, names)]
        who = f"Patient/{patient.get('id')}"
        why = {id(c): mismatch(c, transfer, partner, classes) for c in mine}
        general = [c for c in mine if why[id(c)] is None]
        wanted = (f"an active Consent for {who} (patient reference or identifier) with scope patient-privacy, a "
                  f"permit provision covering {transfer.day}, purpose {transfer.purpose_code}, actor role IRCP "
                  f"{partner.get('system')}|{partner.get('value')}"
                  + (f" and classes {', '.join(c['code'] for c in classes)}" if classes else ""))
        if not general:
            said = "; ".join(f"Consent/{c.get('id', '?')}: {why[id(c)]}" for c in mine) or "none was supplied or found"
            raise Refused("consent", f"no consent permits this transfer for {who} ({said})", wanted)
        used.append(str(general[0].get("id", "")))
        if needs_separate:
            sep = [c for c in mine if mismatch(c, transfer, partner, classes, category) is None]
            if not sep:
                raise Refused("consent", f"the route needs separate consent for sensitive data (PIPL Art. 29/39) "
                              f"and none was found for {who}",
                              f"a second Consent like the first with category {category['system']}|"
                              f"{category['code']}")
            if sep[0] is not general[0]:
                used.append(str(sep[0].get("id", "")))
    return Step(bundle, [], {"consents": used})
