"""Bulk $convert jobs (FHIR Bulk Data async pattern): kick-off and polling over HTTP, conversion on the workers."""

from __future__ import annotations

from gateway.bulk.documents import Document, documents
from gateway.bulk.jobs import bulk_dir, kickoff, manifest, routes, wants_async
from gateway.bulk.runner import run_job

__all__ = ["Document", "bulk_dir", "documents", "kickoff", "manifest", "routes", "run_job",
           "wants_async"]
