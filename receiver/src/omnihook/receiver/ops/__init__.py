"""Running the bridge in production: metrics, structured logs, status.

>>> from omnihook.receiver.ops import METRICS, configure_logging, read_status
"""

from __future__ import annotations

from .logs import CONTEXT_FIELDS, LOG_FORMATS, JsonLogFormatter, configure_logging
from .metrics import METRICS, Metrics, crm_operation, exposition
from .status import BridgeStatus, StatusLimits, read_status

__all__ = [
    "CONTEXT_FIELDS",
    "LOG_FORMATS",
    "METRICS",
    "BridgeStatus",
    "JsonLogFormatter",
    "Metrics",
    "StatusLimits",
    "configure_logging",
    "crm_operation",
    "exposition",
    "read_status",
]
