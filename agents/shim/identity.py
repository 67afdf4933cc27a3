"""Whose locators are these? The local identity and the peer's proven locator set.

Locally: an HBA set (optionally hybrid, with the RSA key) gives the ULIDs and the parameter
structure to send; locators outside the set can only be offered with a CGA signature.
For a peer: the locator list, the verification method of each locator, the CGA Parameter
Data Structure and (for CGA) the signature, checked lazily: thesis 6.4.3.3.2 verifies an
alternative locator only when it is about to be used, and caches the verdict.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from cryptography.hazmat.primitives.asymmetric import rsa

from . import cga, hba
from . import messages as m

Address = ipaddress.IPv6Address


def signed_bytes(generation: int, locators: tuple[Address, ...], methods: tuple[int, ...]) -> bytes:
    """RFC 5533 5.15.5: generation number, then the locators whose method is CGA, in order."""
    chosen = [loc.packed for loc, method in zip(locators, methods) if method == m.VERIFY_CGA]
    return generation.to_bytes(4, "big") + b"".join(chosen)


@dataclass
class LocalIdentity:
    hba_set: hba.HbaSet
    private_key: rsa.RSAPrivateKey | None = None
    locators: list[Address] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.locators:
            self.locators = list(self.hba_set.addresses)

    @property
    def ulids(self) -> tuple[Address, ...]:
        return self.hba_set.addresses

    def owns(self, address: Address) -> bool:
        return address in self.hba_set.addresses or address in self.locators

    def locator_options(self, ulid: Address, generation: int) -> tuple[object, ...]:
        """Locator List, CGA Parameter Data Structure and, when needed, CGA Signature."""
        methods = tuple(
            m.VERIFY_HBA if loc in self.hba_set.addresses else m.VERIFY_CGA for loc in self.locators
        )
        if m.VERIFY_CGA in methods and self.private_key is None:
            raise ValueError("a locator outside the HBA set needs a CGA key to be offered")
        options: list[object] = [
            m.LocatorList(generation=generation, methods=methods, locators=tuple(self.locators)),
            m.CgaParameterDataStructure(pds=self.hba_set.params_for(ulid).encode()),
        ]
        if m.VERIFY_CGA in methods and self.private_key is not None:
            message = signed_bytes(generation, tuple(self.locators), methods)
            options.append(m.CgaSignature(signature=cga.sign(self.private_key, m.SHIM6_CGA_TAG, message)))
        return tuple(options)


class LocatorProofError(ValueError):
    """The peer's ULID does not match its parameter structure (context refused)."""


@dataclass
class PeerLocators:
    ulid: Address
    generation: int = 0
    locators: tuple[Address, ...] = ()
    methods: tuple[int, ...] = ()
    pds: cga.CgaParams | None = None
    signature: bytes | None = None
    verdicts: dict[Address, bool] = field(default_factory=dict)
    checks: int = 0

    @classmethod
    def from_options(cls, ulid: Address, message: object) -> "PeerLocators":
        """Take the locator set out of I2/R2/Update Request; check the ULID right away."""
        peer = cls(ulid, locators=(ulid,), methods=(m.VERIFY_HBA,))
        peer.absorb(message)
        if peer.pds is not None and not peer.verify_ulid():
            raise LocatorProofError(f"{ulid} does not verify against its CGA parameters")
        return peer

    def absorb(self, message: object) -> None:
        loclist = m.option_of(message, m.LocatorList)
        pds = m.option_of(message, m.CgaParameterDataStructure)
        sig = m.option_of(message, m.CgaSignature)
        if pds is not None:
            try:
                self.pds = cga.CgaParams.decode(pds.pds)
            except cga.CgaFormatError as exc:
                raise LocatorProofError(f"bad CGA parameter data structure: {exc}") from exc
        if loclist is not None:
            if self.pds is None:
                raise LocatorProofError("a locator list needs a CGA parameter data structure")
            self.generation, self.locators, self.methods = loclist.generation, loclist.locators, loclist.methods
            self.signature = sig.signature if sig is not None else None
            self.verdicts = {}

    def absorb_update(self, message: object) -> None:
        """An Update Request's new locator list, checked *before* it replaces the current one: every locator
        must prove it belongs to the peer (HBA membership or the CGA signature), else the whole update is
        refused - this is what stops redirection and third-party flooding (RFC 5533 §16)."""
        trial = replace(self, verdicts={})
        trial.absorb(message)
        failing = [str(a) for a in trial.locators if not trial.verify(a)]
        if failing:
            raise LocatorProofError(f"locator(s) not proven to belong to {self.ulid}: {', '.join(failing)}")
        self.generation, self.locators, self.methods = trial.generation, trial.locators, trial.methods
        self.pds, self.signature, self.verdicts, self.checks = trial.pds, trial.signature, trial.verdicts, trial.checks

    def verify_ulid(self) -> bool:
        assert self.pds is not None
        self.checks += 1
        if hba.multi_prefix_of(self.pds) is not None:
            return hba.is_hba_member(self.ulid, self.pds)
        return cga.is_valid_cga(self.ulid, self.pds)

    def verify(self, locator: Address) -> bool:
        """Is ``locator`` proven to belong to the peer? (lazy, cached)."""
        if locator == self.ulid:  # checked when the context was created
            return True
        if locator in self.verdicts:
            return self.verdicts[locator]
        verdict = False
        if locator in self.locators and self.pds is not None:
            method = self.methods[self.locators.index(locator)]
            self.checks += 1
            if method == m.VERIFY_HBA:
                verdict = hba.is_hba_member(locator, self.pds)
            elif method == m.VERIFY_CGA and self.signature is not None and self.verify_ulid():
                message = signed_bytes(self.generation, self.locators, self.methods)
                try:
                    cga.verify_signature(self.pds, m.SHIM6_CGA_TAG, message, self.signature)
                    verdict = True
                except cga.CgaVerifyError:
                    verdict = False
        self.verdicts[locator] = verdict
        return verdict

    def proven(self) -> list[Address]:
        """The locators that proved to belong to the peer (the ULID always): the only ones a locator pair
        is made with, so that no election, probe, keepalive or translated packet ever goes to a locator
        the peer merely named (third-party flooding)."""
        return [loc for loc in self.locators if self.verify(loc)] or [self.ulid]

    def as_dict(self) -> dict[str, object]:
        return {
            "ulid": str(self.ulid),
            "generation": self.generation,
            "locators": [
                {
                    "address": str(loc),
                    "method": {m.VERIFY_HBA: "hba", m.VERIFY_CGA: "cga"}.get(meth, str(meth)),
                    "verified": self.verdicts.get(loc),
                }
                for loc, meth in zip(self.locators, self.methods)
            ],
        }
