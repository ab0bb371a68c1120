"""The `service` role: accounts of internal consumers, which may read the event feed only."""

from __future__ import annotations

from tests.integration.auth_service.conftest import login


def test_an_admin_creates_a_service_account_that_holds_only_events_read(client, admin) -> None:
    created = client.post("/auth/users", headers=admin,
                          json={"username": "indexer", "password": "long enough",
                                "role": "service"})
    assert created.status_code == 201, created.json  # the database's role check allows it
    me = client.get("/auth/me", headers=login(client, "indexer", "long enough")).json
    assert (me["role"], me["permissions"]) == ("service", ["events:read"])
    admin_permissions = client.get("/auth/me", headers=admin).json["permissions"]
    assert "events:read" in admin_permissions


def test_a_member_can_be_made_a_service_account_and_back(client, admin) -> None:
    user_id = client.post("/auth/users", headers=admin, json={
        "username": "bridge", "password": "long enough"}).json["id"]
    for role in ("service", "member"):
        changed = client.patch(f"/auth/users/{user_id}", headers=admin, json={"role": role})
        assert (changed.status_code, changed.json["role"]) == (200, role)
