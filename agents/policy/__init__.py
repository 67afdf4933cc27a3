"""Address-selection policy distribution (thesis 6.3.2.1.5): the DHCPv6 formats (RFC 7078 options 84/85 and
the port/protocol extension in a vendor option), and the host agent that asks for them and applies them."""
