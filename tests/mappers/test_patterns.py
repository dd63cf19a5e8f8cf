"""The mappers' regular expressions run in time linear in the input: tests/patterns_support.py finds them in the code
and runs tests/mappers/worst_cases.py's worst case for each under a CPU limit. The four patterns rewritten to be linear
are compared with the old ones on hand-picked and enumerated inputs."""

from __future__ import annotations

import re

from mappers.cda_cn import safexml
from mappers.cda_cn.emit import results
from mappers.exceptions import ParseError
from mappers.hl7v2 import datatypes
from mappers.toolkit import origins
from tests.patterns_support import pattern_tests, words

test_every_pattern_and_each_way_it_is_called_has_a_worst_case, \
    test_every_worst_case_finishes_under_a_cpu_limit_with_the_expected_result = \
    pattern_tests("mappers", "tests.mappers.worst_cases", at_least=60)


# --- the rewritten patterns match what the old ones matched

def test_hgvs_lrg_matches_as_before() -> None:
    old = re.compile(r"^(?:[A-Z]{1,3}_?\d+(?:\.\d+)?(?:\([^)]*\))?|LRG_\d+\w*):[cgmnopr]\.")
    examples = ["LRG_1:g.123A>G", "LRG_199t1:c.79_80del", "LRG_1p1:p.Gly2Ser", "LRG_:c.1", "LRG_a1:c.",
                "LRG_1_2:c.", "LRG_١٢:c.1", "LRG_1²:c.", "NM_000088.3:c.589G>T", "NC_000001.11(NM_1):g.1",
                "lrg_1:c.", "LRG_1:x.", "LRG_1c.", "", "LRG_12345", "LRG_1 :c."]
    inputs = examples + words(["LRG_", "1", "١", "a", "_", ":", "c", ".", "²", "NM"], 5)
    for text in inputs:
        a, b = old.match(text), datatypes._HGVS.match(text)
        assert (a and a.span()) == (b and b.span()), text
    assert datatypes.is_hgvs("LRG_199t1:c.79_80del") and not datatypes.is_hgvs("LRG_x:c.1")


def test_cn_lab_number_matches_as_before() -> None:
    old = re.compile(r"^\s*([<>]=?)?\s*([-+]?\d+(?:\.\d+)?)\s*$")
    examples = ["1", " 12.5 ", "<5", "<= 5", ">=5.0", "> -3", "<<5", "=5", "< ", "5 <", "+1.", ".5", "1.2.3",
                "\t>\n7\n", "", " ", "<=  +2.50  ", "１２", "5\n", ">=\u00a05", "> = 5"]
    for text in examples + words([" ", "<", ">", "=", "1", ".", "-", "\n"], 6):
        a, b = old.match(text), results._NUMBER.match(text)
        assert (a and (a.span(), a.groups())) == (b and (b.span(), b.groups())), repr(text)


def _old_declared(data: bytes) -> bytes | None:
    m = re.match(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"'][^>]*\?>", data)
    return m.group(1) if m else None


def _new_declared(data: bytes) -> bytes | None:  # as safexml.decode reads it
    decl = safexml._DECL.match(data)
    m = safexml._ENCODING.search(decl.group()) if decl else None
    return m.group(1) if m else None


def test_cda_declared_encoding_is_read_as_before() -> None:
    examples = [b'<?xml version="1.0" encoding="UTF-8"?>', b"<?xml version='1.0' encoding='GB18030' ?>",
                b'  <?xml encoding="a" encoding="b"?>', b'<?xml encoding = "gbk"?><root/>', b'<?xml version="1.0"?>',
                b'<?xml encoding="utf-8">', b'<?xml encoding="utf 8"?>', b'<?xml encoding="" encoding="x"?>',
                b'<?xmlencoding="x"?>', b"<?xml encoding=\"x'?>", b'<?xml encoding="a"?><?xml encoding="b"?>',
                b"<?xml x=\"encoding='q'\"?>", b'<?xml encoding="a"', b'<root encoding="a"?>',
                b'\n<?xml encoding="a"?>', b'<?xml encoding="a">?>', b'<?xml encoding="a"?' + b" " * 600 + b">"]
    tokens = [b" ", b"encoding", b"=", b'"', b"'", b"a", b"?>", b">", b"?"]
    for data in examples + [b"<?xml" + w for w in words(tokens, 5)]:
        assert _old_declared(data) == _new_declared(data), data
    assert safexml.decode('<?xml version="1.0" encoding="GBK"?><a>检验</a>'.encode("gb18030"))[1] == "gb18030"
    try:
        safexml.decode(b'<?xml version="1.0" encoding="latin-1" encoding="utf-8"?><a/>')
    except ParseError as e:
        assert "'latin-1' is not supported" in str(e)
    else:
        raise AssertionError("the first declared encoding is the one read")


def test_of_type_choice_names_are_read_as_before() -> None:
    def old(expression: str) -> str:
        return re.sub(r"(\w+)\.ofType\((\w)(\w*)\)", lambda c: c.group(1) + c.group(2).upper() + c.group(3),
                      expression)

    examples = ["Observation.value.ofType(Quantity)", "effective.ofType(dateTime).value", "a.ofType(b)c.ofType(d)",
                "x.ofType(A).ofType(B)", "value.ofType()", "é.ofType(x)", "_a.ofType(b)", "a-b.ofType(c)",
                "Bundle.entry[0].resource.ofType(Patient).name", ""]
    for text in examples + words(["a", "b1", ".", "ofType(", ")", "-", "é", "X"], 5):
        assert old(text) == origins.readable(text), text
    assert origins.readable("component[0].value.ofType(Quantity)") == "component[0].valueQuantity"
