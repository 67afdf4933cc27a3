"""Known answers for the RFC 7078 options, byte for byte against the RFC's figures (section 2).

Figure 1 (OPTION_ADDRSEL, 84): code, length, one octet of 6 reserved bits then A then P (the last bit),
then the policy table options.  Figure 2 (OPTION_ADDRSEL_TABLE, 85): code, length, label, precedence,
prefix-len, then the prefix in (prefix-len + 7) / 8 octets; the RFC's own example: 2001:db8::/60 is
"a prefix-len of 60; the prefix would be 8 octets and would contain octets 20 01 0d b8 00 00 00 00".
"""

from __future__ import annotations

import ipaddress

from agents.policy import wire


def test_the_rfcs_example_prefix_is_eight_octets() -> None:
    fields = wire.prefix_fields(ipaddress.IPv6Network("2001:db8::/60"))
    assert fields == {"prefix_len": 60, "prefix": bytes.fromhex("20010db800000000")}


def test_a_table_row_is_label_precedence_prefix_len_prefix() -> None:
    row = wire.AddrSelTable(label=17, precedence=8, **wire.prefix_fields(ipaddress.IPv6Network("2001:db8::/60")))
    assert row.to_bytes() == bytes.fromhex("11" "08" "3c" "20010db800000000")


def test_the_whole_option_84_with_its_header_inside_a_message() -> None:
    """An IPv4-mapped /128 row (the RFC: IPv4 prefixes are IPv4-mapped), P set, A clear; the same bytes a
    second implementation (FreeRADIUS's RFC 7078 test vector) expects."""
    row = wire.AddrSelTable(label=17, precedence=8, **wire.prefix_fields(ipaddress.IPv6Network("::ffff:0.0.0.16/128")))
    option = wire.AddrSel(automatic=False, privacy=True, rows=(row,))
    raw = wire.Message(msg_type=wire.REPLY, xid=0x010203, options=(option,)).to_bytes()
    assert raw == bytes.fromhex("07010203" "0054" "0018" "01" "0055" "0013" "11" "08" "80"
                                "00000000000000000000ffff00000010")
    back = wire.Message.from_bytes(raw).option(wire.AddrSel)
    assert (back.automatic, back.privacy) == (False, True)
    assert back.rows[0].network == ipaddress.IPv6Network("::ffff:0.0.0.16/128")


def test_the_a_flag_is_the_second_to_last_bit() -> None:
    assert wire.AddrSel(automatic=True, privacy=False, rows=()).to_bytes() == b"\x02"
    assert wire.AddrSel(automatic=True, privacy=True, rows=()).to_bytes() == b"\x03"
