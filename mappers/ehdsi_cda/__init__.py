"""MyHealth@EU (eHDSI) Patient Summary CDA ⇄ FHIR IPS 2.0.0 documents.

to_fhir: eHDSI PS L3 (CDA R2) → IPS document Bundle; from_fhir: an IPS document (or a plain Bundle) → eHDSI PS L3;
rules: the eHDSI header rules, as code, checked on what from_fhir writes.
"""
