"""A "no tumour" reading is not an all-clear: the advice never calls the scan normal, whoever read it."""

import pytest

from diagnostics.advice import advice_for
from hospitals.models import Hospital

SOMEWHERE = Hospital(slug="somewhere", name="Somewhere")


@pytest.mark.parametrize("preliminary", [True, False])
def test_no_tumour_advice_never_calls_the_scan_normal(preliminary):
    advice = advice_for("notumor", preliminary=preliminary, hospital=SOMEWHERE)
    sentences = [advice["title"], advice["meaning"], *advice["next_steps"], advice["reminder"]]
    assert not [sentence for sentence in sentences if "normal" in sentence.lower()]
    # Still the step that matters: symptoms that go on or get worse are worth a call to the doctor.
    assert "If your symptoms continue or get worse, contact your doctor" in " ".join(advice["next_steps"])
