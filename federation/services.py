"""Writes on federated runs, one verb each, and the live updates that go with them.

Called from the API (opt in, start a run, promote), from the Celery task that submits and follows a run,
and from the ServerApp process while the run goes on (rounds, dropouts, the outcome).
"""

import datetime
import logging
import math
import shutil
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from federation.models import FINISHED, FederatedRound, FederatedRun, ModelKind, NodeEnrolment, RunStatus
from hospitals.audit import record_audit
from hospitals.errors import DomainError

log = logging.getLogger(__name__)


def run_group(run_id) -> str:
    return f"federation-run-{run_id}"


def publish(run_id, event: dict) -> None:
    """Push an event to everyone watching the run; a channel-layer failure never fails the caller."""
    try:
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(run_group(run_id), {"type": "run.event", "event": event})
    except Exception:  # noqa: BLE001 - live updates are best effort; the rows are the record
        log.exception("could not publish an event of federated run %s", run_id)


NEEDS_SERVICES_MODE = ("Federated learning needs the services mode: PostgreSQL, Redis and the Flower processes "
                       "(the README's section \"The two modes\"). This installation runs in embedded mode, so "
                       "no run can start here.")


def federation_available() -> bool:
    """Whether runs can work here: the services mode's Celery worker submits them to the SuperLink.

    Embedded mode (no broker: CELERY_BROKER_URL empty, tasks run in-process) starts no SuperLink, so a
    run would only fail at once.
    """
    return bool(settings.CELERY_BROKER_URL)


def _hospitals_with_enough_cases(hospitals, model_kind: str, min_nodes: int, told=None) -> list:
    """The hospitals a run goes over: those with at least conf.min_node_cases() of the cases it trains on.

    A hospital with fewer would only fail every round (its node refuses: federation/client_app.py). So it
    is left out up front or the run refused, in words the admin can act on. Only counts are read here, on
    the coordinator: no case leaves its hospital.

    `told`: the hospital whose admin asked; the run goes over it and the other hospitals that have enough.
    How many cases other hospitals have is theirs to know, not this admin's (federation/access.py keeps
    per-site figures apart too), so the refusal speaks of their own only. The run does list the hospitals
    it goes over, as every run does for its participants: an admin who compares that list with the
    opted-in partners can tell which fell short of the minimum, but not by how much. The operator, who
    chose the hospitals, is told which of them fall short.
    """
    from diagnostics.training_data import count_reviewed_cases

    from federation.conf import min_node_cases

    segmenter = model_kind == ModelKind.SEGMENTER
    least = min_node_cases()
    ready = [h for h in hospitals if count_reviewed_cases(h, outlined=segmenter) >= least]
    short = [h for h in hospitals if h not in ready]
    if told is not None and told in ready and len(ready) >= min_nodes:
        return ready
    if told is None and not short:
        return ready
    cases = "tumours whose outline a doctor drew or corrected" if segmenter else "scans a doctor has reviewed"
    if told is None:
        names = ", ".join(h.name for h in short)
        which = (f"{names} {'has' if len(short) == 1 else 'have'} fewer than that: leave "
                 f"{'it' if len(short) == 1 else 'them'} out, or start the run once more cases are reviewed there")
    elif told not in ready:
        which = f"{told.name} has fewer than that"
    else:
        which = f"{told.name} has enough, and too few of the other hospitals taking part have enough"
    each = "1 case" if least == 1 else f"{least} cases"
    raise DomainError("too_few_training_cases",
                      f"A run of the {ModelKind(model_kind).label.lower()} needs at least {min_nodes} hospitals with "
                      f"at least {each} each to train on ({cases}); {which}.", status=409)


def training_case_counts(hospital) -> dict:
    """What this hospital's node would train on, beside the fewest a run counts a hospital with (counts only,
    of this hospital alone: what its admin may know)."""
    from diagnostics.training_data import count_reviewed_cases

    from federation.conf import min_node_cases

    return {"reviewed_cases": count_reviewed_cases(hospital),
            "outlined_tumours": count_reviewed_cases(hospital, outlined=True),
            "minimum_cases": min_node_cases()}


def cases_on_record(slug: str, model_kind: str = ModelKind.CLASSIFIER) -> int | None:
    """How many cases hospital `slug` holds on the platform for training `model_kind` (None: no such
    hospital): the most its node's update may weigh in a round's average (server_app.FederationGrid).
    A segmenter trains only on the reviewed cases with an outline (datasets.hospital_training_set)."""
    from diagnostics.training_data import count_reviewed_cases, count_segmenter_cases
    from hospitals.models import Hospital

    hospital = Hospital.objects.filter(slug=slug).first()
    if hospital is None:
        return None
    return count_segmenter_cases(hospital) if model_kind == ModelKind.SEGMENTER else count_reviewed_cases(hospital)


@transaction.atomic
def start_federated_run(*, hospitals, actor=None, request=None, started_by_hospital=None, **params) -> FederatedRun:
    """Record a run over opted-in hospitals with enough cases to train on (_hospitals_with_enough_cases) and
    have the federation worker submit it after commit.

    Hospitals opt in through their settings (hospitals.services.update_hospital_settings).
    `started_by_hospital`: the hospital whose admin starts it (None for the operator); refusals tell
    that admin nothing about the other hospitals' cases.
    """
    if not federation_available():
        raise DomainError("needs_services_mode", NEEDS_SERVICES_MODE, status=409)
    hospitals = list(hospitals)
    missing = sorted(h.slug for h in hospitals if not h.federation_opt_in)
    if missing:
        raise DomainError("not_opted_in", f"These hospitals have not opted in to federated learning: "
                                              f"{', '.join(missing)}. Their admins can opt in.", status=409)
    min_nodes = params.get("min_nodes", 2)
    if len(hospitals) < min_nodes:
        given = f"only {len(hospitals)} was given" if len(hospitals) == 1 else f"{len(hospitals)} were given"
        raise DomainError("too_few_hospitals", f"A run needs at least {min_nodes} hospitals; {given}.")
    hospitals = _hospitals_with_enough_cases(hospitals, params.get("model_kind", ModelKind.CLASSIFIER), min_nodes,
                                             told=started_by_hospital)
    run = FederatedRun.objects.create(created_by=actor, **params)
    run.hospitals.set(hospitals)
    for hospital in hospitals:
        if started_by_hospital is None or hospital.pk == started_by_hospital.pk:
            record_audit(actor=actor, hospital=hospital, action="federation.run_start", obj=run, request=request)
        else:
            # Who at another hospital pressed Start, and from which address, is that hospital's to know.
            record_audit(actor=None, hospital=hospital, action="federation.run_start", obj=run,
                         detail=f"Started by an admin of {started_by_hospital.name}.")
    transaction.on_commit(lambda: _hand_to_federation_worker(run.pk))
    return run


QUEUE_REFUSED = ("The task queue could not take the run, so no federation worker will submit it. Start it "
                 "again once the queue (Redis) is reachable.")


def _hand_to_federation_worker(run_id) -> None:
    """Queue the task that submits and follows the run. A run the queue cannot take fails at once with a
    reason: left pending, it would wait for a worker that never hears of it, and hold its hospitals,
    which start_hospital_run allows one unfinished run at a time."""
    if not _queue_follower(run_id):
        fail_run(run_id, QUEUE_REFUSED)


def _queue_follower(run_id) -> bool:
    """Queue the task that submits and follows the run; False when the task queue could not take it."""
    from federation.tasks import follow_federated_run

    try:
        follow_federated_run.delay(run_id)
    except Exception as error:  # noqa: BLE001 - a broker outage, whatever its client raises
        log.error("federated run %s could not be queued (%s)", run_id, type(error).__name__)
        return False
    return True


# --- who follows a run (federation.tasks.follow_run) ---------------------------------------------------

UNFINISHED = [status for status in RunStatus if status not in FINISHED]
# How long a live follower may go without saying so: it does every tasks.HEARTBEAT_S while it polls, between
# Control API calls that may each block a while.
FOLLOWER_QUIET_S = 120


def follower_quiet_limit(status: str) -> datetime.timedelta:
    """How long the follower of a run in `status` may be silent and still be alive. A pending run's follower
    may be inside `flwr run` (control.submit_run, tried a few times): taken for dead there, the run would be
    submitted a second time beside it, and two ServerApps would train it."""
    from federation import control

    if status == RunStatus.PENDING:
        return datetime.timedelta(seconds=FOLLOWER_QUIET_S + control.SUBMIT_ATTEMPTS * control.SUBMIT_TIMEOUT_S)
    return datetime.timedelta(seconds=FOLLOWER_QUIET_S)


def _silent(now, *, longer_than: datetime.timedelta = datetime.timedelta(0)) -> Q:
    """Unfinished runs whose follower has been silent for `longer_than`, and for longer than a live one may be,
    or that no follower took up for that long after they were asked for."""
    silent = Q()
    for status in UNFINISHED:
        since = now - max(longer_than, follower_quiet_limit(status))
        silent |= Q(status=status) & (Q(followed_at__lt=since) | Q(followed_at__isnull=True, created_at__lt=since))
    return silent


def take_up_following(run_id, follower: str) -> bool:
    """Make `follower` (a delivery of the following task) the run's follower; False when another delivery
    follows it and has been heard from lately, which this one then leaves it to.

    Two deliveries of one run's task can be about at once: `requeue_runs` queues one while the broker still
    holds the first, to redeliver an hour after its worker died, or while that first waits behind busy
    worker processes. One UPDATE decides which follows, so only one ever submits the run.
    """
    now = timezone.now()
    free = Q(followed_at__isnull=True) | Q(followed_by=follower) | _silent(now)
    return bool(FederatedRun.objects.filter(free, pk=run_id).update(followed_by=follower, followed_at=now))


def record_following(run_id, follower: str) -> bool:
    """The follower is alive; False when another delivery has taken the run over (this one was silent too long)."""
    return bool(FederatedRun.objects.filter(pk=run_id, followed_by=follower).update(followed_at=timezone.now()))


def unwatched_runs(*, older_than: datetime.timedelta):
    """Unfinished runs whose follower has not been heard from for `older_than`, or that none took up that long
    after they were asked for. Its worker was killed, most likely: nobody enforces the run's deadline or
    notices its ServerApp fail until the broker redelivers the task, an hour later (platform/celery.py,
    visibility_timeout)."""
    return FederatedRun.objects.filter(_silent(timezone.now(), longer_than=older_than)).order_by("pk")


def requeue_unwatched_runs(*, older_than: datetime.timedelta, progress=None) -> tuple[int, int]:
    """Hand every unwatched run to the federation queue again; (queued, refused by the queue).

    A refused run is left as it is, not failed: its ServerApp may be training still, and the next try may
    find the queue back. Safe beside a follower that is only slow: take_up_following lets one of them follow.
    """
    queued = refused = 0
    for run_id in unwatched_runs(older_than=older_than).values_list("id", flat=True):
        if _queue_follower(run_id):
            queued += 1
        else:
            refused += 1
        if progress is not None:
            progress(run_id)
    return queued, refused


def _refuse_unusable_node_key(path, key_text: str) -> None:
    """Flower authenticates nodes by elliptic-curve keys in OpenSSH form (what federation_certs --node
    writes); any other key is refused here, in words, rather than by the SuperLink."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    try:
        key = load_ssh_public_key(key_text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        found = "" if key is None else f" but an {type(key).__name__.removesuffix('PublicKey')} key"
        raise DomainError("not_a_public_key", f"{path} is not an elliptic-curve (ECDSA) public key{found}; enrol "
                                              "the <name>.pub file that federation_certs --node wrote.", status=400)


def enrol_node(*, hospital, public_key: Path, actor=None, request=None) -> NodeEnrolment:
    """Register a hospital's node key with the SuperLink and bind the node id it gets to the hospital.

    The SuperLink must run with node authentication. A hospital has one node; enrolling another means
    removing the first (its row here, its key on the SuperLink) on purpose.

    The SuperLink is asked outside any transaction: the `flwr` call may take a minute, and no lock of the
    hospital (roles, settings, run starts) should wait on it. Two enrolments of one hospital may then both
    register a key; the row's one-to-one keeps one, and the other's key is unregistered again.
    """
    from federation import conf, control

    _refuse_if_enrolled(hospital)
    try:
        key_text = Path(public_key).read_text().strip()
        _refuse_unusable_node_key(public_key, key_text)  # checked here: the SuperLink answers such a key in a 500
        node_id = control.register_node(conf.federation_home(), Path(public_key), name=hospital.slug)
    except UnicodeDecodeError:  # read before the SuperLink is asked: it is never sent such a file
        raise DomainError("not_a_public_key", f"{public_key} is not an OpenSSH public key (it is not "
                                              "text); enrol the <name>.pub file that federation_certs --node wrote.",
                          status=400) from None
    except (OSError, control.ControlError) as exc:  # OSError: the key file could not be read
        raise DomainError("node_not_registered", f"The SuperLink did not register the key: {exc}",
                          status=409) from None
    if not node_id:
        log.error("the SuperLink registered the node key of hospital %s without saying its node id; the key stays "
                  "registered until removed with flwr supernode unregister", hospital.slug)
        raise DomainError("node_not_registered", "The SuperLink registered the key but did not give its node id; "
                                                 "unregister it there (flwr supernode list / unregister) and enrol "
                                                 "it again.", status=409)
    try:
        with transaction.atomic():
            enrolment = NodeEnrolment.objects.create(hospital=hospital, node_id=node_id, public_key=key_text)
            record_audit(actor=actor, hospital=hospital, action="federation.node_enrol", obj=enrolment,
                         request=request)
    except IntegrityError:
        _forget_registered_node(hospital, node_id)
        _refuse_if_enrolled(hospital)
        holder = NodeEnrolment.objects.filter(node_id=node_id).values_list("hospital__slug", flat=True).first()
        raise DomainError("node_id_taken", f"The SuperLink gave node id {node_id}, which is still enrolled for "
                                           f"{holder or 'another hospital'}; remove that enrolment first.",
                          status=409) from None
    except Exception:
        _forget_registered_node(hospital, node_id)
        raise
    log.info("node %s enrolled for hospital %s", node_id, hospital.slug)
    return enrolment


def _refuse_if_enrolled(hospital) -> None:
    existing = NodeEnrolment.objects.filter(hospital=hospital).first()
    if existing is not None:
        raise DomainError("node_enrolled", f"{hospital.slug} already has an enrolled node ({existing.node_id}); "
                                            "a hospital runs one node. To replace it, remove it first "
                                            f"(python manage.py federation_enrol_node --hospital {hospital.slug} "
                                            "--remove), then enrol the new key.", status=409)


def _forget_registered_node(hospital, node_id: str) -> None:
    """Unregister a key this platform registered but could not bind: a key left registered with no row
    would be refused by the coordinator, and `--remove` could not find it to clear it."""
    from federation import conf, control

    try:
        control.unregister_node(conf.federation_home(), node_id)
    except control.ControlError:
        log.exception("node %s was registered for hospital %s but not enrolled, and could not be unregistered; "
                      "remove it with flwr supernode unregister", node_id, hospital.slug)
    else:
        log.warning("node %s was registered for hospital %s but not enrolled; it was unregistered again",
                    node_id, hospital.slug)


def unenrol_node(*, hospital, actor=None, request=None) -> NodeEnrolment:
    """Unregister the hospital's node key from the SuperLink and forget the binding, so that a new node
    (a replaced machine, a leaked key) can be enrolled. The row goes only once the SuperLink has let go
    of the key: a key still registered but unbound would be refused by the coordinator, never trusted.
    As in enrol_node, the SuperLink is asked outside any transaction.
    """
    from federation import conf, control

    enrolment = NodeEnrolment.objects.filter(hospital=hospital).first()
    if enrolment is None:
        raise DomainError("node_not_enrolled", f"{hospital.slug} has no enrolled node.", status=404)
    try:
        control.unregister_node(conf.federation_home(), enrolment.node_id)
    except control.ControlError as exc:
        raise DomainError("node_not_unregistered", f"The SuperLink did not unregister the node: {exc}",
                          status=409) from None
    with transaction.atomic():
        # A removal running beside this one has already deleted and audited the row.
        deleted, _ = NodeEnrolment.objects.filter(pk=enrolment.pk).delete()
        if deleted:
            record_audit(actor=actor, hospital=hospital, action="federation.node_unenrol", obj=enrolment,
                         request=request)
    log.info("node %s of hospital %s unenrolled", enrolment.node_id, hospital.slug)
    return enrolment


def enrolled_nodes() -> dict[int, str] | None:
    """{node id: hospital slug} of the enrolled nodes, or None where nodes are not enrolled.

    Nodes are enrolled when the SuperLink authenticates them (FEDERATION_NODE_AUTH); once any node is,
    an unenrolled one serves no run either way.
    """
    from federation import conf

    enrolled = {int(node_id): slug for node_id, slug in NodeEnrolment.objects.values_list("node_id", "hospital__slug")}
    return enrolled if enrolled or conf.node_auth() else None


# What a hospital admin may choose for a run they start; everything else keeps the platform's defaults.
HOSPITAL_RUN_MAX_ROUNDS = 20
HOSPITAL_RUN_DEFAULT_ROUNDS = 3


def earlier_unfinished_run(run: FederatedRun) -> FederatedRun | None:
    """An unfinished run asked for before `run` over one of its hospitals, which `run` must wait for."""
    return (FederatedRun.objects.filter(hospitals__in=run.hospitals.all(), pk__lt=run.pk)
            .exclude(status__in=FINISHED).order_by("pk").first())


def unfinished_run_over(hospitals) -> FederatedRun | None:
    """An unfinished run that one of `hospitals` takes part in, if any: each node trains one run at a time."""
    return FederatedRun.objects.filter(hospitals__in=hospitals).exclude(status__in=FINISHED).distinct().first()


def start_hospital_run(*, hospital, actor, request=None, model_kind: str, num_rounds: int) -> FederatedRun:
    """A hospital admin starts a run over every hospital that opted in, their own among them (DESIGN §2).

    The admin chooses only the model and the number of rounds; the run's settings are the platform's
    defaults. One run at a time per hospital: each node trains for one run at once, and a second run
    started over the same hospitals would only queue behind the first.
    """
    from hospitals.models import Hospital

    if not federation_available():
        raise DomainError("needs_services_mode", NEEDS_SERVICES_MODE, status=409)
    if not hospital.federation_opt_in:
        raise DomainError("not_opted_in", f"{hospital.name} does not take part in federated training; opt in "
                                          "first.", status=409)
    if model_kind not in ModelKind.values:
        raise DomainError("invalid_model_kind", f"Choose the model to train: {', '.join(ModelKind.values)}.")
    if not 1 <= num_rounds <= HOSPITAL_RUN_MAX_ROUNDS:
        raise DomainError("invalid_rounds", f"Choose between 1 and {HOSPITAL_RUN_MAX_ROUNDS} rounds.")
    with transaction.atomic():
        # Locking the opted-in hospitals makes the check below and the new run one step: two admins
        # pressing Start at once get one run and one refusal.
        hospitals = list(Hospital.objects.select_for_update().filter(federation_opt_in=True).order_by("pk"))
        busy = unfinished_run_over(hospitals)
        if busy is not None:
            raise DomainError("run_in_progress", f"Run {busy.pk} over these hospitals has not finished yet; start "
                                                 "a new one when it has.", status=409)
        return start_federated_run(hospitals=hospitals, actor=actor, request=request, started_by_hospital=hospital,
                                   model_kind=model_kind, num_rounds=num_rounds)


def _event(run: FederatedRun, kind: str, **extra) -> dict:
    return {"kind": kind, "run": run.pk, "status": run.status, **extra}


def mark_submitted(run_id, flower_run_id: str) -> None:
    updated = FederatedRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.SUBMITTED, flower_run_id=flower_run_id)
    if updated:
        publish(run_id, {"kind": "status", "run": run_id, "status": RunStatus.SUBMITTED})


def mark_running(run_id, *, flower_run_id: str) -> None:
    updated = FederatedRun.objects.filter(pk=run_id, status__in=[RunStatus.PENDING, RunStatus.SUBMITTED]).update(
        status=RunStatus.RUNNING, flower_run_id=flower_run_id, started_at=timezone.now())
    # A run stopped before its ServerApp got going stays stopped, and its watchers are not told otherwise.
    if updated:
        publish(run_id, {"kind": "status", "run": run_id, "status": RunStatus.RUNNING})


def start_round(run_id, number: int) -> None:
    FederatedRound.objects.get_or_create(run_id=run_id, number=number, defaults={"started_at": timezone.now()})
    publish(run_id, {"kind": "round_started", "run": run_id, "round": number})


def record_dropout(run_id, entry: dict) -> None:
    with transaction.atomic():
        run = FederatedRun.objects.select_for_update().get(pk=run_id)
        run.dropouts = [*run.dropouts, entry]
        run.save(update_fields=["dropouts"])
    publish(run_id, {"kind": "dropout", "run": run_id, **entry})


def round_payload(row: FederatedRound) -> dict:
    return {
        "round": row.number, "duration_s": row.duration_s, "global_loss": row.global_loss,
        "global_accuracy": row.global_accuracy, "global_macro_f1": row.global_macro_f1,
        "client_loss": row.client_loss, "client_accuracy": row.client_accuracy, "nodes": row.nodes,
        "dropouts": row.dropouts, "bytes_sent": row.bytes_sent, "bytes_received": row.bytes_received,
        "node_compute_s": row.node_compute_s, "server_eval_s": row.server_eval_s,
    }


def _weighted(nodes: list[dict], key: str):
    pairs = [(n[key], n.get("eval_examples") or 0) for n in nodes if n.get(key) is not None]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def nodes_critical_path_s(nodes: list[dict]) -> float | None:
    """The nodes' own share of a round's wall time: the slowest training plus the slowest evaluation.

    Training and evaluation are two exchanges and the coordinator waits for every reply of the first
    before it sends the second, so each phase lasts as long as its slowest node. One node's train +
    evaluate sum would miss that when one node is slowest at training and another at evaluating.
    """
    if not nodes:
        return None
    train = max((n.get("train_load_s") or 0.0) + (n.get("train_s") or 0.0) for n in nodes)
    evaluate = max((n.get("eval_load_s") or 0.0) + (n.get("eval_s") or 0.0) for n in nodes)
    return train + evaluate


def _measured(value) -> float | None:
    """A figure of the coordinator's evaluation, or None where it is NaN or infinite: a model that diverged
    measures so, and such a figure is neither readable nor JSON (the run's rows, API and live events)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def finish_round(run_id, round_log, metrics: dict, server_eval_s: float) -> FederatedRound:
    """Close a round with the coordinator's evaluation and what the nodes reported; push it live."""
    metrics = {key: _measured(value) for key, value in metrics.items()}
    nodes = sorted(round_log.nodes.values(), key=lambda n: n["hospital"])
    finished = timezone.now()
    row, _ = FederatedRound.objects.get_or_create(
        run_id=run_id, number=round_log.number,
        defaults={"started_at": datetime.datetime.fromtimestamp(round_log.started, tz=datetime.timezone.utc)})
    row.finished_at = finished
    row.duration_s = finished.timestamp() - round_log.started
    row.global_loss = metrics.get("loss")
    row.global_accuracy = metrics.get("accuracy", metrics.get("dice"))
    row.global_macro_f1 = metrics.get("macro_f1")
    row.client_loss = _weighted(nodes, "eval_loss")
    row.client_accuracy = _weighted(nodes, "eval_accuracy")
    row.nodes = nodes
    row.dropouts = round_log.dropouts
    row.bytes_sent = round_log.bytes_sent
    row.bytes_received = round_log.bytes_received
    row.node_compute_s = nodes_critical_path_s(nodes)
    row.server_eval_s = server_eval_s
    row.save()
    publish(run_id, {"kind": "round", "run": run_id, **round_payload(row)})
    log.info("federated run %s round %s: accuracy %.3f in %.1f s", run_id, row.number,
             row.global_accuracy or 0.0, row.duration_s)
    return row


def _run_folder(run_id) -> Path:
    from federation import conf

    folder = conf.federation_home() / "models" / f"run-{run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save_weights(run_id, model) -> str:
    path = _run_folder(run_id) / "final.weights.h5"
    model.save_weights(str(path))
    return str(path)


def _classifier_bundle(run: FederatedRun, model) -> dict:
    """Export the run's classifier as a model bundle, calibrated and measured like a centralised one.

    The temperature is fitted on the coordinator's calibration split and the bundle's metrics come from
    its validation split (the same rows the rounds were evaluated on).
    """
    import numpy as np

    from diagnostics.ml import data, export
    from diagnostics.ml.readers import CLASS_NAMES
    from federation.datasets import kaggle_split

    rows = kaggle_split("calib", limit_per_class=run.validation_per_class) + \
        kaggle_split("val", limit_per_class=run.validation_per_class)
    pixels = data.load_classification_arrays([settings.NEUROFED_DATA_DIR / r["path"] for r in rows], run.image_size)
    dataset = data.ClassificationData(pixels, np.asarray([CLASS_NAMES.index(r["label"]) for r in rows]),
                                      np.asarray([r["split"] for r in rows]), rows)
    return export.export_classifier(model, _run_folder(run.pk), dataset, log=lambda *_: None)


def _register_candidate(run: FederatedRun, bundle: dict) -> str:
    """Register the run's exported classifier as a candidate version, with its provenance; returns its id."""
    import json

    from diagnostics.models.registry import ModelSource, ModelTask
    from diagnostics.registry import register_model_version

    provenance = {"federated_run": run.pk, "flower_run_id": run.flower_run_id, "strategy": run.strategy,
                  "rounds": run.num_rounds, "local_epochs": run.local_epochs,
                  "hospitals": sorted(h.slug for h in run.hospitals.all()),
                  "dp_noise_multiplier": run.dp_noise_multiplier, "dp_clipping_norm": run.dp_clipping_norm}
    version = register_model_version(
        task=ModelTask.CLASSIFY, version=f"federated-{run.pk}", artifact_path=bundle["bundle_path"],
        metrics=bundle["validation_metrics"], source=ModelSource.FEDERATED, federated_run_id=str(run.pk),
        notes=json.dumps(provenance, sort_keys=True))
    return str(version.pk)


def complete_run(run_id, *, model, metrics: dict, wire: dict | None = None) -> FederatedRun:
    """Record the run's outcome and register its model as a candidate, unless the run has already ended.

    The ServerApp may still be training when the operator stops the run or the platform fails it (a
    deadline, a lost SuperLink): that outcome stands, and a model of a run that did not finish is neither
    kept nor registered, so it can never be promoted, here or from the operator's versions table.
    """
    run = FederatedRun.objects.prefetch_related("hospitals").get(pk=run_id)
    if run.finished:
        log.warning("federated run %s ended (%s) before its ServerApp finished; its model is discarded",
                    run_id, run.status)
        return run
    weights_path = _save_weights(run_id, model)
    final = {**{k: _measured(v) for k, v in metrics.items()}, "wire": wire or {}}
    bundle = None
    if run.model_kind == ModelKind.CLASSIFIER:
        # The segmenter's bundle needs the segmentation validation set; its weights are kept instead.
        try:
            # Outside the transaction below: calibrating and measuring the model takes a while.
            bundle = _classifier_bundle(run, model)
        except Exception:  # noqa: BLE001 - the run's outcome stands even without a bundle
            log.exception("could not export the model of federated run %s", run_id)
    with transaction.atomic():
        # The run's row locked: a stop or failure meanwhile either came first (the model is then no
        # candidate) or waits for this outcome and finds the run finished.
        run = FederatedRun.objects.select_for_update().get(pk=run_id)
        if run.finished:
            log.warning("federated run %s ended (%s) while its model was being exported; its model is discarded",
                        run_id, run.status)
            # Discarded means gone: files no row names would only be found, and trusted, by someone later.
            shutil.rmtree(_run_folder(run_id), ignore_errors=True)
            return run
        version_id = ""
        if bundle is not None:
            try:
                with transaction.atomic():
                    version_id = _register_candidate(run, bundle)
                final["candidate"] = bundle["validation_metrics"]
            except Exception:  # noqa: BLE001 - the run's outcome stands even if the registry refuses it
                log.exception("could not register the model of federated run %s", run_id)
        run.status, run.finished_at, run.final_metrics = RunStatus.COMPLETED, timezone.now(), final
        run.weights_path, run.model_version_id = weights_path, version_id
        run.save(update_fields=["status", "finished_at", "final_metrics", "weights_path", "model_version_id"])
    publish(run_id, _event(run, "finished", final_metrics=final, model_version_id=version_id))
    return run


def fail_run(run_id, reason: str, *, status: str = RunStatus.FAILED) -> bool:
    """Fail (or stop) a run that has not finished; the first reason recorded is kept."""
    updated = FederatedRun.objects.filter(pk=run_id).exclude(status__in=FINISHED).update(
        status=status, failure_reason=reason[:2000], finished_at=timezone.now())
    if updated:
        log.warning("federated run %s %s: %s", run_id, status, reason)
        publish(run_id, {"kind": "finished", "run": run_id, "status": status, "reason": reason})
    return bool(updated)


def stop_flower_run(flower_run_id: str, home=None) -> None:
    """Ask the SuperLink to stop a Flower run; a failure is logged, not raised."""
    from federation import conf, control

    try:
        control.stop_run(home or conf.federation_home(), flower_run_id)
    except Exception as exc:  # noqa: BLE001 - the follower stops it once the SuperLink answers again
        log.warning("could not stop flower run %s: %s", flower_run_id, exc)


def stop_federated_run(*, run: FederatedRun, actor=None, request=None) -> FederatedRun:
    """Ask the SuperLink to stop the run, and record it stopped.

    A stop the SuperLink did not take (unreachable for a moment) is taken up by the run's follower, which
    stops the Flower run of a run it finds stopped (tasks.follow_run)."""
    if run.finished:
        raise DomainError("run_finished", f"Run {run.pk} has already finished ({run.status}).", status=409)
    if run.flower_run_id:
        stop_flower_run(run.flower_run_id)
    if not fail_run(run.pk, "Stopped by the platform operator.", status=RunStatus.STOPPED):
        # It ended while the stop was on its way: its outcome stands, and nothing was stopped.
        run.refresh_from_db()
        raise DomainError("run_finished", f"Run {run.pk} has already finished ({run.status}).", status=409)
    submitted_meanwhile = FederatedRun.objects.filter(pk=run.pk).values_list("flower_run_id", flat=True).get()
    if submitted_meanwhile and submitted_meanwhile != run.flower_run_id:
        # Its follower recorded the Flower run between this request's read and the stop: that run is
        # stopped too, or its ServerApp would train on the nodes to the end, beside the next run.
        stop_flower_run(submitted_meanwhile)
    for hospital in run.hospitals.all():
        record_audit(actor=actor, hospital=hospital, action="federation.run_stop", obj=run, request=request)
    run.refresh_from_db()
    return run


def candidate_shortfall(run: FederatedRun) -> str | None:
    """Why promoting the run's candidate would lower the served model's validation score, or None."""
    if run.status != RunStatus.COMPLETED or not run.model_version_id:
        return None
    from diagnostics.models.registry import ModelVersion
    from diagnostics.registry import shortfall_against_active

    version = ModelVersion.objects.filter(pk=run.model_version_id).first()
    return shortfall_against_active(version) if version is not None else None


def version_of_candidates_task(run: FederatedRun, name: str) -> int | None:
    """The pk of the model version called `name` of the task of the run's candidate (None: the run has no
    candidate, which promote_federated_model refuses): what an API client names as ``accepted_against``."""
    from diagnostics.models.registry import ModelTask, ModelVersion

    candidate = ModelVersion.objects.filter(pk=run.model_version_id).first() if run.model_version_id else None
    if candidate is None:
        return None
    found = ModelVersion.objects.filter(task=candidate.task, version=name).values_list("pk", flat=True).first()
    if found is None:
        raise DomainError("unknown_version", f"No {ModelTask(candidate.task).label.lower()} model version is called "
                                             f"{name!r}; name the active version the refusal named.")
    return found


def promote_federated_model(*, run: FederatedRun, actor=None, request=None, accept_lower_score: bool = False,
                            accepted_against: int | None = None):
    """Make the run's candidate model the one that diagnoses new scans (registry.promote_model_version:
    one that scored lower than the active model only with ``accept_lower_score``, against the active
    version ``accepted_against`` when a page names it)."""
    if run.status != RunStatus.COMPLETED or not run.model_version_id:
        raise DomainError("no_candidate", f"Run {run.pk} has no registered candidate model to promote.", status=409)
    from diagnostics.models.registry import ModelStatus, ModelVersion
    from diagnostics.registry import ModelIntegrityError, ScoresBelowActive, lock_task, promote_model_version

    with transaction.atomic():
        version = ModelVersion.objects.filter(pk=run.model_version_id).first()
        if version is None:
            raise DomainError("no_candidate", f"Run {run.pk}'s model version is no longer registered.", status=409)
        # Every version of the task, in the one order every promotion and rollback locks them (locking the
        # candidate first deadlocked against a promotion of another version): of two promotions of this
        # run's model at once, the second finds it serving and records nothing.
        lock_task(version.task)
        version.refresh_from_db()
        if version.status == ModelStatus.ACTIVE:
            return version
        try:
            version = promote_model_version(version, accept_lower_score=accept_lower_score,
                                            accepted_against=accepted_against, actor=actor, request=request)
        except ModelIntegrityError as exc:
            raise DomainError("model_integrity", str(exc), status=409) from None
        except ScoresBelowActive as lower:
            raise DomainError("scores_below_active", f"{lower} It was not promoted; promote it again accepting the "
                                                     "lower score if that is meant.", status=409) from None
        for hospital in run.hospitals.all():
            record_audit(actor=actor, hospital=hospital, action="federation.model_promote", obj=run, request=request)
    publish(run.pk, {"kind": "promoted", "run": run.pk, "model_version_id": run.model_version_id})
    return version
