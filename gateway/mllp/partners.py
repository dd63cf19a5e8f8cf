"""Which senders the MLLP listener accepts messages from (HELIXGATE_MLLP_PARTNERS): an allow-list of sending
facilities (MSH-4, its namespace id) and the client certificates each must come with.

JSON, inline or in a file (its path): sending facility → the certificate(s) its messages must arrive with, or null
for "any connection"; the key "*" lists certificates allowed to send for any facility. Certificates are named as in
gateway.auth.certs (RFC 4514 subject or `sha256:` fingerprint):

    {"GENLAB-A": "CN=genlab-a,O=Genlab,C=DE", "HOSP-B": null, "*": ["CN=hub,O=Regional HIE"]}

A message whose facility is not listed, or arrives without one of the certificates its facility is bound to, is
refused with AR and not queued. Without HELIXGATE_MLLP_PARTNERS every sender is accepted, as before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.auth.certs import CertIdentity, CertMatch, json_or_file
from gateway.settings import SettingsError

SETTING = "HELIXGATE_MLLP_PARTNERS"


@dataclass(frozen=True, slots=True)
class Partners:
    facilities: Mapping[str, tuple[CertMatch, ...]]  # facility → certificates it must come with (empty: any)
    anyone: tuple[CertMatch, ...] = ()  # certificates that may send for any facility ("*")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Partners | None:
        """The allow-list, or None when HELIXGATE_MLLP_PARTNERS is not set. Raises SettingsError naming it."""
        env = os.environ if env is None else env
        return cls.parse(env.get(SETTING) or "")

    @classmethod
    def parse(cls, raw: str, setting: str = SETTING) -> Partners | None:
        doc = json_or_file(raw, setting)
        if doc is None:
            return None
        if not isinstance(doc, dict) or not doc:
            raise SettingsError(f"{setting} must be a JSON object of sending facility → certificate subject(s) or "
                                "null, e.g. {\"GENLAB-A\": \"CN=genlab-a,O=Genlab\", \"HOSP-B\": null}")
        facilities: dict[str, tuple[CertMatch, ...]] = {}
        anyone: tuple[CertMatch, ...] = ()
        for facility, certs in doc.items():
            if certs is None:
                certs = []
            elif isinstance(certs, str):
                certs = [certs]
            if not isinstance(certs, list) or not all(isinstance(c, str) for c in certs):
                raise SettingsError(f"{setting}[{facility!r}] must be a certificate subject, a list of them, or null")
            matches = tuple(CertMatch.parse(c, f"{setting}[{facility!r}]") for c in certs)
            if facility == "*":
                if not matches:
                    raise SettingsError(f"{setting}[\"*\"] must name certificates: \"*\": null would allow everyone")
                anyone = matches
            elif not facility.strip():
                raise SettingsError(f"{setting}: an empty sending facility")
            else:
                facilities[facility] = matches
        return cls(facilities, anyone)

    def refusal(self, facility: str, cert: CertIdentity | None) -> str | None:
        """None when `facility` may send over a connection with `cert` (None: no client certificate); otherwise
        why not, for the log."""
        if any(m.matches(cert) for m in self.anyone):
            return None
        bound = self.facilities.get(facility)
        if bound is None:
            return f"sending facility {facility!r} is not in {SETTING}"
        if bound and not any(m.matches(cert) for m in bound):
            return (f"sending facility {facility!r} came with " + (f"certificate {cert.subject_text!r}" if cert
                    else "no client certificate") + f", not one {SETTING} binds it to")
        return None
