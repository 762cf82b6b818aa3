"""Local fakes of the HubSpot, Zoho CRM and Salesforce APIs, for tests (yours and ours).

Each fake registers its endpoints on a pytest-httpserver ``HTTPServer`` and answers as the real
API documents (bodies, status codes, headers), keeping state per key: an upsert inserts, then
updates. Switches inject what is hard to get from a real account on demand: expired tokens,
validation errors, rate limits::

    def test_my_mapping(httpserver):
        hubspot = FakeHubSpot(httpserver)
        adapter = HubSpotAdapter(token=hubspot.token, base_url=hubspot.base_url)
        ...
        assert hubspot.contacts["jane@example.com"]["properties"]["firstname"] == "Jane"

Requires ``pytest-httpserver`` (``pip install omnihook-receiver[testing]``).
"""

from __future__ import annotations

from .hubspot import FakeHubSpot
from .salesforce import FakeSalesforce
from .zoho import FakeZoho

__all__ = ["FakeHubSpot", "FakeSalesforce", "FakeZoho"]
