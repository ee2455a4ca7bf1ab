"""Model registry services: register, promote, roll back, and load what serves predictions.

``load_active_predictor()`` is what the worker and the ``predict`` command call: it finds the active
classifier (and segmenter) version, verifies each artefact's SHA-256 against the registry before a
single byte is interpreted, and builds an ``inference.Predictor``. With an empty registry it registers
the committed baseline bundles in ``settings.MODEL_DIR`` and activates them, so a fresh install works.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from diagnostics.ml import export
from diagnostics.models.registry import ModelSource, ModelStatus, ModelTask, ModelVersion

if TYPE_CHECKING:
    from diagnostics.ml.inference import Predictor

BUNDLE_NAMES = {ModelTask.CLASSIFY: "classifier.json", ModelTask.SEGMENT: "segmenter.json"}


class ModelIntegrityError(RuntimeError):
    """An artefact on disk differs from the one that was registered; it must not be served."""


class NoActiveModel(LookupError):
    pass


class ScoresBelowActive(ValueError):
    """Promoting would replace the active version with one that scored lower on validation."""


class ActiveModelChanged(LookupError):
    """A rollback meant from one version found another serving: a second click, or another operator."""


# The validation figure by which a version is weighed against the active one before it replaces it.
HEADLINE_METRICS = {ModelTask.CLASSIFY: ("macro_f1", "macro-F1"), ModelTask.SEGMENT: ("dice_mean", "mean Dice")}


def active_versions() -> dict[str, int]:
    """{task: pk of its active version}: what a page compares against, sent back with its forms."""
    return dict(ModelVersion.objects.filter(status=ModelStatus.ACTIVE).values_list("task", "pk"))


def lock_task(task: str) -> None:
    """Lock every version of ``task``, always in one order: promotions and rollbacks of a task then run one
    at a time, and each reads the active version as the one before it left it. Locking only the active
    row let two promotions both weigh their candidate against the same, soon retired, version."""
    list(ModelVersion.objects.select_for_update().filter(task=task).order_by("pk").values_list("pk", flat=True))


def shortfall_against_active(model_version: ModelVersion) -> str | None:
    """A sentence when ``model_version`` scored lower on validation than its task's active version, or has no
    figure to weigh against the active one's; else None (as well or better, or the active has no figure)."""
    active = (ModelVersion.objects.filter(task=model_version.task, status=ModelStatus.ACTIVE)
              .exclude(pk=model_version.pk).first())
    return _shortfall(model_version, active)


def shortfalls_against_active(model_versions) -> dict:
    """``shortfall_against_active`` of each version not active, by pk, in one query for the active ones
    (a page lists many versions)."""
    active = {version.task: version for version in ModelVersion.objects.filter(status=ModelStatus.ACTIVE)}
    return {version.pk: _shortfall(version, active.get(version.task)) for version in model_versions
            if version.status != ModelStatus.ACTIVE}


def _shortfall(model_version: ModelVersion, active: ModelVersion | None) -> str | None:
    metric, words = HEADLINE_METRICS.get(model_version.task, (None, ""))
    if metric is None or active is None or active.pk == model_version.pk:
        return None
    mine, theirs = model_version.metrics.get(metric), active.metrics.get(metric)
    if not _is_figure(theirs):
        return None
    model = f"The {ModelTask(model_version.task).label.lower()} model {model_version.version}"
    if not _is_figure(mine):
        # A bundle registered by hand may carry no figures: unweighed, it is not taken for as good.
        return f"{model} has no {words} on validation to weigh against the active {active.version}'s {theirs:.3f}."
    if mine >= theirs:
        return None
    return f"{model} scored {words} {mine:.3f} on validation, below the active {active.version}'s {theirs:.3f}."


def _is_figure(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def resolve_artifact_path(artifact_path: str | Path) -> Path:
    path = Path(artifact_path)
    return path if path.is_absolute() else Path(settings.MODEL_DIR) / path


def bundle_sha256(bundle_path: str | Path) -> str:
    """SHA-256 over the bundle JSON and every artefact it names (name and content, in a fixed order)."""
    digest = hashlib.sha256()
    for path in export.bundle_files(Path(bundle_path)):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def verify_model_version(model_version: ModelVersion) -> Path:
    """The version's bundle path, after checking its checksum; raises ModelIntegrityError otherwise."""
    path = resolve_artifact_path(model_version.artifact_path)
    try:
        actual = bundle_sha256(path)
    except (OSError, ValueError, KeyError) as error:
        raise ModelIntegrityError(f"model {model_version} cannot be read at {path.name}: {error}") from error
    if actual != model_version.artifact_sha256:
        raise ModelIntegrityError(
            f"model {model_version} does not match its registered checksum (expected "
            f"{model_version.artifact_sha256[:12]}..., found {actual[:12]}...); refusing to load it")
    return path


def versions_stored_at(bundle_path: str | Path) -> list[ModelVersion]:
    """The registered versions whose bundle is the one at ``bundle_path`` now (same file, same checksum):
    what writing over that file would make unloadable. Empty when no bundle is there."""
    path = Path(bundle_path).resolve()
    try:
        actual = bundle_sha256(path)
    except (OSError, ValueError, KeyError):
        return []
    return [version for version in ModelVersion.objects.filter(artifact_sha256=actual).order_by("task", "version")
            if resolve_artifact_path(version.artifact_path).resolve() == path]


def serving_problem(task: str, bundle_path: str | Path) -> str | None:
    """Why the bundle could not serve scans, or None: it is loaded as a CPU worker loads it (TFLite; a GPU
    worker's Keras weights are not tried) and one made-up slice is predicted. Registered and promoted as it
    is, a bundle that fails here would fail every scan. A segmenter is tried beside the active classifier,
    as it will serve (none, or one that does not verify: not tried)."""
    import numpy as np

    from diagnostics.ml.inference import Predictor

    path = Path(bundle_path).resolve()  # as given on the command line, not under MODEL_DIR
    rows, cols = np.mgrid[:96, :96]
    trial = (np.clip(1.2 - np.hypot(rows - 48, cols - 48) / 40, 0, 1) * 200).astype(np.uint8)  # a bright disc
    try:
        if task == ModelTask.CLASSIFY:
            predictor = Predictor(path, None, backend="tflite", num_threads=1)
        else:
            # Read without _ensure_baseline: trying a bundle registers and promotes nothing.
            classifier = ModelVersion.objects.filter(task=ModelTask.CLASSIFY, status=ModelStatus.ACTIVE).first()
            try:
                classifier_bundle = verify_model_version(classifier) if classifier else None
            except ModelIntegrityError:
                classifier_bundle = None
            if classifier_bundle is None:  # nothing sound to try it beside; its own fault is not shown
                return None
            predictor = Predictor(classifier_bundle, path, backend="tflite", num_threads=1)
        predictor.predict(trial)
    except Exception as error:  # noqa: BLE001 - whatever a broken bundle raises, it is refused in words
        return f"{type(error).__name__}: {error}"
    return None


@transaction.atomic
def register_model_version(*, task: str, version: str, artifact_path: str | Path, metrics: dict | None = None,
                           source: str = ModelSource.CENTRALISED, federated_run_id: str | None = None,
                           notes: str = "") -> ModelVersion:
    """Record a new candidate version, computing the checksum of its bundle now.

    The metrics are what promotions weigh versions by, so they must be an object of named figures; a
    NaN or infinity (a diverged run's loss) is kept as null, which JSON and PostgreSQL can hold.
    """
    from diagnostics.ml.metrics import json_safe

    if metrics is not None and not isinstance(metrics, dict):
        raise ValueError(f"its validation metrics must be an object of named figures, not a {type(metrics).__name__}")
    longest = ModelVersion._meta.get_field("artifact_path").max_length
    if len(str(artifact_path)) > longest:
        raise ValueError(f"the bundle's path is longer than the {longest} characters the registry keeps; move "
                         "the bundle to a shorter path")
    path = resolve_artifact_path(artifact_path)
    if source == ModelSource.FEDERATED and not federated_run_id:
        raise ValueError("a federated model version needs the id of the run that produced it")
    return ModelVersion.objects.create(
        task=task, version=version, artifact_path=str(artifact_path), artifact_sha256=bundle_sha256(path),
        metrics=json_safe(metrics or {}), source=source, federated_run_id=federated_run_id, notes=notes,
        status=ModelStatus.CANDIDATE)


def _record_model_change(action: str, version: ModelVersion, replaced: ModelVersion | None, actor, request) -> None:
    """One model diagnoses every hospital's new scans, so each hospital's audit log says when it changed,
    whoever changed it and by whichever way (the operator's pages, a federated run, a command), beside
    the platform's own record (no hospital)."""
    from hospitals.audit import record_audit_everywhere

    detail = f"{_task_words(version.task)} {version.version}"
    if replaced is not None:
        detail += f", replacing {replaced.version}"
    record_audit_everywhere(actor=actor, action=action, obj=version, request=request, detail=detail)


@transaction.atomic
def promote_model_version(model_version: ModelVersion, *, accept_lower_score: bool = False,
                          accepted_against: int | None = None, actor=None, request=None) -> ModelVersion:
    """Make ``model_version`` the active one of its task; the previous active one is retired.

    One model serves every hospital, so a version that scored lower on validation than the active one
    is refused (``ScoresBelowActive``) unless the operator says, with ``accept_lower_score``, that this
    is meant (a federated model trained on the hospitals' own cases may be worth it). A page says which
    active version the lower score was accepted against (``accepted_against``, its pk): once another
    serves, the acceptance no longer holds and the candidate is weighed against that one. Every
    hospital's audit log records the change, by ``actor`` (None: the platform itself).
    """
    lock_task(model_version.task)
    model_version = ModelVersion.objects.get(pk=model_version.pk)
    if model_version.status == ModelStatus.ACTIVE:
        # Already serving (a second press, a retried request): nothing changes, and it keeps its start.
        return model_version
    verify_model_version(model_version)
    current = (ModelVersion.objects.filter(task=model_version.task, status=ModelStatus.ACTIVE)
               .exclude(pk=model_version.pk))
    replaced = current.first()
    accepted = accept_lower_score and (accepted_against is None
                                       or (replaced is not None and replaced.pk == accepted_against))
    shortfall = None if accepted else _shortfall(model_version, replaced)
    if shortfall:
        raise ScoresBelowActive(shortfall)
    current.update(status=ModelStatus.RETIRED)
    model_version.status = ModelStatus.ACTIVE
    model_version.activated_at = timezone.now()
    model_version.save(update_fields=["status", "activated_at"])
    _record_model_change("model.promote", model_version, replaced, actor, request)
    return model_version


def _task_words(task: str) -> str:
    # "segmentation", not the registry's key "segment": the refusal is read by the operator.
    return ModelTask(task).label.lower() if task in ModelTask.values else task


def _served_before():
    """Retired versions that once served: what a rollback can go back to."""
    return ModelVersion.objects.filter(status=ModelStatus.RETIRED, activated_at__isnull=False)


def tasks_with_earlier_version() -> set[str]:
    """The tasks whose active version rollback_model could replace with an earlier one."""
    return set(_served_before().values_list("task", flat=True))


@transaction.atomic
def rollback_model(task: str, *, from_version: int | None = None, actor=None, request=None) -> ModelVersion:
    """Re-activate the version that was active before the current one; the current one is retired.
    ``from_version``: the pk of the version a page meant to go back from; another serving now (a second
    click went back already) is refused with ``ActiveModelChanged``, rather than going back twice.
    Every hospital's audit log records the change."""
    lock_task(task)
    current = ModelVersion.objects.filter(task=task, status=ModelStatus.ACTIVE).first()
    if current is None:
        raise NoActiveModel(f"There is no active {_task_words(task)} model to go back from.")
    if from_version is not None and current.pk != from_version:
        raise ActiveModelChanged(f"The {_task_words(task)} model serving is now {current.version}, not the version "
                                 "you meant to go back from; nothing was changed.")
    previous = (_served_before().filter(task=task)
                .exclude(pk=current.pk).order_by("-activated_at", "-id").first())
    if previous is None:
        raise NoActiveModel(f"There is no earlier {_task_words(task)} model to go back to.")
    verify_model_version(previous)
    current.status = ModelStatus.RETIRED
    # Moved back in time so that a second rollback goes further back rather than flipping between two.
    current.activated_at = None
    current.save(update_fields=["status", "activated_at"])
    previous.status = ModelStatus.ACTIVE
    previous.activated_at = timezone.now()
    previous.save(update_fields=["status", "activated_at"])
    _record_model_change("model.rollback", previous, current, actor, request)
    return previous


def _ensure_baseline(task: str) -> ModelVersion | None:
    """Register and activate the committed bundle for ``task`` when the registry has no version of it."""
    if ModelVersion.objects.filter(task=task).exists():
        return None
    bundle = Path(settings.MODEL_DIR) / BUNDLE_NAMES[task]
    if not bundle.exists():
        return None
    import json

    metrics = json.loads(bundle.read_text()).get("validation_metrics", {})
    try:
        with transaction.atomic():
            version = register_model_version(task=task, version="baseline-" + bundle_sha256(bundle)[:8],
                                             artifact_path=BUNDLE_NAMES[task], metrics=metrics,
                                             source=ModelSource.BASELINE, notes="committed baseline weights")
            return promote_model_version(version)
    except IntegrityError:
        # Another process (a second worker, the web's first scan) registered it at the same moment: the
        # registry holds the baseline either way, and the first scan must not fail over it.
        return None


def active_model_version(task: str) -> ModelVersion | None:
    _ensure_baseline(task)
    return ModelVersion.objects.filter(task=task, status=ModelStatus.ACTIVE).first()


def load_active_predictor(**predictor_options) -> Predictor:
    """The Predictor for the active versions, checksums verified; ``predictor.model_versions`` maps each
    task to the ModelVersion it serves (None for a task with no model)."""
    # Imported here: the inference core loads TensorFlow, which the web process (the readiness probe
    # reads this module) has no use for.
    from diagnostics.ml.inference import Predictor

    classifier = active_model_version(ModelTask.CLASSIFY)
    if classifier is None:
        raise NoActiveModel("no classifier is registered and no baseline bundle is installed")
    segmenter = active_model_version(ModelTask.SEGMENT)
    predictor = Predictor(verify_model_version(classifier),
                          verify_model_version(segmenter) if segmenter else None, **predictor_options)
    predictor.model_versions = {"classify": classifier, "segment": segmenter}
    return predictor
