"""``bench``: how fast the framework builds, runs and scales, side by side with plain Mininet.

Each part is a condition of the runner, so a part that fails is recorded as a failed run and
the others go on; ``--parts`` picks some. Every figure is measured on the machine it runs on,
in the same run, and each part lives in its own module:

- ``bringup`` (:mod:`.bringup`): bring-up + teardown of ``star`` topologies of N hosts
  (``--sizes``) through the lab lifecycle (controller started, every switch connected),
  against plain Mininet building the same Topo on the same datapath (``Mininet(...)``,
  ``start``, ``stop``; no controller wait, never ``mn -c``). Seconds per N for both and the
  ratio ours/plain.
- ``trial_stages`` (:mod:`.trial_stages`): the fixed cost of one ``recon --defense none
  --exploit-gap-s 0`` trial on the ICS plan (``--stage-trials`` of them), per stage: build,
  switches' connection, PLC/HMI start, scans, exploit, validity check, teardown.
- ``recon_wall`` (:mod:`.recon_wall`): the default ``recon`` run in-process through the runner
  (its own bundle in this trial's raw folder), its wall time broken down by stage (build,
  controller connect, scans, teardown, the rest of the trial, plotting + report), plus the
  ``make run`` setup check (dpkg-query of the Makefile's packages + ``ovs-vsctl show``).
- ``hopping`` (:mod:`.hopping`): rhm hop latency (decision to flows in place, from the hop log)
  p50/p95 for each protected-host count (``--protected``; a star plan whose first N hosts are
  protected) while hopping every ``--hop-interval-s``, and the controller's CPU share over
  the window (``/proc/<pid>/stat`` utime + stime).
- ``datapath`` (:mod:`.datapath`): RTT (median, p95) between the HMI and PLC 1 of the ICS plan
  and iperf3 throughput between them, under ``none`` (l2) and ``rhm``; ratios rhm/none.
- ``scale`` (:mod:`.scale`): ``recon`` (defense none) on the largest star (``--scale-hosts``)
  and on a ``linear`` chain (``--linear-hosts`` switches); peak memory as the drop of
  ``/proc/meminfo`` MemAvailable (machine-wide: other work on the machine counts too) and
  the ovs-vswitchd RSS growth.
- ``memory`` (:mod:`.memory`): memory and CPU per host: stars of ``--mem-sizes`` hosts
  built and idled, ovs-vswitchd RSS, the shells' PSS, the controller's RSS, the MemAvailable
  drop and ovs-vswitchd CPU per size, each fitted by a line against N (slope = per host).
- ``controller`` (:mod:`.controller`): packet-in → flow-mod rate under a burst of new flows
  (every host of a star of ``--burst-hosts`` sends to every other at once), per engine
  (``--engines``): flows in the switch over time from ``ovs-ofctl dump-flows``; the rate is
  flows installed / time to the last new flow.

Everything a part creates goes through the lab runtime's run-state (``lab.lifecycle``), so
teardown and ``python -m experiments.clean`` remove it. Options and parsers: :mod:`.shared`;
figures: :mod:`.plots`; ``python -m experiments.bench``: :mod:`.__main__`.

Targets (reported in docs/benchmarks.md, never asserted): bring-up ratio ours/plain ≤ 0.5 at
N = 250 and N = 1000 (``--sizes 250,1000``); a ``recon --defense none --exploit-gap-s 0``
trial ≤ 3 s (``trial_stages``); recon completes on 1000 hosts (``--scale-hosts 1000``);
hop latency p95 ≤ 50 ms at 10 protected hosts; rhm RTT median ≤ 1.10 x none.
"""

from __future__ import annotations

from collections.abc import Callable

from experiments.bench.bringup import part_bringup
from experiments.bench.controller import part_controller
from experiments.bench.datapath import part_datapath
from experiments.bench.hopping import part_hopping
from experiments.bench.memory import part_memory
from experiments.bench.plots import plot
from experiments.bench.recon_wall import part_recon_wall
from experiments.bench.scale import part_scale
from experiments.bench.shared import PARAMS, PARTS, as_lab_error, conditions
from experiments.bench.trial_stages import part_trial_stages
from experiments.runner import TrialContext
from experiments.spec import Experiment, TrialResult

__all__ = ["EXPERIMENT", "PARAMS", "PARTS", "PART_FUNCS", "conditions", "plot", "trial"]

PART_FUNCS: dict[str, Callable[[TrialContext], TrialResult]] = {
    "bringup": part_bringup,
    "trial_stages": part_trial_stages,
    "recon_wall": part_recon_wall,
    "hopping": part_hopping,
    "datapath": part_datapath,
    "scale": part_scale,
    "memory": part_memory,
    "controller": part_controller,
}


def trial(ctx: TrialContext) -> TrialResult:
    """Run the part named by the trial's condition; its UserErrors fail this run only."""
    part = ctx.condition or "bringup"
    with as_lab_error(part):
        return PART_FUNCS[part](ctx)


EXPERIMENT = Experiment.from_module(
    __name__, "bench",
    "benchmarks: bring-up vs plain Mininet, recon wall time, hop latency, "
    "data-path overhead, scale, controller flow set-up rate",
    needs_nmap=True)
