"""The checks suites refer to by name; importing this package registers them all."""

from conformance.checks import capability, convert, documents, exchange, lifecycle, rest, server

__all__ = ["capability", "convert", "documents", "exchange", "lifecycle", "rest", "server"]
