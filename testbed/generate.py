"""Generated topologies for experiments: N multihomed sites behind two ISPs and a transit core."""

from __future__ import annotations

from .topology import Topology, parse_topology
from .yamlmarks import MarkedDoc


def n_sites(n: int, mechanism: str = "sadr-static", name: str | None = None, hosts_per_site: int = 1) -> Topology:
    """``core`` (with ``srv``), ``ispa``/``ispb``, and sites s1..sN each with exits to both ISPs."""
    if not 1 <= n <= 250:
        raise ValueError("n must be between 1 and 250 (one /48 per site per ISP /40)")
    data = {
        "name": name or f"gen{n}",
        "description": f"{n} sites multihomed to ispa and ispb ({mechanism})",
        "isps": [
            {"name": "core", "asn": 65000, "aggregate": "2001:db8:f000::/40",
             "hosts": [{"name": "srv", "services": ["http"]}]},
            {"name": "ispa", "asn": 65010, "aggregate": "2001:db8:a000::/40", "upstreams": ["core"]},
            {"name": "ispb", "asn": 65020, "aggregate": "2001:db8:b000::/40", "upstreams": ["core"]},
        ],
        "sites": [
            {"name": f"s{i}", "asn": 65100 + i, "mechanism": mechanism,
             "exits": [{"router": f"s{i}a", "isp": "ispa"}, {"router": f"s{i}b", "isp": "ispb"}],
             "lans": [{"name": "lan", "hosts": [f"s{i}h{k}" for k in range(1, hosts_per_site + 1)]}]}
            for i in range(1, n + 1)
        ],
    }
    return parse_topology(MarkedDoc(data, f"<generated {n} sites>"))
