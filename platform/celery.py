"""The Celery app. Queues are routed per kind of work, so a GPU worker can take only diagnostics."""

import logging
import os
from logging.handlers import WatchedFileHandler

import click
from celery import Celery, current_task
from celery.signals import setup_logging
from django.conf import settings
from kombu import Queue

from neurofed.env import env_int

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
if env_int("CELERY_VISIBILITY_TIMEOUT", 0):
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 0),
    }


class TaskLineFormatter(logging.Formatter):
    """The project's line format, with the running task's name and id in front of a line logged inside
    a task, as Celery's own task logger writes them: a worker runs several tasks at once, and an IT person
    reading its log needs to tell one task's lines from another's."""

    def formatMessage(self, record):
        task = current_task
        # Celery's own lines name their task already ("Task ...[id] succeeded").
        if task and task.request.id and not record.name.startswith("celery"):
            record = logging.makeLogRecord({**record.__dict__,
                                            "message": f"{task.name}[{task.request.id}]: {record.message}"})
        return super().formatMessage(record)


@setup_logging.connect
def _keep_django_logging(loglevel=None, logfile=None, **kwargs):
    """Log a worker through Django's LOGGING (root at LOG_LEVEL, INFO by default), as every other process.

    Left to itself, Celery replaces the root logger's handlers and sets it to its -l, which defaults to
    WARNING: a worker started without -l logged neither its own "ready" and "received" lines nor the app's
    INFO lines. With a receiver of this signal connected, Celery leaves logging to it; a -l or -f given on
    the command line is still obeyed.
    """
    context = click.get_current_context(silent=True)  # the `celery worker` command's, while it starts
    root = logging.getLogger()
    if context is not None and context.get_parameter_source("loglevel") in (
            click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT):
        root.setLevel(loglevel)
    if logfile:
        root.handlers = [WatchedFileHandler(logfile, encoding="utf-8")]
    for handler in root.handlers:
        handler.setFormatter(TaskLineFormatter(settings.LOGGING["formatters"]["plain"]["format"]))
