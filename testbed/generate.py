"""Generated topologies for experiments: N multihomed sites behind two ISPs and a transit core."""

from __future__ import annotations

from .topology import Topology, parse_topology
from .yamlmarks import MarkedDoc

MAX_SITES = 4000  # a /36 per ISP holds 4096 /48s: the ISP's own first one, then one per site
SMALL = 250  # up to here the historical plan: a /40 per ISP and 16-bit private ASNs 65101..65350


def isp_aggregate(nibble: str, n: int) -> str:
    """The ISP's aggregate for ``n`` sites: a /40 (255 site /48s) while it fits, else the /36 around it."""
    return f"2001:db8:{nibble}000::/{40 if n <= SMALL else 36}"


def site_asn(i: int, n: int) -> int:
    """Site i's AS: 65100+i in small labs; 32-bit private ASNs (4200000000+i) past 250 sites, since the
    16-bit private range (64512-65534) ends at 65534."""
    return 65100 + i if n <= SMALL else 4200000000 + i


def n_sites(n: int, mechanism: str = "sadr-static", name: str | None = None, hosts_per_site: int = 1) -> Topology:
    """``core`` (with ``srv``), ``ispa``/``ispb``, and sites s1..sN each with exits to both ISPs."""
    if not 1 <= n <= MAX_SITES:
        raise ValueError(f"n must be between 1 and {MAX_SITES} (one /48 per site in each ISP's /36)")
    data = {
        "name": name or f"gen{n}",
        "description": f"{n} sites multihomed to ispa and ispb ({mechanism})",
        "isps": [
            {"name": "core", "asn": 65000, "aggregate": "2001:db8:f000::/40",
             "hosts": [{"name": "srv", "services": ["http"]}]},
            {"name": "ispa", "asn": 65010, "aggregate": isp_aggregate("a", n), "upstreams": ["core"]},
            {"name": "ispb", "asn": 65020, "aggregate": isp_aggregate("b", n), "upstreams": ["core"]},
        ],
        "sites": [
            {"name": f"s{i}", "asn": site_asn(i, n), "mechanism": mechanism,
             "exits": [{"router": f"s{i}a", "isp": "ispa"}, {"router": f"s{i}b", "isp": "ispb"}],
             "lans": [{"name": "lan", "hosts": [f"s{i}h{k}" for k in range(1, hosts_per_site + 1)]}]}
            for i in range(1, n + 1)
        ],
    }
    return parse_topology(MarkedDoc(data, f"<generated {n} sites>"))
