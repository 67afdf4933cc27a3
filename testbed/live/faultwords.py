"""The words of each fault kind on the command line (positional fields, in order): kept apart from the
pydantic models so the command's --help can list them without loading the scenario language."""

from __future__ import annotations

# kind -> its positional fields; a trailing "?" marks an optional one
POSITIONAL: dict[str, tuple[str, ...]] = {
    "link-down": ("link",),
    "link-up": ("link",),
    "isp-down": ("isp",),
    "upstream-cut": ("isp",),
    "loss": ("link", "percent"),
    "rate-limit": ("link", "rate"),
    "delay": ("link", "delay_ms", "jitter_ms?"),
    "flap": ("link", "period_ms", "down_ms?"),
    "router-crash": ("node",),
    "daemon-kill": ("node", "daemon?"),
    "bgp-reset": ("node", "peer?"),
    "i2p-router-crash": ("router?",),
    "i2cp-session-loss": ("router?",),
    "balancer-crash": (),
}


def usage_lines() -> list[str]:
    """One line per kind: ``loss LINK PERCENT`` - for --help."""
    out = []
    for kind, fields in POSITIONAL.items():
        words = [f"[{f[:-1].upper()}]" if f.endswith("?") else f.upper() for f in fields]
        out.append(f"{kind} {' '.join(words)}")
    return out
