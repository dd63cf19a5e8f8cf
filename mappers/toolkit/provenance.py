"""The converter as a Device and the Provenance every conversion to FHIR carries: which source document, which
mapper version assembled it. Times come from the source (or an option): mappers read no clock."""

from __future__ import annotations

from typing import Any

from mappers.ids import resource_id

_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def ref(res: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"urn:uuid:{res['id']}"}


def converter_device(version: str) -> dict[str, Any]:
    """The converter itself, as the Provenance assembler; one Device per mapper version."""
    return {"resourceType": "Device", "id": resource_id("Device", "helixgate", version),
            "deviceName": [{"name": "helixgate", "type": "user-friendly-name"}],
            "version": [{"value": version}]}


def provenance(source: tuple[str, str], description: str, targets: list[dict[str, Any]], device: dict[str, Any],
               recorded: str | None, occurred: str | None = None,
               author: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A Provenance naming the source document (`source` = identifier system, value) and the converter.

    `recorded` (1..1 in R4) must be an instant from the source or the caller; without one there is no
    Provenance (None): the gateway's delivery Provenance states when the conversion happened.
    """
    if not recorded or "T" not in recorded:
        return None
    res: dict[str, Any] = {"resourceType": "Provenance", "id": resource_id("Provenance", *source),
                           "target": [ref(t) for t in targets]}
    if occurred:
        res["occurredDateTime"] = occurred
    res["recorded"] = recorded
    res["activity"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                   "code": "CREATE", "display": "create"}]}
    agents = [{"type": {"coding": [{"system": _PARTICIPANT, "code": "assembler", "display": "Assembler"}]},
               "who": ref(device)}]
    if author:
        agents.append({"type": {"coding": [{"system": _PARTICIPANT, "code": "author", "display": "Author"}]},
                       "who": ref(author)})
    res["agent"] = agents
    res["entity"] = [{"role": "source", "what": {"identifier": {"system": source[0], "value": source[1]},
                                                  "display": description}}]
    return res
