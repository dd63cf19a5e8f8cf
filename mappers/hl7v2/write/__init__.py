"""FHIR → HL7 v2.5.1 ORU^R01 writers, one module per kind of segment content; mappers.hl7v2.from_fhir runs them.

    state     what one conversion shares: the genomic content read, the ledger of what was carried, the issues
    values    FHIR datatypes → v2 field text (CWE, DTM, OBX-2/5/6), refusing what cannot be justified
    results   OBX rows: variant groups with their implications, biomarkers, other results, presented forms
    segments  PID, ORC/OBR, SPM
"""
