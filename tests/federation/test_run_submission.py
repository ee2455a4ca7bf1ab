"""Submitting a run to the SuperLink (federation.control.submit_run's single try), with the real flwr CLI."""

import pytest

from federation import control


def test_a_run_the_superlink_cannot_take_is_refused_with_which_way_it_failed(tmp_path):
    # No SuperLink connection is configured under this home: `flwr run` answers without starting a run.
    with pytest.raises(control.ControlError) as refused:
        control._submit_once(tmp_path, platform_run_id=1, timeout=60)
    message = str(refused.value)
    assert message.startswith("The SuperLink did not take the run: `flwr run` ended without starting the run.")
    assert "not found" in message and "exit 0" not in message
