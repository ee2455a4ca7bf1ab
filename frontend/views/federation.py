"""The federation dashboard of a hospital admin: opting in, the runs the hospital took part in, live.

Runs span hospitals; federation.access decides who may watch one, and this page shows only runs of
the hospital in the URL, so switching hospital never mixes two hospitals' views.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect

from federation.access import access_run, visible_runs
from federation.api.serializers import RunSerializer
from frontend.views.base import hospital_page, render_page
from hospitals import services as hospital_services
from hospitals.models import Role

ADMIN = (Role.ADMIN,)


@hospital_page(roles=ADMIN)
def dashboard(request, membership):
    hospital = membership.hospital
    if request.method == "POST":
        opt_in = request.POST.get("federation_opt_in") == "on"
        hospital_services.update_hospital_settings(
            hospital=hospital, actor=request.user, request=request, federation_opt_in=opt_in
        )
        messages.success(request, "This hospital takes part in federated training." if opt_in
                         else "This hospital no longer takes part in new federated runs.")
        return redirect("frontend:federation", hospital.slug)
    runs = visible_runs(request.user).filter(hospitals=hospital).prefetch_related("hospitals", "rounds")
    rows = []
    for run in runs:
        finished_rounds = sum(1 for r in run.rounds.all() if r.finished_at is not None)
        rows.append({"run": run, "finished_rounds": finished_rounds,
                     "percent": round(100 * finished_rounds / run.num_rounds) if run.num_rounds else 0})
    context = {"rows": rows}
    return render_page(request, "frontend/admin/federation.html", context, membership=membership)


@hospital_page(roles=ADMIN)
def run_detail(request, membership, run_id):
    run = access_run(request.user, run_id)
    if not run.hospitals.filter(pk=membership.hospital.pk).exists():
        raise Http404("No such federated run")
    context = {
        "run": run,
        "data": RunSerializer(run).data,
        "ws_path": f"/ws/federation/runs/{run.pk}/",
    }
    return render_page(request, "frontend/admin/run.html", context, membership=membership)
