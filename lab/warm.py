"""A lab kept warm across trials: one network and controller for consecutive trials that ask
for the same lab (``--warm-lab``, on by default).

Only a trial that declares its lab reusable gets a kept one (``recon``'s staged attacker with no
defense: it changes nothing in the hosts that a reset does not undo); every other trial gets a
fresh lab as before. Between two trials on a kept lab the hosts are reset
(:meth:`lab.lifecycle.Lab.reset_hosts`: every process the trial started stopped, every
neighbour cache emptied); what stays warm is the controller process with what it learned (the
L2 switch's MAC table) and the flows in the switches until they idle out. Each trial records
``lab_reused`` (0 or 1) in its timeline, so the manifest says which trials ran warm; a reused
trial's ``build_s`` and ``connect_s`` are 0 and its ``teardown_s`` is the reset.

The kept lab's own logs (controller, network) go to ``<raw>/lab-<k>/``; the processes a trial
starts log into that trial's folder. A trial that fails or is interrupted tears the kept lab
down (the next trial builds afresh), and so does a trial that asks for a different lab;
:meth:`WarmLabs.close` tears down the last one when the run ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

from lab.lifecycle import Lab, LabConfig, running_lab


def lab_key(cfg: LabConfig) -> LabConfig:
    """What must be equal for two trials to share a lab: everything but the log folder."""
    return dataclasses.replace(cfg, log_dir=Path("."))


class WarmLabs:
    """Hands out labs to trials, keeping one running while consecutive trials can share it.

    root: the folder the kept labs' own logs go under. enabled: False hands out a fresh lab to
    every trial (``--no-warm-lab``).
    """

    def __init__(self, root: Path, enabled: bool = True) -> None:
        self.root = root
        self.enabled = enabled
        self.built = 0
        self.reused = 0
        self._stack: contextlib.ExitStack | None = None
        self._lab: Lab | None = None
        self._key: LabConfig | None = None

    @contextlib.contextmanager
    def lab(self, cfg: LabConfig, reusable: bool = False) -> Iterator[Lab]:
        """A running lab for one trial. reusable: the trial leaves nothing in the hosts that
        :meth:`Lab.reset_hosts` does not undo (else it gets a lab of its own, as always)."""
        if not (self.enabled and reusable and cfg.capture is None and cfg.cluster is None):
            self.close()
            with running_lab(cfg) as lab:
                lab.timeline["lab_reused"] = 0.0
                yield lab
            return
        key = lab_key(cfg)
        reused = self._lab is not None and self._key == key and self._lab.controller_alive()
        if not reused:
            self.close()
            stack = contextlib.ExitStack()
            self.built += 1
            kept = dataclasses.replace(cfg, log_dir=self.root / f"lab-{self.built}")
            self._lab = stack.enter_context(running_lab(kept))
            self._stack, self._key = stack, key
        else:
            self.reused += 1
        lab = self._lab
        assert lab is not None
        lab.begin_trial(cfg.log_dir, reused)
        done = False
        try:
            yield lab
            done = True
        finally:
            if done:
                t0 = time.monotonic()
                try:
                    lab.reset_hosts()
                except BaseException:
                    self.close()
                    raise
                lab.timeline["teardown_s"] = time.monotonic() - t0
            else:  # failed or interrupted: nothing of it is trusted for the next trial
                self.close()

    def close(self) -> None:
        """Tear down the kept lab, if any (exactly what it created)."""
        stack, self._stack, self._lab, self._key = self._stack, None, None, None
        if stack is not None:
            stack.close()

