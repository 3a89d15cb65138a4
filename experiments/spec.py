"""Experiment specs and configuration: declared parameters, strict validation, precedence
defaults ← ``--quick`` ← config file ← flags.

A parameter is declared once (name, type, default, range, help); the CLI flags, the config
file keys and the error messages all come from that declaration.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError
from common.files import DocumentError, parse_document
from common.plan import MAX_SCALE_HOSTS, AddressPlan
from lab.cluster import load_cluster
from lab.devices import load_plant_plan
from reporting.stats import PROPORTION_METHODS

_UNSET: Any = object()


@dataclass(frozen=True)
class Param:
    """One experiment parameter.

    kind: ``int``, ``float``, ``str``, ``bool``.
    lo, hi: inclusive numeric range (None: unbounded).
    choices: allowed values for ``str``.
    quick: the value ``--quick`` uses instead of ``default``.
    parse: for a list-valued ``str`` (``--ports``, ``--defense``...): the function that parses
        the text into what the trial uses, raising UserError (one line naming the flag) on bad
        input. :meth:`convert` runs it, so a bad list fails before anything is created; the
        config keeps the text as given.
    """

    name: str
    kind: str
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    quick: Any = _UNSET
    parse: Callable[[str], Any] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.kind in ("int", "float"):
            lo = "-inf" if self.lo is None else self.number_text(self.lo)
            hi = "inf" if self.hi is None else self.number_text(self.hi)
            return f"{'an integer' if self.kind == 'int' else 'a number'} in [{lo}, {hi}]"
        if self.kind == "bool":
            return "true or false"
        return "a string"

    def number_text(self, value: float) -> str:
        """``2147483647`` for an ``int`` parameter (never ``2.14748e+09``), ``0.5`` for a float."""
        return str(int(value)) if self.kind == "int" else f"{value:g}"

    def default_text(self) -> str:
        """The default as ``--help`` shows it: ``on``/``off``, ``30``, ``""`` for empty text."""
        if self.kind == "bool":
            return "on" if self.default else "off"
        if self.kind in ("int", "float") and isinstance(self.default, int | float):
            return self.number_text(self.default)
        return str(self.default) if self.default != "" else '""'

    def convert(self, value: Any, source: str) -> Any:
        """Validate and convert ``value``; UserError naming the key and the allowed range."""
        where = f"{source}: " if source else ""
        bad = UserError(f"{where}{self.name} = {value!r} is invalid; expected {self.allowed()}")
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("false", "no", "0", "off"):
                return False
            raise bad
        if self.kind == "int":
            if isinstance(value, bool):
                raise bad
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise bad from None
            if not isinstance(value, int):
                raise bad
        elif self.kind == "float":
            if isinstance(value, bool):
                raise bad
            if isinstance(value, str):
                try:
                    value = float(value.strip())
                except ValueError:
                    raise bad from None
            if not isinstance(value, int | float) or math.isnan(value) or math.isinf(value):
                raise bad
            value = float(value)
        elif self.kind == "str":
            if not isinstance(value, str):
                raise bad
            if self.choices and value not in self.choices:
                raise bad
            if self.parse is not None:
                self.parse(value)
        if self.kind in ("int", "float"):
            if (self.lo is not None and value < self.lo) or (
                    self.hi is not None and value > self.hi):
                raise bad
        return value


def parse_names(text: str, flag: str, noun: str, choices: Sequence[str]) -> list[str]:
    """A list option's text (``rhm,nat``) → the names in the order given, repeats dropped;
    ``all`` → every choice. UserError naming ``flag`` and the choices for an unknown (or empty)
    name: the ``parse`` hook of ``--defense``, ``--attacker``, ``--parts``."""
    if text.strip() == "all":
        return list(choices)
    out: list[str] = []
    for item in (s.strip() for s in text.split(",")):
        if item not in choices:
            raise UserError(f"{flag}: unknown {noun} {item!r} (choose from "
                            f"{', '.join(choices)}, or all)")
        if item not in out:
            out.append(item)
    return out


# Parameters every experiment has.
COMMON_PARAMS: tuple[Param, ...] = (
    Param("trials", "int", 3, "repetitions; each trial builds a fresh network unless it can "
          "share the last one (--warm-lab)", 1, 1000, quick=1),
    Param("seed", "int", 1, "seed for every random choice (same seed, same run)", 0, 2**31 - 1),
    Param("topo", "str", "ics", "topology", choices=("ics", "classic", "star", "linear")),
    Param("n_hosts", "int", 10, "host count for star/linear topologies", 2,
          MAX_SCALE_HOSTS),
    Param("plant", "str", "", "plant file (YAML, docs/plants.md); replaces --topo",
          parse=lambda text: load_plant_plan(text) if text else None),
    Param("cluster", "str", "", "cluster file (YAML/TOML, docs/cluster.md): run over servers",
          parse=lambda text: load_cluster(text) if text else None),
    Param("engine", "str", "auto", "OpenFlow framework: auto = ryu if it imports, else os-ken",
          choices=("auto", "ryu", "os-ken")),
    Param("datapath", "str", "auto",
          "OVS datapath: auto = kernel where the openvswitch module exists, else user",
          choices=("auto", "user", "kernel")),
    Param("link_delay_ms", "float", 0.0, "added one-way link delay (needs netem)", 0, 10000),
    Param("link_loss_pct", "float", 0.0, "added link loss (needs netem)", 0, 100),
    Param("connect_timeout_s", "float", 30.0,
          "how long to wait for every switch to connect to the controller", 1, 600),
    Param("warm_lab", "bool", True, "keep the network and controller running between "
          "consecutive trials that can share them (recon with no defense; docs/benchmarks.md)"),
    Param("proportion_ci", "str", "wilson",
          "interval method of proportion metrics (docs/statistics.md)",
          choices=PROPORTION_METHODS),
)


@dataclass(frozen=True)
class TrialResult:
    """What one trial returns.

    tables: tidy rows per table name (each row a flat dict, units in column names); the
        runner adds the ``trial`` column and appends them to ``<table>.csv``.
    metrics: scalar metrics of this trial (``host_recall``, ``rtt_avg_ms``...). A value that
        is a ``reporting.stats.Proportion`` (k of n) declares the metric a proportion: the
        summary pools its counts and gives a Wilson or Clopper-Pearson interval; a plain float
        is continuous (Student t). A 0/1 outcome of one attempt is ``Proportion(k, 1)``.
    validity: named checks this trial's premise needs; a False marks its metrics invalid.
    """

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    validity: dict[str, bool] = field(default_factory=dict)
    timeline: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    """A declarative experiment: parameters, one trial, and the plots of its bundle.

    trial(ctx) runs one scenario (ctx: experiments.runner.TrialContext) and returns a
    TrialResult. plot(bundle_dir) draws from the bundle's CSVs only and returns
    (file stem, caption) pairs. conditions(config), when given, names the conditions every
    trial runs under (e.g. defenses): each trial runs once per condition, interleaved, and
    the summary's metrics are named ``<condition>:<metric>``. check(config, plan), when given,
    raises UserError for a configuration the topology cannot run (no attacker, an unknown
    host); the runner calls it, and ``conditions``, before it creates the bundle.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    trial: Callable[..., TrialResult]
    plot: Callable[[Path], list[tuple[str, str]]]
    needs_nmap: bool = False
    conditions: Callable[[dict[str, Any]], list[str]] | None = None
    check: Callable[[dict[str, Any], AddressPlan], None] | None = None

    @classmethod
    def from_module(cls, module: str, name: str, description: str,
                    needs_nmap: bool = False) -> Experiment:
        """The experiment a module defines by the names it gives its parts: ``PARAMS``,
        ``trial``, ``plot`` and, when it has them, ``conditions`` and ``check``. Called as
        ``Experiment.from_module(__name__, ...)`` at the end of the module, once they exist."""
        parts = vars(sys.modules[module])
        return cls(name, description, parts["PARAMS"], parts["trial"], parts["plot"],
                   needs_nmap, parts.get("conditions"), parts.get("check"))

    @property
    def all_params(self) -> tuple[Param, ...]:
        return COMMON_PARAMS + self.params

    def param(self, name: str) -> Param:
        for p in self.all_params:
            if p.name == name:
                return p
        raise KeyError(name)


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml), TOML (.toml) or JSON config file as a flat mapping."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    suffix = Path(path).suffix.lower()
    fmt = {".toml": "toml", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(suffix)
    if fmt is None:
        raise UserError(f"config file {path}: unknown format {suffix or '(none)'}; "
                        "use .yaml, .yml, .toml or .json")
    try:
        data = parse_document(text, fmt)
    except DocumentError as exc:
        raise UserError(f"config file {path} is not valid {suffix[1:].upper()}: {exc}"
                        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path}: expected a mapping of keys to values")
    return data


def resolve_config(exp: Experiment, file_values: Mapping[str, Any] | None,
                   flag_values: Mapping[str, Any], quick: bool = False,
                   file_name: str = "config file") -> dict[str, Any]:
    """defaults ← quick ← file ← flags, every value validated; unknown keys are errors."""
    known = {p.name: p for p in exp.all_params}
    cfg: dict[str, Any] = {}
    for p in exp.all_params:
        cfg[p.name] = p.quick if (quick and p.quick is not _UNSET) else p.default
    for key, value in (file_values or {}).items():
        norm = str(key).replace("-", "_")
        if norm not in known:
            raise UserError(f"{file_name}: unknown key {key!r} for experiment {exp.name} "
                            f"(known: {', '.join(sorted(known))})")
        cfg[norm] = known[norm].convert(value, file_name)
    for key, value in flag_values.items():
        if value is None:
            continue
        cfg[key] = known[key].convert(value, known[key].flag)
    return cfg
