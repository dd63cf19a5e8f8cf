"""What can go wrong in a conformance run, and what each outcome means for the test that raised it.

    ConformanceError        the kit could not do what was asked
     ├── SuiteError         a suite file is malformed or names a check the kit does not have (raised on load)
     └── TargetError        the target could not be tested: timeout, TLS or connection failure, a body over the
                            read cap, a non-FHIR answer (an HTML error page) where a FHIR resource was needed;
                            the test is reported as `error` and the run goes on
    CheckFailed             the target answered and broke the requirement: the test is reported as `fail`
    CheckSkipped            the requirement does not apply to this target: the test is reported as `skip`
"""

from __future__ import annotations


class ConformanceError(Exception):
    """Base class of the kit's own errors."""


class SuiteError(ConformanceError):
    """Raised when a suite cannot be loaded; the message names the file and the offending test or field."""


class TargetError(ConformanceError):
    """Raised when the target cannot be tested (transport failure or an unusable response)."""


class CheckFailed(Exception):
    """Raised by a check when the target's answer breaks the requirement the test checks."""


class CheckSkipped(Exception):
    """Raised by a check when its requirement does not apply (an optional capability is not declared)."""
