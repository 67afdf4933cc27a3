"""skb marks the host agents agree on.

The exit path agent rewrites the source of a new connection when its cache says another source works
for that destination.  A source somebody chose on purpose - a DHCPv6 policy's port row (RFC 7078, by
SNAT), or an application that marks its socket - must win over the cache while it works.  Whoever made
that choice sets ``SOURCE_CHOSEN`` on the connection's first packet; the exit path then keeps the
source and races the other sources only if that packet has to be sent again (no answer within TCP's
initial retransmission timeout).  A bit, not a value: other marks on the packet stay."""

from __future__ import annotations

SOURCE_CHOSEN = 0x00005300
