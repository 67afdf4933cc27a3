"""The live lab: drive a running lab by hand - faults with their undo, captures, drawings, a terminal view
and a local web page.  Each verb is one module with ``register(subparsers)``; cli.py registers them."""
