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

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from profiles import fhirpath
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
_VARIABLE = re.compile(r"%([A-Za-z_][A-Za-z0-9_-]*)")
_KNOWN_VARIABLES = {"resource", "rootResource", "context", "sct", "loinc", "ucum"}


def _objects(node: Any, key: str) -> list[dict[str, Any]]:
    """The objects of a repeating element (malformed content is the structure checks' business, not a crash)."""
    got = node.get(key) if isinstance(node, dict) else None
    return [i for i in got if isinstance(i, dict)] if isinstance(got, list) else []


def _items(node: dict[str, Any]) -> list[dict[str, Any]]:
    return _objects(node, "item")


def _value(node: dict[str, Any], prefix: str = "value") -> tuple[str, Any] | None:
    """(type, value) of the first value[x] (or answer[x]) of an element: 'boolean', 'dateTime', 'Coding', ..."""
    for k, v in node.items():
        if k.startswith(prefix) and len(k) > len(prefix) and k[len(prefix)].isupper():
            t = k[len(prefix):]
            return (t if t in _COMPLEX else t[0].lower() + t[1:]), v
    return None


def _find(items: list[dict[str, Any]], link_id: str) -> dict[str, Any] | None:
    """The first item with this linkId, depth first (Questionnaire.getQuestion)."""
    for it in items:
        if it.get("linkId") == link_id:
            return it
        hit = _find(_items(it), link_id)
        if hit is not None:
            return hit
    return None


def _contains(item: dict[str, Any], target: dict[str, Any]) -> bool:
    return item is target or any(_contains(c, target) for c in _items(item))


def _common_group(items: list[dict[str, Any]], q1: dict[str, Any], q2: dict[str, Any]) -> dict[str, Any] | None:
    """The deepest item holding both (either may be the item itself); None when only the Questionnaire does."""
    for it in items:
        if _contains(it, q1) and _contains(it, q2):
            return _common_group(_items(it), q1, q2) or it
    return None


# ---- Questionnaire ----

@rule("Questionnaire")
def questionnaire(validator: Any, res: dict[str, Any], path: str, run: Any) -> None:
    top = _items(res)
    if top:
        _check_items(res, top, path, [res], run)


def _check_items(q: dict[str, Any], items: list[dict[str, Any]], path: str, parents: list[dict[str, Any]],
                 run: Any) -> None:
    for i, item in enumerate(items):
        ipath = f"{path}.item[{i}]"
        whens = item.get("enableWhen")
        if isinstance(whens, list):
            for ew in whens:
                if isinstance(ew, dict):
                    _check_enable_when(q, item, ew, ipath, parents, run)
        kids = _items(item)
        if kids:
            _check_items(q, kids, ipath, [item, *parents], run)


def _check_enable_when(q: dict[str, Any], item: dict[str, Any], ew: dict[str, Any], path: str,
                       parents: list[dict[str, Any]], run: Any) -> None:
    link = ew.get("question")
    if not isinstance(link, str) or not link:
        run.add("error", "business-rule", path, "Questions with an enableWhen must have a value for the question link")
        return
    if _find(_items(item), link) is not None:
        run.add("error", "business-rule", path, "Questions with an enableWhen cannot refer to an inner question for "
                "its enableWhen condition")
        return
    target = _find(_items(q), link)
    if target is None:
        run.add("error", "business-rule", path, f"Unable to find an item with the linkId '{link}' which is "
                f"referenced in the enableWhen for '{item.get('linkId')}'")
    elif target is item:
        run.add("error", "business-rule", path, "Target for this question enableWhen can't reference itself")
    elif not _is_before(item, target, parents):
        run.add("warning", "business-rule", path, f"The target of this enableWhen rule ({link}) comes after the "
                "question itself")


def _is_before(item: dict[str, Any], target: dict[str, Any], parents: list[dict[str, Any]]) -> bool:
    if any(p is target for p in parents):  # a question may depend on the group (question) it sits in
        return True
    for p in parents:  # nearest first: the closest node holding both decides the order
        kids = _items(p)
        i = next((n for n, c in enumerate(kids) if _contains(c, item)), -1)
        t = next((n for n, c in enumerate(kids) if _contains(c, target)), -1)
        if i > -1 and t > -1:
            return i > t
    return False


# ---- QuestionnaireResponse ----

@rule("QuestionnaireResponse")
def questionnaire_response(validator: Any, res: dict[str, Any], path: str, run: Any) -> None:
    ref = res.get("questionnaire")
    if isinstance(ref, dict):  # STU3 shape, accepted as the HL7 validator does
        ref = ref.get("reference")
    if not isinstance(ref, str) or not ref:
        return
    q, container = _questionnaire(validator, res, ref, run)
    if q is None:
        sev = "information" if ref.startswith(("http://example.org", "https://example.org")) else "warning"
        run.add(sev, "required", path, f"The questionnaire '{ref}' could not be resolved, so no validation can be "
                "performed against the base questionnaire")
        return
    _Check(validator, q, container, res, run).items(_items(q), res, path, [])


def _questionnaire(validator: Any, qr: dict[str, Any], ref: str, run: Any
                   ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The Questionnaire and, when it is contained, the resource containing it (where '#' references resolve)."""
    if ref.startswith("#"):
        for holder in (qr, run.container):
            for c in _objects(holder, "contained"):
                if c.get("id") == ref[1:] and c.get("resourceType") == "Questionnaire":
                    return c, holder
        return None, None
    q = validator.defs.canonical(ref, "Questionnaire")
    if q is not None:
        return q, None
    url, _, version = ref.partition("|")
    for r in run.index.values():  # a Questionnaire travelling in the same Bundle
        if isinstance(r, dict) and r.get("resourceType") == "Questionnaire" and r.get("url") == url and (
                not version or r.get("version") == version):
            return r, None
    return None, None


class _Check:
    """One QuestionnaireResponse checked against its Questionnaire."""

    def __init__(self, validator: Any, q: dict[str, Any], container: dict[str, Any] | None, qr: dict[str, Any],
                 run: Any) -> None:
        self.v = validator
        self.q = q
        self.container = container
        self.qr = qr
        self.run = run
        # required answers are only owed once the response is finished (in-progress, stopped: warnings)
        self.not_completed = qr.get("status") not in ("completed", "amended")
        self._by_link: dict[str, dict[str, Any] | None] = {}

    def find(self, link: str) -> dict[str, Any] | None:
        if link not in self._by_link:
            self._by_link[link] = _find(_items(self.q), link)
        return self._by_link[link]

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
                qi = self.find(link)
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
            enabled = self.enabled(qi, stack)
            if got:
                if not enabled:
                    for item, n in got:
                        if item.get("answer") or item.get("item"):
                            self.run.add("error", "invalid", f"{path}.item[{n}]", "Item has answer, even though it "
                                         f"is not enabled (item id = '{qi.get('linkId')}')")
                if len(got) > 1 and qi.get("repeats") is not True:
                    self.run.add("error", "invalid", f"{path}.item[{got[1][1]}]", "Only one response item with this "
                                 f"linkId allowed - {qi.get('linkId')}")
                for item, n in got:
                    self.item(qi, item, f"{path}.item[{n}]", [*stack, (qi, item)])
            elif enabled and qi.get("required") is True:
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
        answers = _objects(item, "answer")
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
        elif vtype in _OPTION_TYPES and _objects(qi, "answerOption"):
            self.option(qi, vtype, value, vpath, False)

    def option(self, qi: dict[str, Any], vtype: str, value: Any, path: str, open_choice: bool) -> None:
        """A date, time, integer or string answer against the item's answerOption values of that type."""
        options = _objects(qi, "answerOption")
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
        for o in _objects(qi, "answerOption"):
            c = o.get("valueCoding")
            if isinstance(c, dict) and s in (str(c.get("display", "")).lower(), str(c.get("code", "")).lower()):
                self.run.add("warning", "invariant", path, f"The string value '{value}' matches an entry in the list "
                             "of valid Codings, so this is probably an error")
                return

    def coding(self, qi: dict[str, Any], coding: Any, path: str) -> None:
        if not isinstance(coding, dict):
            return
        system, code = coding.get("system"), coding.get("code")
        if _objects(qi, "answerOption"):
            listed = [o["valueCoding"] for o in _objects(qi, "answerOption") if isinstance(o.get("valueCoding"), dict)]
            if not listed:
                self.run.add("error", "invariant", path, "Option list has no option values of type coding")
            elif not any(c.get("system") == system and c.get("code") == code for c in listed):
                self.run.add("error", "invariant", path, f"The code {system}::{code} is not a valid option")
            return
        vs_ref = qi.get("answerValueSet")
        if not isinstance(vs_ref, str) or not vs_ref or not system or not isinstance(code, str):
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
        vs = next((c for holder in (self.q, self.container) for c in _objects(holder, "contained")
                   if c.get("id") == vs_ref[1:] and c.get("resourceType") == "ValueSet"), None)
        if vs is None:
            self.run.add("warning", "code-invalid", path, f"ValueSet {vs_ref} not found by validator")
            return None
        try:
            exp = self.v.tx._expand(vs)
        except (AttributeError, KeyError, TypeError):  # a malformed contained ValueSet: its own checks report it
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
        whens = _objects(qi, "enableWhen")
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
        for ext in _objects(qi, "extension"):
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
        target = self.find(link) if isinstance(link, str) else None
        if target is None:
            return []
        group = _common_group(_items(self.q), qi, target)
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
    for answer in _objects(node, "answer"):
        if answer.get("item"):
            out += _answers_on(answer, link)
    if node.get("linkId") == link:  # the question holding the one that depends on it
        out += _answer_values(node)
    return out


def _answer_values(item: dict[str, Any]) -> list[tuple[str, Any]]:
    return [v for v in (_value(a) for a in _objects(item, "answer")) if v is not None]


def _same(vtype: str, a: Any, b: Any) -> bool:
    if vtype == "integer":
        return _num(a) is not None and _num(a) == _num(b)
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
        return same if op == "=" else (not same if op == "!=" else False)
    if etype == "Quantity":
        a, e = (a or {}).get("value"), (e or {}).get("value")
        etype = "decimal"
    if etype in ("integer", "decimal"):
        a, e = _num(a), _num(e)
        if a is None or e is None:
            return False
    elif etype in ("Reference", "Attachment") or isinstance(a, dict | list) or isinstance(e, dict | list):
        return False
    try:
        if op == "=":
            return bool(a == e)
        if op == "!=":
            return bool(a != e)
        if op == ">":
            return bool(a > e)
        if op == "<":
            return bool(a < e)
        if op == ">=":
            return bool(a >= e)
        if op == "<=":
            return bool(a <= e)
    except TypeError:
        return False
    return False
