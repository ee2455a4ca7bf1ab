"""The federation dashboard of a hospital admin: opting in, starting a run, the runs the hospital took
part in, live.

Runs span hospitals; federation.access decides who may watch one, and this page shows only runs of
the hospital in the URL, so switching hospital never mixes two hospitals' views.
"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from federation import services
from federation.access import access_run, visible_runs
from federation.api.serializers import RunSerializer
from federation.models import FINISHED, ModelKind, RunStatus, Strategy
from frontend.views.base import ADMIN, hospital_page, not_found, operator_page, render_page
from hospitals import services as hospital_services
from hospitals.errors import DomainError
from hospitals.models import Hospital


@hospital_page(roles=ADMIN)
def dashboard(request, membership):
    hospital = membership.hospital
    if request.method == "POST":
        opt_in = request.POST.get("federation_opt_in") == "on"
        hospital_services.update_hospital_settings(
            hospital=hospital, actor=request.user, request=request, federation_opt_in=opt_in
        )
        messages.success(request, "This hospital takes part in federated training." if opt_in
                         else "This hospital no longer takes part in federated training; "
                         "a run under way gets nothing more from its node.")
        return redirect("frontend:federation", hospital.slug)
    runs = visible_runs(request.user).filter(hospitals=hospital).prefetch_related("hospitals", "rounds")
    rows = []
    for run in runs:
        finished_rounds = sum(1 for r in run.rounds.all() if r.finished_at is not None)
        rows.append({"run": run, "finished_rounds": finished_rounds,
                     "percent": round(100 * finished_rounds / run.num_rounds) if run.num_rounds else 0})
    partners = Hospital.objects.filter(federation_opt_in=True).exclude(pk=hospital.pk).order_by("name")
    # The start form gives way to the run that holds the hospitals (a start would be refused meanwhile).
    busy_run = services.unfinished_run_over([hospital, *partners]) if hospital.federation_opt_in else None
    context = {
        "own_cases": services.training_case_counts(hospital),
        "rows": rows, "versions": model_versions(), "model_kinds": ModelKind.choices,
        "busy_run": busy_run, "busy_run_is_ours": busy_run is not None and busy_run.hospitals.filter(pk=hospital.pk).exists(),
        "max_rounds": services.HOSPITAL_RUN_MAX_ROUNDS, "default_rounds": services.HOSPITAL_RUN_DEFAULT_ROUNDS,
        # The live progress script words statuses as the table does, and stops following finished runs.
        "run_statuses": {"words": dict(RunStatus.choices), "finished": sorted(FINISHED)},
        "partners": partners,
        # In embedded mode the start form gives way to this sentence (the service refuses a start too).
        "federation_unavailable": "" if services.federation_available() else services.NEEDS_SERVICES_MODE,
    }
    return render_page(request, "frontend/admin/federation.html", context, membership=membership)


@require_POST
@hospital_page(roles=ADMIN)
def run_start(request, membership):
    hospital = membership.hospital
    try:
        run = services.start_hospital_run(
            hospital=hospital, actor=request.user, request=request,
            model_kind=request.POST.get("model_kind", ""),
            num_rounds=int(request.POST.get("num_rounds") or services.HOSPITAL_RUN_DEFAULT_ROUNDS),
        )
    except DomainError as refused:
        messages.error(request, refused.detail)
    except ValueError:
        messages.error(request, "The number of rounds must be a whole number.")
    else:
        # The worker submits the run after this request; it may yet fail, so "started" would be a promise.
        messages.success(request, f"Run {run.pk} over {run.hospitals.count()} hospitals was asked to start; its "
                                  "progress is below.")
        return redirect("frontend:federation-run", hospital.slug, run.pk)
    return redirect("frontend:federation", hospital.slug)


@hospital_page(roles=ADMIN)
def run_detail(request, membership, run_id):
    run = access_run(request.user, run_id)
    if not run.hospitals.filter(pk=membership.hospital.pk).exists():
        raise Http404("No such federated run")
    context = {
        "run": run,
        "data": RunSerializer(run, context={"viewer": request.user}).data,
        "hospital_names": hospital_names(run),
        "ws_path": f"/ws/federation/runs/{run.pk}/",
    }
    return render_page(request, "frontend/admin/run.html", context, membership=membership)


def hospital_names(run) -> dict:
    """The run's hospitals by slug: rounds and dropouts name a node by its slug, people read the name
    (the page's heading already lists every hospital of the run)."""
    return {hospital.slug: hospital.name for hospital in run.hospitals.all()}


# --- model versions and the platform operator --------------------------------------------------------
#
# Model versions serve every hospital, so promoting or rolling one back is the platform operator's
# (a Django superuser's), as in the federation API; hospital admins see the versions and their metrics.

# A segmenter's evaluation names its figures dice_mean and iou_mean (the registry weighs a candidate by
# dice_mean); "dice" and "iou" are kept for versions registered with those names.
SHOWN_METRICS = ("accuracy", "macro_f1", "dice_mean", "iou_mean", "dice", "iou", "loss")


def model_versions():
    from diagnostics import registry
    from diagnostics.models.registry import ModelStatus, ModelVersion

    # A task with no earlier version that served has nothing to roll back to: no Roll back button.
    may_roll_back = registry.tasks_with_earlier_version()
    rows = []
    versions = list(ModelVersion.objects.all()[:50])
    shortfalls = registry.shortfalls_against_active(versions)
    # Sent back with each form: what the page weighed a version against, and what a rollback goes back from.
    active = registry.active_versions()
    for version in versions:
        metrics = [(name, version.metrics[name]) for name in SHOWN_METRICS
                   if isinstance(version.metrics.get(name), (int, float))]
        rows.append({"version": version, "metrics": metrics, "active_version": active.get(version.task),
                     "may_roll_back": version.status == ModelStatus.ACTIVE and version.task in may_roll_back,
                     "shortfall": shortfalls.get(version.pk)})
    return rows


# What the pages say when a version that scored lower was not promoted: the box beside the button.
NOT_PROMOTED_LOWER = "It was not promoted; tick “Accept the lower score” to promote it anyway."


def _accepts_lower_score(request) -> bool:
    return request.POST.get("accept_lower_score") == "1"


def _whole_number(text) -> int | None:
    """A positive id as a form or address gives it ("²" and "٣" are digits to str.isdigit, not to int())."""
    text = str(text or "")
    return int(text) if text.isascii() and text.isdigit() and 0 < len(text) <= 18 else None


def _back(request):
    # Back to the page the form was on, if it is one of ours; else to the operator's page.
    target = request.POST.get("next", "")
    return redirect(target if url_has_allowed_host_and_scheme(target, allowed_hosts=None) and target.startswith("/")
                    else "frontend:operator")


@require_POST
@operator_page
def model_promote(request, version_id):
    from diagnostics import registry
    from diagnostics.models.registry import ModelVersion

    version = ModelVersion.objects.filter(pk=_whole_number(version_id)).first() if _whole_number(version_id) else None
    if version is None:
        return not_found(request)
    try:
        promoted = registry.promote_model_version(version, accept_lower_score=_accepts_lower_score(request),
                                                  accepted_against=_whole_number(request.POST.get("accepted_against")),
                                                  actor=request.user, request=request)
    except registry.ModelIntegrityError as refused:
        messages.error(request, str(refused))
    except registry.ScoresBelowActive as lower:
        messages.error(request, f"{lower} {NOT_PROMOTED_LOWER}")
    else:
        messages.success(request, f"{promoted.get_task_display()} {promoted.version} now serves every hospital.")
    return _back(request)


@require_POST
@operator_page
def model_rollback(request, task):
    from diagnostics import registry
    from diagnostics.models.registry import ModelTask

    if task not in ModelTask.values:
        return not_found(request)
    try:
        # The version the page showed serving: a second click, or another operator's rollback, is refused
        # instead of going back one version more.
        restored = registry.rollback_model(task, from_version=_whole_number(request.POST.get("from_version")),
                                           actor=request.user, request=request)
    except (registry.NoActiveModel, registry.ActiveModelChanged, registry.ModelIntegrityError) as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Rolled back: {restored.get_task_display()} {restored.version} serves again.")
    return _back(request)


@operator_page
def operator(request):
    if request.method == "POST":
        _start_run(request)
        return redirect("frontend:operator")
    runs = visible_runs(request.user).prefetch_related("hospitals", "rounds")[:50]
    context = {
        "runs": runs,
        "versions": model_versions(),
        # Beside each name its case counts (only counts): a run is refused over a hospital with too few.
        "hospitals": [(hospital, services.training_case_counts(hospital))
                      for hospital in Hospital.objects.filter(federation_opt_in=True).order_by("name")],
        "strategies": Strategy.choices,
        "model_kinds": ModelKind.choices,
        "federation_unavailable": "" if services.federation_available() else services.NEEDS_SERVICES_MODE,
    }
    return render_page(request, "frontend/operator.html", context)


# The start form's fields, named as the form labels them, for its refusals.
START_FORM_LABELS = {"hospitals": "Hospitals", "model_kind": "Model", "num_rounds": "Rounds", "strategy": "Strategy"}


def _start_run(request) -> None:
    """The operator's start form, checked as the API checks a run (StartRunSerializer): a value it refuses is
    said, not changed into another (200 rounds for 100000, FedAvg for an unknown strategy) or dropped (an
    unknown hospital)."""
    from federation.api.serializers import StartRunSerializer

    if not request.POST.getlist("hospitals"):
        messages.error(request, "Choose the hospitals the run goes over: at least two. Nothing was started.")
        return
    if (request.POST.get("model_kind") or ModelKind.CLASSIFIER) not in ModelKind.values:
        messages.error(request, "Choose the model to train: the tumour classifier or the tumour segmenter. "
                                "Nothing was started.")
        return
    chosen = {name: request.POST[name] for name in ("model_kind", "num_rounds", "strategy") if request.POST.get(name)}
    posted = {"hospitals": request.POST.getlist("hospitals"), "min_nodes": 2, **chosen}
    form = StartRunSerializer(data=posted)
    if not form.is_valid():
        field, problems = next(iter(form.errors.items()))
        problem = problems[0] if isinstance(problems, list) else next(iter(problems.values()))[0]
        messages.error(request, f"{START_FORM_LABELS.get(field, field)}: {problem} Nothing was started.")
        return
    params = dict(form.validated_data)
    try:
        run = services.start_federated_run(hospitals=params.pop("hospitals"), actor=request.user, request=request,
                                           **params)
    except DomainError as refused:
        messages.error(request, refused.detail)
    else:
        messages.success(request, f"Run {run.pk} was asked to start; its progress is below.")


@operator_page
def operator_run(request, run_id):
    run = access_run(request.user, run_id)
    from diagnostics.registry import active_versions

    candidate = _candidate_version(run)
    context = {"run": run, "data": RunSerializer(run, context={"viewer": request.user}).data,
               "candidate": candidate, "shortfall": services.candidate_shortfall(run),
               "active_version": active_versions().get(candidate.task) if candidate else None,
               "hospital_names": hospital_names(run), "ws_path": f"/ws/federation/runs/{run.pk}/"}
    return render_page(request, "frontend/admin/run.html", context)


def _candidate_version(run):
    """The model version the run registered, if it is still registered: once it is the active one, its
    page says so instead of offering to promote it again."""
    from diagnostics.models.registry import ModelVersion

    if not str(run.model_version_id or "").isdigit():
        return None
    return ModelVersion.objects.filter(pk=run.model_version_id).first()


@require_POST
@operator_page
def operator_run_stop(request, run_id):
    run = access_run(request.user, run_id)
    try:
        services.stop_federated_run(run=run, actor=request.user, request=request)
    except DomainError as refused:
        messages.error(request, refused.detail)
    else:
        messages.success(request, f"Run {run.pk} stopped.")
    return redirect("frontend:operator-run", run.pk)


@require_POST
@operator_page
def operator_run_promote(request, run_id):
    run = access_run(request.user, run_id)
    try:
        version = services.promote_federated_model(
            run=run, actor=request.user, request=request, accept_lower_score=_accepts_lower_score(request),
            accepted_against=_whole_number(request.POST.get("accepted_against")))
    except DomainError as refused:
        lower = services.candidate_shortfall(run) if refused.code == "scores_below_active" else None
        messages.error(request, f"{lower} {NOT_PROMOTED_LOWER}" if lower else refused.detail)
    else:
        messages.success(request, f"Run {run.pk}'s model ({version.get_task_display()} {version.version}) now "
                                  "serves every hospital.")
    return redirect("frontend:operator-run", run.pk)

