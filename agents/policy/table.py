"""The policy a server distributes, as plain JSON-able data, and its DHCPv6 options (shared by server,
client and the lab's push).

``{"rows": [[prefix, precedence, label], ...], "ports": [[prefix, precedence, label, protocol, first, last],
...], "refresh": seconds}``
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from . import wire


@dataclass(frozen=True)
class Policy:
    rows: tuple[tuple[ipaddress.IPv6Network, int, int], ...]
    ports: tuple[tuple[ipaddress.IPv6Network, int, int, int, int, int], ...]
    refresh: int | None = None

    @classmethod
    def from_json(cls, doc: dict) -> "Policy":
        return cls(tuple((ipaddress.IPv6Network(p), int(prec), int(lab)) for p, prec, lab in doc["rows"]),
                   tuple((ipaddress.IPv6Network(p), int(prec), int(lab), int(proto), int(lo), int(hi))
                         for p, prec, lab, proto, lo, hi in doc.get("ports", [])),
                   doc.get("refresh"))

    def as_json(self) -> dict:
        return {"rows": [[str(p), prec, lab] for p, prec, lab in self.rows],
                "ports": [[str(p), *rest] for p, *rest in self.ports], "refresh": self.refresh}

    @classmethod
    def from_reply(cls, reply: wire.Message) -> "Policy | None":
        """The policy a Reply carries (None when it has no OPTION_ADDRSEL)."""
        addrsel = reply.option(wire.AddrSel)
        if addrsel is None:
            return None
        vendor = next((o for o in reply.options if isinstance(o, wire.VendorOpts)
                       and o.enterprise == wire.DOCUMENTATION_PEN), None)
        refresh = reply.option(wire.RefreshTime)
        return cls(tuple((r.network, r.precedence, r.label) for r in addrsel.rows
                         if isinstance(r, wire.AddrSelTable)),
                   tuple((s.network, s.precedence, s.label, s.protocol, s.port_lo, s.port_hi)
                         for s in (vendor.suboptions if vendor else ()) if isinstance(s, wire.PortPolicy)),
                   refresh.seconds if refresh else None)

    def options(self) -> list[wire.DhcpStruct]:
        return wire.policy_options(list(self.rows), list(self.ports))

    def label_of(self, address: ipaddress.IPv6Address) -> int | None:
        """The label of ``address`` by longest prefix match over the rows (RFC 6724 section 2.1)."""
        best = max((r for r in self.rows if address in r[0]), key=lambda r: r[0].prefixlen, default=None)
        return best[2] if best else None


def dnsmasq_options(policy: Policy) -> str:
    """The lines of a dnsmasq ``--dhcp-optsfile``: each option's content in hex (sent only to clients that
    ask for it in their Option Request)."""
    lines = [f"option6:{opt.TYPE},{':'.join(f'{b:02x}' for b in wire.option_payload(opt))}"
             for opt in policy.options()]
    if policy.refresh is not None:
        lines.append(f"option6:information-refresh-time,{policy.refresh}")
    return "\n".join(lines) + "\n"
