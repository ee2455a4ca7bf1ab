"""A worker logs through the project's LOGGING (LOG_LEVEL) unless its -l says otherwise. Without -l it
logs at INFO (tests/diagnostics/test_pipeline_worker.py reads such a worker's log); these start workers
whose -l disagrees with LOG_LEVEL, and the -l wins."""

import logging

import pytest

from tests.diagnostics.conftest import live_media_root, running_worker  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.mark.parametrize(("loglevel", "log_level_setting", "logs_info"), [("WARNING", "INFO", False),
                                                                          ("INFO", "WARNING", True)])
def test_a_workers_loglevel_option_overrides_log_level(django_db_setup, django_db_blocker, live_media_root,
                                                       tmp_path, loglevel, log_level_setting, logs_info):
    for worker in running_worker(django_db_blocker, live_media_root, tmp_path, queues=("default",),
                                 loglevel=loglevel, LOG_LEVEL=log_level_setting):
        # Logged before the worker answers the ping that running_worker waits for.
        assert (" ready." in worker.log_path.read_text(errors="replace")) is logs_info, worker.log()


def test_a_workers_logfile_option_sends_the_log_there_in_the_projects_format(tmp_path):
    """Lines logged inside a task start with its name and id, as Celery's task logger writes them;
    Celery's own lines, which name their task already, and lines outside a task are left as they are."""
    from neurofed.celery import _keep_django_logging, app

    @app.task(name="tests.log_inside_a_task")
    def log_inside_a_task():
        logging.getLogger("neurofed.test").warning("logged by the task")
        logging.getLogger("celery.test").warning("logged by Celery for the task")

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        _keep_django_logging(loglevel=logging.WARNING, logfile=str(tmp_path / "worker.log"))
        logging.getLogger("neurofed.test").warning("written to the file")
        log_inside_a_task.apply(task_id="task-7")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers, root.level = saved
    lines = (tmp_path / "worker.log").read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines[:3]] == [
        "WARNING neurofed.test written to the file",
        "WARNING neurofed.test tests.log_inside_a_task[task-7]: logged by the task",
        "WARNING celery.test logged by Celery for the task",
    ]
    assert lines[3].split(" ", 2)[2].startswith("INFO celery.app.trace Task tests.log_inside_a_task[task-7] succeeded")
