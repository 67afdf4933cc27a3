"""Prefix deprecation on a multihomed site's routers (thesis 6.3.1.2.1): exit routers watch their ISP, and
the routers that send Router Advertisements mark a dead ISP's prefix deprecated (preferred lifetime 0)."""
