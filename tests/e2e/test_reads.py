"""The reads through the gateway: a write read back at its position, as the command answered."""

from __future__ import annotations

from testbed.stack import Stack


def test_each_write_is_read_back_at_its_position(stack: Stack) -> None:
    """`X-Event-Seq` of a command as `min_seq`: the read side answers with that change."""
    headers, base = stack.login(), stack.base_url
    created = stack.session.post(f"{base}/task", headers=headers,
                                 json={"title": "Read me back", "priority": "high"})
    assert created.status_code == 201, created.text
    task_id, position = created.json()["id"], created.headers["X-Event-Seq"]
    read = stack.session.get(f"{base}/tasks/current/{task_id}?min_seq={position}",
                             headers=headers)
    assert read.status_code == 200, read.text
    assert read.json() == created.json() and read.headers["ETag"] == created.headers["ETag"]

    changed = stack.session.put(f"{base}/task/{task_id}", json={"status": "in_progress"},
                                headers={**headers, "If-Match": created.headers["ETag"]})
    listed = stack.session.get(f"{base}/tasks/current?status=in_progress&q=read%20back"
                               f"&min_seq={changed.headers['X-Event-Seq']}", headers=headers)
    assert [task["id"] for task in listed.json()] == [task_id]
    assert listed.json()[0] == changed.json()

    deleted = stack.session.delete(f"{base}/task/{task_id}", headers=headers)
    gone = stack.session.get(f"{base}/tasks/current/{task_id}"
                             f"?min_seq={deleted.headers['X-Event-Seq']}", headers=headers)
    assert (gone.status_code, gone.json()) == (404, {"error": "Task not found"})
