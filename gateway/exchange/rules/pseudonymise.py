"""Pseudonymisation (GDPR Art. 4(5): the additional information — the key — kept separately; PIPL Art. 73(4)).

Every Identifier in the Bundle (resources', references', Bundle.identifier) becomes
`{system: urn:helixgate:pseudonym:<destination>:<key id>, value: HMAC-SHA-256(key, destination ␀ system|value)}`
(the first 128 bits, hex): the same identifier gives the same pseudonym for the same destination and key, in this
Bundle and in every later transfer, and nobody without the key can compute or reverse it. Re-identification is
recomputing the HMAC over the source's own identifiers (`reidentify`). Resource ids (mostly UUIDv5 of business keys,
so computable from a known identifier) are replaced the same way and every reference, fullUrl and request URL is
rewritten to match. What names or locates a person and cannot be pseudonymised is removed: Patient/RelatedPerson
name (a Patient keeps one name saying data-absent-reason masked, as IPS requires a name), telecom, address, photo,
contact, link and extensions holding free text (mothersMaidenName); HumanName/Address/ContactPoint values of
extensions; the display of references; narratives; attachments' data and urls (a report's PDF); `meta.source`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any
from urllib.parse import quote

from gateway.exchange.rules import Change, Step
from gateway.exchange.rules.bundle import WITHHELD, copied, name_of, resources
from gateway.exchange.rules.minimise import DATA_ABSENT, _narrative

SYSTEM = "urn:helixgate:pseudonym:"
PERSON = ("Patient", "RelatedPerson", "Person")
_PERSON_ELEMENTS = ("name", "telecom", "address", "photo", "contact", "link")
_PERSONAL_VALUES = ("valueHumanName", "valueAddress", "valueContactPoint")
# a person's extensions holding free text or documents (mothersMaidenName is a valueString): removed
_PERSON_EXTENSION_VALUES = ("valueString", "valueMarkdown", "valueAttachment", "valueAnnotation")
_REF = re.compile(r"(?:(.*/))?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?\Z")
_IF_NONE_EXIST = re.compile(r"identifier=([^|&]*)\|([^&]*)\Z")


def system_of(destination: str, key_id: str) -> str:
    return f"{SYSTEM}{quote(destination, safe='-._~')}:{quote(key_id, safe='-._~')}"


def pseudonym(key: bytes, destination: str, system: str, value: str) -> str:
    """The pseudonym of identifier system|value for `destination` under `key` (128 bits, hex)."""
    msg = f"{destination}\x00{system}|{value}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()[:32]


def _uuid(key: bytes, destination: str, text: str) -> str:
    h = hmac.new(key, f"{destination}\x00id\x00{text}".encode(), hashlib.sha256).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class _Pseudonymiser:
    def __init__(self, key: bytes, key_id: str, destination: str) -> None:
        self.key, self.destination = key, destination
        self.system = system_of(destination, key_id)
        self.ids: dict[str, str] = {}  # 'Type/old' → new id
        self.urls: dict[str, str] = {}  # old fullUrl → new fullUrl
        self.types: dict[str, str] = {}  # old fullUrl / Type/id → resource type
        self.replaced: dict[tuple[str, str], str] = {}
        self.changes: list[Change] = []

    def identifier(self, ident: Any) -> Any:
        if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
            return ident
        old = (str(ident.get("system", "")), ident["value"])
        new = self.replaced.setdefault(old, pseudonym(self.key, self.destination, *old))
        out = {"system": self.system, "value": new}
        if ident.get("use") in ("usual", "official", "secondary"):
            out["use"] = ident["use"]
        return out

    def reference(self, text: str) -> str:
        if text in self.urls:
            return self.urls[text]
        m = _REF.match(text)
        if m and f"{m.group(2)}/{m.group(3)}" in self.ids:
            return f"{m.group(1) or ''}{m.group(2)}/{self.ids[m.group(2) + '/' + m.group(3)]}{m.group(4) or ''}"
        if text.startswith("#"):
            return text
        # a reference to something outside the Bundle: its id may be as telling as an identifier
        if m:
            return f"{m.group(2)}/{_uuid(self.key, self.destination, m.group(2) + '/' + m.group(3))}"
        return f"urn:uuid:{_uuid(self.key, self.destination, text)}"

    def walk(self, node: Any, where: str) -> Any:
        if isinstance(node, list):
            items = [self.walk(v, f"{where}[{j}]") for j, v in enumerate(node)]
            return [v for v in items if not _emptied(v)]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            here = f"{where}.{key}"
            if key == "valueIdentifier":  # an Identifier carried by an extension or an answer
                out[key] = self.identifier(value)
                self.changes.append(Change("pseudonymise", "replaced", here))
            elif key == "identifier":
                out[key] = [self.identifier(v) for v in value] if isinstance(value, list) else self.identifier(value)
                self.changes.append(Change("pseudonymise", "replaced", here))
            elif key == "reference" and isinstance(value, str):
                out[key] = self.reference(value)
            elif (key == "display" and ("reference" in node or "identifier" in node)) or key in _PERSONAL_VALUES:
                self.changes.append(Change("pseudonymise", "removed", here))
            elif key in ("data", "url") and "contentType" in node:  # an Attachment's content
                out.setdefault("title", WITHHELD)
                self.changes.append(Change("pseudonymise", "removed", here))
            elif key in ("size", "hash") and "contentType" in node:
                continue
            else:
                out[key] = self.walk(value, here)
        return out


def apply(bundle: dict[str, Any], destination: str, key: bytes, key_id: str,
          subjects: dict[str, tuple[str, str]] | None = None) -> Step:
    """`subjects`: 'Patient/id' → the subject's identifier taken before minimisation (bundle.subject_key), so each
    Patient keeps one pseudonym the destination can link across transfers even when its identifiers were dropped."""
    out = copied(bundle)
    p = _Pseudonymiser(key, key_id, destination)
    entries = out.get("entry") or []
    for i, res in resources(out):
        old = f"{res['resourceType']}/{res.get('id')}"
        new = _uuid(p.key, destination, old)
        if isinstance(res.get("id"), str):
            p.ids[old] = new
        full = entries[i].get("fullUrl")
        if isinstance(full, str):
            p.urls[full] = f"urn:uuid:{new}" if full.startswith("urn:uuid:") else \
                full[: -len(old)] + f"{res['resourceType']}/{new}" if full.endswith(old) else f"urn:uuid:{new}"
    found: list[str] = []
    for i, res in resources(out):
        where = name_of(res, i)
        _person(res, where, p.changes)
        for j, inner in enumerate(res.get("contained") or []):  # a contained RelatedPerson is a person too
            if isinstance(inner, dict):
                _person(inner, f"{where}.contained[{j}]", p.changes)
        done: list[str] = []
        _narrative(res, where, done)
        p.changes += [Change("pseudonymise", "removed", d, "narrative may name the person") for d in done]
        if isinstance(res.get("meta"), dict) and "source" in res["meta"]:
            del res["meta"]["source"]
        new = p.walk(res, where)
        old = f"{res['resourceType']}/{res.get('id')}"
        if old in p.ids:
            new["id"] = p.ids[old]
            p.changes.append(Change("pseudonymise", "replaced", f"{where}.id"))
        if res["resourceType"] == "Patient":
            given = (subjects or {}).get(old)
            if given is not None:
                mine = p.identifier({"system": given[0], "value": given[1]})
                if all(i.get("value") != mine["value"] for i in new.get("identifier") or [] if isinstance(i, dict)):
                    new["identifier"] = [{**mine, "use": "usual"}, *(new.get("identifier") or [])]
            found += [i["value"] for i in new.get("identifier") or [] if isinstance(i, dict)]
        entries[i]["resource"] = new
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("fullUrl"), str) and entry["fullUrl"] in p.urls:
            entry["fullUrl"] = p.urls[entry["fullUrl"]]
        req = entry.get("request")
        if isinstance(req, dict):
            if isinstance(req.get("url"), str):
                req["url"] = p.reference(req["url"]) if "/" in req["url"] else req["url"]
            m = _IF_NONE_EXIST.match(str(req.get("ifNoneExist", "")))
            if m:
                req["ifNoneExist"] = f"identifier={p.system}|{p.identifier({'system': m[1], 'value': m[2]})['value']}"
    if isinstance(out.get("identifier"), dict):
        out["identifier"] = p.identifier(out["identifier"])
    if isinstance(out.get("id"), str):
        out["id"] = _uuid(p.key, destination, "Bundle/" + out["id"])
    changes = _dedupe(p.changes)
    return Step(out, changes, {"pseudonymSystem": p.system, "pseudonyms": found})


def _person(res: dict[str, Any], where: str, changes: list[Change]) -> None:
    """What names or reaches a person, removed from a Patient, RelatedPerson or Person."""
    if res.get("resourceType") not in PERSON:
        return
    for k in _PERSON_ELEMENTS:
        if k in res:
            del res[k]
            res.pop("_" + k, None)
            changes.append(Change("pseudonymise", "removed", f"{where}.{k}"))
    for k in ("extension", "modifierExtension"):
        if isinstance(res.get(k), list):
            kept = [e for e in res[k] if not (isinstance(e, dict) and _free_text(e))]
            if len(kept) != len(res[k]):
                changes.append(Change("pseudonymise", "removed", f"{where}.{k}", "free text"))
            res[k] = kept
            if not kept:
                del res[k]
    if res["resourceType"] == "Patient":  # said masked rather than left out: IPS requires a name
        res["name"] = [{"_text": {"extension": [{"url": DATA_ABSENT, "valueCode": "masked"}]}}]


def _free_text(ext: dict[str, Any]) -> bool:
    """An extension (or one nested in it) holding free text or a document."""
    return any(k in ext for k in _PERSON_EXTENSION_VALUES) or any(
        isinstance(e, dict) and _free_text(e) for e in ext.get("extension") or [])


def _emptied(node: Any) -> bool:
    """An extension whose only value was removed (ext-1: an extension has a value or extensions)."""
    return isinstance(node, dict) and "url" in node and not node.get("extension") and \
        not any(k.startswith("value") for k in node) and set(node) <= {"url", "id", "extension"}


def _dedupe(changes: list[Change]) -> list[Change]:
    return list(dict.fromkeys(changes))
