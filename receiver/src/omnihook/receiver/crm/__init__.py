"""omnihook.receiver.crm: adapters that bridge Rocket.Chat events into CRMs.

>>> from omnihook.receiver import Router
>>> from omnihook.receiver.crm import HubSpotAdapter
>>> router = Router()
>>> HubSpotAdapter(token="pat-...").register(router)    # doctest: +SKIP

Fakes of the three CRM APIs for tests live in ``omnihook.receiver.crm.testing``.
"""

from .base import (
    DEFAULT_PERSON_EVENTS,
    DEFAULT_TRANSCRIPT_EVENTS,
    CrmAdapter,
    CrmConfigError,
    CrmRateLimited,
    CrmTransientError,
    CrmValidationError,
    LinkStore,
    MemoryLinks,
    Person,
    RecordAdapter,
    person_of,
    split_name,
    transcript_text,
)
from .http_forward import HttpForwardAdapter
from .hubspot import HubSpotAdapter
from .salesforce import SalesforceAdapter
from .sql import SqlCrmAdapter
from .zoho import ZohoAdapter

__all__ = [
    "DEFAULT_PERSON_EVENTS",
    "DEFAULT_TRANSCRIPT_EVENTS",
    "CrmAdapter",
    "CrmConfigError",
    "CrmRateLimited",
    "CrmTransientError",
    "CrmValidationError",
    "HttpForwardAdapter",
    "HubSpotAdapter",
    "LinkStore",
    "MemoryLinks",
    "Person",
    "RecordAdapter",
    "SalesforceAdapter",
    "SqlCrmAdapter",
    "ZohoAdapter",
    "person_of",
    "split_name",
    "transcript_text",
]
