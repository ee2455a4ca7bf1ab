"""Every page at desktop and phone width: nothing wider than the screen, and a screenshot to look at."""

import pytest
from django.utils import timezone

from diagnostics.models import Scan
from federation.models import FederatedRound, FederatedRun, RunStatus
from hospitals.models import AIResultVisibility, Role
from hospitals.services import add_member
from tests.diagnostics.helpers import finish, upload
from tests.diagnostics.samples import jpeg_bytes
from tests.factories import PASSWORD
from tests.frontend.conftest import DESKTOP, PHONE, assert_fits_width, screenshot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("no_leftover_tasks")]



@pytest.fixture
def pages(live, world, api, django_user_model):
    """Who opens which page, with a scan and a federated run to show."""
    world.a.patients_see_ai_results = AIResultVisibility.IMMEDIATELY
    world.a.save()
    add_member(hospital=world.b, user=world.admin_a, role=Role.DOCTOR)
    scan = Scan.objects.get(pk=upload(api(world.owner), world.a, jpeg_bytes("meningioma", 3)).json()["id"])
    finish(scan, "meningioma", 0.87)
    run = FederatedRun.objects.create(status=RunStatus.RUNNING, num_rounds=5)
    run.hospitals.set([world.a, world.b])
    for number, (loss, accuracy) in enumerate([(1.2, 0.48), (0.9, 0.62), (0.7, 0.71)], start=1):
        FederatedRound.objects.create(
            run=run, number=number, started_at=timezone.now(), finished_at=timezone.now(), duration_s=41.5,
            global_loss=loss, global_accuracy=accuracy,
            nodes=[{"hospital": "st-anne", "eval_loss": loss + 0.05, "eval_accuracy": accuracy - 0.03},
                   {"hospital": "north-general", "eval_loss": loss - 0.04, "eval_accuracy": accuracy + 0.02}],
        )
    FederatedRound.objects.create(run=run, number=4, started_at=timezone.now())
    # A failure quoting a command's output: long unbroken paths must wrap, not widen the page.
    failed = FederatedRun.objects.create(status=RunStatus.FAILED, num_rounds=2,
                                         failure_reason="flwr run failed: " + "/srv/neurofed/federation/flower_app" * 12)
    failed.hospitals.set([world.a, world.b])
    operator = django_user_model.objects.create_superuser("operator@neurofed.example", "operator@neurofed.example",
                                                          PASSWORD)
    return {
        None: {"login": "/accounts/login/", "password-reset": "/accounts/password-reset/",
               "password-reset-sent": "/accounts/password-reset/sent/", "invite": "/invite/not-a-real-token/",
               "invite-link-cut-off": "/invite/", "password-reset-link-cut-off": "/accounts/password-reset/open/"},
        world.owner: {"patient-history": "/h/st-anne/scans/", "patient-upload": "/h/st-anne/upload/",
                      "patient-result": f"/h/st-anne/scans/{scan.id}/"},
        world.doctor_a: {"doctor-worklist": "/h/st-anne/worklist/", "doctor-case": f"/h/st-anne/scans/{scan.id}/",
                         "doctor-patient": f"/h/st-anne/patients/{scan.patient_id}/",
                         "password-change": "/accounts/password/"},
        world.admin_a: {"chooser": "/", "admin-members": "/h/st-anne/members/", "admin-settings": "/h/st-anne/settings/",
                        "admin-federation": "/h/st-anne/federation/", "admin-audit": "/h/st-anne/audit/",
                        "admin-case": f"/h/st-anne/scans/{scan.id}/",
                        "admin-run": f"/h/st-anne/federation/runs/{run.pk}/"},
        world.outsider: {"not-found": f"/h/st-anne/scans/{scan.id}/"},
        operator: {"operator": "/operator/federation/", "operator-run": f"/operator/federation/runs/{run.pk}/",
                   "operator-hospitals": "/operator/hospitals/",
                   "operator-run-failed": f"/operator/federation/runs/{failed.pk}/"},
    }


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_fits_the_screen(pages, new_page, viewport):
    width = "phone" if viewport == PHONE else "desktop"
    for user, urls in pages.items():
        page = new_page(viewport)
        if user is not None:
            sign_in(page, user, PASSWORD)
        for name, url in urls.items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            assert_fits_width(page)
            # Every control has a name a screen reader can say.
            unnamed = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
                .filter((el) => !el.labels?.length && !el.getAttribute('aria-label') && !el.textContent.trim())
                .map((el) => el.outerHTML)""")
            assert unnamed == [], f"{name}: controls without a label: {unnamed}"
            screenshot(page, f"layout-{name}-{width}")
