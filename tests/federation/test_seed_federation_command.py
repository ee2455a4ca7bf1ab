"""seed_federation: options that cannot work are refused before any hospital is touched."""
import pytest
from django.core.management import CommandError, call_command

from hospitals.models import Hospital
from tests.factories import make_hospital

pytestmark = pytest.mark.django_db


def _untouched(hospital):
    hospital.refresh_from_db()
    return not hospital.federation_opt_in


def test_a_negative_count_or_alpha_is_refused(tmp_path):
    hospital = make_hospital("st-brigid")
    for args, message in ((["--per-hospital", "-1"], "--per-hospital must be at least 1, not -1"),
                          (["--partition", "label-skew", "--alpha", "0"], "--alpha .* must be above 0")):
        with pytest.raises(CommandError, match=message):
            call_command("seed_federation", "--hospitals", hospital.slug, "--opt-in", *args)
    assert _untouched(hospital)


def test_a_missing_data_set_is_a_sentence_not_a_traceback(settings, tmp_path):
    hospital = make_hospital("st-brigid")
    settings.NEUROFED_DATA_DIR = tmp_path / "no-data"
    with pytest.raises(CommandError, match="no brain-tumor-mri data set under .*NEUROFED_DATA_DIR"):
        call_command("seed_federation", "--hospitals", hospital.slug, "--opt-in", "--per-hospital", "2")
    assert _untouched(hospital) and Hospital.objects.count() == 1
