"""Daemon configuration: a JSON file and/or command-line flags (flags win).

JSON keys (all optional except ``prefixes``)::

    {"socket": "/run/mhlab/hA-shim.sock", "prefixes": ["2001:db8:a1:1::/64", "2001:db8:a2:1::/64"],
     "sec": 0, "modifier": "<32 hex>", "pseudo_key": "<96 hex>", "key": "/path/key.pem",
     "profile": "tuned", "timers": {"send_timeout": 2.0}, "policy": "packets:10",
     "connect": ["2001:db8:b1:1::..."], "observe": true, "icmp": true}

The same ``prefixes``/``sec``/``modifier``/``pseudo_key`` always give the same HBA set, so the
lab's address plan can compute the host's addresses offline (``shimctl hba generate``).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from . import cga, hba
from .identity import LocalIdentity
from .policy import ContextPolicy
from .timers import PROFILES, TimerProfile


@dataclass
class DaemonConfig:
    socket: str = "/tmp/shim6.sock"
    prefixes: list[str] = field(default_factory=list)
    sec: int = 0
    modifier: str | None = None
    pseudo_key: str | None = None
    key: str | None = None
    profile: str = "rfc"
    timers: dict[str, float] = field(default_factory=dict)
    policy: str = "immediate"
    connect: list[str] = field(default_factory=list)
    observe: bool = False
    icmp: bool = True
    ulp: bool = True
    datapath: str = "none"
    steering_device: str = "shim0"

    @classmethod
    def from_sources(cls, file: str | None, flags: dict[str, Any]) -> "DaemonConfig":
        data: dict[str, Any] = json.loads(Path(file).read_text()) if file else {}
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(sorted(unknown))}")
        data.update({k: v for k, v in flags.items() if v not in (None, [], {})})
        config = cls(**data)
        if not config.prefixes:
            raise ValueError("at least one --prefix (or \"prefixes\") is needed")
        return config

    def timer_profile(self) -> TimerProfile:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown timer profile {self.profile!r} (have {', '.join(PROFILES)})")
        return PROFILES[self.profile].with_overrides(self.timers)

    def context_policy(self) -> ContextPolicy:
        return ContextPolicy.parse(self.policy)

    def identity(self) -> LocalIdentity:
        return build_identity(self.prefixes, self.sec, self.modifier, self.pseudo_key, self.key)


def prefix_bytes(text: str) -> bytes:
    return ipaddress.IPv6Network(text, strict=False).network_address.packed[:8]


def load_private_key(path: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} is not an RSA private key")
    return key


def build_identity(prefixes: list[str], sec: int, modifier: str | None, pseudo_key: str | None,
                   key: str | None) -> LocalIdentity:
    private = load_private_key(key) if key else None
    hset = hba.generate_hba_set(
        [prefix_bytes(p) for p in prefixes],
        sec,
        public_key=cga.public_key_der(private.public_key()) if private else None,
        modifier=bytes.fromhex(modifier) if modifier else None,
        pseudo_key=bytes.fromhex(pseudo_key) if pseudo_key and not private else None,
    )
    return LocalIdentity(hset, private)
