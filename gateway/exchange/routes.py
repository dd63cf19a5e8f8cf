"""Exchange routes as data: a versioned JSON or YAML file, checked at start-up against `schema.SCHEMA` (jsonschema)
and against the running gateway (the target format is registered and written from FHIR, key files load, thresholds
make sense). Every error names its place in the file (`routes[1].target.format`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from gateway.exchange import keys
from gateway.exchange.rules.facts import PURPOSES
from gateway.exchange.rules.minimise import parse_path
from gateway.exchange.schema import SCHEMA

MAX_FILE_BYTES = 1 << 20


class RoutesError(Exception):
    """The routes file cannot be used; `problems` lists each (path, message)."""

    def __init__(self, path: str, problems: list[tuple[str, str]]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {where or '(top)'}: {what}" for where, what in problems)
        super().__init__(f"{path}: {len(problems)} problem(s) in the exchange routes file:\n{lines}")


@dataclass(frozen=True)
class Routes:
    path: str
    version: str
    routes: dict[str, dict[str, Any]]
    keyrings: dict[str, keys.KeyRing]  # route id → its pseudonymisation keys
    counter_keys: dict[str, bytes] = field(default_factory=dict, repr=False)  # route id → its counter key

    def get(self, route_id: str) -> dict[str, Any] | None:
        return self.routes.get(route_id)


def _where(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def read(path: str | Path) -> Any:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise RoutesError(str(p), [("", f"the file is over {MAX_FILE_BYTES} bytes")])
        raw = p.read_bytes()
    except OSError as e:
        raise RoutesError(str(p), [("", f"cannot read it ({e.strerror})")]) from None
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise RoutesError(str(p), [("", f"not YAML: {e}")]) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise RoutesError(str(p), [("", f"not JSON: {e}")]) from None


def load(path: str | Path, *, check_keys: bool = True) -> Routes:
    """The routes of `path`, checked. Raises RoutesError naming every problem."""
    doc = read(path)
    problems = [(_where(e.absolute_path), e.message) for e in
                sorted(Draft202012Validator(SCHEMA).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
    if problems:
        raise RoutesError(str(path), problems)
    from mappers.toolkit.registry import registry

    formats = registry()
    base = Path(path).resolve().parent
    seen: dict[str, int] = {}
    rings: dict[str, keys.KeyRing] = {}
    counter_keys: dict[str, bytes] = {}
    for n, route in enumerate(doc["routes"]):
        at = f"routes[{n}]"
        if route["id"] in seen:
            problems.append((f"{at}.id", f"{route['id']!r} is also the id of routes[{seen[route['id']]}]"))
        seen.setdefault(route["id"], n)
        fmt = formats.get(route["target"]["format"])
        if fmt is None or fmt.from_fhir is None:
            problems.append((f"{at}.target.format", f"{route['target']['format']!r} is not a registered writer "
                             f"(writers: {', '.join(k for k, f in formats.items() if f.from_fhir)})"))
        for j, purpose in enumerate(route["purposes"]):
            if purpose not in PURPOSES and purpose not in PURPOSES.values():
                problems.append((f"{at}.purposes[{j}]", f"unknown purpose {purpose!r} (names: "
                                 f"{', '.join(PURPOSES)}; or a v3 ActReason code: {', '.join(PURPOSES.values())})"))
        if route["target"].get("profiles") and route["target"]["format"] != "fhir":
            problems.append((f"{at}.target.profiles", "profiles apply to a fhir target; a writer's output is "
                             "validated against the profiles it claims (an IPS document, IPS's)"))
        if route["delivery"]["mode"] == "file" and "directory" not in route["delivery"]:
            problems.append((f"{at}.delivery", "mode file needs a directory"))
        if route["delivery"]["mode"] == "mllp":
            if not {"host", "port"} <= set(route["delivery"]):
                problems.append((f"{at}.delivery", "mode mllp needs a host and a port"))
            if route["target"]["format"] != "hl7v2":
                problems.append((f"{at}.delivery.mode", "mllp carries HL7 v2: the target format must be hl7v2"))
        if route["delivery"]["mode"] == "upstream" and route["target"]["format"] != "fhir":
            problems.append((f"{at}.delivery.mode", "upstream delivery sends a FHIR transaction: the target format "
                             "must be fhir"))
        if route["legalBasis"].get("citeMechanism") and not route["legalBasis"].get("mechanisms"):
            problems.append((f"{at}.legalBasis", "citeMechanism without any registered mechanism"))
        rules = route.get("rules") or {}
        for purpose, table in (rules.get("minimise") or {}).items():
            for j, text in enumerate(table.get("dropPaths") or []):
                try:
                    parse_path(text)
                except ValueError as e:
                    problems.append((f"{at}.rules.minimise.{purpose}.dropPaths[{j}]", str(e)))
        counters = rules.get("counters")
        if counters and counters.get("warnAt", 0) >= counters["stopAt"]:
            problems.append((f"{at}.rules.counters.warnAt", "must be below stopAt"))
        if counters and counters.get("keyFile"):
            key_file = Path(counters["keyFile"])
            counters["keyFile"] = str(key_file if key_file.is_absolute() else base / key_file)
            try:
                counter_keys[route["id"]] = keys.load(counters["keyFile"]).key(counters["keyId"])
            except keys.KeyError_ as e:
                problems.append((f"{at}.rules.counters.keyFile", str(e)))
        pseudo = rules.get("pseudonymise")
        if pseudo:
            key_file = Path(pseudo["keyFile"])
            key_file = key_file if key_file.is_absolute() else base / key_file
            pseudo["keyFile"] = str(key_file)
            if check_keys:
                try:
                    rings[route["id"]] = keys.load(key_file)
                except keys.KeyError_ as e:
                    problems.append((f"{at}.rules.pseudonymise.keyFile", str(e)))
        if route["delivery"]["mode"] == "file":
            d = Path(route["delivery"]["directory"])
            route["delivery"]["directory"] = str(d if d.is_absolute() else base / d)
    if problems:
        raise RoutesError(str(path), problems)
    return Routes(str(path), doc["version"], {r["id"]: r for r in doc["routes"]}, rings, counter_keys)


def explain(route: dict[str, Any]) -> str:
    """The route in words, for people (`helixgate exchange routes check`)."""
    src, dst = route["source"], route["destination"]
    basis = route["legalBasis"]
    rules = route.get("rules") or {}
    articles = f" ({', '.join(basis['articles'])})" if basis.get("articles") else ""
    mechanisms = ", ".join(f"{m['type']} {m['id']}" for m in basis.get("mechanisms") or []) or "none"
    lines = [f"Route {route['id']}" + (f": {route['title']}" if route.get("title") else ""),
             f"  From {src.get('name') or src['exporter']} ({src['jurisdiction']}, exporter {src['exporter']}) to "
             f"{dst.get('name') or dst['id']} ({dst['jurisdiction']}, partner {dst['partner']['system']}|"
             f"{dst['partner']['value']}).",
             f"  Allowed purposes: {', '.join(route['purposes'])}.",
             f"  Legal basis: {basis['basis']}{articles}; transfer mechanisms: {mechanisms}"
             + (" — each request must cite one." if basis.get("citeMechanism") else "."),
             f"  Output: {route['target']['format']}" + (f" validated against {', '.join(route['target']['profiles'])}"
                                                         if route["target"].get("profiles") else " (validated)")
             + f"; delivered by {route['delivery']['mode']}"
             + (f" to {route['delivery']['directory']}" if route["delivery"].get("directory") else "")
             + (f" to {route['delivery'].get('host')}:{route['delivery'].get('port')}" if route["delivery"]["mode"]
                == "mllp" else "") + "."]
    consent = rules.get("consent") or {}
    if consent.get("required"):
        sep = consent.get("separateConsent")
        lines.append("  Consent: an active FHIR Consent for each patient, naming this purpose, the partner as recipient"
                     " and a period covering the day of transfer" +
                     (f", covering {', '.join(c['code'] for c in consent.get('dataClasses') or [])}"
                      if consent.get("dataClasses") else "") +
                     ("; plus a separate consent for sensitive data" if sep else "") + ", sent with the request.")
    else:
        lines.append("  Consent: not required by this route.")
    from gateway.exchange.rules.genetic import applies

    genetic = rules.get("genetic") or {}
    if applies(route):
        lines.append("  Genetic data (HGR information): leaves only with a registered filing id ("
                     + (", ".join(genetic.get("filingIds") or []) or "none registered") + "); without one the transfer "
                     + ("is sent with the genetic content withheld." if genetic.get("onMissing") == "withhold"
                        else "is refused."))
    else:
        lines.append("  Genetic data: no export control on this route.")
    for purpose, table in (rules.get("minimise") or {}).items():
        parts = []
        if table.get("keepTypes"):
            parts.append("keeps only " + ", ".join(table["keepTypes"]))
        if table.get("dropTypes"):
            parts.append("drops " + ", ".join(table["dropTypes"]))
        if table.get("dropPaths"):
            parts.append("removes " + ", ".join(table["dropPaths"]))
        parts.append({"exact": "keeps the exact birth date", "year": "generalises the birth date to the year",
                      "band5": "generalises the birth date to a five-year band",
                      "drop": "removes the birth date"}[table.get("birthDate", "exact")])
        parts.append(("removes" if table.get("narrative") == "drop" else "keeps") + " narratives")
        parts.append(("removes" if table.get("notes") == "drop" else "keeps") + " notes")
        lines.append(f"  Minimisation for {purpose}: " + "; ".join(parts) + ".")
    if rules.get("pseudonymise"):
        lines.append(f"  Pseudonymisation: identifiers and ids replaced by keyed HMAC pseudonyms for {dst['id']} "
                     f"(keys in {rules['pseudonymise']['keyFile']}); names, contacts, addresses, narratives and "
                     "attached documents removed.")
    counters = rules.get("counters")
    if counters:
        lines.append(f"  Volume: distinct data subjects from {src['exporter']} per calendar year"
                     + (f", warning at {counters['warnAt']}" if counters.get("warnAt") else "")
                     + f", refused beyond {counters['stopAt']}" + f" ({counters.get('class', 'sensitive')} data).")
    return "\n".join(lines)
