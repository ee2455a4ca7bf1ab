"""federation_experiment's summary: the centralised-minus-federated gap per seed and its mean."""

import pytest

from federation.experiment import Row, gap_summary


def row(partition, seed, accuracy, federated):
    return Row("x", accuracy, accuracy, rounds=20 if federated else 0, wall_s=1.0, seed=seed, partition=partition)


def test_the_gap_is_taken_per_seed_and_averaged():
    rows = [row("iid", 0, 0.90, False), row("iid", 0, 0.86, True),
            row("iid", 1, 0.88, False), row("iid", 1, 0.86, True),
            row("label-skew", 0, 0.85, False), row("label-skew", 0, 0.80, True)]
    iid, skew = gap_summary(rows)
    assert iid.startswith("iid: centralised minus FedAvg accuracy 3.0 points ± 1.4 (sd) over 2 seed(s)")
    assert "seed 0 4.0" in iid and "seed 1 2.0" in iid
    assert skew == "label-skew: centralised minus FedAvg accuracy 5.0 points over 1 seed(s): seed 0 5.0"


def test_a_seed_without_both_rows_is_left_out():
    rows = [row("iid", 0, 0.90, False), row("iid", 0, 0.87, True), row("iid", 1, 0.88, False)]
    assert gap_summary(rows) == ["iid: centralised minus FedAvg accuracy 3.0 points over 1 seed(s): seed 0 3.0"]
    assert gap_summary([row("iid", 1, 0.88, False)]) == []


@pytest.mark.django_db
def test_the_command_refuses_seeds_that_are_not_numbers():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="--seeds takes comma-separated whole numbers"):
        call_command("federation_experiment", "--seeds", "0,one")


@pytest.mark.django_db
@pytest.mark.parametrize("args, message", [
    (["--hospitals", "0"], "--hospitals must be at least 1, not 0"),
    (["--rounds", "-2"], "--rounds must be at least 1"),
    (["--per-hospital", "-1"], "--per-hospital must be at least 1"),
    (["--rows", "iid,federated"], "--rows takes .* not federated"),
])
def test_the_command_refuses_counts_that_cannot_run_before_seeding_anything(args, message):
    from django.core.management import CommandError, call_command

    from hospitals.models import Hospital

    with pytest.raises(CommandError, match=message):
        call_command("federation_experiment", *args)
    assert not Hospital.objects.exists()
