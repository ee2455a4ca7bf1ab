"""The Celery app. Queues are routed per kind of work, so a GPU worker can take only diagnostics."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "neurofed.settings")

app = Celery("neurofed")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue("diagnostics"), Queue("federation"), Queue("default")],
    task_default_queue="default",
    task_routes={"diagnostics.tasks.*": {"queue": "diagnostics"}, "federation.tasks.*": {"queue": "federation"}},
    # A scan task that dies with its worker is redelivered, not lost (DESIGN §4).
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    broker_transport_options={"visibility_timeout": 3600},
    task_serializer="json",
    accept_content=["json"],
)
app.autodiscover_tasks()

# Diagnostics (pipeline): how long Redis waits before redelivering a task whose worker died without
# acknowledging it. The default above suits production; crash tests set CELERY_VISIBILITY_TIMEOUT to a few
# seconds so a killed worker's scan is redelivered within the test.
if os.environ.get("CELERY_VISIBILITY_TIMEOUT"):
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "visibility_timeout": int(os.environ["CELERY_VISIBILITY_TIMEOUT"]),
    }
