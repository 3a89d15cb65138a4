"""``python -m experiments.run plant-check FILE``: validate a plant file and print it as tables.

Nothing is created: the file is read, checked against the schema and the process kinds the
PLCs can run (``lab.devices.load_plant_plan``), and printed. A wrong file is one line naming
the key path on stderr, exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from common.cli import OneLineParser
from common.errors import UserError
from common.plan import AddressPlan
from lab.devices import hmi_spec, load_plant_plan, plc_specs
from lab.views import format_table


def _pool_text(pool: tuple[str, ...]) -> str:
    if not pool:
        return "none"
    return f"{len(pool)} addresses ({pool[0]}..{pool[-1]})"


def plant_table(plan: AddressPlan) -> str:
    """The plan as a user reads it: a header, zones, hosts with what runs there, the HMI."""
    specs = {s.host: s for s in plc_specs(plan)}
    lines = [f"plant {plan.name}: subnet {plan.subnet}, {len(plan.switches)} zone(s), "
             f"{len(plan.hosts)} host(s), {len(specs)} PLC(s); virtual pool "
             f"{_pool_text(plan.virtual_pool)}", ""]
    zones: list[tuple[str, ...]] = [("zone", "dpid", "hosts", "trunks to")]
    for sw in plan.switches:
        peers = [b if a == sw.name else a for a, b in plan.trunks if sw.name in (a, b)]
        zones.append((sw.name, str(int(sw.dpid, 16)),
                      str(sum(1 for h in plan.hosts if h.switch == sw.name)),
                      ", ".join(peers) or "-"))
    lines += [*format_table(zones[0], zones[1:]), ""]
    hosts: list[tuple[str, ...]] = [("host", "role", "address", "mac", "zone", "protected",
                                     "authorized", "runs")]
    for h in plan.hosts:
        spec = specs.get(h.name)
        runs = "-"
        if spec is not None:
            params = ", ".join(f"{k}={v:g}" for k, v in spec.params)
            runs = (f"{spec.process} ({spec.protocol}/{spec.port}, scan "
                    f"{spec.scan_cycle_ms:g} ms{'; ' + params if params else ''})")
        hosts.append((h.name, h.role, h.ip, h.mac, h.switch, "yes" if h.protected else "no",
                      "yes" if h.authorized else "no", runs))
    lines += [*format_table(hosts[0], hosts[1:]), ""]
    hmi = hmi_spec(plan)
    if hmi is None:
        lines.append("hmi: none")
    else:
        lines.append(f"hmi {hmi.host}: polls {', '.join(hmi.polls) or 'nothing'} every "
                     f"{hmi.period_ms:g} ms (timeout {hmi.timeout_ms:g} ms)")
        for a in hmi.actions:
            lines.append(f"  at {a.t_s:g} s: {a.plc}.{a.register} = {a.value:g}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Validate FILE and print it; 0 when valid, 2 (one line on stderr) when not."""
    parser = OneLineParser(prog="python -m experiments.run plant-check",
                           description="Validate a plant file and print it as tables "
                                       "(docs/plants.md).")
    parser.add_argument("file", help="the plant file (YAML)")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        plan = load_plant_plan(args.file)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(plant_table(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
