"""The mapper toolkit: what every format package shares.

    registry     Format, ConvertOptions, Rendered; the registry the edge iterates (one package per format)
    bundle       one Bundle/transaction policy (conditional creates, identifier escaping)
    provenance   the converter Device and the source Provenance
    origins      locating an output element's source field (for validation errors)
    fhirtime     which date/dateTime/instant values may be emitted
    genomics     the Genomics Reporting IG 3.0.0 emitter: variant, implication, sequence-phase relationship and
                 genomic report from neutral facts, for every format that produces variants
Beside it, shared since before the toolkit: mappers.ids (deterministic ids), mappers.terminology (ConceptMaps as
data, also served by $translate), mappers.conversion (Conversion), mappers.exceptions (errors and issues).
"""
