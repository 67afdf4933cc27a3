"""The tunnel-mesh exit router agent (thesis 6.2.1): keeps an exit router's kernel routes in step with
the site IGP.  See ``sync`` for what it maintains and ``__main__`` for how it runs."""
