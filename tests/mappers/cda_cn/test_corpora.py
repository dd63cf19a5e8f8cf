"""Inputs other projects wrote. No file of ../shared/corpora/real-world/ is a WS/T 500 document or a WS 445 dataset;
each must be told apart from them (not detected as either) and, when named as one anyway, refused with a
ParseError saying why, never a crash. Other realms' CDA documents (C-CDA, MyHealth@EU) are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappers import ws445
from mappers.cda_cn import to_fhir
from mappers.cda_cn.format import sniff as is_cda_cn
from mappers.exceptions import ParseError, UnsupportedMessage
from mappers.ws445.format import sniff as is_ws445
from tests.corpora import params


def _files(folder: Path) -> list[object]:
    return [pytest.param(p, id=str(p.relative_to(folder))) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "README.md"]


@pytest.mark.parametrize("path", params("real-world", _files))
def test_real_world_inputs_are_not_china_formats(path: Path) -> None:
    data = path.read_bytes()
    assert not is_cda_cn(data) and not is_ws445(data)
    with pytest.raises(ParseError) as cda:
        to_fhir(data)
    assert cda.value.issues[0].details in ("cda-not-well-formed", "cda-not-cda", "cda-encoding")
    with pytest.raises(ParseError) as dataset:
        ws445.to_fhir(data)
    assert dataset.value.issues[0].details in ("ws445-bad-json", "ws445-schema", "ws445-not-object")


@pytest.mark.parametrize("path", [*params("ccda", _files), *params("ehdsi-cda", _files)])
def test_other_realms_cda_is_refused_by_name(path: Path) -> None:
    data = path.read_bytes()
    assert not is_cda_cn(data)
    with pytest.raises(UnsupportedMessage, match="not a recognised WS/T 500 document: code ") as e:
        to_fhir(data)
    assert e.value.issues[0].details == "cda-unknown-document-type"
    assert e.value.issues[0].expression == "/ClinicalDocument/code"
