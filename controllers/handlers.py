"""Fail-loudly support for event handlers of controller apps.

An exception inside a Ryu/os-ken handler would otherwise end the app's event loop thread and
the controller would keep its sockets open while silently ignoring switches. Instead a handler
wrapped with :func:`fail_loudly` logs at ERROR a line containing :data:`HANDLER_EXCEPTION_MARKER`
followed by the traceback, and counts it on the app; the experiment runner fails a trial whose
controller log contains the marker or ``Traceback``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

HANDLER_EXCEPTION_MARKER = "HANDLER EXCEPTION"

F = TypeVar("F", bound=Callable[..., Any])


def event_dpid(ev: Any) -> str:
    """The event's datapath id as 16 hex digits, or ``?`` when it has none yet."""
    dpid = getattr(getattr(getattr(ev, "msg", None), "datapath", None), "id", None)
    if dpid is None:
        dpid = getattr(getattr(ev, "datapath", None), "id", None)
    return f"{dpid:016x}" if isinstance(dpid, int) else "?"


def fail_loudly(handler: F) -> F:
    """Wrap a handler method: log (marker + traceback) and count any exception, then go on.

    The app instance must have a ``logger`` and an int attribute ``handler_exceptions``.
    Apply below ``set_ev_cls`` so the framework registers the wrapper.
    """

    @functools.wraps(handler)
    def wrapper(self: Any, ev: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(self, ev, *args, **kwargs)
        except Exception:
            self.handler_exceptions = getattr(self, "handler_exceptions", 0) + 1
            logger = getattr(self, "logger", None) or logging.getLogger(type(self).__module__)
            logger.exception("%s app=%s handler=%s event=%s dpid=%s count=%d",
                             HANDLER_EXCEPTION_MARKER, type(self).__name__, handler.__name__,
                             type(ev).__name__, event_dpid(ev), self.handler_exceptions)
            return None

    return wrapper  # type: ignore[return-value]
