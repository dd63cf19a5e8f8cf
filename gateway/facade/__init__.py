"""The validating facade in front of an upstream FHIR server (HELIXGATE_UPSTREAM_URL), as a complete FHIR REST
endpoint, and the lifespan resources of the integration engine.

    table.py       the route table: every interaction the facade serves, once; routes and /metadata come from it
    capability.py  /metadata: the table ∩ the upstream's CapabilityStatement
    reads.py       read, vread, history, search (GET, POST _search, _type), revalidated through the cache
    writes.py      create, update, patch, delete, batch/transaction, national formats, instance $validate
    patch.py       JSON Patch and FHIRPath Patch, applied by the gateway so the result is validated
    semantics.py   Prefer, ETag/Last-Modified, _summary/_elements, searchset links and paging outcomes
    addresses.py   the upstream's base URLs (configured and learned) rewritten to the public base
    respond.py     the one place a facade response's FHIR body is produced
    paths.py       FHIR's path grammar, checked before anything is forwarded
    lifespan.py    Redis, the upstream client, the audit log, the MLLP listener
"""

from gateway.facade.lifespan import integration_resources
from gateway.facade.table import TABLE, routes

__all__ = ["TABLE", "integration_resources", "routes"]
