from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from federation.access import own_sites, run_view
from federation.learning import DEFAULT_PEAK_LR, DEFAULT_SERVER_STEP
from federation.models import FederatedRound, FederatedRun, ModelKind, Strategy
from federation.privacy_budget import run_guarantee
from federation.services import HOSPITAL_RUN_DEFAULT_ROUNDS, HOSPITAL_RUN_MAX_ROUNDS
from hospitals.models import Hospital


class RoundSerializer(serializers.ModelSerializer):
    # No attribute of a round: federation.access.round_view adds it for a hospital's admin, whose `nodes`
    # lists their own sites only; elsewhere it is skipped.
    other_hospitals = serializers.IntegerField(
        required=False,  # not read_only, which the schema would list as always present
        help_text="For a hospital's admin: how many other hospitals' nodes took part in the round (their "
                  "figures are theirs, so `nodes` leaves them out). Absent for the platform operator.")

    class Meta:
        model = FederatedRound
        fields = ["number", "started_at", "finished_at", "duration_s", "global_loss", "global_accuracy",
                  "global_macro_f1", "client_loss", "client_accuracy", "nodes", "dropouts", "bytes_sent",
                  "bytes_received", "node_compute_s", "server_eval_s", "other_hospitals"]


class PrivacyGuaranteeSerializer(serializers.Serializer):
    epsilon = serializers.FloatField(read_only=True, allow_null=True,
                                     help_text="null: the noise is too weak for any figure to mean something")
    delta = serializers.FloatField(read_only=True)
    rounds = serializers.IntegerField(read_only=True, help_text="the rounds it holds for: the run's planned "
                                                                "rounds (one stopped early released fewer)")


class RunSerializer(serializers.ModelSerializer):
    """A run as its watcher may see it: pass context={"viewer": user} (or the request); without a viewer
    no hospital's own figures are shown."""

    hospitals = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    rounds = RoundSerializer(many=True, read_only=True)
    dp_guarantee = serializers.SerializerMethodField(
        help_text="Central differential privacy: (ε, δ) for everything one hospital contributes, against "
                  "whoever receives the rounds' models (federation/privacy_budget.py); null without it")

    class Meta:
        model = FederatedRun
        fields = ["id", "status", "hospitals", "model_kind", "strategy", "num_rounds", "local_epochs", "batch_size",
                  "image_size", "model_width", "min_nodes", "proximal_mu", "server_learning_rate",
                  "server_step", "learning_rate", "logit_adjustment", "seed", "dp_noise_multiplier",
                  "dp_clipping_norm", "dp_guarantee", "validation_per_class", "flower_run_id", "failure_reason", "dropouts", "final_metrics",
                  "model_version_id", "created_at", "started_at", "finished_at", "rounds"]
        read_only_fields = fields

    def _own_sites(self):
        # Once per serializer, not per run of a list.
        if "own_sites" not in self.context:
            request = self.context.get("request")
            viewer = self.context.get("viewer", getattr(request, "user", None))
            self.context["own_sites"] = own_sites(viewer)
        return self.context["own_sites"]

    @extend_schema_field(PrivacyGuaranteeSerializer(allow_null=True))
    def get_dp_guarantee(self, run):
        return run_guarantee(run)

    def to_representation(self, instance):
        return run_view(super().to_representation(instance), self._own_sites())


class RunPromoteSerializer(serializers.Serializer):
    # One model serves every hospital: one that scored lower than the active model is promoted only on purpose.
    accept_lower_score = serializers.BooleanField(default=False)
    accepted_against = serializers.CharField(
        required=False, max_length=64,
        help_text="With accept_lower_score: the active version the lower score was accepted against, as the "
                  "scores_below_active refusal names it (e.g. \"v3\"). If another version serves by the time the "
                  "promotion is made, the acceptance does not hold and the candidate is weighed against that one.")


class TrainingCasesSerializer(serializers.Serializer):
    reviewed_cases = serializers.IntegerField(read_only=True, help_text="Scans a doctor of this hospital has "
                                                                        "reviewed: what a classifier run trains on.")
    outlined_tumours = serializers.IntegerField(read_only=True, help_text="Reviewed tumours whose outline a doctor "
                                                                          "drew or corrected: what a segmenter run "
                                                                          "trains on.")
    minimum_cases = serializers.IntegerField(read_only=True, help_text="The fewest of these a hospital takes part "
                                                                       "in a run with (FEDERATION_MIN_NODE_CASES).")


class StartHospitalRunSerializer(serializers.Serializer):
    model_kind = serializers.ChoiceField(ModelKind.choices, default=ModelKind.CLASSIFIER)
    num_rounds = serializers.IntegerField(min_value=1, max_value=HOSPITAL_RUN_MAX_ROUNDS,
                                          default=HOSPITAL_RUN_DEFAULT_ROUNDS)


# z = 0.1 over one round is already ε ≈ 284 at δ = 1e-5 (federation/privacy_budget.py).
MIN_NOISE_MULTIPLIER = 0.1


class StartRunSerializer(serializers.Serializer):
    hospitals = serializers.ListField(child=serializers.SlugField(), min_length=1, max_length=100)
    model_kind = serializers.ChoiceField(ModelKind.choices, default=ModelKind.CLASSIFIER)
    strategy = serializers.ChoiceField(Strategy.choices, default=Strategy.FEDAVG)
    num_rounds = serializers.IntegerField(min_value=1, max_value=200, default=3)
    local_epochs = serializers.IntegerField(min_value=1, max_value=50, default=1)
    batch_size = serializers.IntegerField(min_value=1, max_value=512, default=32)
    image_size = serializers.IntegerField(min_value=32, max_value=256, default=128)
    model_width = serializers.IntegerField(min_value=2, max_value=64, default=32)
    min_nodes = serializers.IntegerField(min_value=1, max_value=100, default=2)
    proximal_mu = serializers.FloatField(min_value=0.0, max_value=10.0, default=0.01)
    server_learning_rate = serializers.FloatField(min_value=1e-5, max_value=10.0, default=0.1)
    server_step = serializers.FloatField(
        min_value=0.1, max_value=4.0, default=DEFAULT_SERVER_STEP,
        help_text="FedAvg/FedProx: the global model moves this many times the nodes' averaged update")
    learning_rate = serializers.FloatField(min_value=1e-6, max_value=1.0, default=DEFAULT_PEAK_LR,
                                           help_text="peak of the nodes' learning-rate schedule across the rounds")
    logit_adjustment = serializers.BooleanField(
        default=True, help_text="classifier nodes train for class-balanced output whatever their own case mix")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0,
                                    help_text="initial weights and the nodes' shuffling; repeat a run over seeds "
                                              "to see its spread")
    dp_noise_multiplier = serializers.FloatField(
        min_value=0.0, max_value=100.0, required=False, allow_null=True,
        help_text="central differential privacy: Gaussian noise of this many times dp_clipping_norm on the sum of "
                  "the nodes' clipped updates; the run's dp_guarantee gives the (ε, δ) it buys")
    dp_clipping_norm = serializers.FloatField(min_value=1e-6, max_value=1e6, required=False, allow_null=True)
    # The column's range: more than the split holds means the whole split, as 0 does.
    validation_per_class = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0)

    def validate_hospitals(self, slugs):
        found = {h.slug: h for h in Hospital.objects.filter(slug__in=slugs)}
        unknown = sorted(set(slugs) - set(found))
        if unknown:
            raise serializers.ValidationError(f"Unknown hospitals: {', '.join(unknown)}.")
        return [found[s] for s in dict.fromkeys(slugs)]

    def validate(self, data):
        dp = data.get("dp_noise_multiplier") is not None
        if data.get("dp_noise_multiplier") == 0:
            raise serializers.ValidationError({"dp_noise_multiplier": "A noise multiplier of 0 adds no noise and "
                                                                      "protects nothing: leave both out for a run "
                                                                      "without differential privacy."})
        if dp and data["dp_noise_multiplier"] < MIN_NOISE_MULTIPLIER:
            raise serializers.ValidationError({"dp_noise_multiplier": f"Below {MIN_NOISE_MULTIPLIER} the noise "
                                                                      "protects nothing worth the name (ε above 280 "
                                                                      "after one round); leave both out for a run "
                                                                      "without differential privacy."})
        if dp and data.get("dp_clipping_norm") is None:
            raise serializers.ValidationError({"dp_clipping_norm": "Differential privacy needs a clipping norm."})
        if not dp and data.get("dp_clipping_norm") is not None:
            # Alone it would turn nothing on: no clipping happens without the noise it is sized for.
            raise serializers.ValidationError({"dp_noise_multiplier": "A clipping norm is used only with a noise "
                                                                      "multiplier: give both, or neither."})
        if dp and data.get("strategy") == Strategy.FEDADAM:
            raise serializers.ValidationError({"strategy": "Differential privacy is applied with FedAvg or FedProx: "
                                                           "FedAdam's server optimizer would weaken its guarantee."})
        return data
