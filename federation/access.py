"""Who may see a federated run: the platform operator (superuser), and the admins of the hospitals that
take part in it. Anyone else gets the same 404 whether the run exists or not."""

from django.http import Http404

from federation.models import FederatedRun
from hospitals.models import Membership, Role


def visible_runs(user):
    runs = FederatedRun.objects.all()
    if user is None or not user.is_authenticated:
        return runs.none()
    if user.is_superuser:
        return runs
    admin_of = Membership.objects.filter(user=user, role=Role.ADMIN).values("hospital_id")
    return runs.filter(hospitals__in=admin_of).distinct()


def access_run(user, run_id) -> FederatedRun:
    try:
        return visible_runs(user).get(pk=int(run_id))
    except (FederatedRun.DoesNotExist, ValueError, TypeError):
        raise Http404("No such federated run") from None
