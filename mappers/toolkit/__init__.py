"""The mapper toolkit: what every format package shares.

    registry     Format, ConvertOptions, Rendered; the registry the edge iterates (one package per format)
    bundle       one Bundle/transaction policy (conditional creates, identifier escaping)
    provenance   the converter Device and the source Provenance
    origins      locating an output element's source field (for validation errors)
    fhirtime     which date/dateTime/instant values may be emitted
Beside it, shared since before the toolkit: mappers.ids (deterministic ids), mappers.terminology (ConceptMaps as
data, also served by $translate), mappers.conversion (Conversion), mappers.exceptions (errors and issues).
"""
