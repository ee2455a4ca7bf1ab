import pytest
from federation.models import FederatedRun
from federation.tasks import follow_run
from tests.factories import make_hospital

def test_plumbing(federation):
    hs = []
    for slug in ("fl-a", "fl-b"):
        h = make_hospital(slug); h.federation_opt_in = True; h.save(); hs.append(h)
    federation.start_superlink()
    for h in hs:
        federation.start_node(h.slug)
    run = FederatedRun.objects.create(num_rounds=1, image_size=32, model_width=4, validation_per_class=2)
    run.hospitals.set(hs)
    status = follow_run(run.pk, poll_s=0.5)
    run.refresh_from_db()
    print(status, run.failure_reason, run.dropouts)
    print(federation.logs()[-6000:])
