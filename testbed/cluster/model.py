"""Cluster files: which servers a lab spreads over, how to reach them, and which node runs where.

```yaml
servers:
  s1: {host: 10.77.0.11}                 # ssh destination; also the VXLAN underlay address
  s2: {host: 10.77.0.12, user: mhlab, sudo: true, ssh: [ssh, -F, /etc/mhlab/ssh_config]}
place:                                   # server -> nodes (a LAN bridge is "br:<site>-<lan>")
  s1: [core, srv, ispa, ispb]
  s2: [ra, rb, h1, h2]
default: s2                              # where unplaced nodes go (default: the first server)
mtu: 1450                                # every lab link's MTU (default: underlay MTU minus VXLAN's overhead)
```
Problems are reported as file:line: field like the topology files' and nothing is built from a bad file.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import Problem, TopologyError
from ..yamlmarks import load_marked

VXLAN_PORT = 4789
SERVER_NAME = r"^[a-z][a-z0-9-]{0,15}$"


def vxlan_overhead(underlay: str) -> int:
    """Bytes VXLAN adds to a frame: outer IP + UDP + VXLAN header + inner Ethernet (50 over IPv4, 70 over IPv6)."""
    return 70 if ipaddress.ip_address(underlay).version == 6 else 50


class Server(BaseModel):
    """One server: reached as ``user@host`` with ``ssh`` (a command prefix: options, a config file, or a
    wrapper such as ``ip netns exec NS ssh``); runs mhlab's Python at ``python`` (the same version)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(description="address to ssh to; the VXLAN underlay address unless `underlay` is given")
    user: str = "root"
    sudo: bool = Field(False, description="prefix remote commands with `sudo -n` (a non-root user with "
                                          "password-less sudo)")
    ssh: list[str] = Field(default_factory=lambda: ["ssh"], min_length=1)
    underlay: str | None = Field(None, description="this server's address for VXLAN (default: host)")
    python: str = Field(default_factory=lambda: sys.executable,
                        description="mhlab's Python on the server (default: the same path as here)")

    @field_validator("underlay")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None:
            ipaddress.ip_address(v)
        return v

    @property
    def underlay_address(self) -> str:
        return self.underlay or self.host

    @property
    def dest(self) -> str:
        return f"{self.user}@{self.host}"


class Cluster(BaseModel):
    model_config = ConfigDict(extra="forbid")

    servers: dict[str, Server] = Field(min_length=1)
    place: dict[str, list[str]] = Field(default_factory=dict)
    default: str | None = None
    mtu: int | None = Field(None, ge=1280, le=9000, description="MTU of every lab link (IPv6 needs >= 1280)")
    vxlan_port: int = Field(VXLAN_PORT, ge=1, le=65535)

    @field_validator("servers")
    @classmethod
    def _names(cls, v: dict[str, Server]) -> dict[str, Server]:
        for name in v:
            if not re.match(SERVER_NAME, name):
                raise ValueError(f"server name {name!r}: lowercase letters, digits and '-', at most 16")
        return v

    def server_of(self, node: str, members: dict[str, list[str]] | None = None) -> str:
        """The server a node runs on: its placement; a LAN bridge unplaced goes with most of its members."""
        for server, nodes in self.place.items():
            if node in nodes:
                return server
        if members and node in members:
            votes = [self.server_of(m) for m in members[node]]
            return max(dict.fromkeys(votes), key=votes.count)
        return self.default or next(iter(self.servers))

    def with_placement(self, pairs: list[str]) -> "Cluster":
        """A copy with ``NODE=SERVER`` overrides (``mhlab deploy --place h1=s2``)."""
        place = {s: list(n) for s, n in self.place.items()}
        for pair in pairs:
            node, _, server = pair.partition("=")
            if not node or not server:
                raise TopologyError([Problem(f"--place {pair!r}: write NODE=SERVER", "<command line>")])
            for nodes in place.values():
                if node in nodes:
                    nodes.remove(node)
            place.setdefault(server, []).append(node)
        return Cluster.model_validate({**self.model_dump(), "place": place})

    def check_nodes(self, nodes: list[str], file: str = "<cluster>") -> None:
        """Every placed node exists in the lab and every server named exists."""
        problems = []
        known = set(self.servers)
        for server, placed in self.place.items():
            if server not in known:
                problems.append(Problem(f"no server {server!r} (servers: {', '.join(sorted(known))})", file,
                                        None, f"place.{server}"))
            for n in placed:
                if n not in nodes:
                    problems.append(Problem(f"the lab has no node {n!r}", file, None, f"place.{server}"))
        if self.default is not None and self.default not in known:
            problems.append(Problem(f"no server {self.default!r}", file, None, "default"))
        if problems:
            raise TopologyError(problems)


def load_cluster(path: str | Path) -> Cluster:
    doc = load_marked(path)
    if not isinstance(doc.data, dict):
        raise TopologyError([Problem("a cluster file is a mapping (servers:, place:, ...)", doc.file, 1)])
    try:
        cluster = Cluster.model_validate(doc.data)
    except ValidationError as exc:
        raise TopologyError([doc.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None
    return cluster
