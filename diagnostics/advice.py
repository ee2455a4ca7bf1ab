"""Precaution advice shown beside a result, one entry per class the models know, and one for a patient
who waits for a doctor's review before any result is shown.

Written for patients in plain words (short sentences, each medical word explained where it is first used,
no figures that could read as odds), checked against the public sources listed with each entry. It
explains; it never diagnoses: every entry carries the reminder that a doctor makes the diagnosis, and every
entry, "no tumour" and the wait included, lists the signs that need emergency care and the number to call.
"""

DOCTOR_DECIDES = (
    "This result comes from software that helps your care team. It is not a diagnosis. A doctor looks "
    "at your scan, your symptoms and your medical history, and makes the diagnosis with you."
)

# After review the label is the doctor's, so the reminder no longer speaks of software.
DOCTOR_REVIEWED = (
    "A doctor has reviewed this scan. A scan is only one part of a diagnosis. Your doctor puts it "
    "together with your symptoms, your medical history and any other tests, and talks it through with you."
)

PRELIMINARY = (
    "Preliminary result: no doctor has checked it yet. It may change after a doctor reviews it."
)

# Symptoms for which nobody should wait for an appointment, whatever the scan shows: the signs of raised
# pressure in the head, a bleed (a pituitary tumour's included: sudden headache with loss of sight), a
# stroke or a seizure that NHS and NCI pages send people to emergency care for.
_EMERGENCY = [
    "a seizure (fit), especially a first one",
    "a sudden, very bad headache, or a headache with vomiting (being sick) or drowsiness",
    "sudden weakness or numbness in the face, an arm or a leg, or trouble speaking or understanding",
    "sudden loss of sight, or sudden double vision",
    "new confusion, fainting, or being very hard to wake",
]
# Someone having a seizure or hard to wake cannot call for themselves: the people around them have to know.
_EMERGENCY_ACTION = (
    "If any of these happen, call your local emergency number (999, 112 or 911) straight away or go to an "
    "emergency department. Do not wait for your appointment. Tell the people close to you about these signs too."
)
_EMERGENCY_ACTION_NUMBER = (
    "If any of these happen, call {phone} straight away or go to an emergency department. Do not wait for "
    "your appointment. Tell the people close to you about these signs too."
)

# A brain tumour, a seizure, a blackout or a loss of side vision can each make driving unsafe, and in many
# countries must be reported to the licensing authority (in the UK, the DVLA); the rules differ by country,
# tumour and treatment, so the advice sends the patient to their doctor rather than stating a law.
_DRIVING_AFTER_SEIZURE = (
    "If you have had a seizure, a blackout or a change in your sight, do not drive until a doctor says it is safe."
)
_DRIVING_TUMOUR = f"Ask your doctor whether you can drive. {_DRIVING_AFTER_SEIZURE}"
# A "no tumour" reading does not lift what a seizure or a blackout means for driving.
_DRIVING_NO_TUMOUR = f"{_DRIVING_AFTER_SEIZURE} This is true whatever the scan shows."

_BRING_LIST = "Write down your symptoms, your medicines and any questions, and bring the list when you see your doctor."

_SOURCES_GENERAL = [
    {"title": "NHS: Brain tumours", "url": "https://www.nhs.uk/conditions/brain-tumours/"},
    {"title": "Cancer Research UK: Brain tumours", "url": "https://www.cancerresearchuk.org/about-cancer/brain-tumours"},
    {"title": "National Cancer Institute: Adult Central Nervous System Tumors Treatment (PDQ)",
     "url": "https://www.cancer.gov/types/brain/patient/adult-brain-treatment-pdq"},
    {"title": "Louis DN et al., The 2021 WHO Classification of Tumors of the Central Nervous System, "
              "Neuro-Oncology 23(8), 2021", "url": "https://doi.org/10.1093/neuonc/noab106"},
]

# Each entry says who read the scan: "software" while the result is preliminary, "doctor" once a doctor
# has reviewed it (the label shown is then the doctor's, whether they confirmed the software or changed
# it). The rest of the entry describes the condition and holds for both. Every entry has the same steps,
# in the same order: who gets in touch and what to bring; tests and specialists; what care may involve;
# what to tell the doctor about; driving (for no tumour: when to call the doctor; keep what is booked;
# driving). A word a patient may not know (MRI, benign, biopsy...) is explained where the entry first uses it.
ADVICE = {
    "glioma": {
        "title": {"software": "Possible glioma", "doctor": "Your doctor sees signs of a glioma"},
        "finding": {
            "software": "The software found a pattern that looks like a glioma.",
            "doctor": "Your doctor has looked at your scan and sees signs of a glioma.",
        },
        "meaning": (
            "A glioma is a growth (tumour) that starts in the brain's supporting cells, called glial cells. "
            "Some gliomas grow slowly and some grow faster. Only more tests can show which kind it is, or "
            "whether it is a tumour at all. These often include a biopsy: a tiny piece of tissue is taken "
            "and looked at under a microscope."
        ),
        "first_step": {
            "software": f"A doctor will review your scan and contact you. {_BRING_LIST}",
            "doctor": f"Your doctor will talk with you about the scan and the next tests. {_BRING_LIST}",
        },
        "next_steps": [
            "You may be referred to a specialist team for the brain, and have another MRI scan (pictures of "
            "the brain made with a strong magnet).",
            "If it is a glioma, the team will explain which treatments fit. These may include an operation, "
            "radiotherapy (treatment with high-energy rays) or medicines.",
            "Tell your doctor about headaches that are new or getting worse, or changes in how you think, "
            "feel, move or speak.",
            _DRIVING_TUMOUR,
        ],
        "sources": _SOURCES_GENERAL,
    },
    "meningioma": {
        "title": {"software": "Possible meningioma", "doctor": "Your doctor sees signs of a meningioma"},
        "finding": {
            "software": "The software found a pattern that looks like a meningioma.",
            "doctor": "Your doctor has looked at your scan and sees signs of a meningioma.",
        },
        "meaning": (
            "A meningioma is a growth (tumour) in the layers of tissue that cover the brain. Most "
            "meningiomas are benign, which means they are not cancer, and most grow slowly. Even so, one "
            "can press on the brain, so a specialist decides what is best."
        ),
        "first_step": {
            "software": f"A doctor will review your scan and talk with you about it. {_BRING_LIST}",
            "doctor": f"Your doctor will talk with you about the scan and whether anything needs doing now. {_BRING_LIST}",
        },
        "next_steps": [
            "You may be referred to a specialist team for the brain, and have more MRI scans (pictures of the "
            "brain made with a strong magnet).",
            "Some meningiomas are only watched with regular scans. Others need an operation or radiotherapy "
            "(treatment with high-energy rays). This depends on its size, where it is and your symptoms.",
            "Tell your doctor about headaches that are new or getting worse, changes in your sight, hearing "
            "or sense of smell, or weakness.",
            _DRIVING_TUMOUR,
        ],
        "sources": _SOURCES_GENERAL + [
            {"title": "American Brain Tumor Association: Meningioma",
             "url": "https://www.abta.org/tumor_types/meningioma/"},
        ],
    },
    "pituitary": {
        "title": {"software": "Possible pituitary tumour", "doctor": "Your doctor sees signs of a pituitary tumour"},
        "finding": {
            "software": "The software found a pattern that looks like a pituitary tumour.",
            "doctor": "Your doctor has looked at your scan and sees signs of a pituitary tumour.",
        },
        "meaning": (
            "The pituitary is a small gland at the base of the brain. It makes hormones: chemical messages "
            "that control many things in the body. A pituitary tumour is a growth in this gland. Most are "
            "benign, which means they are not cancer. Some make too much or too little of a hormone. A "
            "larger one can press on the nerves to the eyes and affect your sight."
        ),
        "first_step": {
            "software": f"A doctor will review your scan and may arrange blood tests of your hormones. {_BRING_LIST}",
            "doctor": f"Your doctor will talk with you about the scan and may arrange blood tests of your "
                      f"hormones. {_BRING_LIST}",
        },
        "next_steps": [
            "You may have an eye test of how far you can see to the sides, and see a hormone specialist "
            "(an endocrinologist).",
            "Some pituitary tumours only need regular checks. Others are treated with medicine, or with an "
            "operation that is often done through the nose.",
            "Tell your doctor about changes in your sight or headaches. Tell them too about changes that "
            "hormones can cause, such as feeling very tired or cold, changes in periods or sex drive, or "
            "changes in weight.",
            _DRIVING_TUMOUR,
        ],
        "sources": _SOURCES_GENERAL + [
            {"title": "NHS: Pituitary tumours", "url": "https://www.nhs.uk/conditions/pituitary-tumours/"},
            {"title": "National Cancer Institute: Pituitary Tumors Treatment (PDQ)",
             "url": "https://www.cancer.gov/types/pituitary/patient/pituitary-treatment-pdq"},
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
            "software": f"A doctor will review your scan and tell you the result. {_BRING_LIST}",
            "doctor": f"Your doctor will tell you what the result means for you. {_BRING_LIST}",
        },
        "next_steps": [
            # Not "the scan looked normal": the software knows three tumour types, and a doctor who read "no
            # tumour" has not called every other finding normal.
            "If your symptoms continue or get worse, contact your doctor even though no tumour was found.",
            "Keep any appointments and tests you already have booked.",
            _DRIVING_NO_TUMOUR,
        ],
        "sources": _SOURCES_GENERAL + [
            {"title": "NHS: Headaches", "url": "https://www.nhs.uk/conditions/headaches/"},
        ],
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


# While a doctor has yet to read a scan whose result the patient may not see (the hospital shows results
# after review, or the image looked unusual), the patient still needs the emergency signs: under the default
# setting this is every patient's first wait, and it can last days.
WAITING = {
    "title": "While you wait for your result",
    "meaning": (
        "A doctor will look at your scan before the result is shown here. If you are worried about your "
        "symptoms before then, contact your hospital or your family doctor."
    ),
    "next_steps": [
        _BRING_LIST,
        "If you have not heard from the hospital by the time they said, contact them.",
        _DRIVING_AFTER_SEIZURE,
    ],
    "reminder": (
        "A doctor makes the diagnosis. They look at your scan, your symptoms and your medical history, "
        "and talk it through with you."
    ),
}


def advice_while_waiting(hospital) -> dict:
    """Advice for a patient whose scan waits for a doctor's review before any result is shown: no label,
    no reading, but what to do meanwhile and the emergency signs, in the same shape as `advice_for`."""
    return {
        "label": None,
        "reviewed": False,
        "title": WAITING["title"],
        "meaning": WAITING["meaning"],
        "next_steps": list(WAITING["next_steps"]),
        "emergency_symptoms": list(_EMERGENCY),
        "emergency_action": emergency_action(hospital),
        "sources": [dict(source) for source in _SOURCES_GENERAL],
        "reminder": WAITING["reminder"],
        "preliminary": False,
        "preliminary_notice": "",
    }


def emergency_action(hospital) -> str:
    phone = hospital.emergency_phone
    return _EMERGENCY_ACTION_NUMBER.format(phone=phone) if phone else _EMERGENCY_ACTION
