"""Reference resolution inside Bundles and Parameters, and the profiles that apply to resources nested in other
resources (Bundle.entry.resource, Parameters.parameter.resource), as the HL7 validator applies them.

Resolution follows FHIR R4 "Resolving references in Bundles" (http://hl7.org/fhir/R4/bundle.html#references):
an absolute reference matches an entry's fullUrl; a relative one (Type/id) is first made absolute against the
fullUrl of the entry that holds it (its RESTful base, or the `urn:uuid:` scheme) and then matched by fullUrl.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from profiles import patterns

_RELATIVE = patterns.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([A-Za-z0-9\-.]{1,64}))?$")
# Type/id[/_history/vid] as written in a Reference (group 3: the /_history/ part), and a RESTful URL ending so
_REF_RELATIVE = patterns.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
_REF_ABSOLUTE = patterns.compile(r"^(https?://\S+/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/\S+)?$")
EXAMPLE_DOMAIN = patterns.compile(r"^https?://([\w-]+\.)*(example\.(org|com|net)|acme\.com)([:/]|$)")
ABSOLUTE_URL = patterns.compile(r"^[a-z][a-z0-9+.-]*:")
CORE_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


# The anchored patterns above cannot match where the first character is not one they begin with: most references
# in a converted Bundle are urn:uuid: ones, which skip RE2 so.
def _relative(ref: str) -> patterns.Match | None:
    return _RELATIVE.match(ref) if "A" <= ref[:1] <= "Z" else None


def _ref_relative(ref: str) -> patterns.Match | None:
    return _REF_RELATIVE.match(ref) if "A" <= ref[:1] <= "Z" else None


def _ref_absolute(ref: str) -> patterns.Match | None:
    return _REF_ABSOLUTE.match(ref) if "A" <= ref[:1] <= "Z" or ref[:1] == "h" else None


def is_absolute(url: str) -> bool:
    """Whether `url` starts with a scheme (ABSOLUTE_URL), the common ones without the regex."""
    return url.startswith(("urn:", "http:", "https:")) or ("a" <= url[:1] <= "z" and bool(ABSOLUTE_URL.match(url)))


@dataclass(frozen=True)
class ReferencePolicy:
    """How far references and nested resources are followed (the HL7 validator's options of the same names).

    `check_exists` (validateReference CHECK_EXISTS...): a reference that resolves neither inside the Bundle,
    Parameters or contained resources nor through `fetch` is an error. `assume_valid_rest` (assumeValidRestReferences):
    the type named by an unresolved `Type/id` reference is checked against the element's target types; on by
    default, as a gateway wants (Medication/1 as an Observation's subject), off in the HL7 validator
    (HL7_VALIDATOR_DEFAULT).
    `contained` (validateContains, False = IGNORE): validate contained resources. `bundle_rules` (bundle-param):
    (rule, profile) pairs; a rule `Type:n` applies the profile to the n-th entry of that type (0-based), `n` to entry
    n, `Type` to every entry of the type. `fetch`: resolves references found nowhere in the instance (or None)."""

    check_exists: bool = False
    assume_valid_rest: bool = True
    contained: bool = True
    bundle_rules: tuple[tuple[str, str], ...] = ()
    fetch: Any = None


DEFAULT = ReferencePolicy()
HL7_VALIDATOR_DEFAULT = ReferencePolicy(assume_valid_rest=False)  # the HL7 validator's defaults


def index(root: dict[str, Any], run: Any, rules: tuple[tuple[str, str], ...]) -> None:
    """Index the resources a reference inside `root` can reach: Bundle entries by fullUrl (and Type/id for RESTful
    fullUrls or none), Parameters resources by Type/id; remember each entry's fullUrl and bundle-param profiles."""
    if root.get("resourceType") == "Parameters":
        _index_parameters(root.get("parameter"), run)
        return
    counts: dict[str, int] = {}
    entries = root.get("entry")
    index, full_urls, type_ids = run.index, run.full_urls, run.type_ids
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if entry.__class__ is not dict and not isinstance(entry, dict):
            continue
        res = entry.get("resource")
        if res.__class__ is not dict and not isinstance(res, dict):
            continue
        rtype, rid = res.get("resourceType"), res.get("id", "")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            continue  # malformed entries are reported by the structure checks, and cannot be referred to
        full = entry.get("fullUrl")
        is_str = isinstance(full, str)
        if is_str:
            index[full] = res
            full_urls[id(res)] = full
        if rid:
            key = f"{rtype}/{rid}"
            type_ids.setdefault(key, []).append((i, full if is_str else str(full)))
            # Type/id reaches an entry only through a RESTful fullUrl (or none): urn:uuid entries are known by it
            if not (full if is_str else str(full or "")).startswith("urn:"):
                run.index.setdefault(key, res)
                run.versions.setdefault(key, []).append(entry)
        if rules:
            n = counts.get(rtype, 0)
            counts[rtype] = n + 1
            extra = [prof for rule, prof in rules if _meets(rule, rtype, n, i)]
            if extra:
                run.extra_profiles[id(res)] = extra


def _meets(rule: str, rtype: str, nth_of_type: int, entry_no: int) -> bool:
    t, _, n = rule.partition(":")
    if not n and t.isdigit():
        return int(t) == entry_no
    if t and t != rtype:
        return False
    return not n or (n.isdigit() and int(n) == nth_of_type)


def _index_parameters(params: Any, run: Any) -> None:
    # Type/id references between the resources of one Parameters resolve to each other (R4 gives no rule; the HL7
    # validator does so, e.g. for the Patient and Coverage of a $member-match input)
    for p in params if isinstance(params, list) else []:
        if not isinstance(p, dict):
            continue
        res = p.get("resource")
        if isinstance(res, dict) and isinstance(res.get("resourceType"), str) and isinstance(res.get("id"), str):
            run.index.setdefault(f"{res['resourceType']}/{res['id']}", res)
        _index_parameters(p.get("part"), run)


def source_full_url(run: Any) -> str | None:
    """fullUrl of the Bundle entry holding the resource being validated (or its container)."""
    if not run.full_urls:
        return None
    hit = run.full_urls.get(id(run.resource))
    if hit is None and run.container is not None:
        hit = run.full_urls.get(id(run.container))
    return hit


def target_url(ref: str, source: str) -> str | None:
    """The absolute URL a relative `Type/id` reference stands for inside the entry whose fullUrl is `source`
    (R4 bundle.html#references): a RESTful fullUrl gives its base; a urn:uuid: / urn:oid: fullUrl its scheme,
    which is followed by the id alone."""
    m = _relative(ref)
    if m is None:
        return None
    if source.startswith("urn:"):
        return source[: source.rfind(":") + 1] + m.group(2)
    parts = source.split("/")
    if len(parts) < 3:
        return None
    return "/".join(parts[:-2]) + "/" + f"{m.group(1)}/{m.group(2)}"


def resolve(run: Any, ref: str) -> dict[str, Any] | None:
    """The resource `ref` points to within the instance (Bundle entries, Parameters resources), or None."""
    hit = run.index.get(ref)
    if hit is not None:
        return hit
    if ref.startswith("urn:"):
        return None
    if is_absolute(ref):
        if "/_history/" in ref:
            return run.index.get(ref.split("/_history/")[0])
        return None
    source = source_full_url(run)
    if source is not None and _relative(ref):
        url = target_url(ref, source)
        return run.index.get(url) if url else None
    if "/" in ref:  # no source fullUrl (transactions, Parameters, a single resource): by type and id
        return run.index.get("/".join(ref.split("/_history/")[0].rsplit("/", 2)[-2:]))
    return None


def near_misses(run: Any, ref: str) -> list[tuple[int, str, str]]:
    """Entries of the root Bundle with the type and id of an unresolved relative `ref`, but whose fullUrl is not
    the target URL: (entry number, fullUrl, target URL)."""
    m = _relative(ref)
    source = source_full_url(run)
    if m is None or source is None or run.root.get("resourceType") != "Bundle":
        return []
    url = target_url(ref, source) or ref
    return [(i, full, url) for i, full in run.type_ids.get(f"{m.group(1)}/{m.group(2)}", [])]


def element_profiles(validator: Any, node: Any, res: dict[str, Any], path: str, run: Any) -> list[str]:
    """Profiles the element holding resource `res` requires of it (its type's `profile`s, Bundle.entry.resource or
    Parameters.parameter.resource in a profile): the one for the resource's type, or an error when no allowed
    profile is for that type. Unknown profiles are returned too, so that they are reported as unknown."""
    rtype = res.get("resourceType")
    urls = [u for t in node.types for u in t.profiles]
    if not urls:
        return []
    typed = [(u, validator.type_of(u)) for u in urls]
    matching = [u for u, t in typed if t == rtype or t is None]
    if not matching:
        allowed = sorted({t for _, t in typed if t})
        run.add("error", "informational", path, f"The type '{rtype}' is not valid - must be "
                f"{' or '.join(allowed)}")
        return []
    if len(matching) > 1:  # any one of them will do: report against the first when none fits
        if any(validator.conforms(res, u, run) for u in matching):
            return []
        # a profile that cannot be compiled (snapshot errors) cannot be judged: give it the benefit of the doubt
        return [] if any(validator.node(u) is None for u in matching) else matching[:1]
    return matching


def aggregation_problem(modes: set[str], ref: str, target: Any, run: Any) -> tuple[str, str] | None:
    """(issue code, message) when a reference breaks the aggregation modes of its element, else None. R4 gives
    `bundled` its meaning inside a Bundle only, so outside one just `contained` is enforced."""
    if ref.startswith("#"):
        kind = "contained"
    elif target is not None:
        kind = "bundled"
    else:
        kind = "referenced"
    if kind in modes:
        return None
    in_bundle = run.root.get("resourceType") == "Bundle"
    if kind == "referenced" and not in_bundle and "contained" not in modes:
        return None
    shown = ", ".join(sorted(modes))
    if kind == "referenced" and in_bundle:
        return "required", f"Bundled or contained reference not found within the bundle/resource {ref}"
    words = {"contained": "contained", "bundled": "bundled", "referenced": "external"}
    return "structure", (f"Reference is {words[kind]} which isn't supported by the specified aggregation mode(s) "
                         f"for the reference ({shown})")


def unknown_profiles(validator: Any, urls: list[str]) -> list[str]:
    """Target profiles that name no StructureDefinition known locally (so no type can be inferred from them)."""
    return [u for u in urls if not u.startswith(CORE_PREFIX) and validator.defs.structure(u) is None]


# ---- documents: Composition references and entry reachability (R4 bundle.html#document, documents.html) ----
RESTFUL_FULL_URL = patterns.compile(r"^https?://\S+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})$")


class _Entries:
    """A Bundle's entries looked up the way the HL7 validator resolves links in documents: absolute references by
    fullUrl; relative ones against the RESTful fullUrl of the resource holding them (its base), which must end with
    that resource's own type and id. A Type/id match elsewhere is only an "apparent" match."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        entries = bundle.get("entry")
        # malformed entries stay in place (as empty ones) so that entry numbers remain the instance's
        self.entries = [e if isinstance(e, dict) else {} for e in entries] if isinstance(entries, list) else []
        self.by_full: dict[str, list[int]] = {}
        self.by_type_id: dict[str, list[int]] = {}
        for i, e in enumerate(self.entries):
            if isinstance(e.get("fullUrl"), str):
                self.by_full.setdefault(e["fullUrl"], []).append(i)
            res = e.get("resource")
            if isinstance(res, dict) and res.get("resourceType") and res.get("id"):
                self.by_type_id.setdefault(f"{res['resourceType']}/{res['id']}", []).append(i)

    def lookup(self, ref: str, source: int) -> tuple[list[int], list[int]]:
        """(matching entries, apparent matches by type and id only) for `ref` held by entry `source`."""
        ref = ref.split("#", 1)[0]
        bare, _, version = ref.partition("/_history/")
        if is_absolute(ref):
            hits = self.by_full.get(bare, [])
            return self._version(hits, version), []
        m = _relative(ref)
        if m is None:
            return [], []
        e = self.entries[source]
        res = e.get("resource") if isinstance(e.get("resource"), dict) else {}
        full = e.get("fullUrl") if isinstance(e.get("fullUrl"), str) else ""
        own = f"{res.get('resourceType')}/{res.get('id')}"
        hits: list[int] = []
        if RESTFUL_FULL_URL.match(full) and full.endswith("/" + own):
            hits = self._version(self.by_full.get(full[: -len(own)] + f"{m.group(1)}/{m.group(2)}", []), version)
        apparent = [] if hits else self.by_type_id.get(f"{m.group(1)}/{m.group(2)}", [])
        return hits, apparent

    def _version(self, hits: list[int], version: str) -> list[int]:
        if not version:
            return hits
        return [i for i in hits if _version_id(self.entries[i].get("resource")) == version]


def _version_id(res: Any) -> Any:
    meta = res.get("meta") if isinstance(res, dict) else None
    return meta.get("versionId") if isinstance(meta, dict) else None


def json_objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in `value` (itself included), depth-first: for the checks that look at a whole instance
    (narrative ids, references between entries) rather than at one element."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            yield v
            stack.extend(x for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend(x for x in v if isinstance(x, dict | list))


_COMPOSITION_LINKS = (("subject", "Composition.subject"), ("author", "Composition.author"),
                      ("encounter", "Composition.encounter"), ("custodian", "Composition.custodian"))


def document_problems(bundle: dict[str, Any], path: str) -> list[tuple[str, str, str, str]]:
    """(severity, code, path, message) for a document Bundle: the Composition's links (subject, author, encounter,
    custodian, attester.party, event.detail, section author/focus/entry) must resolve inside the Bundle, and every
    entry must be reachable from the Composition by following references forward or backward."""
    index = _Entries(bundle)
    comp = index.entries[0].get("resource") if index.entries else None
    if not isinstance(comp, dict) or comp.get("resourceType") != "Composition":
        return []
    cpath = f"{path}.entry[0].resource"
    out: list[tuple[str, str, str, str]] = []

    def check(value: Any, where: str, label: str) -> None:
        ref = value.get("reference") if isinstance(value, dict) else None
        if not isinstance(ref, str) or ref.startswith("#"):
            return
        hits, apparent = index.lookup(ref, 0)
        if len(hits) > 1:
            out.append(("error", "invalid", where, f"Found {len(hits)} matches for '{ref}' in the bundle ({label})"))
        elif not hits:
            msg = f"Can't find '{ref}' in the bundle ({label})"
            if apparent:
                msg += (". Note that there is a resource in the bundle with the same type and id, but it does not "
                        "match because of the fullUrl based rules around matching relative references")
            out.append(("error", "invalid" if apparent else "not-found", where, msg))

    def each(value: Any) -> list[tuple[int, Any]]:
        return list(enumerate(value)) if isinstance(value, list) else [(-1, value)] if value is not None else []

    for name, label in _COMPOSITION_LINKS:
        for i, v in each(comp.get(name)):
            check(v, f"{cpath}.{name}" + (f"[{i}]" if i >= 0 else ""), label)
    for i, att in each(comp.get("attester")):
        if isinstance(att, dict):
            check(att.get("party"), f"{cpath}.attester[{i}].party", "Composition.attester.party")
    for i, ev in each(comp.get("event")):
        for j, d in each(ev.get("detail") if isinstance(ev, dict) else None):
            check(d, f"{cpath}.event[{i}].detail[{j}]", "Composition.event.detail")

    def sections(owner: dict[str, Any], where: str) -> None:
        for i, sec in each(owner.get("section")):
            if not isinstance(sec, dict):
                continue
            spath = f"{where}.section[{i}]"
            for j, a in each(sec.get("author")):
                check(a, f"{spath}.author[{j}]", "Section.author")
            check(sec.get("focus"), f"{spath}.focus", "Section.focus")
            for j, e in each(sec.get("entry")):
                check(e, f"{spath}.entry[{j}]", "Section Entry")
            sections(sec, spath)

    sections(comp, cpath)
    # reachability, as the HL7 validator judges it: links between entries, followed forward from the Composition,
    # then backward (from any entry that links into what was reached)
    links: list[set[int]] = []
    for i, e in enumerate(index.entries):
        refs = {r for o in json_objects(e.get("resource")) if isinstance(r := o.get("reference"), str)
                and not r.startswith("#")}
        links.append({t for r in refs for t in index.lookup(r, i)[0] if t != i})
    seen: set[int] = set()

    def reach(start: int) -> None:
        stack = [start]
        while stack:
            k = stack.pop()
            if k not in seen:
                seen.add(k)
                stack.extend(links[k] - seen)

    reach(0)
    grown = True
    while grown:
        before = len(seen)
        for i in range(len(index.entries)):
            if i not in seen and links[i] & seen:
                reach(i)
        grown = len(seen) > before
    for i, e in enumerate(index.entries):
        if i not in seen and isinstance(e.get("resource"), dict):
            full = f"'{e['fullUrl']}'" if isinstance(e.get("fullUrl"), str) else ""
            out.append(("error", "informational", f"{path}.entry[{i}]", f"Entry {full} isn't reachable by traversing "
                        "links (forward or backward) from the Composition"))
    return out


# ---- a Reference element: format, resolution, target types and profiles, aggregation ----
def check(v: Any, value: dict[str, Any], node: Any, path: str, run: Any) -> None:
    """A Reference value of element `node` (see checker())."""
    checker(v, node)(value, path, run)


def checker(v: Any, node: Any) -> Any:
    """The check of Reference values of element `node`: their format, what they resolve to (versions of one resource
    in a Bundle, contained resources, urn: references in transactions), aggregation modes, the reference policy
    (existence, fetch), and the target types and profiles the element allows — what the element allows worked out
    once."""
    refs = [t for t in node.types if t.code == "Reference"]
    modes = {m for t in refs for m in t.aggregation}
    targets = [u for t in refs for u in t.targets]
    unknown = unknown_profiles(v, targets) if targets else []
    typed = [(u, v.type_of(u)) for u in targets]
    allowed = {t for _, t in typed}
    expected = ", ".join(sorted(a for a in allowed if a))
    by_type: dict[str, list[str]] = {}  # resource type → the non-core target profiles for it ([] when one is core)
    for t in {t for _, t in typed if isinstance(t, str)}:
        of_type = [u for u, ut in typed if ut == t]
        profiled = [u for u in of_type if not v.defs.is_base(u)]
        by_type[t] = profiled if len(profiled) == len(of_type) else []
    policy = v.references
    any_type = "Resource" in allowed

    def check(value: dict[str, Any], path: str, run: Any) -> None:
        ref = value.get("reference")
        if ref.__class__ is not str and not isinstance(ref, str):
            return
        # run.resolve(ref), its first step inline: most references are found in the Bundle's index at once
        target = run.index.get(ref) if ref[:1] != "#" else None
        if target is None:
            target = run.resolve(ref)
        rtype: str | None = None
        rel = _REF_RELATIVE.match(ref) if "A" <= ref[:1] <= "Z" else None  # _ref_relative(ref)
        entries = run.versions.get(f"{rel.group(1)}/{rel.group(2)}") if rel and run.versions else None
        # several versions of one resource (same fullUrl): only a versioned reference can pick one
        same = [e["resource"] for e in entries] if entries and len({str(e.get("fullUrl")) for e in entries}) == 1 \
            else []
        if rel and len(same) > 1:
            version = (rel.group(3) or "").removeprefix("/_history/")
            hits = [r for r in same if version and isinstance(r.get("meta"), dict)
                    and r["meta"].get("versionId") == version]
            if not version:
                run.add("error", "invalid", path, f"Found {len(same)} matches for '{ref}' in the Bundle")
                return
            if not hits:  # the HL7 validator warns here (an unresolved reference is not an error by itself)
                run.add("warning", "required", path, f"The bundle contains no match for '{ref}' by the rules of "
                        f"Bundle reference resolution, but it has {len(same)} resources that match it by resource "
                        "type and id (none with that version)")
                return
            target = hits[0]
        if target is not None:
            rtype = target.get("resourceType")
            if rel and rel.group(1) != rtype:
                run.add("error", "structure", path, f"Matching reference for reference {ref} has resourceType "
                        f"{rtype}")
                return
        elif ref == "#":
            return  # from a contained resource to its container
        elif ref.startswith("#"):
            run.add("error", "structure", path, f"The contained resource {ref} was not found")
            return
        elif ref.startswith(("urn:uuid:", "urn:oid:")):
            if run.root.get("resourceType") == "Bundle":
                if run.bundle is run.root and run.root.get("type") in ("transaction", "batch"):
                    # a server resolves urn: references only against the fullUrls of the entries it is given
                    # (R4 http.html#trules): one no entry carries can never be resolved. (A Bundle nested in an
                    # entry is not indexed for resolution: its references keep the warning.)
                    run.add("error", "not-found", path, f"Unable to resolve the reference {ref}: no entry of this "
                            f"{run.root['type']} has it as its fullUrl, so no server can resolve it")
                else:  # another kind of Bundle may stand for content kept elsewhere (the HL7 validator warns)
                    run.add("warning", "not-found", path, f"Unable to resolve the reference {ref} in the Bundle")
            return
        else:
            m = rel or _ref_absolute(ref)
            if m is None:
                if not is_absolute(ref):
                    run.add("warning", "invalid", path, f"Invalid reference format {ref!r}")
                return
            rtype = m.group(1) if rel else m.group(2)
            if v.defs.type_definition(rtype) is None:
                run.add("warning", "invalid", path, f"The reference {ref!r} names an unknown resource type")
                return
            for i, full, url in near_misses(run, ref):
                run.add("warning", "required", path, f"Entry {i} matches the reference {ref} by type and id but "
                        f"its fullUrl {full} does not match the full target URL {url} by Bundle resolution rules")
        if modes:
            problem = aggregation_problem(modes, ref, target, run)
            if problem:
                run.add("error", problem[0], path, problem[1])
                return
        if target is None and policy.fetch is not None and not ref.startswith("#"):
            target = policy.fetch(ref)  # found outside the instance (a server, a store): not for aggregation
        if target is None and not ref.startswith("#") and policy.check_exists and not (
                v.examples and EXAMPLE_DOMAIN.match(ref)):
            run.add("error", "structure", path, f"Unable to resolve resource with reference '{ref}'")
            return
        # the type an unresolved URL implies is trusted only when asked to (assumeValidRestReferences)
        if not targets or not isinstance(rtype, str) or (target is None and not policy.assume_valid_rest):
            return
        for u in unknown:
            run.add("error", "structure", path, f"Unable to resolve the profile reference '{u}'")
        if not (any_type or rtype in allowed):
            run.add("error", "structure", path, f"Invalid Resource target type. Found {rtype}, but expected one of "
                    f"({expected})")
            return
        # a resolved target must also conform to one of the (non-core) target profiles of its type
        profiled = by_type.get(rtype) if target is not None else None
        if profiled:
            for u in profiled:
                if v.conforms(target, u, run):
                    return
            run.add("error", "structure", path, f"Unable to find a profile match for {ref} among choices: "
                    f"{', '.join(profiled)}")

    return check
