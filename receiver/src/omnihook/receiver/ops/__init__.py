"""Running the bridge in production: metrics, structured logs, traces, status, a circuit
breaker per CRM adapter, alerts.

>>> from omnihook.receiver.ops import METRICS, configure_logging, read_status
"""

from __future__ import annotations

from .alerts import (
    CONDITIONS,
    Alert,
    AlertLoop,
    AlertRules,
    AlertTarget,
    RocketChatTarget,
    SlackTarget,
    WebhookTarget,
)
from .breaker import CIRCUITS, CircuitBreaker, CircuitOpen, CircuitPolicy
from .logs import CONTEXT_FIELDS, LOG_FORMATS, JsonLogFormatter, configure_logging
from .metrics import METRICS, Metrics, crm_operation, exposition, serve_metrics
from .status import BridgeStatus, StatusLimits, read_status
from .tracing import TRACING, Tracing, configure_tracing

__all__ = [
    "CIRCUITS",
    "CONDITIONS",
    "CONTEXT_FIELDS",
    "LOG_FORMATS",
    "METRICS",
    "TRACING",
    "Alert",
    "AlertLoop",
    "AlertRules",
    "AlertTarget",
    "BridgeStatus",
    "CircuitBreaker",
    "CircuitOpen",
    "CircuitPolicy",
    "JsonLogFormatter",
    "Metrics",
    "RocketChatTarget",
    "SlackTarget",
    "StatusLimits",
    "Tracing",
    "WebhookTarget",
    "configure_logging",
    "configure_tracing",
    "crm_operation",
    "exposition",
    "read_status",
    "serve_metrics",
]
