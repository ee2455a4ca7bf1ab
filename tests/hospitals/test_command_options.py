"""--hospital and --older-than-min, as the maintenance commands share them (hospitals.command_options)."""

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

HOSPITAL_COMMANDS = [("requeue_scans", "--dry-run"), ("sweep_orphan_blobs", "--dry-run"), ("verify_scan_decodes",)]
AGE_COMMANDS = [("requeue_scans", "--dry-run"), ("sweep_orphan_blobs", "--dry-run"), ("requeue_runs", "--dry-run")]


@pytest.mark.parametrize("command", HOSPITAL_COMMANDS)
def test_an_empty_hospital_is_refused_rather_than_taken_for_every_hospital(world, command):
    with pytest.raises(CommandError, match=r"^--hospital is empty; give a hospital's slug, or leave the option out"):
        call_command(*command, "--hospital", " ")
    with pytest.raises(CommandError, match="No hospital with the slug 'nowhere'"):
        call_command(*command, "--hospital", "nowhere")
    call_command(*command, "--hospital", "st-anne")


@pytest.mark.parametrize("command", AGE_COMMANDS)
def test_an_age_past_ten_years_is_a_sentence_not_an_overflow(world, command):
    with pytest.raises(CommandError, match=r"--older-than-min must be at most 5256000 \(ten years\), not 99999999999"):
        call_command(*command, "--older-than-min", "99999999999")
    call_command(*command, "--older-than-min", "5256000")
