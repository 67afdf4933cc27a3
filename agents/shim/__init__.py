"""The shim agent: the thesis's identification sub-layer (ch. 6.4), on the wire as Shim6.

Modules, from the bottom up:

- ``der``, ``cga``, ``hba``: cryptographic identifiers (RFC 3972 CGA, RFC 5535 HBA).
- ``wire``, ``messages``: RFC 5533/5534 wire formats, declared once as field tables.
- ``timers``, ``pairs``, ``validator``, ``context``, ``reap``, ``engine``: the sans-IO
  protocol engines (time is passed in, packets come in and go out as values).
- ``daemon``, ``control``, ``cli``: the process that runs in a host namespace and ``shimctl``.

Nothing here imports from ``testbed``: the agent runs inside lab hosts on its own.
"""
