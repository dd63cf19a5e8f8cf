"""The JSON Schema (draft 2020-12) of an exchange routes file. A deployment's routes are data its counsel edits;
this is what the gateway checks at start-up before it enforces them."""

from __future__ import annotations

from typing import Any

_CODING = {"type": "object", "required": ["system", "code"], "additionalProperties": False,
           "properties": {"system": {"type": "string", "minLength": 1}, "code": {"type": "string", "minLength": 1},
                          "display": {"type": "string"}}}
_MINIMISE = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "keepTypes": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][A-Za-z]+$"}},
        "dropTypes": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][A-Za-z]+$"}},
        "dropPaths": {"type": "array", "items": {"type": "string", "pattern": r"^([A-Z][A-Za-z]+|\*)\..+$"}},
        "birthDate": {"enum": ["exact", "year", "band5", "drop"]},
        "narrative": {"enum": ["keep", "drop"]},
        "notes": {"enum": ["keep", "drop"]},
    },
}
ROUTE = {
    "type": "object",
    "required": ["id", "source", "destination", "purposes", "legalBasis", "target", "delivery"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{0,63}$"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "source": {"type": "object", "required": ["jurisdiction", "exporter"], "additionalProperties": False,
                   "properties": {"jurisdiction": {"type": "string", "pattern": "^[A-Z]{2}$"},
                                  "exporter": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                                  "name": {"type": "string"}}},
        "destination": {
            "type": "object", "required": ["jurisdiction", "id", "partner"], "additionalProperties": False,
            "properties": {"jurisdiction": {"type": "string", "pattern": "^[A-Z]{2}$"},
                           "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{0,63}$"},
                           "name": {"type": "string"},
                           "partner": {"type": "object", "required": ["system", "value"], "additionalProperties": False,
                                       "properties": {"system": {"type": "string", "minLength": 1},
                                                      "value": {"type": "string", "minLength": 1}}},
                           "notice": {"type": "string"}}},
        "purposes": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        "legalBasis": {
            "type": "object", "required": ["basis"], "additionalProperties": False,
            "properties": {
                "basis": {"type": "string", "minLength": 1},
                "articles": {"type": "array", "items": {"type": "string"}},
                "mechanisms": {"type": "array", "items": {
                    "type": "object", "required": ["type", "id"], "additionalProperties": False,
                    "properties": {"type": {"enum": ["standard-contract", "scc", "security-assessment",
                                                     "certification", "adequacy", "derogation"]},
                                   "id": {"type": "string", "minLength": 1}, "note": {"type": "string"}}}},
                "citeMechanism": {"type": "boolean"},
            }},
        "target": {"type": "object", "required": ["format"], "additionalProperties": False,
                   "properties": {"format": {"type": "string", "minLength": 1},
                                  "profiles": {"type": "array", "items": {"type": "string"}},
                                  "options": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "delivery": {"type": "object", "required": ["mode"], "additionalProperties": False,
                     "properties": {"mode": {"enum": ["return", "file", "upstream", "mllp"]},
                                    "directory": {"type": "string", "minLength": 1},
                                    "host": {"type": "string", "minLength": 1},
                                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                    "timeoutMs": {"type": "integer", "minimum": 1}}},
        "rules": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "consent": {"type": "object", "additionalProperties": False, "properties": {
                    "required": {"type": "boolean"},
                    "lookup": {"enum": ["supplied"]},  # upstream look-up: not done (README)
                    "dataClasses": {"type": "array", "items": _CODING},
                    "separateConsent": {"oneOf": [{"type": "boolean"}, {
                        "type": "object", "additionalProperties": False,
                        "properties": {"category": _CODING, "geneticOnly": {"type": "boolean"}}}]}}},
                "genetic": {"type": "object", "additionalProperties": False, "properties": {
                    "enforce": {"type": "boolean"},
                    "filingIds": {"type": "array", "items": {"type": "string", "minLength": 1}},
                    "onMissing": {"enum": ["refuse", "withhold"]}}},
                "minimise": {"type": "object", "additionalProperties": _MINIMISE},
                "pseudonymise": {"type": "object", "required": ["keyFile"], "additionalProperties": False,
                                 "properties": {"keyFile": {"type": "string", "minLength": 1}}},
                "counters": {"type": "object", "required": ["stopAt"], "additionalProperties": False,
                             "dependentRequired": {"keyFile": ["keyId"], "keyId": ["keyFile"]},
                             "properties": {"keyFile": {"type": "string", "minLength": 1},
                                            "keyId": {"type": "string", "minLength": 1},
                                            "warnAt": {"type": "integer", "minimum": 1},
                                            "stopAt": {"type": "integer", "minimum": 1},
                                            "class": {"enum": ["sensitive", "general"]},
                                            "timezone": {"type": "string", "pattern": "^[+-][0-9]{2}:[0-9]{2}$"}}},
            }},
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "helixgate exchange routes",
    "type": "object",
    "required": ["version", "routes"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "routes": {"type": "array", "minItems": 1, "items": ROUTE},
    },
}
