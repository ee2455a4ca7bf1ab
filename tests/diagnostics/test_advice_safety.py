"""What the precaution advice must always say, whichever class and whoever read the scan: the emergency
signs and the number to call, that a doctor makes the diagnosis, when to seek care after "no tumour", and
driving; what it must never say: a certainty before review, a percentage to misread as odds, an
unexplained medical word. And it stays readable: plain English, around a reading age of 11 to 12."""

import re
from urllib.parse import urlparse

import pytest

from diagnostics.advice import ADVICE, advice_for, advice_while_waiting
from diagnostics.models.scans import Scan
from hospitals.models import AIResultVisibility, Hospital
from tests.diagnostics import samples
from tests.diagnostics.helpers import finish, upload

LABELS = sorted(ADVICE)
SOMEWHERE = Hospital(slug="somewhere", name="Somewhere")
LOCAL = Hospital(slug="local", name="Local", emergency_phone="+33 15")
VARIANTS = [(label, preliminary) for label in LABELS for preliminary in (True, False)]


def _all_advice():
    """Every text a patient can be given: each class, read by the software or by a doctor, and the wait."""
    return [advice_for(label, preliminary=p, hospital=SOMEWHERE) for label, p in VARIANTS] + [
        advice_while_waiting(SOMEWHERE)
    ]


def _id(advice) -> str:
    return f"{advice['label'] or 'waiting'}-{'reviewed' if advice['reviewed'] else 'unreviewed'}"


def _sentences(advice) -> list[str]:
    return [advice["title"], advice["preliminary_notice"], advice["meaning"], *advice["next_steps"],
            *advice["emergency_symptoms"], advice["emergency_action"], advice["reminder"]]


def _text(advice) -> str:
    return " ".join(sentence for sentence in _sentences(advice) if sentence)


@pytest.mark.parametrize("advice", _all_advice(), ids=_id)
def test_every_advice_names_the_emergency_signs(advice):
    signs = " ".join(advice["emergency_symptoms"]).lower()
    for sign in ("seizure", "sudden, very bad headache", "vomiting", "weakness or numbness", "trouble speaking",
                 "loss of sight", "double vision", "confusion", "hard to wake"):
        assert sign in signs, sign
    # Not "at your next appointment": the point of the list is not to wait.
    assert "straight away" in advice["emergency_action"] and "Do not wait" in advice["emergency_action"]


@pytest.mark.parametrize("label,preliminary", VARIANTS)
def test_every_advice_gives_the_hospitals_emergency_number_or_the_common_ones(label, preliminary):
    assert "call +33 15 straight away" in advice_for(label, preliminary=preliminary, hospital=LOCAL)["emergency_action"]
    generic = advice_for(label, preliminary=preliminary, hospital=SOMEWHERE)["emergency_action"]
    assert "local emergency number (999, 112 or 911)" in generic
    assert "call +33 15" in advice_while_waiting(LOCAL)["emergency_action"]


@pytest.mark.parametrize("advice", _all_advice(), ids=_id)
def test_every_advice_says_a_doctor_makes_the_diagnosis_and_what_to_bring(advice):
    assert "doctor" in advice["reminder"] and "diagnosis" in advice["reminder"]
    assert any("Write down your symptoms, your medicines and any questions" in step for step in advice["next_steps"])


@pytest.mark.parametrize("label", LABELS)
def test_before_review_nothing_claims_certainty(label):
    advice = advice_for(label, preliminary=True, hospital=SOMEWHERE)
    text = _text(advice)
    assert advice["title"].startswith("Possible ") or advice["title"] == "No tumour found by the software"
    assert "It is not a diagnosis." in advice["reminder"]
    assert "no doctor has checked it yet" in advice["preliminary_notice"]
    for claim in ("you have a", "you have no", "diagnosed", "confirm", "definitely", "certain", "nothing to worry",
                  "all clear", "normal", "sees signs", "found no sign"):
        assert claim not in text.lower(), claim


@pytest.mark.parametrize("preliminary", [True, False])
def test_no_tumour_says_when_to_seek_care_and_does_not_clear_driving(preliminary):
    advice = advice_for("notumor", preliminary=preliminary, hospital=SOMEWHERE)
    steps = " ".join(advice["next_steps"])
    assert "If your symptoms continue or get worse, contact your doctor" in steps
    assert "Keep any appointments and tests you already have booked." in steps
    assert "do not drive until a doctor says it is safe. This is true whatever the scan shows." in steps
    assert advice["emergency_symptoms"]


@pytest.mark.parametrize("label", [label for label in LABELS if label != "notumor"])
def test_every_tumour_advice_says_to_ask_about_driving(label):
    for preliminary in (True, False):
        last = advice_for(label, preliminary=preliminary, hospital=SOMEWHERE)["next_steps"][-1]
        assert last.startswith("Ask your doctor whether you can drive.")
        assert "seizure, a blackout or a change in your sight, do not drive until a doctor says it is safe" in last


@pytest.mark.parametrize("preliminary", [True, False])
def test_pituitary_advice_names_sight_and_hormones(preliminary):
    text = _text(advice_for("pituitary", preliminary=preliminary, hospital=SOMEWHERE))
    assert "affect your sight" in text and "eye test" in text and "blood tests of your hormones" in text
    assert "feeling very tired or cold, changes in periods or sex drive" in text


@pytest.mark.parametrize("preliminary", [True, False])
def test_meningioma_advice_says_most_are_benign_yet_still_need_a_specialist(preliminary):
    text = _text(advice_for("meningioma", preliminary=preliminary, hospital=SOMEWHERE))
    assert "benign, which means they are not cancer" in text and "grow slowly" in text
    assert "a specialist decides what is best" in text and "only watched with regular scans" in text


@pytest.mark.parametrize("advice", _all_advice(), ids=_id)
def test_no_number_a_patient_could_read_as_odds(advice):
    # Percentages and "x in 10" figures read as survival odds; the only digits are the number to call.
    text = _text({**advice, "emergency_action": ""})
    assert not re.search(r"\d", text) and "per cent" not in text and "percent" not in text


# A word most patients do not know, and the words that explain it wherever an entry uses it.
JARGON = {
    "glioma": "a growth (tumour) that starts in the brain's supporting cells",
    "meningioma": "a growth (tumour) in the layers of tissue that cover the brain",
    "pituitary": "a small gland at the base of the brain",
    "MRI": "(pictures of the brain made with a strong magnet)",
    "benign": "benign, which means they are not cancer",
    "biopsy": "a tiny piece of tissue is taken",
    "radiotherapy": "radiotherapy (treatment with high-energy rays)",
    "endocrinologist": "a hormone specialist (an endocrinologist)",
    "hormones": "chemical messages",
}
UNEXPLAINED = ["neuro-oncology", "neurosurgery", "adenoma", "endocrinology", "spectroscopy", "contrast",
               "malignant", "lesion", "prognosis", "intracranial"]


@pytest.mark.parametrize("label,preliminary", VARIANTS)
def test_medical_words_are_explained(label, preliminary):
    advice = advice_for(label, preliminary=preliminary, hospital=SOMEWHERE)
    text = _text(advice)
    for word, explanation in JARGON.items():
        # "No tumour" names the three types only as what the software looks for.
        if word in ADVICE and word != label:
            continue
        if word in text:
            assert explanation in text, word
    for word in UNEXPLAINED:
        assert word not in text.lower(), word


def _syllables(word: str) -> int:
    groups = re.findall(r"[aeiouy]+", word.lower())
    count = len(groups)
    if word.lower().endswith("e") and not word.lower().endswith(("le", "ee", "ye")) and count > 1:
        count -= 1
    return max(1, count)


def _flesch_reading_ease(sentences: list[str]) -> float:
    count = 0
    words = []
    for sentence in sentences:
        count += len([part for part in re.split(r"[.!?:;]+(?:\s|$)", sentence) if part.strip()])
        words += re.findall(r"[A-Za-z][A-Za-z'-]*", sentence)
    syllables = sum(_syllables(part) for word in words for part in word.split("-"))
    return 206.835 - 1.015 * len(words) / count - 84.6 * syllables / len(words)


@pytest.mark.parametrize("advice", _all_advice(), ids=_id)
def test_advice_reads_as_plain_english(advice):
    # Flesch reading ease 70 and over is "fairly easy": about a reading age of 11 to 12, what NHS patient
    # information aims for. Short sentences keep it there.
    sentences = [sentence for sentence in _sentences(advice) if sentence]
    assert _flesch_reading_ease(sentences) >= 70
    for sentence in sentences:
        for part in re.split(r"(?<=[.!?:])\s", sentence):
            assert len(part.split()) <= 28, part


@pytest.mark.parametrize("advice", _all_advice(), ids=_id)
def test_sources_are_the_organisations_own_pages_over_https(advice):
    hosts = {"www.nhs.uk", "www.cancer.gov", "www.cancerresearchuk.org", "www.abta.org", "doi.org"}
    assert advice["sources"]
    for source in advice["sources"]:
        url = urlparse(source["url"])
        assert url.scheme == "https" and url.netloc in hosts, source
    titles = " ".join(source["title"] for source in advice["sources"])
    assert "NHS" in titles and "National Cancer Institute" in titles and "WHO" in titles


@pytest.mark.django_db
@pytest.mark.parametrize("unusual", [False, True])
def test_a_patient_waiting_for_review_is_told_the_emergency_signs_and_the_hospitals_number(world, api, unusual):
    # Results after review (the default), or an unusual image where results show at once: either way the
    # patient sees no reading, and may wait days for one.
    world.a.emergency_phone = "+33 15"
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY if unusual else AIResultVisibility.AFTER_REVIEW
    world.a.save(update_fields=["emergency_phone", "patients_see_ai_results"])
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, samples.jpeg_bytes("glioma", 5)).json()["id"])
    finish(scan, "glioma", 0.8, unusual=unusual)
    detail = f"/api/v1/hospitals/{world.a.slug}/scans/{scan.id}/"
    body = api(world.owner).get(detail).json()
    assert body["awaiting_review"] and body["label"] is None and body["unusual_image"] is unusual
    advice = body["advice"]
    assert advice["label"] is None and advice["title"] == "While you wait for your result"
    assert "seizure (fit)" in " ".join(advice["emergency_symptoms"])
    assert advice["emergency_action"].startswith("If any of these happen, call +33 15 straight away")
    assert "glioma" not in str(body)  # the wait gives no hint of the withheld reading
    # Once a doctor has read it, the advice is about the doctor's reading.
    api(world.colleague).post(f"{detail}review/", {"label": "notumor"}, format="json")
    assert api(world.owner).get(detail).json()["advice"]["title"] == "Your doctor found no tumour on the scan"
