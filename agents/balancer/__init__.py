"""I2P Proposal 140 (Invisible Multihoming) balancer speaking I2CP to stock routers.

One Destination, one I2CP session per hosting router (same keys everywhere); the balancer
gathers every router's inbound leases and hands all of them ONE LeaseSet2 of at most 16 leases,
published through chosen routers only. Layers, bottom up: ``wire`` (declarative codecs),
``structures`` / ``messages`` / ``datagrams`` (I2P formats), ``keys``, ``session`` (sans-IO
I2CP client), ``policy`` / ``core`` (sans-IO balancer), then the thin asyncio parts:
``service``, ``frontend``, ``backend``, ``remote``, ``control``, ``cli``.
"""
