"""A Celery queue on the Redis broker, read as a worker would, for tests of commands that queue tasks."""

import json
from contextlib import contextmanager

import pytest
import redis
from django.conf import settings


@contextmanager
def sent_task_arguments(queue: str, task: str):
    """Yields a function listing the single argument of each `task` message sent to `queue` since entry,
    sorted; the messages sent meanwhile are removed on exit."""
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs the Redis broker (services mode)")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    before = set(client.lrange(queue, 0, -1))

    def arguments():
        found = []
        for raw in client.lrange(queue, 0, -1):
            if raw not in before:
                headers = json.loads(raw)["headers"]
                assert headers["task"] == task
                found.append(headers["argsrepr"].strip("(),'\""))
        return sorted(found)

    try:
        yield arguments
    finally:
        for raw in client.lrange(queue, 0, -1):
            if raw not in before:
                client.lrem(queue, 0, raw)
        client.close()
