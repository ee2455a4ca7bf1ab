"""Three demo hospitals, each with an admin, two doctors and three patients, a platform operator, and
their sign-in details.

Everything here is fictional and for demonstrations only; the passwords are printed on purpose and
must never be used for real accounts. Running the command again changes nothing.
"""

import datetime
import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from hospitals.emails import account_by_email, accounts_with_email
from hospitals.models import Hospital, Membership, Patient, Role
from hospitals.services import add_member, create_hospital, create_patient

# The platform operator (a superuser of no hospital) who opens hospitals and coordinates federation.
DEMO_OPERATOR = ("operator@neurofed.example", "demo-operator-Osprey-2026")

# Fixed so a demo script or a browser test can sign in; they pass the password validators.
DEMO_PASSWORDS = {
    Role.ADMIN: "demo-admin-Kestrel-2026",
    Role.DOCTOR: "demo-doctor-Heron-2026",
    Role.PATIENT: "demo-patient-Wren-2026",
}

DEMO_HOSPITALS = [
    {
        "slug": "st-brigid",
        "name": "St Brigid's Hospital (demo)",
        "admin": ("Maud", "Ellery"),
        "doctors": [("Imogen", "Vale"), ("Rafael", "Okonkwo-Brandt")],
        "patients": [("Tobias", "Wrenfield", "1967-03-14"), ("Clementine", "Ashdown", "1982-09-02"),
                     ("Osric", "Penhallow", "1955-12-21")],
    },
    {
        "slug": "riverside-general",
        "name": "Riverside General Hospital (demo)",
        "admin": ("Nell", "Harcastle"),
        "doctors": [("Anselm", "Quarry"), ("Priya", "Dunmore")],
        "patients": [("Juniper", "Falkner", "1990-06-30"), ("Barnaby", "Ostrow", "1949-01-08"),
                     ("Sabine", "Lark", "1973-11-17")],
    },
    {
        "slug": "northfield-university",
        "name": "Northfield University Hospital (demo)",
        "admin": ("Edric", "Sallow"),
        "doctors": [("Hester", "Moorcroft"), ("Kwame", "Ellington-Rye")],
        "patients": [("Ottilie", "Brack", "2001-04-25"), ("Lucan", "Trevethan", "1962-08-09"),
                     ("Marisol", "Quenby", "1978-02-13")],
    },
]


def demo_people(spec):
    """(email, role, first, last, date_of_birth) for everyone of one demo hospital."""
    domain = f"{spec['slug']}.example"
    yield (f"admin@{domain}", Role.ADMIN, *spec["admin"], None)
    for n, (first, last) in enumerate(spec["doctors"], 1):
        yield (f"doctor{n}@{domain}", Role.DOCTOR, first, last, None)
    for n, (first, last, born) in enumerate(spec["patients"], 1):
        yield (f"patient{n}@{domain}", Role.PATIENT, first, last, datetime.date.fromisoformat(born))


class Command(BaseCommand):
    help = "Create three fictional demo hospitals with staff and patients (idempotent); prints demo credentials."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the credentials as a JSON list only.")

    def handle(self, *args, **options):
        if not settings.DEMO_ACCOUNTS_ALLOWED:
            raise CommandError("seed_demo makes accounts whose passwords are published, a platform operator's "
                               "among them, so it runs only where NEUROFED_ALLOW_DEMO_ACCOUNTS allows it (by "
                               "default, with DEBUG on). On a demonstration server that holds no real patient, set "
                               "NEUROFED_ALLOW_DEMO_ACCOUNTS=1.")
        credentials, created = [], 0
        for spec in DEMO_HOSPITALS:
            with transaction.atomic():
                hospital = Hospital.objects.filter(slug=spec["slug"]).first()
                if hospital is None:
                    hospital = create_hospital(slug=spec["slug"], name=spec["name"])
                    created += 1
                for n, (email, role, first, last, born) in enumerate(demo_people(spec), 1):
                    created += self._ensure_person(hospital, email, role, first, last, born, n)
                    credentials.append(
                        {"hospital": hospital.slug, "email": email, "role": role.value,
                         "password": DEMO_PASSWORDS[role]}
                    )
        created += self._ensure_operator()
        credentials.append({"hospital": "", "email": DEMO_OPERATOR[0], "role": "operator",
                            "password": DEMO_OPERATOR[1]})
        if options["json"]:
            self.stderr.write("DEMO ONLY: these fictional accounts and passwords must never hold real data.")
            self.stdout.write(json.dumps(credentials, indent=2))
            return
        self.stdout.write(self.style.WARNING("DEMO ONLY: fictional people; never use these passwords for real data."))
        self.stdout.write(f"{'hospital':<24}{'role':<10}{'email':<42}password")
        for c in credentials:
            self.stdout.write(f"{c['hospital'] or '(platform)':<24}{c['role']:<10}{c['email']:<42}{c['password']}")
        self.stdout.write(f"{created} object(s) created" if created else "Demo data already present; nothing changed.")

    def _ensure_operator(self) -> int:
        email, password = DEMO_OPERATOR
        if accounts_with_email(email).exists():
            return 0
        get_user_model().objects.create_superuser(username=email, email=email, password=password)
        return 1

    def _ensure_person(self, hospital, email, role, first, last, born, n) -> int:
        created = 0
        User = get_user_model()
        user = account_by_email(email)
        if user is None:
            # A patient's name is PHI, kept encrypted on their patient record; the account's own name
            # columns are plain text, so only staff are named there.
            names = {} if role == Role.PATIENT else {"first_name": first, "last_name": last}
            user = User(username=email, email=email, **names)
            try:
                validate_password(DEMO_PASSWORDS[role], user)
            except ValidationError as exc:
                raise CommandError(f"demo password for {role} fails validation: {' '.join(exc.messages)}") from exc
            user.set_password(DEMO_PASSWORDS[role])
            user.save()
            created += 1
        if not Membership.objects.filter(hospital=hospital, user=user).exists():
            add_member(hospital=hospital, user=user, role=role)
            created += 1
        if role == Role.PATIENT and not Patient.objects.filter(hospital=hospital, user=user).exists():
            prefix = "".join(part[0] for part in hospital.slug.split("-")).upper()
            create_patient(
                hospital=hospital, user=user, full_name=f"{first} {last}", date_of_birth=born,
                medical_record_number=f"{prefix}-DEMO-{n:04d}",
            )
            created += 1
        return created
