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


def test_a_retried_submission_takes_no_flower_run_from_before_the_platform_run_existed(tmp_path, monkeypatch):
    """`flwr run` said nothing: before trying again the SuperLink is asked for the run, and only a Flower
    run submitted since the platform run was created counts (a reset database numbers its runs anew)."""
    import datetime

    asked = []

    def silent(home, run_id):
        raise control.ControlError("flwr run printed nothing")

    monkeypatch.setattr(control, "_submit_once", silent)
    monkeypatch.setattr(control, "find_submitted", lambda home, run_id, since=None: asked.append(since) or "")
    created = datetime.datetime(2026, 12, 7, 9, 0, tzinfo=datetime.UTC)
    with pytest.raises(control.ControlError):
        control.submit_run(tmp_path, 7, since=created, attempts=2)
    assert asked == [created, created]
