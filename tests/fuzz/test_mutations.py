"""The XML mutations of bench/fuzz/mutations.py keep the caller's element list in step with the tree they change: the
next mutation picks from that list, so a list gone wrong would shift what the CDA harnesses generate, silently."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench" / "fuzz"))
from mutations import mutate_xml

SEEDS = [
    b'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1"/><component><section><entry><observation>'
    b'<code code="a"/><value value="1"/></observation></entry><entry><observation><code code="b"/></observation>'
    b'</entry></section></component><!-- a comment --></ClinicalDocument>',
    b'<root xmlns="urn:hl7-org:v3"><a><b><c/><c/></b></a><d>text<?pi x?></d></root>',
]


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_the_element_list_follows_every_mutation(data: st.DataObject) -> None:
    trees = [etree.fromstring(s) for s in SEEDS]
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    root = copy.deepcopy(rng.choice(trees))
    elements = list(root.iter(etree.Element))
    for _ in range(4):
        try:
            mutate_xml(data.draw, rng, root, trees, elements)
        except RecursionError:
            return
        fresh = list(root.iter(etree.Element))
        assert len(elements) == len(fresh) and all(a is b for a, b in zip(elements, fresh, strict=True))
