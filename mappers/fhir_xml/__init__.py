"""FHIR R4 XML as a conversion target (`--to fhir-xml`): the hub's FHIR output written as XML."""
