"""A mechanism that lives outside the package, to prove a new one is one file: it drops the traffic to some
prefixes at the site's routers (a ``blackhole`` kernel route each)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from testbed.mechanisms import FieldProblem, Mechanism, Options
from testbed.netplan import Route


class BlackholeOptions(Options):
    prefixes: list[str] = Field(min_length=1, description="documentation prefixes to drop")
    routers: list[str] | None = Field(None, description="site routers that drop them (default: all)")

    @field_validator("prefixes")
    @classmethod
    def _inside_doc(cls, value: list[str]) -> list[str]:
        for p in value:
            if not ipaddress.IPv6Network(p).subnet_of(ipaddress.IPv6Network("2001:db8::/32")):
                raise ValueError(f"{p} is outside 2001:db8::/32")
        return value


def _routers(topology, site, opts: BlackholeOptions) -> list[str]:
    return opts.routers if opts.routers is not None else topology.site_routers(site)


def _validate(topology, site, opts: BlackholeOptions) -> list[FieldProblem]:
    known = topology.site_routers(site)
    return [(("options", "routers", i), f"{r!r} is not a router of site {site.name}")
            for i, r in enumerate(opts.routers or []) if r not in known]


def _apply(net, site, opts: BlackholeOptions) -> None:
    for router in _routers(net.topology, site, opts):
        for p in opts.prefixes:
            net.nodes[router].routes.append(Route(p, kind="blackhole", why=f"site {site.name} drops {p}"))


MECHANISM = Mechanism("blackhole", "drop traffic to some prefixes at the site's routers", "(test)", _apply,
                      options=BlackholeOptions, validate=_validate,
                      fault_defaults={"loss": {"percent": 1}})
