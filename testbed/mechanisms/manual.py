"""``manual``: the site's routers get addresses, BGP and destination routes, and nothing by source -
source-address-dependent routing is left to whoever operates the site (a student, in the course).

The same start as ``none``; the difference is the intent, said in the plan's notes: the exit routers are
waiting for source-specific routes (``ip -6 route add ::/0 from P via ...``, thesis 6.2.2.1).
"""

from .contract import Mechanism
from .none import gateway_isps


def _apply(net, site, options) -> None:
    prefixes = ", ".join(str(p) for p in net.plan.site_prefixes[site.name].values())
    net.notes.append(f"site {site.name}: mechanism manual - no source-specific routes; add them by hand on the "
                     f"exit routers (`ip -6 route add ::/0 from P via ...` for each of {prefixes})")


MECHANISM = Mechanism("manual", "like none, for operators and students: source-specific routes are added by hand",
                      "6.2.2.1", _apply, usable_sources=gateway_isps)  # until routes are added: as none
