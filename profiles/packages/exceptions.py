"""Errors of the FHIR package client.

    PackageError                 a package could not be installed, found or read; the message says what failed
                                 and how to fix it (which command to run, which setting to change)
"""

from __future__ import annotations


class PackageError(Exception):
    """Raised when a package cannot be installed, resolved in the cache or read. The message is meant for a person:
    it names the package (`NAME#VERSION`), what was tried and the command or setting that fixes it."""
