"""bin/demo (`make demo`): the workers it starts in services mode."""

import shlex
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "bin" / "demo"


def worker_queues() -> list[set[str]]:
    """The queues of each `celery ... worker` the script starts."""
    workers = []
    for line in DEMO.read_text().splitlines():
        words = shlex.split(line.split("#", 1)[0].rstrip("\\"))
        if words[:1] == ["celery"] and "worker" in words:
            workers.append(set(words[words.index("-Q") + 1].split(",")))
    return workers


def test_a_federated_run_never_holds_the_worker_that_analyses_scans():
    # A run's task follows it to its end (minutes to hours) and holds its worker process all that time:
    # sharing the diagnostics worker's one process, it left every upload "waiting to be analysed".
    workers = worker_queues()
    assert {"diagnostics"} in workers, workers
    assert set().union(*workers) >= {"diagnostics", "federation", "default"}, workers
