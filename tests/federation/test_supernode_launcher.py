import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from federation import daemons, supernode_launcher


CHECK_THE_PATCH = """
import time
from federation import supernode_launcher
from flwr.supernode import start_client_internal

supernode_launcher.install(0.05)
assert isinstance(start_client_internal.time, supernode_launcher.CappedSleep)
started = time.monotonic()
start_client_internal.time.sleep(3)
assert time.monotonic() - started < 1.0, "the 3 s sleep was not capped"
assert start_client_internal.time.monotonic() >= started
print("capped")
"""


def test_the_supernode_loop_waits_at_most_the_cap():
    # In a fresh interpreter, like the node itself: flwr's SuperNode modules pull in alembic, mako and
    # pygments, and importing them into the suite's process (TensorFlow already loaded) crashed it.
    result = subprocess.run([sys.executable, "-c", CHECK_THE_PATCH], capture_output=True, text=True, timeout=120,
                            cwd=settings.BASE_DIR)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("capped")


@pytest.mark.parametrize("raw, expected", [("", supernode_launcher.DEFAULT_POLL_S), ("1.5", 1.5)])
def test_the_cap_comes_from_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv("NEUROFED_FLOWER_NODE_POLL_S", raw)
    assert supernode_launcher.poll_cap_s() == expected


@pytest.mark.parametrize("raw", ["soon", "0", "60"])
def test_a_bad_cap_stops_the_node_with_a_clear_message(monkeypatch, raw):
    monkeypatch.setenv("NEUROFED_FLOWER_NODE_POLL_S", raw)
    with pytest.raises(SystemExit, match="NEUROFED_FLOWER_NODE_POLL_S"):
        supernode_launcher.poll_cap_s()


def test_warm_nodes_use_the_launcher_and_cold_nodes_the_stock_supernode():
    warm = daemons.supernode_command(superlink="127.0.0.1:9092", runtime_port=9094, hospital_slug="a")
    cold = daemons.supernode_command(superlink="127.0.0.1:9092", runtime_port=9094, hospital_slug="a", warm=False)
    assert warm[1:3] == ["-m", "federation.supernode_launcher"]
    assert cold[0].endswith("flower-supernode")


def processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_node_whose_executor_cannot_start_is_not_left_running(tmp_path):
    # The executor's log path is taken by a folder: its start fails after the node's has succeeded.
    slug = f"orphan-{tmp_path.name}"
    (tmp_path / "logs" / f"executor-{slug}.log").mkdir(parents=True)
    try:
        with pytest.raises(IsADirectoryError):
            daemons.start_node(tmp_path, hospital_slug=slug, superlink="127.0.0.1:9", runtime_port=daemons.free_port())
        # A process in the middle of its exec can show an empty command line for a moment.
        time.sleep(0.5)
        assert processes_naming(f'hospital="{slug}"') == []
    finally:
        time.sleep(0.5)
        daemons._kill_pids(processes_naming(f'hospital="{slug}"'))
