"""FHIR R4 (JSON or XML), the hub every other format converts through, and what writers from FHIR share.

    read      the input as a Bundle (a single resource or a Parameters wrapped; FHIR XML read as JSON)
    shape     the JSON shape of the elements writers read, checked before they read them (tables/shapes.json)
    genomics  genomic content recognised by code and structure, earlier releases read as STU3 (tables/genomics.json)
    ledger    which elements of the input a writer carried over; the rest goes into the conversion report
    format    the `fhir` format of the registry
"""
