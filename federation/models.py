"""Federated runs and their rounds. A run spans hospitals, so it has no single tenant: who may see it is
decided by its participants (federation/access.py)."""

from django.conf import settings
from django.db import models

from federation.learning import DEFAULT_PEAK_LR, DEFAULT_SERVER_STEP


class Strategy(models.TextChoices):
    FEDAVG = "fedavg", "FedAvg"
    FEDPROX = "fedprox", "FedProx"
    FEDADAM = "fedadam", "FedAdam"


class ModelKind(models.TextChoices):
    CLASSIFIER = "classifier", "Tumour classifier"
    SEGMENTER = "segmenter", "Tumour segmenter"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be submitted"
    SUBMITTED = "submitted", "Submitted to the SuperLink"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    STOPPED = "stopped", "Stopped"


FINISHED = {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED}


class FederatedRun(models.Model):
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    hospitals = models.ManyToManyField("hospitals.Hospital", related_name="federated_runs")
    status = models.CharField(max_length=12, choices=RunStatus.choices, default=RunStatus.PENDING, db_index=True)
    model_kind = models.CharField(max_length=12, choices=ModelKind.choices, default=ModelKind.CLASSIFIER)
    strategy = models.CharField(max_length=10, choices=Strategy.choices, default=Strategy.FEDAVG)
    num_rounds = models.PositiveSmallIntegerField(default=3)
    local_epochs = models.PositiveSmallIntegerField(default=1)
    batch_size = models.PositiveSmallIntegerField(default=32)
    image_size = models.PositiveSmallIntegerField(default=128)
    model_width = models.PositiveSmallIntegerField(default=32)
    # A round proceeds only with at least this many nodes; fewer, and the run fails with a reason.
    min_nodes = models.PositiveSmallIntegerField(default=2)
    proximal_mu = models.FloatField(default=0.01)
    server_learning_rate = models.FloatField(default=0.1)
    # FedAvg / FedProx: the global model moves this many times the nodes' averaged update (1 = plain average).
    server_step = models.FloatField(default=DEFAULT_SERVER_STEP)
    # The peak of the nodes' cosine learning-rate schedule across the run's rounds.
    learning_rate = models.FloatField(default=DEFAULT_PEAK_LR)
    # Nodes train the classifier with the logit-adjusted loss for their own case mix (learning.train_local).
    logit_adjustment = models.BooleanField(default=True)
    # Seeds the global model's initial weights and the nodes' shuffling: two runs with the same seed and
    # options differ only by thread timing, and one run can be repeated over seeds to measure its spread.
    seed = models.PositiveIntegerField(default=0)
    # Central differential privacy (server_app.with_central_dp: DP-FedAvg with fixed clipping); off when null.
    dp_noise_multiplier = models.FloatField(null=True, blank=True)
    dp_clipping_norm = models.FloatField(null=True, blank=True)
    # Per class, from the coordinator's validation split; 0 means the whole split.
    validation_per_class = models.PositiveIntegerField(default=0)
    # flwr run ids are unsigned 64-bit: they do not fit a signed BigIntegerField.
    flower_run_id = models.CharField(max_length=24, blank=True, default="", db_index=True)
    failure_reason = models.TextField(blank=True, default="")
    # Hospitals whose node did not answer a round: [{"round": n, "hospital": slug, "reason": "..."}].
    dropouts = models.JSONField(default=list, blank=True)
    final_metrics = models.JSONField(default=dict, blank=True)
    weights_path = models.CharField(max_length=255, blank=True, default="")
    # The registry's ModelVersion made from this run (diagnostics.registry), kept as its id.
    model_version_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The delivery of the task that follows the run (federation.tasks.follow_run), its Celery task id, and
    # when it last said it was alive. A run whose follower fell silent (its worker killed) has nobody
    # enforcing its deadline: `requeue_runs` hands it to the queue again rather than wait for the broker to
    # redeliver the task an hour later.
    followed_by = models.CharField(max_length=64, blank=True, default="")
    followed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"federated run {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


class FederatedRound(models.Model):
    run = models.ForeignKey(FederatedRun, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    # Coordinator-side evaluation of the aggregated model on its own validation set.
    global_loss = models.FloatField(null=True, blank=True)
    global_accuracy = models.FloatField(null=True, blank=True)
    global_macro_f1 = models.FloatField(null=True, blank=True)
    # Node-side evaluation, weighted by each node's number of cases.
    client_loss = models.FloatField(null=True, blank=True)
    client_accuracy = models.FloatField(null=True, blank=True)
    # [{"hospital", "node_id", "num_examples", "train_loss", "train_accuracy", "train_s", "eval_loss", ...}]
    nodes = models.JSONField(default=list, blank=True)
    dropouts = models.JSONField(default=list, blank=True)
    bytes_sent = models.BigIntegerField(default=0)
    bytes_received = models.BigIntegerField(default=0)
    # The nodes' own compute on the round's critical path (slowest training + slowest evaluation),
    # to set against duration_s.
    node_compute_s = models.FloatField(null=True, blank=True)
    server_eval_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="one_row_per_round")]

    def __str__(self):
        return f"round {self.number} of run {self.run_id}"


class NodeEnrolment(models.Model):
    """A hospital's SuperNode as registered with the SuperLink (federation.services.enrol_node).

    With node authentication the SuperLink gives a registered public key its node id, and only the
    holder of the private key can connect under it; binding that id to the hospital here is what lets
    the coordinator believe a node's claim to serve the hospital (federation.server_app). One node per
    hospital: a second node would train on the same cases and count them twice.
    """

    hospital = models.OneToOneField("hospitals.Hospital", on_delete=models.CASCADE, related_name="federation_node")
    # flwr node ids are unsigned 64-bit, like run ids.
    node_id = models.CharField(max_length=24, unique=True)
    public_key = models.TextField()
    enrolled_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"node {self.node_id} of {self.hospital_id}"
