"""Traffic agents: small standalone programs run inside node namespaces to measure what a fault does.

Each one (``tcpseq``, ``udpcbr``, ``probe``, ``ping``) is run as ``python -m agents.traffic.<name>``,
uses only the standard library (a node may run the system ``python3``, not the project venv), talks
only to addresses given on its command line, writes one JSON object per event (``{"t": unix_time,
"ev": name, ...}``) and stops by itself after ``--duration`` or on SIGTERM, flushing its log.  All
namespaces share one clock, so times written by a sender and a receiver are directly comparable.
One vocabulary on every command line: durations inside a flow are milliseconds and say so
(``--interval-ms``, ``--connect-timeout-ms``, ``--timeout-ms``, ``--max-time-ms``, ``--user-timeout-ms``);
only ``--duration``, the agent's whole run, is in seconds (the scenario clock's unit).
"""
