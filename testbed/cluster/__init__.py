"""Labs spread over several servers with Mininet's own cluster engine (``mininet.examples.cluster``).

A *cluster file* names the servers (how to reach them over ssh, their underlay address) and places nodes
on them; :mod:`.model` reads it.  :mod:`.mnnodes` adapts Mininet's ``RemoteMixin``/``RemoteLink`` (node
shells over ssh, links on the node's own server) and builds cross-server links as VXLAN instead of the
ssh tap tunnels or gretap Mininet offers (no GRE in the kernels this runs on).  :mod:`.ssh` runs commands
on a server and in its nodes; :mod:`.serverctl` is the small program each server runs for the lab (start a
recorded process that dies with its ssh session, sweep one lab away).  Every server used is journaled
before anything is created on it, so ``destroy`` sweeps each of them.
"""
