"""mhlab's orchestrator: topology file -> model -> address plan -> mechanisms -> configs -> running lab.

The pure core (``topology``, ``addressing``, ``netplan``, ``mechanisms``, ``render``) never touches the
kernel; ``lab`` and ``procs`` own every side effect.  Import :class:`testbed.lab.Lab` for the Python API.
"""

__version__ = "0.1.0"
