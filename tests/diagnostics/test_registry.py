import json
import shutil
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connections, transaction

from diagnostics import registry
from diagnostics.models.registry import ModelStatus, ModelVersion
from tests.diagnostics.ml.helpers import requires_data, shared_tiny_bundle

pytestmark = [pytest.mark.django_db, requires_data]


@pytest.fixture
def bundle_dir(tmp_path):
    """A private copy of the tiny bundle, so a test may tamper with it."""
    target = tmp_path / "bundle"
    shutil.copytree(shared_tiny_bundle(), target)
    return target


@pytest.fixture
def model_dir(settings, bundle_dir):
    settings.MODEL_DIR = bundle_dir
    return bundle_dir


def _register(bundle_dir, version, task="classify", **kwargs):
    name = "classifier.json" if task == "classify" else "segmenter.json"
    return registry.register_model_version(task=task, version=version, artifact_path=str(bundle_dir / name), **kwargs)


def test_register_records_checksum_and_provenance(bundle_dir):
    version = _register(bundle_dir, "fed-1", source="federated", federated_run_id="run-42", metrics={"accuracy": 0.9})
    assert version.status == ModelStatus.CANDIDATE
    assert version.artifact_sha256 == registry.bundle_sha256(bundle_dir / "classifier.json")
    assert (version.source, version.federated_run_id) == ("federated", "run-42")
    with pytest.raises(ValueError):
        _register(bundle_dir, "fed-2", source="federated")


def test_metrics_that_name_no_figures_are_refused_and_non_finite_ones_kept_as_null(bundle_dir):
    with pytest.raises(ValueError, match="must be an object of named figures, not a list"):
        _register(bundle_dir, "v1", metrics=[0.99])
    registry.promote_model_version(_register(bundle_dir, "v0", metrics={"macro_f1": 0.9}))
    version = _register(bundle_dir, "v2", metrics={"macro_f1": float("nan"), "per_class": {"glioma": float("inf")}})
    version.refresh_from_db()
    assert version.metrics == {"macro_f1": None, "per_class": {"glioma": None}}
    assert sorted(ModelVersion.objects.values_list("version", flat=True)) == ["v0", "v2"]
    # The versions page weighs it against the active one as a version without the figure.
    assert "macro-F1" in registry.shortfalls_against_active([version])[version.pk]


def test_a_bundle_path_longer_than_the_registry_keeps_is_a_sentence(tmp_path, bundle_dir):
    deep = tmp_path / ("d" * 200) / ("e" * 200) / ("f" * 100)
    shutil.copytree(bundle_dir, deep)
    with pytest.raises(CommandError, match="longer than the 500 characters the registry keeps"):
        call_command("promote_model", "--task", "classify", "--model-version", "v1", "--register",
                     str(deep / "classifier.json"))
    assert not ModelVersion.objects.exists()


def test_bundle_metrics_of_the_wrong_shape_are_refused_by_the_command(bundle_dir):
    info = json.loads((bundle_dir / "classifier.json").read_text())
    (bundle_dir / "classifier.json").write_text(json.dumps({**info, "validation_metrics": [0.99]}))
    with pytest.raises(CommandError, match="cannot register .*object of named figures"):
        call_command("promote_model", "--task", "classify", "--model-version", "v1", "--register",
                     str(bundle_dir / "classifier.json"))
    assert not ModelVersion.objects.exists()


def test_at_most_one_active_version_per_task(bundle_dir):
    first = registry.promote_model_version(_register(bundle_dir, "v1"))
    second = registry.promote_model_version(_register(bundle_dir, "v2"))
    first.refresh_from_db()
    assert (first.status, second.status) == (ModelStatus.RETIRED, ModelStatus.ACTIVE)
    registry.promote_model_version(_register(bundle_dir, "s1", task="segment"))  # other task unaffected
    assert ModelVersion.objects.filter(status=ModelStatus.ACTIVE).count() == 2
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=first.pk).update(status=ModelStatus.ACTIVE)


def test_rollback_reactivates_the_previous_version_and_walks_further_back(bundle_dir):
    v1 = registry.promote_model_version(_register(bundle_dir, "v1"))
    v2 = registry.promote_model_version(_register(bundle_dir, "v2"))
    v3 = registry.promote_model_version(_register(bundle_dir, "v3"))
    assert registry.rollback_model("classify").pk == v2.pk
    assert registry.rollback_model("classify").pk == v1.pk
    v3.refresh_from_db()
    assert v3.status == ModelStatus.RETIRED
    with pytest.raises(registry.NoActiveModel):
        registry.rollback_model("classify")


def test_a_tampered_artifact_is_refused(model_dir):
    version = registry.promote_model_version(_register(model_dir, "v1"))
    tflite = model_dir / "classifier.tflite"
    tflite.write_bytes(tflite.read_bytes()[:-1] + b"\x00")
    with pytest.raises(registry.ModelIntegrityError, match="checksum"):
        registry.verify_model_version(version)
    with pytest.raises(registry.ModelIntegrityError):
        registry.load_active_predictor()


def test_empty_registry_falls_back_to_the_committed_bundles(model_dir):
    predictor = registry.load_active_predictor(backend="tflite")
    versions = predictor.model_versions
    assert versions["classify"].source == "baseline" and versions["classify"].status == ModelStatus.ACTIVE
    assert versions["segment"] is not None
    assert ModelVersion.objects.count() == 2
    registry.load_active_predictor(backend="tflite")  # second call registers nothing new
    assert ModelVersion.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_processes_finding_the_registry_empty_at_once_both_serve_the_baseline(model_dir, monkeypatch):
    """Two workers (or a worker and the web's first scan) find the registry empty at once: the one whose
    insert loses serves the version the other registered, rather than failing the scan."""
    register = registry.register_model_version
    both_found_it_empty = threading.Barrier(2)

    def register_together(**fields):
        both_found_it_empty.wait(10)
        return register(**fields)

    monkeypatch.setattr(registry, "register_model_version", register_together)
    served, failed = [], []

    def first_load():
        try:
            served.append(registry.active_model_version("classify"))
        except Exception as error:  # noqa: BLE001 - the test reports whatever escaped
            failed.append(error)
        finally:
            connections.close_all()

    loads = [threading.Thread(target=first_load) for _ in range(2)]
    for load in loads:
        load.start()
    for load in loads:
        load.join(30)
    assert failed == [] and len(served) == 2
    assert served[0].pk == served[1].pk and served[0].status == ModelStatus.ACTIVE
    assert ModelVersion.objects.filter(task="classify").count() == 1


def test_promote_and_rollback_commands(model_dir):
    from django.core.management import call_command

    call_command("promote_model", "--task", "classify", "--model-version", "a", "--register", str(model_dir / "classifier.json"))
    call_command("promote_model", "--task", "classify", "--model-version", "b", "--register", str(model_dir / "classifier.json"))
    call_command("rollback_model", "--task", "classify")
    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE).version == "a"


@pytest.mark.django_db(transaction=True)
def test_rollback_locks_its_rows_in_a_transaction_of_its_own_as_the_command_and_page_need(model_dir):
    # Outside a test's wrapping transaction, as in production: the locks it takes need one of its own.
    call_command("promote_model", "--task", "classify", "--model-version", "a", "--register", str(model_dir / "classifier.json"))
    call_command("promote_model", "--task", "classify", "--model-version", "b", "--register", str(model_dir / "classifier.json"))
    assert transaction.get_autocommit()

    call_command("rollback_model", "--task", "classify")

    assert ModelVersion.objects.get(status=ModelStatus.ACTIVE).version == "a"


def test_promote_model_refuses_bad_bundles_and_taken_versions_with_a_sentence(model_dir, tmp_path):
    from django.core.management import CommandError, call_command

    call_command("promote_model", "--task", "classify", "--model-version", "a", "--register", str(model_dir / "classifier.json"))
    not_json = tmp_path / "notes.json"
    not_json.write_text("{this is not json")
    for task, version, bundle, message in (
            ("classify", "b", not_json, "not a model bundle: it is not valid JSON"),
            ("classify", "b", tmp_path / "missing.json", "cannot read"),
            ("classify", "b", model_dir / "segmenter.json", "is a segment bundle, not a classify one"),
            ("segment", "b", model_dir / "classifier.json", "is a classify bundle, not a segment one"),
            ("classify", "a", model_dir / "classifier.json", "version 'a' is already registered")):
        with pytest.raises(CommandError, match=message):
            call_command("promote_model", "--task", task, "--model-version", version, "--register", str(bundle))
    assert list(ModelVersion.objects.values_list("task", "version", "status")) == [("classify", "a", "active")]


def test_promote_model_refuses_a_bundle_that_cannot_serve_and_a_promotion_it_was_not_asked_for(model_dir,
                                                                                                 tmp_path):
    """A bundle whose files do not load would fail every scan once active: it is tried as a worker loads it,
    and refused. --candidate-only without a bundle to register would have promoted the version named."""
    call_command("promote_model", "--task", "classify", "--model-version", "a", "--register",
                 str(model_dir / "classifier.json"), "--candidate-only")
    assert ModelVersion.objects.get(version="a").status == ModelStatus.CANDIDATE
    with pytest.raises(CommandError, match="--candidate-only registers a bundle without promoting it"):
        call_command("promote_model", "--task", "classify", "--model-version", "a", "--candidate-only")
    assert ModelVersion.objects.get(version="a").status == ModelStatus.CANDIDATE
    with pytest.raises(CommandError, match="--task and --model-version are required"):
        call_command("promote_model", "--task", "classify", "--model-version", "   ")
    broken = tmp_path / "classifier.json"
    broken.write_text(json.dumps({"task": "classify"}))
    with pytest.raises(CommandError, match=r"cannot serve scans \(ValueError: .*its 'classes' is None\); nothing was registered"):
        call_command("promote_model", "--task", "classify", "--model-version", "b", "--register", str(broken))
    (tmp_path / "segmenter.json").write_text(json.dumps({"task": "segment", "tflite": "missing.tflite",
                                                         "input_size": 160}))
    call_command("promote_model", "--task", "classify", "--model-version", "a")  # the classifier it is tried beside
    with pytest.raises(CommandError, match="cannot serve scans"):
        call_command("promote_model", "--task", "segment", "--model-version", "s", "--register",
                     str(tmp_path / "segmenter.json"))
    assert list(ModelVersion.objects.values_list("version", flat=True).order_by("version")) == ["a"]


def test_a_bundle_given_by_a_relative_path_is_tried_where_it_is(model_dir, tmp_path, monkeypatch):
    """As the docs give it (--register var/models/classify/classifier.json): relative to where the command
    runs, not to MODEL_DIR, both for the trial and for the registration."""
    trained = tmp_path / "var" / "models" / "classify"
    shutil.copytree(model_dir, trained)
    monkeypatch.chdir(tmp_path)
    call_command("promote_model", "--task", "classify", "--model-version", "t", "--register",
                 "var/models/classify/classifier.json", "--candidate-only")
    assert ModelVersion.objects.get(version="t").artifact_path == str(trained / "classifier.json")
    (trained / "classifier.json").write_text(json.dumps({"task": "classify"}))  # broken there, whole in MODEL_DIR
    with pytest.raises(CommandError, match="cannot serve scans"):
        call_command("promote_model", "--task", "classify", "--model-version", "u", "--register",
                     "var/models/classify/classifier.json")


def test_a_version_that_scored_lower_than_the_active_one_is_promoted_only_on_purpose(bundle_dir):
    active = registry.promote_model_version(_register(bundle_dir, "v1", metrics={"macro_f1": 0.97}))
    weaker = _register(bundle_dir, "fed-3", source="federated", federated_run_id="3", metrics={"macro_f1": 0.531})
    with pytest.raises(registry.ScoresBelowActive, match=r"scored macro-F1 0\.531 on validation, below the active "
                                                         r"v1's 0\.970"):
        registry.promote_model_version(weaker)
    weaker.refresh_from_db(), active.refresh_from_db()
    assert (weaker.status, active.status) == (ModelStatus.CANDIDATE, ModelStatus.ACTIVE)
    assert registry.promote_model_version(weaker, accept_lower_score=True).status == ModelStatus.ACTIVE
    # As good or better, a version needs no such acknowledgement.
    assert registry.promote_model_version(_register(bundle_dir, "v2", metrics={"macro_f1": 0.531})).status == "active"
    # One with no figure cannot be weighed: it is not taken for as good, but replaces the active one on purpose.
    unweighed = _register(bundle_dir, "v3")
    with pytest.raises(registry.ScoresBelowActive, match=r"model v3 has no macro-F1 on validation to weigh against "
                                                         r"the active v2's 0\.531"):
        registry.promote_model_version(unweighed)
    assert registry.promote_model_version(unweighed, accept_lower_score=True).status == ModelStatus.ACTIVE
    # Against an active version with no figure either, there is nothing to fall short of.
    assert registry.promote_model_version(_register(bundle_dir, "v4")).status == ModelStatus.ACTIVE
    # Segmenters are weighed by their mean Dice, and only against the active segmenter.
    registry.promote_model_version(_register(bundle_dir, "s1", task="segment", metrics={"dice_mean": 0.779}))
    assert "mean Dice 0.700" in registry.shortfall_against_active(
        _register(bundle_dir, "s2", task="segment", metrics={"dice_mean": 0.7}))


def test_promote_model_command_refuses_a_lower_score_without_being_told(bundle_dir):
    registry.promote_model_version(_register(bundle_dir, "v1", metrics={"macro_f1": 0.97}))
    weaker = _register(bundle_dir, "v2", metrics={"macro_f1": 0.9})
    with pytest.raises(CommandError, match="below the active v1's 0.970. Not promoted; add --accept-lower-score"):
        call_command("promote_model", "--task", "classify", "--model-version", "v2")
    weaker.refresh_from_db()
    assert weaker.status == ModelStatus.CANDIDATE
    call_command("promote_model", "--task", "classify", "--model-version", "v2", "--accept-lower-score")
    weaker.refresh_from_db()
    assert weaker.status == ModelStatus.ACTIVE


def test_a_rollback_meant_from_one_version_goes_back_once(bundle_dir):
    """A second click, or a second tab showing the same page, must not go back two versions."""
    registry.promote_model_version(_register(bundle_dir, "v1"))
    v2 = registry.promote_model_version(_register(bundle_dir, "v2"))
    v3 = registry.promote_model_version(_register(bundle_dir, "v3"))
    assert registry.rollback_model("classify", from_version=v3.pk).pk == v2.pk
    with pytest.raises(registry.ActiveModelChanged, match=r"^The classification model serving is now v2, not the "
                                                          r"version you meant to go back from; nothing was changed\.$"):
        registry.rollback_model("classify", from_version=v3.pk)
    assert ModelVersion.objects.get(task="classify", status=ModelStatus.ACTIVE).pk == v2.pk


def test_a_lower_score_accepted_against_one_active_version_does_not_hold_against_the_next(bundle_dir):
    v1 = registry.promote_model_version(_register(bundle_dir, "v1", metrics={"macro_f1": 0.9}))
    weaker = _register(bundle_dir, "v2", metrics={"macro_f1": 0.5})
    v3 = registry.promote_model_version(_register(bundle_dir, "v3", metrics={"macro_f1": 0.99}))
    # Accepted on a page that weighed it against v1; v3 serves now, and it falls short of that one too.
    with pytest.raises(registry.ScoresBelowActive, match=r"below the active v3's 0\.990"):
        registry.promote_model_version(weaker, accept_lower_score=True, accepted_against=v1.pk)
    assert registry.promote_model_version(weaker, accept_lower_score=True, accepted_against=v3.pk).status == "active"


@pytest.mark.django_db(transaction=True)
def test_of_two_promotions_at_once_the_second_is_weighed_against_the_first(bundle_dir, monkeypatch):
    """C serves (0.70); A (0.95) and B (0.80) are promoted at the same moment. Whichever goes second must be
    weighed against the first: B, second, falls short of A and is refused."""
    registry.promote_model_version(_register(bundle_dir, "C", metrics={"macro_f1": 0.70}))
    a = _register(bundle_dir, "A", metrics={"macro_f1": 0.95})
    b = _register(bundle_dir, "B", metrics={"macro_f1": 0.80})
    verify = registry.verify_model_version
    inside_a, release_a = threading.Event(), threading.Event()

    def verify_holding_a(version):
        if version.pk == a.pk:
            inside_a.set()
            release_a.wait(10)
        return verify(version)

    monkeypatch.setattr(registry, "verify_model_version", verify_holding_a)
    outcome = {}

    def promote(version):
        try:
            outcome[version.version] = registry.promote_model_version(version).status
        except registry.ScoresBelowActive as refused:
            outcome[version.version] = refused
        finally:
            connections.close_all()

    first = threading.Thread(target=promote, args=(a,))
    first.start()
    assert inside_a.wait(10)
    second = threading.Thread(target=promote, args=(b,))
    second.start()
    second.join(1)
    assert second.is_alive(), "B's promotion did not wait for A's"
    release_a.set()
    first.join(10), second.join(10)
    assert outcome["A"] == ModelStatus.ACTIVE
    assert isinstance(outcome["B"], registry.ScoresBelowActive) and "below the active A's 0.950" in str(outcome["B"])
    assert ModelVersion.objects.get(task="classify", status=ModelStatus.ACTIVE).version == "A"
