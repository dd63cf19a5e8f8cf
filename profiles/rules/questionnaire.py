"""Questionnaire and QuestionnaireResponse rules the HL7 validator applies in code (its QuestionnaireValidator and
EnableWhenEvaluator), which the definitions only state as prose.

Questionnaire (http://hl7.org/fhir/R4/questionnaire.html): every enableWhen.question names the linkId of an item
that exists, is not the item itself and is not inside it; a target after the question only gets a warning.

QuestionnaireResponse (http://hl7.org/fhir/R4/questionnaireresponse.html): "the QuestionnaireResponse SHALL
follow the structure of the Questionnaire" — checked against the Questionnaire named by
QuestionnaireResponse.questionnaire (contained, in the Bundle, or among the loaded definitions): linkIds exist and
keep the Questionnaire's order, text matches, answers have the item's type and come from its answerOption /
answerValueSet, repeats, required items are answered once the response is completed or amended, and items that
enableWhen (or the enableWhenExpression extensions) disable carry no answers.

The R4 item types are read the way the HL7 validator reads them after its R4 → R5 conversion: 'choice' and
'open-choice' become 'coding' answers (Coding, or a date, time, integer or string checked against the options),
'open-choice' also allowing free strings.
"""

from __future__ import annotations

import operator
import weakref
from decimal import Decimal, InvalidOperation
from typing import Any

from profiles import fhirpath, patterns
from profiles.content import objects_at
from profiles.rules import rule

_SDC_ENABLE_WHEN = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-enableWhenExpression"
_FI_ENABLE_WHEN = "http://phr.kanta.fi/StructureDefinition/fiphr-ext-questionnaire-enablewhen"

# item.type → the answer value[x] types it takes (the HL7 validator reads 'text' answers as strings, 'url' as uri)
_ANSWER_TYPES: dict[str, tuple[str, ...]] = {
    "boolean": ("boolean",), "decimal": ("decimal",), "integer": ("integer",), "date": ("date",),
    "dateTime": ("dateTime",), "time": ("time",), "string": ("string",), "text": ("string",), "url": ("uri",),
    "attachment": ("Attachment",), "reference": ("Reference",), "quantity": ("Quantity",),
    "choice": ("Coding", "date", "time", "integer", "string"),
    "open-choice": ("Coding", "date", "time", "integer", "string"),
}
# primitive answer types that an answerOption list can restrict (non-choice items: their own type only)
_OPTION_TYPES = {"integer", "date", "time", "string"}
_COMPLEX = {"Coding", "Quantity", "Reference", "Attachment"}
_VARIABLE = patterns.compile(r"%([A-Za-z_][A-Za-z0-9_-]*)")
_KNOWN_VARIABLES = {"resource", "rootResource", "context", "sct", "loinc", "ucum"}
_OPERATORS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt, ">=": operator.ge,
              "<=": operator.le}


def _items(node: dict[str, Any]) -> list[dict[str, Any]]:
    return objects_at(node, "item")


def _value(node: dict[str, Any], prefix: str = "value") -> tuple[str, Any] | None:
    """(type, value) of the first value[x] (or answer[x]) of an element: 'boolean', 'dateTime', 'Coding', ..."""
    for k, v in node.items():
        if k.startswith(prefix) and len(k) > len(prefix) and k[len(prefix)].isupper():
            t = k[len(prefix):]
            return (t if t in _COMPLEX else t[0].lower() + t[1:]), v
    return None


class _Tree:
    """The items of a Questionnaire indexed once: the items of each linkId depth first (the first is the one the
    HL7 validator's Questionnaire.getQuestion finds), each item's parent and its depth-first position."""

    def __init__(self, q: dict[str, Any]) -> None:
        self.by_link: dict[str, list[dict[str, Any]]] = {}
        self.parent: dict[int, dict[str, Any] | None] = {}
        self.position: dict[int, int] = {}
        stack: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(i, None) for i in reversed(_items(q))]
        while stack:
            item, parent = stack.pop()
            if id(item) in self.position:
                continue  # the same object twice (only possible in content built in code): index it once
            self.position[id(item)] = len(self.position)
            self.parent[id(item)] = parent
            link = item.get("linkId")
            if isinstance(link, str):
                self.by_link.setdefault(link, []).append(item)
            stack.extend((kid, item) for kid in reversed(_items(item)))

    def find(self, link: str) -> dict[str, Any] | None:
        found = self.by_link.get(link)
        return found[0] if found else None

    def ancestors(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """The item and the items holding it, nearest first."""
        out: list[dict[str, Any]] = []
        node: dict[str, Any] | None = item
        while node is not None:
            out.append(node)
            node = self.parent.get(id(node))
        return out

    def common_group(self, q1: dict[str, Any], q2: dict[str, Any]) -> dict[str, Any] | None:
        """The deepest item holding both (either may be the item itself); None when only the Questionnaire does."""
        holding = {id(a) for a in self.ancestors(q1)}
        return next((a for a in self.ancestors(q2) if id(a) in holding), None)


# Questionnaires loaded with the definitions do not change: their index is built once per Definitions.
_TREES: weakref.WeakKeyDictionary[Any, dict[int, tuple[dict[str, Any], _Tree]]] = weakref.WeakKeyDictionary()


def _tree(defs: Any, q: dict[str, Any], loaded: bool) -> _Tree:
    if not loaded:
        return _Tree(q)  # contained or in the Bundle: this validation's own content
    cache = _TREES.setdefault(defs, {})
    hit = cache.get(id(q))
    if hit is None or hit[0] is not q:
        hit = cache[id(q)] = (q, _Tree(q))
    return hit[1]


# ---- Questionnaire ----

@rule("Questionnaire")
def questionnaire(validator: Any, res: dict[str, Any], path: str, run: Any) -> None:
    top = _items(res)
    if top:
        _check_items(_Tree(res), top, path, run)


def _check_items(tree: _Tree, items: list[dict[str, Any]], path: str, run: Any) -> None:
    for i, item in enumerate(items):
        ipath = f"{path}.item[{i}]"
        for ew in objects_at(item, "enableWhen"):
            _check_enable_when(tree, item, ew, ipath, run)
        _check_items(tree, _items(item), ipath, run)


def _check_enable_when(tree: _Tree, item: dict[str, Any], ew: dict[str, Any], path: str, run: Any) -> None:
    """Questionnaire.item.enableWhen.question: "the linkId for the question whose answer (or lack of answer)
    governs whether this item is enabled" (R4 questionnaire-definitions.html); the checks are the HL7
    validator's."""
    link = ew.get("question")
    if not isinstance(link, str) or not link:
        run.add("error", "business-rule", path, "Questions with an enableWhen must have a value for the question link")
        return
    if any(a is item for t in tree.by_link.get(link, ()) for a in tree.ancestors(t)[1:]):
        run.add("error", "business-rule", path, "Questions with an enableWhen cannot refer to an inner question for "
                "its enableWhen condition")
        return
    target = tree.find(link)
    if target is None:
        run.add("error", "business-rule", path, f"Unable to find an item with the linkId '{link}' which is "
                f"referenced in the enableWhen for '{item.get('linkId')}'")
    elif target is item:
        run.add("error", "business-rule", path, "Target for this question enableWhen can't reference itself")
    elif tree.position[id(target)] > tree.position[id(item)]:
        # depth first, a question comes after the groups holding it and after everything listed before it
        run.add("warning", "business-rule", path, f"The target of this enableWhen rule ({link}) comes after the "
                "question itself")


# ---- QuestionnaireResponse ----

@rule("QuestionnaireResponse")
def questionnaire_response(validator: Any, res: dict[str, Any], path: str, run: Any) -> None:
    ref = res.get("questionnaire")
    if isinstance(ref, dict):  # STU3 shape, accepted as the HL7 validator does
        ref = ref.get("reference")
    if not isinstance(ref, str) or not ref:
        return
    q, container, loaded = _questionnaire(validator, res, ref, run)
    if q is None:
        sev = "information" if ref.startswith(("http://example.org", "https://example.org")) else "warning"
        run.add(sev, "required", path, f"The questionnaire '{ref}' could not be resolved, so no validation can be "
                "performed against the base questionnaire")
        return
    _Check(validator, q, _tree(validator.defs, q, loaded), container, res, run).items(_items(q), res, path, [])


def _questionnaire(validator: Any, qr: dict[str, Any], ref: str, run: Any
                   ) -> tuple[dict[str, Any] | None, dict[str, Any] | None, bool]:
    """The Questionnaire; when it is contained, the resource containing it (where its own '#' references
    resolve); whether it was loaded with the definitions."""
    if ref.startswith("#"):
        q = run.resolve(ref)
        if isinstance(q, dict) and q.get("resourceType") == "Questionnaire":
            return q, run.container if run.container is not None else qr, False
        return None, None, False
    q = validator.defs.canonical(ref, "Questionnaire")
    if q is not None:
        return q, None, True
    url, _, version = ref.partition("|")
    for r in run.index.values():  # a Questionnaire travelling in the same Bundle
        if isinstance(r, dict) and r.get("resourceType") == "Questionnaire" and r.get("url") == url and (
                not version or r.get("version") == version):
            return r, None, False
    return None, None, False


class _Check:
    """One QuestionnaireResponse checked against its Questionnaire."""

    def __init__(self, validator: Any, q: dict[str, Any], tree: _Tree, container: dict[str, Any] | None,
                 qr: dict[str, Any], run: Any) -> None:
        self.v = validator
        self.q = q
        self.tree = tree
        self.container = container
        self.qr = qr
        self.run = run
        # required answers are only owed once the response is finished (in-progress, stopped: warnings)
        self.not_completed = qr.get("status") not in ("completed", "amended")
        self._expansions: dict[str, Any] = {}  # contained answerValueSets, expanded once per response

    # -- structure --
    def items(self, q_items: list[dict[str, Any]], node: dict[str, Any], path: str,
              stack: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """The items of `node` (the response, an item or an answer) against the Questionnaire items `q_items`."""
        found: dict[str, list[tuple[dict[str, Any], int]]] = {}
        positions = {qi["linkId"]: n for n, qi in enumerate(q_items) if isinstance(qi.get("linkId"), str)}
        last = -1
        for n, item in enumerate(_items(node)):
            link = item.get("linkId")
            if not isinstance(link, str) or not link:
                self.run.add("error", "required", path, "No LinkId, so can't be validated")
                continue
            index = positions.get(link, -1)
            if index == -1:
                qi = self.tree.find(link)
                if qi is None:
                    self.run.add("error", "not-found", path, f"LinkId '{link}' not found in questionnaire")
                else:
                    self.run.add("error", "structure", path, f"Structural Error: item with linkid {link} is in the "
                                 "wrong place")
                    self.item(qi, item, f"{path}.item[{n}]", [*stack, (qi, item)])
                continue
            if index < last:
                self.run.add("error", "structure", path, "Structural Error: items are out of order")
            last = index
            found.setdefault(link, []).append((item, n))
        for qi in q_items:
            got = found.get(qi["linkId"]) if isinstance(qi.get("linkId"), str) else None
            if got:
                if not self.enabled(qi, stack):
                    for item, n in got:
                        if item.get("answer") or item.get("item"):
                            self.run.add("error", "invalid", f"{path}.item[{n}]", "Item has answer, even though it "
                                         f"is not enabled (item id = '{qi.get('linkId')}')")
                if len(got) > 1 and qi.get("repeats") is not True:
                    self.run.add("error", "invalid", f"{path}.item[{got[1][1]}]", "Only one response item with this "
                                 f"linkId allowed - {qi.get('linkId')}")
                for item, n in got:
                    self.item(qi, item, f"{path}.item[{n}]", [*stack, (qi, item)])
            elif qi.get("required") is True and self.enabled(qi, stack):
                self.run.add("warning" if self.not_completed else "error", "required", path,
                             f"No response answer found for required item '{qi.get('linkId')}'")

    def item(self, qi: dict[str, Any], item: dict[str, Any], path: str,
             stack: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        run = self.run
        link = qi.get("linkId")
        text = item.get("text")
        if isinstance(text, str) and text and text != qi.get("text"):
            run.add("error", "invalid", path, f"If text exists, it must match the questionnaire definition for linkId "
                    f"{link}")
        answers = objects_at(item, "answer")
        qtype = qi.get("type") if isinstance(qi.get("type"), str) else None
        if not answers and qi.get("required") is True and qtype != "group":
            if self.not_completed:
                run.add("warning", "required", path, f"No response answer found for required item '{link}'")
            elif self.enabled(qi, stack):
                run.add("error", "required", path, f"No response answer found for required item '{link}'")
        if len(answers) > 1 and qi.get("repeats") is not True:
            run.add("error", "invalid", f"{path}.answer[1]", "Only one response answer item with this linkId allowed")
        for n, answer in enumerate(answers):
            apath = f"{path}.answer[{n}]"
            if qtype == "group":
                run.add("error", "structure", apath, "Items of type group should not have answers")
            elif qtype == "display":
                run.add("error", "structure", apath, "Items of type display should not have answers")
            elif qtype in _ANSWER_TYPES:
                self.answer(qi, qtype, answer, apath)
            if qtype != "group":
                self.items(_items(qi), answer, apath, stack)
        if qtype == "display":
            if _items(item):
                run.add("error", "structure", path, f"Items of type display should not have items - linkId {link}")
        elif qtype == "group":
            self.items(_items(qi), item, path, stack)
        elif qtype and _items(item):
            run.add("error", "structure", path, "Items not of type group should not have items outside answers (use "
                    "answer.item not .item)")

    # -- answers --
    def answer(self, qi: dict[str, Any], qtype: str, answer: dict[str, Any], path: str) -> None:
        got = _value(answer)
        if got is None:
            return
        vtype, value = got
        allowed = _ANSWER_TYPES[qtype]
        vpath = f"{path}.value{vtype[0].upper()}{vtype[1:]}"
        if vtype not in allowed:
            kind = "of type" if len(allowed) == 1 else "one of the types"
            self.run.add("error", "structure", vpath, f"Answer value must be {kind} {', '.join(allowed)} (found "
                         f"{vtype})")
            return
        max_length = qi.get("maxLength")
        if vtype == "string" and isinstance(max_length, int) and isinstance(value, str) and len(value) > max_length:
            self.run.add("error", "invariant", vpath, f"The string value '{value}' is longer than the maxLength "
                         f"{max_length}")
        open_choice = qtype == "open-choice"
        if qtype in ("choice", "open-choice"):
            if vtype == "Coding":
                self.coding(qi, value, vpath)
            elif vtype == "string" and open_choice:
                self.free_string(qi, value, vpath)
            else:
                self.option(qi, vtype, value, vpath, open_choice)
        elif vtype in _OPTION_TYPES and objects_at(qi, "answerOption"):
            self.option(qi, vtype, value, vpath, False)

    def option(self, qi: dict[str, Any], vtype: str, value: Any, path: str, open_choice: bool) -> None:
        """A date, time, integer or string answer against the item's answerOption values of that type."""
        options = objects_at(qi, "answerOption")
        if not options:
            return  # nothing to check against (the HL7 validator gives a hint)
        listed = [v for t, v in filter(None, (_value(o) for o in options)) if t == vtype]
        if not listed and not open_choice:
            self.run.add("error", "invariant", path, f"Option list has no option values of type {vtype}")
        elif not any(_same(vtype, v, value) for v in listed):
            self.run.add("error", "invariant", path, f"The {vtype} {value} is not a valid option")

    def free_string(self, qi: dict[str, Any], value: Any, path: str) -> None:
        """open-choice: a string is allowed, but one spelling a listed Coding probably should have been that Coding."""
        s = str(value).lower()
        for o in objects_at(qi, "answerOption"):
            c = o.get("valueCoding")
            if isinstance(c, dict) and s in (str(c.get("display", "")).lower(), str(c.get("code", "")).lower()):
                self.run.add("warning", "invariant", path, f"The string value '{value}' matches an entry in the list "
                             "of valid Codings, so this is probably an error")
                return

    def coding(self, qi: dict[str, Any], coding: Any, path: str) -> None:
        if not isinstance(coding, dict):
            return
        system, code = coding.get("system"), coding.get("code")
        options = objects_at(qi, "answerOption")
        if options:
            listed = [o["valueCoding"] for o in options if isinstance(o.get("valueCoding"), dict)]
            if not listed:
                self.run.add("error", "invariant", path, "Option list has no option values of type coding")
            elif not any(c.get("system") == system and c.get("code") == code for c in listed):
                self.run.add("error", "invariant", path, f"The code {system}::{code} is not a valid option")
            return
        vs_ref = qi.get("answerValueSet")
        if not (isinstance(vs_ref, str) and vs_ref and isinstance(system, str) and system and isinstance(code, str)):
            return  # no options to check against; a Coding with no system cannot be validated (a warning elsewhere)
        in_set = self._member(vs_ref, system, code, path)
        if in_set is False:
            self.run.add("error", "code-invalid", path, f"The value provided ({system}::{code}) is not in the options "
                         f"value set ({vs_ref}) in the questionnaire")

    def _member(self, vs_ref: str, system: str, code: str, path: str) -> bool | None:
        if not vs_ref.startswith("#"):
            if self.v.defs.value_set(vs_ref) is None:
                self.run.add("warning", "code-invalid", path, f"ValueSet {vs_ref} not found by validator")
                return None
            return self.v.tx.contains(vs_ref, system, code).in_set
        # a ValueSet contained in the Questionnaire (or in the resource that contains the Questionnaire)
        if vs_ref not in self._expansions:
            vs = next((c for holder in (self.q, self.container) for c in objects_at(holder, "contained")
                       if c.get("id") == vs_ref[1:] and c.get("resourceType") == "ValueSet"), None)
            try:
                # Terminology.contains() takes canonical URLs only; a contained ValueSet is expanded directly
                self._expansions[vs_ref] = vs and self.v.tx._expand(vs)
            except (AttributeError, KeyError, TypeError):  # a malformed contained ValueSet: its own checks say so
                self._expansions[vs_ref] = False
        exp = self._expansions[vs_ref]
        if exp is None:
            self.run.add("warning", "code-invalid", path, f"ValueSet {vs_ref} not found by validator")
        if not exp:
            return None
        if system not in exp.codes:
            return False if exp.complete else None
        codes = exp.codes[system]
        if codes is None:
            return None if system in exp.unchecked else True
        return True if code in codes else (False if exp.complete else None)

    # -- enableWhen --
    def enabled(self, qi: dict[str, Any], stack: list[tuple[dict[str, Any], dict[str, Any]]]) -> bool:
        expr = self._expression(qi)
        if expr is not None:
            if any(name not in _KNOWN_VARIABLES for name in _VARIABLE.findall(expr)):
                return True  # it needs a launch context or variable that is not there: it cannot be judged here
            got = fhirpath.select(expr, self.qr)
            if got is None:  # cannot be evaluated here: do not blame the answers
                return True
            if len(got) == 1 and isinstance(got[0], bool):
                return got[0]
            return bool(got)
        whens = objects_at(qi, "enableWhen")
        if not whens:
            return True
        results = [self._condition(w, qi, stack) for w in whens]
        behavior = qi.get("enableBehavior")
        if behavior == "any" or len(results) == 1:
            return any(results)
        if behavior == "all":
            return all(results)
        return True  # several conditions and no enableBehavior: que-12 reports it, the item counts as enabled

    @staticmethod
    def _expression(qi: dict[str, Any]) -> str | None:
        for ext in objects_at(qi, "extension"):
            if ext.get("url") == _FI_ENABLE_WHEN and isinstance(ext.get("valueString"), str):
                return ext["valueString"]
            if ext.get("url") == _SDC_ENABLE_WHEN:
                e = ext.get("valueExpression") or {}
                if e.get("language") == "text/fhirpath" and isinstance(e.get("expression"), str):
                    return e["expression"]
        return None

    def _condition(self, ew: dict[str, Any], qi: dict[str, Any],
                   stack: list[tuple[dict[str, Any], dict[str, Any]]]) -> bool:
        answers = self._answers(ew, qi, stack)
        op = ew.get("operator")
        expected = _value(ew, "answer")
        if op == "exists":
            if expected is None or expected[0] != "boolean":
                return True  # que-7 reports the condition itself
            return bool(expected[1]) != (not answers)
        if expected is None:
            return False
        return any(_compare(a, expected, op) for a in answers)

    def _answers(self, ew: dict[str, Any], qi: dict[str, Any],
                 stack: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[tuple[str, Any]]:
        """The answers to the enableWhen question that count for this occurrence of the item: those within the
        response item matching the deepest Questionnaire item that holds both questions (repeating groups each
        decide for themselves)."""
        link = ew.get("question")
        target = self.tree.find(link) if isinstance(link, str) else None
        if target is None:
            return []
        group = self.tree.common_group(qi, target)
        if group is None:
            return _answers_on(self.qr, link)
        for q_item, r_item in reversed(stack):
            if q_item is group:
                return _answers_on(r_item, link)
        return []


def _answers_on(node: dict[str, Any], link: str) -> list[tuple[str, Any]]:
    """Answers to question `link` anywhere under `node` (items nested in answers included), or on `node` itself."""
    out: list[tuple[str, Any]] = []
    for item in _items(node):
        if item.get("linkId") == link:
            out += _answer_values(item)
        out += _answers_on(item, link)
    for answer in objects_at(node, "answer"):
        if answer.get("item"):
            out += _answers_on(answer, link)
    if node.get("linkId") == link:  # the question holding the one that depends on it
        out += _answer_values(node)
    return out


def _answer_values(item: dict[str, Any]) -> list[tuple[str, Any]]:
    return [v for v in (_value(a) for a in objects_at(item, "answer")) if v is not None]


def _same(vtype: str, a: Any, b: Any) -> bool:
    if vtype == "integer":
        n = _num(a)
        return n is not None and n == _num(b)
    return a == b


def _num(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    try:
        return Decimal(str(v))
    except (InvalidOperation, ValueError):
        return None


def _compare(actual: tuple[str, Any], expected: tuple[str, Any], op: Any) -> bool:
    """An answer against an enableWhen answer[x] (http://hl7.org/fhir/R4/questionnaire-definitions.html#
    Questionnaire.item.enableWhen.operator); answers of another type never match."""
    atype, a = actual
    etype, e = expected
    if atype != etype:
        return False
    if etype == "Coding":
        if not isinstance(a, dict) or not isinstance(e, dict):
            return False
        same = (not e.get("system") or e.get("system") == a.get("system")) and e.get("code") == a.get("code")
        return same if op == "=" else op == "!=" and not same
    if etype == "Quantity":
        a, e = (v.get("value") if isinstance(v, dict) else None for v in (a, e))
        etype = "decimal"
    if etype in ("integer", "decimal"):
        a, e = _num(a), _num(e)
        if a is None or e is None:
            return False
    elif etype in ("Reference", "Attachment") or isinstance(a, dict | list) or isinstance(e, dict | list):
        return False
    compare = _OPERATORS.get(op) if isinstance(op, str) else None
    try:
        return compare is not None and bool(compare(a, e))
    except TypeError:  # values that do not order (a date against a dateTime, ...)
        return False
