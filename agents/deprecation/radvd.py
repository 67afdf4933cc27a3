"""radvd's configuration, written from the site's prefix states, and the reload that makes radvd send it.

Every advertised prefix is a LAN /64 of a site prefix (one per ISP).  ``AdvAutonomous on`` with the host's
interface identifier as its token (``ip token``) makes the kernel of each host match the advertisement to
the static address it already has, and take the advertised lifetimes for it: preferred lifetime 0 marks
that address *deprecated* (RFC 4862 5.5.3; RFC 6724 rule 3 then avoids it as the source of new
connections) and a positive one makes it preferred again.  ``AdvOnLink off`` and ``AdvDefaultLifetime 0``
leave the hosts' routes alone: these advertisements only carry prefix state.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Advert:
    """One prefix on one LAN interface, belonging to one ISP."""

    iface: str
    prefix: str  # the LAN's /64
    isp: str

    @classmethod
    def parse(cls, text: str) -> "Advert":
        """``IFACE,PREFIX/64,ISP``"""
        try:
            iface, prefix, isp = text.split(",")
        except ValueError:
            raise ValueError(f"advert {text!r}: expected IFACE,PREFIX/64,ISP") from None
        return cls(iface, prefix, isp)


@dataclass(frozen=True)
class Lifetimes:
    preferred: int = 1800
    valid: int = 3600
    min_interval: float = 3.0
    max_interval: float = 4.0


def render(adverts: list[Advert], preferred: dict[str, bool], life: Lifetimes = Lifetimes()) -> str:
    """radvd.conf text; ``preferred[isp]`` False gives that ISP's prefixes a preferred lifetime of 0."""
    lines = ["# written by the deprecation agent (agents/deprecation): preferred lifetime 0 = deprecated"]
    for iface in dict.fromkeys(a.iface for a in adverts):
        lines += [f"interface {iface} {{", "  AdvSendAdvert on;", f"  MinRtrAdvInterval {life.min_interval:g};",
                  f"  MaxRtrAdvInterval {life.max_interval:g};", "  AdvDefaultLifetime 0;"]
        for a in adverts:
            if a.iface != iface:
                continue
            pref = life.preferred if preferred.get(a.isp, True) else 0
            lines += [f"  prefix {a.prefix} {{  # {a.isp}",
                      "    AdvOnLink off; AdvAutonomous on; AdvRouterAddr off;",
                      f"    AdvPreferredLifetime {pref}; AdvValidLifetime {life.valid};", "  };"]
        lines.append("};")
    return "\n".join(lines) + "\n"


def write_and_reload(conf: Path, pidfile: Path, text: str) -> int | None:
    """Replace the config atomically and SIGHUP radvd by the PID it recorded; the PID, or None when radvd
    does not run (the hosts then keep the last lifetimes they were sent)."""
    tmp = conf.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, conf)
    try:
        pid = int(pidfile.read_text().split()[0])
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError, IndexError):
        return None
    return pid
