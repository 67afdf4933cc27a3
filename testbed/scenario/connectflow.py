"""The ``connect`` flow kind: new connections as an unmodified application opens them (thesis 6.3.1).

Two things the ``probe`` kind cannot show: a client that resolves the destination's *name* through the
lab's DNS for every connection (``to_name``: with every address of a host published, 6.3.1.1, the client's
own fallback decides whether a new inbound connection survives), and a socket that is never bound (``src:
auto``: the kernel's RFC 6724 choice, which is what prefix deprecation (6.3.1.2.1), address labels and the
distributed policy table (6.3.2.1.5) act on).  The client agent is ``agents.traffic.byname`` (four client
behaviours); the server is the probe's HTTP server listening on every address of ``to``, so whichever
address the client reaches answers.

A name is checked against the lab before anything runs: it must be in the zone of the lab's ``dns``
add-on and name ``to`` (``h1.lab.example``, or one ISP's name ``h1.ispa.lab.example``), where the server
runs.
"""

from __future__ import annotations

from typing import Any

from ..mechanisms.dns import MECHANISM as DNS, DnsOptions
from ..topology import addon_def
from .contract import Endpoints, Events, FlowError, FlowKind, resolve_address
from .measures import Attempt, Delivery
from .model import ConnectFlow

AUTO = "auto"
ANY = "::"  # the server listens on every address of `to`: a name may lead to any of them


def lab_zones(topology: Any) -> set[str]:
    """The DNS zones the lab's sites publish (the ``dns`` add-on's ``zone``); empty without the add-on."""
    zones = set()
    for site in getattr(topology, "sites", ()):
        for ref in site.addons:
            addon = addon_def(ref)
            if addon.mechanism == DNS.name:
                zones.add(DnsOptions.model_validate(addon.options).zone)
    return zones


def check_name(flow: ConnectFlow, topology: Any) -> str:
    """``to_name`` normalised (lower case, no trailing dot); FlowError when the lab cannot resolve it."""
    name = str(flow.to_name).rstrip(".").lower()
    zones = lab_zones(topology)
    if not zones:
        raise FlowError(f"to_name {name!r}: the lab publishes no names (no site runs the dns add-on: "
                        "`addons: [dns]`); use dst: for an address")
    zone = next((z for z in sorted(zones) if name.endswith("." + z)), None)
    if zone is None:
        raise FlowError(f"to_name {name!r} is not in the lab's zone ({', '.join(sorted(zones))}); "
                        f"{flow.to}'s name is {flow.to}.{sorted(zones)[0]}")
    if name.split(".")[0] != flow.to:
        raise FlowError(f"to_name {name!r} names {name.split('.')[0]}, but the server runs on `to` ({flow.to}): "
                        f"use {flow.to}.{zone}, or to: {name.split('.')[0]}")
    return name


def _resolve(flow: ConnectFlow, topology: Any, addresses_of: Any) -> tuple[str, str]:
    src = AUTO if flow.src == AUTO else resolve_address(flow.src, flow.from_, addresses_of(flow.from_))
    if flow.to_name is None:
        return src, resolve_address(flow.dst, flow.to, addresses_of(flow.to))
    return src, check_name(flow, topology) if topology is not None else flow.to_name


def _client(flow: ConnectFlow, ends: Endpoints) -> list[str]:
    argv = ["agents.traffic.byname", "connect", "--client", flow.client,
            *(["--name", ends.dst] if flow.to_name is not None else ["--dst", ends.dst]),
            "--port", str(ends.port), "--path", flow.path, "--interval-ms", f"{flow.interval_ms:g}",
            "--connect-timeout-ms", f"{flow.connect_timeout_ms:g}", "--max-time-ms", f"{flow.max_time_ms:g}"]
    return argv + ([] if ends.src == AUTO else ["--src", ends.src])


def _server(_flow: ConnectFlow, ends: Endpoints) -> list[str]:
    return ["agents.traffic.probe", "serve", "--bind", ANY, "--port", str(ends.port)]


def _parse(client: Events, _server: Events) -> dict[str, Any]:
    tries = sorted((e for e in client if e.get("ev") == "connect"), key=lambda e: e["started"])
    attempts = tuple(Attempt(e["started"], bool(e["ok"]), e.get("connect_ms"), e.get("error")) for e in tries)
    deliveries = [Delivery(e["t"], e["n"]) for e in tries if e["ok"]]
    return {"attempts": attempts, "deliveries": deliveries,
            "errors": tuple((e["t"], str(e.get("error") or "failed")) for e in tries if not e["ok"])}


CONNECT_FLOW = FlowKind(ConnectFlow, _client, _parse, server=_server, resolve=_resolve,
                        metrics=frozenset({"max_gap_ms", "failover_ms", "delivered", "new_connections_ok", "answered",
                                           "connect_ms"}))
