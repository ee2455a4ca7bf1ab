"""Precaution advice shown beside a result, one entry per class the models know.

Written for patients in plain words, checked against the public sources listed with each entry. It
explains; it never diagnoses: every entry carries the reminder that a doctor makes the diagnosis.
"""

DOCTOR_DECIDES = (
    "This result was produced by software to help your care team. It is not a diagnosis: a doctor "
    "looks at your scan, your symptoms and your history, and makes the diagnosis with you."
)

# After review the label is the doctor's, so the reminder no longer speaks of software.
DOCTOR_REVIEWED = (
    "A doctor has reviewed this scan. A scan is one part of a diagnosis: your doctor puts it together "
    "with your symptoms, your history and any further tests, and discusses it with you."
)

PRELIMINARY = (
    "Preliminary: no doctor has reviewed this result yet. It may change after review."
)

# Symptoms for which nobody should wait for an appointment, whatever the scan shows.
_EMERGENCY = [
    "a seizure (fit), especially a first one",
    "a sudden, very severe headache, or a headache with vomiting and drowsiness",
    "sudden weakness or numbness of the face, an arm or a leg, or trouble speaking or understanding",
    "sudden loss of vision or double vision",
    "confusion, fainting, or becoming hard to wake",
]
# Used when the hospital has not set its emergency number: the common ones, so a patient anywhere has one.
_EMERGENCY_ACTION = "If any of these happen, call your local emergency number (999, 112 or 911) or go to an emergency department."
_EMERGENCY_ACTION_NUMBER = "If any of these happen, call {phone} at once or go to an emergency department."

_SOURCES_GENERAL = [
    {"title": "NHS: Brain tumours", "url": "https://www.nhs.uk/conditions/brain-tumours/"},
    {"title": "National Cancer Institute: Adult Central Nervous System Tumors Treatment (PDQ)",
     "url": "https://www.cancer.gov/types/brain/patient/adult-brain-treatment-pdq"},
    {"title": "Louis DN et al., The 2021 WHO Classification of Tumors of the Central Nervous System, "
              "Neuro-Oncology 23(8), 2021", "url": "https://doi.org/10.1093/neuonc/noab106"},
]

# Each entry says who read the scan: "software" while the result is preliminary, "doctor" once a doctor
# has reviewed it (the label shown is then the doctor's, whether they confirmed the software or changed
# it). The rest of the entry describes the condition and holds for both.
ADVICE = {
    "glioma": {
        "title": {"software": "Possible glioma", "doctor": "Your doctor sees signs of a glioma"},
        "finding": {
            "software": "The software found a pattern that resembles a glioma.",
            "doctor": "Your doctor has looked at your scan and sees signs of a glioma.",
        },
        "meaning": (
            "A glioma is a tumour that grows from the brain's supporting (glial) cells. Gliomas range from "
            "slow-growing to fast-growing; only tests that a specialist arranges, usually including a "
            "biopsy, can tell which kind it is, or whether it is a tumour at all."
        ),
        "first_step": {
            "software": "Your doctor will review the scan and contact you; bring a list of your symptoms and medicines.",
            "doctor": "Your doctor will talk with you about the scan and the next tests; bring a list of your "
                      "symptoms and medicines.",
        },
        "next_steps": [
            "You may be referred to a neurosurgery or neuro-oncology team, often within two weeks.",
            "Further imaging (a contrast MRI, sometimes MR spectroscopy) may be arranged.",
            "Do not drive until a doctor has told you it is safe if you have had a seizure or a blackout.",
        ],
        "sources": _SOURCES_GENERAL + [
            {"title": "American Brain Tumor Association: Glioma", "url": "https://www.abta.org/tumor_types/glioma/"},
        ],
    },
    "meningioma": {
        "title": {"software": "Possible meningioma", "doctor": "Your doctor sees signs of a meningioma"},
        "finding": {
            "software": "The software found a pattern that resembles a meningioma.",
            "doctor": "Your doctor has looked at your scan and sees signs of a meningioma.",
        },
        "meaning": (
            "A meningioma is a tumour of the membranes around the brain. Most meningiomas are benign (not "
            "cancer) and grow slowly; many are watched with repeat scans rather than treated at once."
        ),
        "first_step": {
            "software": "Your doctor will review the scan and discuss it with you.",
            "doctor": "Your doctor will discuss the scan with you and what, if anything, needs doing now.",
        },
        "next_steps": [
            "Depending on its size and your symptoms, the team may suggest repeat MRI scans, surgery or radiotherapy.",
            "Tell your doctor about new or worsening headaches, changes in vision, hearing or smell, or weakness.",
        ],
        "sources": _SOURCES_GENERAL + [
            {"title": "American Brain Tumor Association: Meningioma",
             "url": "https://www.abta.org/tumor_types/meningioma/"},
        ],
    },
    "pituitary": {
        "title": {"software": "Possible pituitary tumour", "doctor": "Your doctor sees signs of a pituitary tumour"},
        "finding": {
            "software": "The software found a pattern that resembles a pituitary tumour.",
            "doctor": "Your doctor has looked at your scan and sees signs of a pituitary tumour.",
        },
        "meaning": (
            "A pituitary tumour (usually a pituitary adenoma) is a growth of the hormone gland at the base "
            "of the brain. Almost all are benign; some change hormone levels or press on the nerves to the eyes."
        ),
        "first_step": {
            "software": "Your doctor will review the scan and may arrange blood tests of your hormone levels.",
            "doctor": "Your doctor will discuss the scan with you and may arrange blood tests of your hormone levels.",
        },
        "next_steps": [
            "An eye test of your field of vision is often arranged, and a referral to endocrinology.",
            "Many pituitary tumours are treated with medicine; some need surgery through the nose.",
        ],
        "sources": _SOURCES_GENERAL + [
            {"title": "NHS: Pituitary tumours", "url": "https://www.nhs.uk/conditions/pituitary-tumours/"},
        ],
    },
    "notumor": {
        "title": {"software": "No tumour found by the software", "doctor": "Your doctor found no tumour on the scan"},
        "finding": {
            "software": (
                "The software did not find signs of the tumour types it knows (glioma, meningioma, pituitary "
                "tumour). It cannot see every condition, and a doctor still reviews every scan."
            ),
            "doctor": "Your doctor has looked at your scan and found no sign of a brain tumour.",
        },
        "meaning": (
            "Many causes of headaches and other symptoms do not show up on a scan like this one. If you "
            "still feel unwell, that is worth telling your doctor: they can look for other reasons."
        ),
        "first_step": {
            "software": "Your doctor will review the scan and tell you the result.",
            "doctor": "Your doctor will tell you what the result means for you.",
        },
        "next_steps": [
            # Not "the scan looked normal": the software knows three tumour types, and a doctor who read "no
            # tumour" has not called every other finding normal.
            "If your symptoms continue or get worse, contact your doctor even though no tumour was found.",
        ],
        "sources": _SOURCES_GENERAL,
    },
}


def advice_for(label: str, *, preliminary: bool, hospital) -> dict | None:
    """Advice for a label, as the API shows it; None for a label the models do not know.

    `preliminary`: the label is the software's, not yet reviewed. Otherwise it is the label a doctor
    reviewed, and the advice speaks of the doctor: a shown label is always one or the other.
    `hospital`: whose patient reads it; its emergency number, when set, replaces the generic ones.
    """
    entry = ADVICE.get(label)
    if entry is None:
        return None
    reader = "software" if preliminary else "doctor"
    return {
        "label": label,
        "reviewed": not preliminary,
        "title": entry["title"][reader],
        "meaning": f"{entry['finding'][reader]} {entry['meaning']}",
        "next_steps": [entry["first_step"][reader], *entry["next_steps"]],
        "emergency_symptoms": list(_EMERGENCY),
        "emergency_action": emergency_action(hospital),
        "sources": [dict(source) for source in entry["sources"]],
        "reminder": DOCTOR_DECIDES if preliminary else DOCTOR_REVIEWED,
        "preliminary": preliminary,
        "preliminary_notice": PRELIMINARY if preliminary else "",
    }


def emergency_action(hospital) -> str:
    phone = hospital.emergency_phone
    return _EMERGENCY_ACTION_NUMBER.format(phone=phone) if phone else _EMERGENCY_ACTION
