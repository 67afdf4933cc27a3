"""``kind: i2p`` labs: a private network of real i2pd routers hosting one multihomed Destination
(I2P Proposal 140) - the model, its NetPlan, the reseed file, and the runtime bootstrap."""
