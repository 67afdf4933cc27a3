"""``none``: the plain PA site, routing by destination only - the thesis's problem (ch. 3.5).

Each exit router sends everything out through its own ISP.  A host that picks its ISP-B address while its
gateway is the ISP-A exit router is dropped by ISP A's ingress filter.
"""

from .contract import Mechanism


def _apply(net, site, options) -> None:
    net.notes.append(f"site {site.name}: mechanism none - packets leave by destination only; a source "
                     "address from the other ISP is dropped by the ingress filter")


MECHANISM = Mechanism("none", "plain PA multihoming, destination-only routing (shows the ingress-filter problem)",
                      "ch. 3.5", _apply, demo="scenarios/demo-link-down.yaml", baseline=True)
