"""The live web dashboard: one local page over the files a lab or an experiment writes.

Read-only and local: it binds to 127.0.0.1, reads the run folder (PLC ground truth, HMI
requests, hop logs, detector log, attack outcomes, the runner's progress log, CPU load) and
never touches the emulated network. ``python -m dashboard FOLDER`` serves it live;
``python -m experiments.dashboard BUNDLE`` replays a finished bundle (docs/dashboard.md).
"""
