"""Scenario runner parts: the scenario file model, agent launch plans, log analysis and the report.

Data flows one way: scenario file (:mod:`.model`, loaded by :mod:`.load`) -> agent command lines per
flow (:mod:`.flows`) -> JSON-line logs -> per-flow measurements and verdicts (:mod:`.analysis`) ->
``report.json`` / ``report.md`` / ``timeline.png`` (:mod:`.report`).  Running the lab and injecting
faults is the run loop's job; everything here is pure apart from launching agents through a node handle.
"""
