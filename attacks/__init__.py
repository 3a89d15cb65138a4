"""Attacker-side programs, each run inside an emulated host as ``python -m attacks.<name>``.

Every attack passes its targets through :mod:`common.scope` (only addresses inside the
address plan's subnet) and runs through :func:`common.hostenv.run_attack` (refuses the root
network namespace, one-line errors with exit status 2, atomic JSON outcome, clean SIGTERM).
"""
