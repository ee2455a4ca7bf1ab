"""The federated-runs API: the operator starts, stops and promotes; participating admins watch."""

import numpy as np
import pytest

from federation.models import FederatedRound, FederatedRun, RunStatus
from federation.services import HOSPITAL_RUN_MAX_ROUNDS
from hospitals.models import AuditEvent, Hospital
from tests.factories import add_reviewed_case, make_hospital, make_user

RUNS = "/api/v1/federation/runs/"


@pytest.fixture
def operator(db):
    return make_user("operator@neurofed.example", is_superuser=True, is_staff=True)


@pytest.fixture
def opted_in(world):
    Hospital.objects.filter(pk__in=[world.a.pk, world.b.pk]).update(federation_opt_in=True)
    world.a.refresh_from_db()
    world.b.refresh_from_db()
    for hospital in (world.a, world.b):
        add_reviewed_case(hospital)
    return world


def make_run(*hospitals, **fields):
    run = FederatedRun.objects.create(**fields)
    run.hospitals.set(hospitals)
    return run


def test_operator_starts_a_run_and_its_task_is_queued(api, operator, opted_in, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "num_rounds": 2,
                                             "strategy": "fedprox", "dp_noise_multiplier": 0.5,
                                             "dp_clipping_norm": 2.0}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending" and sorted(body["hospitals"]) == ["north-general", "st-anne"]
    assert body["strategy"] == "fedprox" and body["dp_noise_multiplier"] == 0.5
    # Noise of half the clipping norm over two rounds: μ = 2·√2 / 0.5, a weak guarantee.
    assert body["dp_guarantee"] == {"epsilon": pytest.approx(39.38, abs=0.01), "delta": 1e-5, "rounds": 2}
    assert len(callbacks) == 1  # follow_federated_run.delay after commit


def test_a_run_without_differential_privacy_has_no_guarantee(api, operator, opted_in):
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "num_rounds": 2}, format="json")
    assert response.status_code == 201 and response.json()["dp_guarantee"] is None


def test_in_embedded_mode_a_run_is_refused_with_a_sentence_and_not_created(api, operator, opted_in, settings):
    # Embedded mode (platform/settings.py): no broker, so no worker to submit a run and no SuperLink.
    settings.CELERY_BROKER_URL = ""
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "num_rounds": 2}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "needs_services_mode"
    assert "needs the services mode" in response.json()["detail"]
    response = api(opted_in.admin_a).post("/api/v1/hospitals/st-anne/federation/runs/",
                                          {"model_kind": "classifier", "num_rounds": 2}, format="json")
    assert response.status_code == 409 and response.json()["error"] == "needs_services_mode"
    assert not FederatedRun.objects.exists()


def test_the_nodes_learning_rate_is_chosen_per_run(api, operator, opted_in):
    chosen = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "learning_rate": 0.005},
                                format="json")
    assert chosen.status_code == 201 and chosen.json()["learning_rate"] == 0.005
    default = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert default.status_code == 201 and default.json()["learning_rate"] == 0.002
    refused = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "learning_rate": 5},
                                 format="json")
    assert refused.status_code == 400 and "learning_rate" in refused.json()["fields"]


def test_the_server_step_is_chosen_per_run_and_out_of_range_steps_are_refused(api, operator, opted_in):
    default = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert default.status_code == 201 and default.json()["server_step"] == 1.5
    plain = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "server_step": 1.0}, format="json")
    assert plain.status_code == 201 and FederatedRun.objects.get(pk=plain.json()["id"]).server_step == 1.0
    for step in (0, 10):
        refused = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "server_step": step},
                                     format="json")
        assert refused.status_code == 400 and "server_step" in refused.json()["fields"]


def test_a_run_can_be_repeated_with_another_seed_and_a_negative_seed_is_refused(api, operator, opted_in):
    default = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert default.status_code == 201 and default.json()["seed"] == 0
    chosen = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "seed": 3}, format="json")
    assert chosen.status_code == 201 and FederatedRun.objects.get(pk=chosen.json()["id"]).seed == 3
    refused = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "seed": -1}, format="json")
    assert refused.status_code == 400 and "seed" in refused.json()["fields"]


def test_nodes_train_for_class_balanced_output_unless_the_operator_says_otherwise(api, operator, opted_in):
    default = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert default.status_code == 201 and default.json()["logit_adjustment"] is True
    plain = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "logit_adjustment": False},
                               format="json")
    assert plain.status_code == 201 and plain.json()["logit_adjustment"] is False
    assert FederatedRun.objects.get(pk=plain.json()["id"]).logit_adjustment is False


def test_a_hospital_that_has_not_opted_in_cannot_be_enrolled(api, operator, world):
    world.a.federation_opt_in = True
    world.a.save()
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert response.status_code == 409  # as a hospital admin's start answers it
    assert response.json()["error"] == "not_opted_in"
    assert "north-general" in response.json()["detail"]
    assert not FederatedRun.objects.exists()


def test_unknown_hospitals_and_dp_without_a_clipping_norm_are_refused(api, operator, opted_in):
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "nowhere"]}, format="json")
    assert response.status_code == 400 and response.json()["error"] == "invalid"
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "dp_noise_multiplier": 1.0},
                                  format="json")
    assert response.status_code == 400 and "dp_clipping_norm" in response.json()["fields"]
    # A clipping norm alone turned nothing on; with FedAdam the server optimizer weakens the guarantee.
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "dp_clipping_norm": 1.0},
                                  format="json")
    assert response.status_code == 400 and "dp_noise_multiplier" in response.json()["fields"]
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "dp_noise_multiplier": 1.0,
                                         "dp_clipping_norm": 1.0, "strategy": "fedadam"}, format="json")
    assert response.status_code == 400 and "FedAvg or FedProx" in response.json()["fields"]["strategy"][0]
    # No noise protects nothing: refused rather than reported as differential privacy.
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "dp_noise_multiplier": 0,
                                         "dp_clipping_norm": 1.0}, format="json")
    assert response.status_code == 400 and "adds no noise" in response.json()["fields"]["dp_noise_multiplier"][0]
    # Nor noise too weak for any figure to mean something: it had made every run listing a 500.
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "dp_noise_multiplier": 1e-10,
                                         "dp_clipping_norm": 1.0}, format="json")
    assert response.status_code == 400 and "protects nothing worth the name" in response.content.decode()
    assert not FederatedRun.objects.exists()


@pytest.mark.parametrize("who", ["admin_a", "doctor_a", "outsider"])
def test_only_the_operator_starts_runs(api, opted_in, who):
    response = api(getattr(opted_in, who)).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_anonymous_gets_nothing(api, opted_in):
    run = make_run(opted_in.a, opted_in.b)
    for response in (api().get(RUNS), api().get(f"{RUNS}{run.pk}/"), api().post(RUNS, {}, format="json"),
                     api().post(f"{RUNS}{run.pk}/stop/"), api().post(f"{RUNS}{run.pk}/promote/")):
        assert response.status_code in (401, 403)


def test_participating_admins_watch_and_others_get_404(api, opted_in, operator):
    c = Hospital.objects.create(slug="third", name="Third")
    run_a = make_run(opted_in.a, c)
    FederatedRound.objects.create(run=run_a, number=1, started_at=run_a.created_at, global_accuracy=0.5)
    run_b = make_run(opted_in.b, c)

    listed = api(opted_in.admin_a).get(RUNS).json()["results"]
    assert [r["id"] for r in listed] == [run_a.pk]
    detail = api(opted_in.admin_a).get(f"{RUNS}{run_a.pk}/").json()
    assert detail["rounds"][0]["global_accuracy"] == 0.5
    # B's admin, a doctor of A (not an admin) and anybody for a run that does not exist: the same 404.
    assert api(opted_in.admin_b).get(f"{RUNS}{run_a.pk}/").status_code == 404
    assert api(opted_in.doctor_a).get(f"{RUNS}{run_a.pk}/").status_code == 404
    assert api(opted_in.outsider).get(f"{RUNS}{run_a.pk}/").status_code == 404
    assert api(opted_in.admin_a).get(f"{RUNS}{run_b.pk}/").status_code == 404
    assert api(opted_in.admin_a).get(f"{RUNS}999999/").status_code == 404
    assert api(opted_in.admin_a).get(f"{RUNS}not-a-number/").status_code == 404
    assert api(opted_in.doctor_a).get(RUNS).json()["results"] == []
    assert {r["id"] for r in api(operator).get(RUNS).json()["results"]} == {run_a.pk, run_b.pk}


def test_admins_cannot_stop_or_promote_and_outsiders_get_404(api, opted_in):
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.RUNNING)
    assert api(opted_in.admin_a).post(f"{RUNS}{run.pk}/stop/").status_code == 403
    assert api(opted_in.admin_a).post(f"{RUNS}{run.pk}/promote/").status_code == 403
    outsider_only = make_run(opted_in.a)
    assert api(opted_in.admin_b).post(f"{RUNS}{outsider_only.pk}/stop/").status_code == 404
    assert api(opted_in.outsider).post(f"{RUNS}{outsider_only.pk}/promote/").status_code == 404


def test_operator_stops_a_run_without_a_superlink_run_yet(api, operator, opted_in):
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.PENDING)
    response = api(operator).post(f"{RUNS}{run.pk}/stop/")
    assert response.status_code == 200
    assert response.json()["status"] == "stopped"
    again = api(operator).post(f"{RUNS}{run.pk}/stop/")
    assert again.status_code == 409 and again.json()["error"] == "run_finished"


def test_a_stop_that_comes_after_the_run_ended_is_refused_and_leaves_no_stop_in_the_audit_log(operator, opted_in):
    """The operator's page read the run while it was running; it completed before the stop reached it."""
    from federation import services
    from hospitals.errors import DomainError

    run = make_run(opted_in.a, opted_in.b, status=RunStatus.RUNNING)
    read_while_running = FederatedRun.objects.get(pk=run.pk)
    FederatedRun.objects.filter(pk=run.pk).update(status=RunStatus.COMPLETED)
    with pytest.raises(DomainError) as refused:
        services.stop_federated_run(run=read_while_running, actor=operator)
    assert refused.value.code == "run_finished" and refused.value.status == 409
    assert FederatedRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED
    assert not AuditEvent.objects.filter(action="federation.run_stop").exists()


def test_a_stop_racing_the_runs_submission_stops_the_flower_run_its_follower_recorded(operator, opted_in,
                                                                                      monkeypatch):
    """The stop read the run before its follower recorded the Flower run: that run is stopped all the same,
    or its ServerApp would train on the hospitals' nodes to the end, beside the next run."""
    from federation import control, services

    stopped = []
    monkeypatch.setattr(control, "stop_run", lambda home, flower_run_id: stopped.append(flower_run_id))
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.PENDING)
    read_before_the_submission = FederatedRun.objects.get(pk=run.pk)
    services.mark_submitted(run.pk, "4242")
    services.stop_federated_run(run=read_before_the_submission, actor=operator)
    run.refresh_from_db()
    assert (run.status, run.flower_run_id, stopped) == (RunStatus.STOPPED, "4242", ["4242"])


def test_a_run_without_a_candidate_cannot_be_promoted(api, operator, opted_in):
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.FAILED)
    response = api(operator).post(f"{RUNS}{run.pk}/promote/")
    assert response.status_code == 409 and response.json()["error"] == "no_candidate"


def test_hospital_admin_opts_in_through_the_settings_endpoint(api, world):
    url = f"/api/v1/hospitals/{world.a.slug}/settings/"
    assert api(world.admin_a).patch(url, {"federation_opt_in": True}, format="json").status_code == 200
    world.a.refresh_from_db()
    assert world.a.federation_opt_in
    assert api(world.outsider).patch(url, {"federation_opt_in": False}, format="json").status_code == 404
    assert api(world.doctor_a).patch(url, {"federation_opt_in": False}, format="json").status_code == 403


# --- per-site figures ----------------------------------------------------------------------------------

B_ERROR = "node error: Traceback in /srv/north-general/node.py: out of memory"


@pytest.fixture
def run_with_sites(opted_in):
    """A failed run over A and B whose round, dropouts and failure name both sites and quote B's node."""
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.FAILED,
                   failure_reason=f"Round 2 (train): only 1 of 2 nodes replied. {B_ERROR}",
                   dropouts=[{"round": 2, "phase": "train", "hospital": "north-general", "node_id": "77",
                              "reason": B_ERROR}],
                   final_metrics={"accuracy": 0.6, "wire": {"inspected_replies": 3, "rejected_replies": [
                       {"node_id": "77", "problem": "metrics ['patient-ids'] are not on the list"}]}})
    FederatedRound.objects.create(
        run=run, number=1, started_at=run.created_at, global_accuracy=0.61, client_accuracy=0.62, node_compute_s=31.0,
        nodes=[{"hospital": "north-general", "node_id": "77", "num_examples": 412, "eval_accuracy": 0.64,
                "train_s": 31.0},
               {"hospital": "st-anne", "node_id": "12", "num_examples": 120, "eval_accuracy": 0.6, "train_s": 9.0}],
        dropouts=[{"round": 1, "phase": "train", "hospital": "north-general", "node_id": "77", "reason": B_ERROR}])
    return run


def test_an_admin_reads_the_global_figures_and_only_their_own_hospitals_node(api, opted_in, run_with_sites):
    detail = api(opted_in.admin_a).get(f"{RUNS}{run_with_sites.pk}/").json()
    listed = api(opted_in.admin_a).get(RUNS).json()["results"][0]
    for body in (detail, listed):
        round_1 = body["rounds"][0]
        assert round_1["global_accuracy"] == 0.61 and round_1["client_accuracy"] == 0.62
        assert round_1["nodes"] == [{"hospital": "st-anne", "node_id": "12", "num_examples": 120,
                                     "eval_accuracy": 0.6, "train_s": 9.0}]
        assert round_1["other_hospitals"] == 1
        # The slowest node's time is B's (31 s, growing with its cases): withheld beside another hospital.
        assert round_1["node_compute_s"] is None
        # Every key an admin reads is one the schema's Round documents.
        from federation.api.serializers import RoundSerializer

        assert set(round_1) <= set(RoundSerializer().fields)
        assert round_1["dropouts"] == [{"round": 1, "phase": "train", "other_hospital": True}]
        assert body["dropouts"] == [{"round": 2, "phase": "train", "other_hospital": True}]
        assert body["failure_reason"] == "The run failed before it finished. The platform operator has the details."
        assert body["final_metrics"] == {"accuracy": 0.6, "wire": {"inspected_replies": 3, "rejected_replies": 1}}
        # B appears as a participant, and nowhere else: not its node, its case count or its errors.
        text = str({key: value for key, value in body.items() if key != "hospitals"})
        assert "north-general" not in text and "412" not in text and "out of memory" not in text
        # B's node id as a value ('77'), not any 77: a timestamp's digits may hold one.
        assert "'77'" not in text and "patient-ids" not in text
    # B's admin, symmetrically, reads B's node and not A's.
    b_round = api(opted_in.admin_b).get(f"{RUNS}{run_with_sites.pk}/").json()["rounds"][0]
    assert [n["hospital"] for n in b_round["nodes"]] == ["north-general"] and b_round["other_hospitals"] == 1
    assert b_round["dropouts"][0]["reason"] == B_ERROR


def test_the_operator_reads_every_sites_figures(api, operator, run_with_sites):
    body = api(operator).get(f"{RUNS}{run_with_sites.pk}/").json()
    assert [n["hospital"] for n in body["rounds"][0]["nodes"]] == ["north-general", "st-anne"]
    assert "other_hospitals" not in body["rounds"][0] and body["rounds"][0]["node_compute_s"] == 31.0
    assert body["dropouts"][0]["reason"] == B_ERROR and B_ERROR in body["failure_reason"]
    assert body["final_metrics"]["wire"]["rejected_replies"][0]["node_id"] == "77"


@pytest.mark.parametrize("who", ["doctor_a", "outsider", "patient_a"])
def test_teammates_without_the_admin_role_and_outsiders_read_no_figures(api, opted_in, run_with_sites, who):
    assert api(getattr(opted_in, who)).get(f"{RUNS}{run_with_sites.pk}/").status_code == 404
    assert api(getattr(opted_in, who)).get(RUNS).json()["results"] == []


# --- a hospital admin starts a run over the opted-in hospitals (DESIGN §2) -----------------------------


def hospital_runs(hospital):
    return f"/api/v1/hospitals/{hospital.slug}/federation/runs/"


def test_an_admin_starts_a_run_over_every_opted_in_hospital(api, opted_in, django_capture_on_commit_callbacks):
    third = make_hospital("riverside", "Riverside")  # has not opted in: not part of the run
    # The segmenter learns only from cases with an outline: the labels-only cases of the fixture are not enough.
    refused = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {"model_kind": "segmenter"}, format="json")
    assert refused.status_code == 409 and refused.json()["detail"] == (
        "A run of the tumour segmenter needs at least 2 hospitals with at least 1 case each to train on (tumours "
        "whose outline a doctor drew or corrected); St Anne's has fewer than that.")
    outline = np.zeros((64, 64), bool)
    outline[20:30, 20:30] = True
    add_reviewed_case(opted_in.a, "meningioma", mask=outline)
    refused = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {"model_kind": "segmenter"}, format="json")
    assert refused.json()["detail"].endswith("; St Anne's has enough, and too few of the other hospitals taking part "
                                             "have enough.")
    add_reviewed_case(opted_in.b, "notumor")  # an empty outline teaches the segmenter only to find nothing
    assert api(opted_in.admin_a).post(hospital_runs(opted_in.a), {"model_kind": "segmenter"},
                                      format="json").status_code == 409
    add_reviewed_case(opted_in.b, "pituitary", mask=outline)
    assert not FederatedRun.objects.exists()
    with django_capture_on_commit_callbacks() as callbacks:
        response = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {"model_kind": "segmenter",
                                                                          "num_rounds": 5}, format="json")
    assert response.status_code == 201, response.json()
    run = FederatedRun.objects.get(pk=response.json()["id"])
    assert sorted(h.slug for h in run.hospitals.all()) == ["north-general", "st-anne"] and third not in run.hospitals.all()
    assert (run.model_kind, run.num_rounds, run.created_by) == ("segmenter", 5, opted_in.admin_a)
    assert (run.strategy, run.local_epochs, run.image_size) == ("fedavg", 1, 128)  # the platform's defaults
    assert len(callbacks) == 1
    started = AuditEvent.objects.filter(action="federation.run_start")
    assert started.filter(hospital_id=opted_in.a.pk, actor_id=opted_in.admin_a.pk).exists()
    # The other hospital reads which hospital started it, not who there, nor from which address.
    assert list(started.filter(hospital_id=opted_in.b.pk).values_list("actor_id", "actor_label", "client_address",
                                                                      "detail")) == \
        [(None, "", None, f"Started by an admin of {opted_in.a.name}.")]


def test_a_hospital_with_fewer_cases_than_a_nodes_minimum_does_not_count_towards_a_run(api, operator, opted_in,
                                                                                      settings):
    """A weight update from a handful of patients says too much about each: a hospital counts towards a run
    only with FEDERATION_MIN_NODE_CASES cases (its node refuses to train on fewer: test_client_data)."""
    settings.FEDERATION_MIN_NODE_CASES = 3
    add_reviewed_case(opted_in.a, "meningioma")  # St Anne's: 2, North General: 1
    add_reviewed_case(opted_in.b, "pituitary"), add_reviewed_case(opted_in.b, "notumor")  # North General: 3
    refused = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "too_few_training_cases"
    assert refused.json()["detail"] == (
        "A run of the tumour classifier needs at least 2 hospitals with at least 3 cases each to train on (scans a "
        "doctor has reviewed); St Anne's has fewer than that.")
    by_operator = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert by_operator.status_code == 409 and by_operator.json()["detail"].endswith(
        "; St Anne's has fewer than that: leave it out, or start the run once more cases are reviewed there.")
    assert not FederatedRun.objects.exists()
    add_reviewed_case(opted_in.a, "glioma")
    assert api(opted_in.admin_a).post(hospital_runs(opted_in.a), {}, format="json").status_code == 201


def test_an_admins_run_leaves_out_a_hospital_with_too_few_cases(api, opted_in, settings):
    """A hospital under the minimum would fail every round, and a DP run sized for it would add too little
    noise to the others' updates: it is not part of the run. The admin is not told which hospital it was."""
    settings.FEDERATION_MIN_NODE_CASES = 2
    short = make_hospital("riverside", "Riverside")
    Hospital.objects.filter(pk=short.pk).update(federation_opt_in=True)
    add_reviewed_case(short)
    for hospital in (opted_in.a, opted_in.b):
        add_reviewed_case(hospital, "pituitary")
    response = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {}, format="json")
    assert response.status_code == 201, response.json()
    run = FederatedRun.objects.get(pk=response.json()["id"])
    assert sorted(h.slug for h in run.hospitals.all()) == ["north-general", "st-anne"]
    assert not AuditEvent.objects.filter(action="federation.run_start", hospital_id=short.pk).exists()


def test_a_segmenter_run_is_refused_where_a_hospitals_only_tumour_outline_is_empty(api, opted_in):
    """An outline with no pixel (a doctor erased the software's and drew none) gives the node nothing to
    learn a tumour from: the hospital has no case for the segmenter, and the run is refused up front
    rather than failing in its first round."""
    outline = np.zeros((64, 64), bool)
    add_reviewed_case(opted_in.b, "glioma", mask=outline)
    outline[20:30, 20:30] = True
    add_reviewed_case(opted_in.a, "meningioma", mask=outline)
    refused = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {"model_kind": "segmenter"}, format="json")
    assert refused.status_code == 409 and refused.json()["detail"].endswith(
        "; St Anne's has enough, and too few of the other hospitals taking part have enough.")
    assert not FederatedRun.objects.exists()


def test_an_admin_is_not_told_which_other_hospitals_have_cases(api, opted_in):
    """Whether another hospital has reviewed cases is that hospital's to tell: the refusal speaks of the
    admin's own hospital only (the operator, who starts runs for all, is told which)."""
    outline = np.zeros((64, 64), bool)
    outline[20:30, 20:30] = True
    add_reviewed_case(opted_in.b, "glioma", mask=outline)
    refused = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {"model_kind": "segmenter"}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "too_few_training_cases"
    assert refused.json()["detail"].endswith("; St Anne's has fewer than that.")
    assert "North General" not in refused.json()["detail"]


def test_an_admin_cannot_start_a_second_run_while_one_is_unfinished(api, opted_in):
    busy = make_run(opted_in.b, status=RunStatus.RUNNING)
    refused = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "run_in_progress"
    assert f"Run {busy.pk}" in refused.json()["detail"]
    FederatedRun.objects.filter(pk=busy.pk).update(status=RunStatus.COMPLETED)
    assert api(opted_in.admin_a).post(hospital_runs(opted_in.a), {}, format="json").status_code == 201


def test_an_admin_whose_hospital_has_not_opted_in_or_has_no_partner_is_told_why(api, world):
    refused = api(world.admin_a).post(hospital_runs(world.a), {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "not_opted_in"
    Hospital.objects.filter(pk=world.a.pk).update(federation_opt_in=True)
    alone = api(world.admin_a).post(hospital_runs(world.a), {}, format="json")
    assert alone.status_code == 400 and alone.json()["error"] == "too_few_hospitals"
    assert alone.json()["detail"] == "A run needs at least 2 hospitals; only 1 was given."
    assert not FederatedRun.objects.exists()


def test_the_admin_chooses_only_model_and_rounds_within_bounds(api, opted_in):
    for body in ({"num_rounds": 0}, {"num_rounds": HOSPITAL_RUN_MAX_ROUNDS + 1}, {"model_kind": "vgg"}):
        refused = api(opted_in.admin_a).post(hospital_runs(opted_in.a), body, format="json")
        assert refused.status_code == 400, body
    assert not FederatedRun.objects.exists()
    at_most = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {"num_rounds": HOSPITAL_RUN_MAX_ROUNDS},
                                         format="json")
    assert at_most.status_code == 201 and at_most.json()["num_rounds"] == HOSPITAL_RUN_MAX_ROUNDS


@pytest.mark.parametrize("who, status", [("doctor_a", 403), ("patient_a", 403), ("admin_b", 404), ("doctor_b", 404)])
def test_teammates_without_the_admin_role_get_403_and_outsiders_404(api, opted_in, who, status):
    response = api(getattr(opted_in, who)).post(hospital_runs(opted_in.a), {}, format="json")
    assert response.status_code == status
    assert not FederatedRun.objects.exists()


def test_a_validation_size_beyond_what_a_run_can_record_is_refused_with_a_sentence(api, operator, opted_in):
    refused = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "validation_per_class": 2**31},
                                 format="json")
    assert refused.status_code == 400 and "validation_per_class" in refused.json()["fields"]
    assert not FederatedRun.objects.exists()
    chosen = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"], "validation_per_class": 50},
                                format="json")
    assert chosen.status_code == 201 and chosen.json()["validation_per_class"] == 50


@pytest.mark.django_db(transaction=True)
def test_a_run_the_task_queue_cannot_take_fails_at_once_and_holds_no_hospital(api, operator, opted_in, broker_down):
    # Committed for real: the run is handed to the federation worker when its transaction commits.
    response = api(operator).post(RUNS, {"hospitals": ["st-anne", "north-general"]}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "failed" and "task queue could not take" in response.json()["failure_reason"]
    run = FederatedRun.objects.get(pk=response.json()["id"])
    assert run.status == RunStatus.FAILED and run.finished_at is not None
    # Not left pending: the hospitals' admins are not told a run is still in progress.
    again = api(opted_in.admin_a).post(hospital_runs(opted_in.a), {}, format="json")
    assert again.status_code == 201 and again.json()["status"] == "failed"


def test_a_run_model_that_scored_lower_than_the_active_one_is_promoted_only_on_purpose(api, operator, opted_in,
                                                                                      tmp_path):
    from diagnostics import registry
    from tests.diagnostics.helpers import register_classifier

    registry.promote_model_version(register_classifier(tmp_path, "v1", {"macro_f1": 0.97}))
    candidate = register_classifier(tmp_path, "federated-9", {"macro_f1": 0.4})
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.COMPLETED, model_version_id=str(candidate.pk))
    refused = api(operator).post(f"{RUNS}{run.pk}/promote/", {}, format="json")
    assert refused.status_code == 409 and refused.json()["error"] == "scores_below_active"
    assert "macro-F1 0.400 on validation, below the active v1's 0.970" in refused.json()["detail"]
    candidate.refresh_from_db()
    assert candidate.status == "candidate"
    assert api(operator).post(f"{RUNS}{run.pk}/promote/", {"accept_lower_score": True},
                              format="json").status_code == 200
    candidate.refresh_from_db()
    assert candidate.status == "active"


def test_a_lower_score_accepted_against_one_version_does_not_replace_another_promoted_since(api, operator, opted_in,
                                                                                             tmp_path):
    """The refusal named v1; by the time the operator accepts the lower score, v2 serves: the acceptance was
    not about v2, so the candidate is weighed against it and refused again."""
    from diagnostics import registry
    from tests.diagnostics.helpers import register_classifier

    registry.promote_model_version(register_classifier(tmp_path, "v1", {"macro_f1": 0.97}))
    candidate = register_classifier(tmp_path, "federated-9", {"macro_f1": 0.4})
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.COMPLETED, model_version_id=str(candidate.pk))
    assert "below the active v1's" in api(operator).post(f"{RUNS}{run.pk}/promote/", {}, format="json").json()["detail"]
    registry.promote_model_version(register_classifier(tmp_path, "v2", {"macro_f1": 0.98}))
    promote = f"{RUNS}{run.pk}/promote/"
    refused = api(operator).post(promote, {"accept_lower_score": True, "accepted_against": "v1"}, format="json")
    assert refused.status_code == 409 and "below the active v2's 0.980" in refused.json()["detail"]
    unknown = api(operator).post(promote, {"accept_lower_score": True, "accepted_against": "v9"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["error"] == "unknown_version"
    candidate.refresh_from_db()
    assert candidate.status == "candidate"
    accepted = api(operator).post(promote, {"accept_lower_score": True, "accepted_against": "v2"}, format="json")
    assert accepted.status_code == 200
    candidate.refresh_from_db()
    assert candidate.status == "active"


def test_promoting_a_runs_model_again_changes_nothing_and_is_recorded_once(api, operator, opted_in, tmp_path):
    """A second press of Promote, or a retried request, finds the model already serving: each hospital's
    audit log says once that it was promoted, and the model keeps the time it began serving."""
    from tests.diagnostics.helpers import register_classifier

    candidate = register_classifier(tmp_path, "federated-9", {"macro_f1": 0.9})
    run = make_run(opted_in.a, opted_in.b, status=RunStatus.COMPLETED, model_version_id=str(candidate.pk))
    assert api(operator).post(f"{RUNS}{run.pk}/promote/", {}, format="json").status_code == 200
    candidate.refresh_from_db()
    serving_since = candidate.activated_at
    again = api(operator).post(f"{RUNS}{run.pk}/promote/", {}, format="json")
    assert again.status_code == 200
    candidate.refresh_from_db()
    assert candidate.status == "active" and candidate.activated_at == serving_since
    for hospital in (opted_in.a, opted_in.b):
        assert AuditEvent.objects.filter(action="federation.model_promote", hospital_id=hospital.pk).count() == 1
