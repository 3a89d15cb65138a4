"""Emulated network graphs (pure Mininet ``Topo`` subclasses) and the address plan."""
