"""DHCPv6 on the wire, as far as policy distribution needs it (RFC 8415 messages and options, RFC 7078).

RFC 7078: ``OPTION_ADDRSEL`` (84) carries two flags (A: automatic row addition, P: privacy preference)
and, encapsulated in it, one ``OPTION_ADDRSEL_TABLE`` (85) per policy-table row: label, precedence,
prefix length and the prefix in the fewest octets that hold it.  The distributed table *replaces* the
host's default table.

The thesis's extension (6.3.2.1.5, after [Bagnulo2001b]): a row that also names a transport protocol and a
destination port range.  No option code exists for it, so it travels in ``OPTION_VENDOR_OPTS`` (17) under the
enterprise number reserved for documentation (32473, RFC 5612), sub-option 1 (``PORT_POLICY``): label,
precedence, protocol (IANA number, 0 = any), first port, last port, prefix length, prefix.  Its label says
which source prefix the matching traffic must use: the source-prefix row with the same label in option 85.

Every format is declared once with ``agents.wirecodec``; encoding and decoding derive from it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from ..wirecodec import TLV, Bytes, Flag, List, Reserved, Struct, UInt

CLIENT_PORT, SERVER_PORT = 546, 547
ALL_SERVERS = "ff02::1:2"  # All_DHCP_Relay_Agents_and_Servers
INFORMATION_REQUEST, REPLY = 11, 7
OPTION_CLIENTID, OPTION_SERVERID, OPTION_ORO, OPTION_ELAPSED_TIME = 1, 2, 6, 8
OPTION_VENDOR_OPTS, OPTION_INFORMATION_REFRESH_TIME = 17, 32
OPTION_ADDRSEL, OPTION_ADDRSEL_TABLE = 84, 85
DOCUMENTATION_PEN = 32473  # RFC 5612: the enterprise number for documentation and examples
PORT_POLICY = 1  # our sub-option inside OPTION_VENDOR_OPTS
PROTOCOLS = {"any": 0, "tcp": 6, "udp": 17}


class DhcpDecodeError(ValueError):
    """A DHCPv6 message or option that does not parse."""


class DhcpEncodeError(ValueError):
    """A value that cannot be put on the wire."""


class DhcpStruct(Struct):
    decode_error = DhcpDecodeError
    encode_error = DhcpEncodeError


@dataclass(frozen=True)
class UnknownOption:
    """An option this agent does not interpret (server id, DNS servers...), kept verbatim."""

    type: int
    data: bytes


def _declare(name: str, code: int, fields: tuple, registry: dict[int, type], **namespace: Any) -> type[DhcpStruct]:
    cls = type(name, (DhcpStruct,), {"fields_desc": fields, "__module__": __name__, "__qualname__": name,
                                     "TYPE": code, **namespace})
    registry[code] = cls
    return cls


def _check_prefix(self) -> None:
    if self.prefix_len > 128 or len(self.prefix) != (self.prefix_len + 7) // 8:
        raise DhcpDecodeError(f"{type(self).__name__}: {len(self.prefix)} prefix octets for a /{self.prefix_len}")


def _network(self) -> ipaddress.IPv6Network:
    return ipaddress.IPv6Network((self.prefix.ljust(16, b"\0"), self.prefix_len), strict=False)


TABLE_OPTIONS: dict[int, type] = {}
AddrSelTable = _declare("AddrSelTable", OPTION_ADDRSEL_TABLE, (
    UInt("label", 8), UInt("precedence", 8), UInt("prefix_len", 8), Bytes("prefix"),
), TABLE_OPTIONS, validate=_check_prefix, network=property(_network))
AddrSelTable.__doc__ = "RFC 7078 OPTION_ADDRSEL_TABLE: one row of the RFC 6724 policy table."

VENDOR_SUBOPTIONS: dict[int, type] = {}
PortPolicy = _declare("PortPolicy", PORT_POLICY, (
    UInt("label", 8), UInt("precedence", 8), UInt("protocol", 8), UInt("port_lo", 16), UInt("port_hi", 16),
    UInt("prefix_len", 8), Bytes("prefix"),
), VENDOR_SUBOPTIONS, validate=_check_prefix, network=property(_network))
PortPolicy.__doc__ = "The port/protocol extension of a policy row (thesis 6.3.2.1.5), a vendor sub-option."

OPTIONS: dict[int, type] = {}
ClientId = _declare("ClientId", OPTION_CLIENTID, (Bytes("duid"),), OPTIONS)
Oro = _declare("Oro", OPTION_ORO, (List("codes", UInt("code", 16)),), OPTIONS)
ElapsedTime = _declare("ElapsedTime", OPTION_ELAPSED_TIME, (UInt("centiseconds", 16),), OPTIONS)
RefreshTime = _declare("RefreshTime", OPTION_INFORMATION_REFRESH_TIME, (UInt("seconds", 32),), OPTIONS)
AddrSel = _declare("AddrSel", OPTION_ADDRSEL, (
    Reserved(6), Flag("automatic"), Flag("privacy"),
    TLV("rows", TABLE_OPTIONS, UnknownOption, type_bits=16, length_bits=16, default=()),
), OPTIONS)
VendorOpts = _declare("VendorOpts", OPTION_VENDOR_OPTS, (
    UInt("enterprise", 32),
    TLV("suboptions", VENDOR_SUBOPTIONS, UnknownOption, type_bits=16, length_bits=16, default=()),
), OPTIONS)


class Message(DhcpStruct):
    """A client/server message (RFC 8415 section 8): type, transaction id, options."""

    fields_desc = (UInt("msg_type", 8), UInt("xid", 24),
                   TLV("options", OPTIONS, UnknownOption, type_bits=16, length_bits=16, default=()))

    def option(self, cls: type) -> Any:
        return next((o for o in self.options if isinstance(o, cls)), None)


def prefix_fields(network: ipaddress.IPv6Network) -> dict[str, Any]:
    """``prefix_len`` and ``prefix`` (the fewest octets that hold it) of a row."""
    return {"prefix_len": network.prefixlen, "prefix": network.network_address.packed[:(network.prefixlen + 7) // 8]}


def policy_options(rows: list[tuple[ipaddress.IPv6Network, int, int]],
                   port_rows: list[tuple[ipaddress.IPv6Network, int, int, int, int, int]]) -> list[DhcpStruct]:
    """The options a server sends: 84 with one 85 per (prefix, precedence, label), and the vendor option with
    one port row per (prefix, precedence, label, protocol, first port, last port)."""
    table = AddrSel(automatic=False, privacy=False, rows=tuple(
        AddrSelTable(label=label, precedence=prec, **prefix_fields(net)) for net, prec, label in rows))
    ports = VendorOpts(enterprise=DOCUMENTATION_PEN, suboptions=tuple(
        PortPolicy(label=label, precedence=prec, protocol=proto, port_lo=lo, port_hi=hi, **prefix_fields(net))
        for net, prec, label, proto, lo, hi in port_rows))
    return [table, ports] if port_rows else [table]


def option_payload(option: DhcpStruct) -> bytes:
    """An option's content without its code and length (what ``dnsmasq --dhcp-option=option6:N,...`` takes)."""
    return option.to_bytes()
