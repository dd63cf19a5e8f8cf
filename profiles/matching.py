"""fixed[x]/pattern[x] comparison and the small FHIRPath subset slicing discriminators use."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from profiles import patterns

_FN = patterns.compile(r"^(\w+)\((.*)\)$")


def contains_pattern(instance: Any, pattern: Any) -> bool:
    """pattern[x] semantics: every element of the pattern is present in the instance (arrays: each pattern
    item matches some instance item)."""
    if isinstance(pattern, dict):
        if not isinstance(instance, dict):
            return False
        return all(k in instance and contains_pattern(instance[k], v) for k, v in pattern.items())
    if isinstance(pattern, list):
        if not isinstance(instance, list):
            instance = [instance]
        return all(any(contains_pattern(i, p) for i in instance) for p in pattern)
    return equal_primitive(instance, pattern)


def pattern_test(pattern: Any) -> Callable[[Any], bool]:
    """contains_pattern(instance, pattern) as a function of the instance, the pattern's structure walked once (for
    a pattern tested again and again: a profile's fixed code, which conforms() tries on every candidate)."""
    if isinstance(pattern, dict):
        parts = tuple((k, pattern_test(v)) for k, v in pattern.items())

        def test_object(instance: Any) -> bool:
            if not isinstance(instance, dict):
                return False
            for k, test in parts:
                if k not in instance or not test(instance[k]):
                    break
            else:
                return True
            return False

        return test_object
    if isinstance(pattern, list):
        tests = tuple(pattern_test(p) for p in pattern)

        def test_list(instance: Any) -> bool:
            items = instance if isinstance(instance, list) else [instance]
            for test in tests:
                for i in items:
                    if test(i):
                        break
                else:
                    return False
            return True

        return test_list
    if isinstance(pattern, str):  # equal_primitive(x, a string) is x == the string for every JSON value
        return lambda instance: instance == pattern
    return lambda instance: equal_primitive(instance, pattern)


def equal_fixed(instance: Any, fixed: Any) -> bool:
    """fixed[x] semantics: exactly equal (extensions on the instance aside)."""
    if isinstance(fixed, dict):
        if not isinstance(instance, dict):
            return False
        keys = {k for k in instance if k not in ("extension", "id") and not k.startswith("_")}
        return keys == set(fixed) and all(equal_fixed(instance[k], v) for k, v in fixed.items())
    if isinstance(fixed, list):
        return isinstance(instance, list) and len(instance) == len(fixed) and all(
            equal_fixed(i, f) for i, f in zip(instance, fixed, strict=True))
    return equal_primitive(instance, fixed)


def equal_primitive(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return a == b


@lru_cache(maxsize=4096)  # a profile set has a few hundred discriminator paths, split for every item
def split_path(path: str) -> tuple[str, ...]:
    """Split a discriminator path on dots outside parentheses: `extension('a.b').value` → 2 steps."""
    steps: list[str] = []
    depth, buf = 0, ""
    for ch in path:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "." and depth == 0:
            steps.append(buf)
            buf = ""
        else:
            buf += ch
    if buf:
        steps.append(buf)
    return tuple(steps)


@lru_cache(maxsize=4096)
def _steps(path: str) -> tuple[tuple[str, str | None, str], ...]:
    """A discriminator path's steps as (name, function, argument): function None for an element name."""
    out = []
    for step in split_path(path):
        if step == "$this" or not step:
            continue
        m = _FN.match(step)
        out.append((step, m.group(1), m.group(2).strip("'\"")) if m else (step, None, ""))
    return tuple(out)


def values_at(value: Any, path: str, resolve: Callable[[str], dict[str, Any] | None]) -> list[Any]:
    """Instance values reached from `value` by a discriminator path ($this, names, resolve(), ofType(T),
    extension('url'), as(T))."""
    return [v for v, _ in typed_values_at(value, path, resolve)]


def typed_values_at(value: Any, path: str, resolve: Callable[[str], dict[str, Any] | None],
                    value_type: str | None = None) -> list[tuple[Any, str | None]]:
    """As values_at, with the FHIR type of each value where the instance shows it (a choice key's suffix,
    a resource's resourceType), else None."""
    current: list[tuple[Any, str | None]] = [(value, value_type)]
    for step, fn, arg in _steps(path):
        nxt: list[tuple[Any, str | None]] = []
        if fn is not None:
            for v, t in current:
                if fn == "resolve":
                    ref = v.get("reference") if isinstance(v, dict) else None
                    target = resolve(ref) if isinstance(ref, str) and ref else None
                    if target is not None:
                        nxt.append((target, _type_name(target)))
                elif fn == "extension" and isinstance(v, dict) and isinstance(v.get("extension"), list):
                    nxt.extend((e, "Extension") for e in v["extension"] if isinstance(e, dict) and e.get("url") == arg)
                elif fn in ("ofType", "as") and (t is None or t.lower() == arg.lower()):
                    nxt.append((v, arg))
            current = nxt
            continue
        for v, _ in current:
            if not isinstance(v, dict):
                continue
            if step in v:
                got = v[step]
                t = _type_name(got) if isinstance(got, dict) else None
                nxt.extend((g, t) for g in (got if isinstance(got, list) else [got]))
            else:  # a choice element named without its type suffix: value → valueQuantity
                for k, got in v.items():
                    if k.startswith(step) and k[len(step):len(step) + 1].isupper():
                        suffix = k[len(step):]
                        nxt.extend((g, suffix) for g in (got if isinstance(got, list) else [got]))
        current = nxt
    return current


def _type_name(resource: dict[str, Any]) -> str | None:
    """A resource's resourceType when it is a string: the instance is input, and a type discriminator lower-cases
    what it finds (a fuzzed `"resourceType": true` behind a reference raised AttributeError)."""
    rt = resource.get("resourceType")
    return rt if isinstance(rt, str) else None


def short(value: Any) -> str:
    """A value as shown in a message, cut at 120 characters."""
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 120 else text[:117] + "..."
