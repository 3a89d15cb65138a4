"""Modbus/TCP PLCs that run a simulated physical process, and the HMI that polls them.

Pure parts (no I/O): :mod:`plc.process` (physical models), :mod:`plc.logic` (control logic),
:mod:`plc.registers` (the one register map), :mod:`plc.program` (one scan of a PLC on a
register image), :mod:`plc.metrics` (HMI figures).
I/O: :mod:`plc.server` (``python -m plc.server``) and :mod:`plc.hmi` (``python -m plc.hmi``).
"""
