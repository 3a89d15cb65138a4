"""Host-side defenses (iptables-NAT IP hopping); controller-side ones live in controllers/."""
