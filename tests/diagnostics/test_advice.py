"""Precaution advice (diagnostics/advice.py): its wording follows who read the scan."""

import pytest

from diagnostics.advice import ADVICE, advice_for
from diagnostics.models.scans import Scan
from hospitals.models import AIResultVisibility, Hospital
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

LABELS = sorted(ADVICE)
# A hospital that has not set its emergency number.
SOMEWHERE = Hospital(slug="somewhere", name="Somewhere")


def _text(advice) -> str:
    return " ".join([advice["title"], advice["meaning"], *advice["next_steps"], advice["reminder"]])


@pytest.mark.parametrize("label", LABELS)
def test_preliminary_advice_speaks_of_the_software(label):
    advice = advice_for(label, preliminary=True, hospital=SOMEWHERE)
    assert advice["preliminary"] and not advice["reviewed"] and advice["preliminary_notice"]
    assert "software" in advice["meaning"] and "will review" in advice["next_steps"][0]


@pytest.mark.parametrize("label", LABELS)
def test_reviewed_advice_speaks_of_the_doctor_only(label):
    advice = advice_for(label, preliminary=False, hospital=SOMEWHERE)
    assert advice["reviewed"] and not advice["preliminary"] and advice["preliminary_notice"] == ""
    text = _text(advice)
    assert "software" not in text.lower() and "will review" not in text
    assert "Your doctor" in advice["title"] and advice["meaning"].startswith("Your doctor has looked at your scan")
    assert advice["title"] != advice_for(label, preliminary=True, hospital=SOMEWHERE)["title"]


def test_a_normal_result_is_explained_in_plain_words():
    for preliminary in (True, False):
        text = _text(advice_for("notumor", preliminary=preliminary, hospital=SOMEWHERE))
        assert "does not explain your symptoms" not in text
        assert "do not show up on a scan" in text


@pytest.mark.parametrize("preliminary", [True, False])
def test_the_emergency_number_is_the_hospitals_own_when_it_set_one(preliminary):
    generic = advice_for("glioma", preliminary=preliminary, hospital=SOMEWHERE)["emergency_action"]
    assert "local emergency number (999, 112 or 911)" in generic
    local = advice_for("glioma", preliminary=preliminary, hospital=Hospital(emergency_phone="15"))
    assert local["emergency_action"].startswith("If any of these happen, call 15 straight away or go to an emergency department.")


def test_unknown_label_has_no_advice():
    assert advice_for("tumour", preliminary=True, hospital=SOMEWHERE) is None


@pytest.mark.django_db
def test_patient_sees_the_doctors_changed_label_in_the_advice(world, api, settings):
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save(update_fields=["patients_see_ai_results"])
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 3)).json()["id"])
    finish(scan, "glioma", 0.8)
    detail = f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/"
    assert api(world.owner).get(detail).json()["advice"]["title"] == "Possible glioma"
    api(world.colleague).post(f"{detail}review/", {"label": "meningioma"}, format="json")
    advice = api(world.owner).get(detail).json()["advice"]
    assert advice["label"] == "meningioma" and advice["title"] == "Your doctor sees signs of a meningioma"
    assert "software" not in _text(advice).lower()
