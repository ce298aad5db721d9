"""Views as the application role of docs/operations.md (not a superuser): every call works.

Reuses tests/test_roles.py's throwaway deployment: roles and database as the page says, the
schema migrated as ``hacs_owner``; here the adapter connects as ``hacs_app``.
"""

from __future__ import annotations

import pytest

from hacs_models import Actor
from hacs_persistence.adapter import create_postgres_adapter
from hacs_persistence.views import create_view, drop_view, sync_fhir_resources, view_rows
from tests.factories import make_observation, make_patient
from tests.test_roles import Deployment, deployment, roles_server  # noqa: F401 (fixtures)
from tests.test_views import SYSTOLIC

ADMIN = Actor(name="views-app", role="admin", permissions=["admin:*"])


@pytest.mark.usefixtures("roles_server")
async def test_the_app_role_syncs_reads_creates_and_drops_views(deployment: Deployment) -> None:  # noqa: F811
    adapter = await create_postgres_adapter(deployment.url("hacs_app"))
    try:
        patient = await adapter.save(make_patient(), ADMIN)
        await adapter.save(make_observation(patient.id), ADMIN)
        assert await sync_fhir_resources(adapter, "Observation", actor=ADMIN) == 1
        rows = [row async for row in view_rows(adapter, SYSTOLIC, actor=ADMIN)]
        assert [r["patient"] for r in rows] == [patient.id]
        assert await create_view(adapter, SYSTOLIC, actor=ADMIN) == "systolic"
        await drop_view(adapter, "systolic", actor=ADMIN)
    finally:
        await adapter.close()
