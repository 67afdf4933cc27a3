"""Two sans-IO engines wired back to back, with a clock and a loss rule (no sockets)."""

import ipaddress
import random

from agents.shim import hba
from agents.shim import messages as m
from agents.shim.actions import Event, Send
from agents.shim.engine import ShimEngine
from agents.shim.identity import LocalIdentity
from agents.shim.policy import ContextPolicy
from agents.shim.timers import RFC


def prefixes(*texts):
    return [ipaddress.IPv6Address(t).packed[:8] for t in texts]


def make_engine(site, seed, profile=RFC, policy=None):
    pfx = prefixes(f"2001:db8:{site}1:1::", f"2001:db8:{site}2:1::")
    rng = random.Random(seed)
    hset = hba.generate_hba_set(pfx, 0, modifier=rng.randbytes(16), pseudo_key=rng.randbytes(48))
    return ShimEngine(LocalIdentity(hset), profile, policy or ContextPolicy(), random_bytes=rng.randbytes)


class Wire:
    """Delivers Send actions between engines by destination address; ``drop`` filters."""

    def __init__(self, *engines):
        self.engines = engines
        self.now = 0.0
        self.log = []  # (time, src, dst, message)
        self.drop = lambda src, dst, msg: False

    def owner(self, address):
        return next(e for e in self.engines if address in e.identity.locators or address in e.identity.ulids)

    def deliver(self, actions):
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if not isinstance(action, Send):
                continue
            data = m.encode(action.message)
            self.log.append((self.now, action.src, action.dst, action.message))
            if self.drop(action.src, action.dst, action.message):
                continue
            queue += self.owner(action.dst).receive(self.now, action.src, action.dst, data)

    def run_until(self, t, step=0.05):
        while self.now < t:
            self.now = round(self.now + step, 6)
            for engine in self.engines:
                self.deliver(engine.tick(self.now))

    def types(self):
        return [type(msg).__name__ for _, _, _, msg in self.log]


def events(engine, kind):
    return [e for e in engine.events if isinstance(e, Event) and e.kind == kind]
