"""The ClientApp: one hospital's node trains and evaluates the shared model on its own reviewed cases.

The hospital comes from the node's own configuration (`--node-config hospital="<slug>"`, set by whoever
runs the node), never from the message: a coordinator cannot make a node read another hospital's cases.
The cases are decrypted with the hospital's key inside this process; what goes back is the model's
weights and a few aggregate numbers, nothing per case.
"""

import logging
import time

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

log = logging.getLogger("federation.client")

app = ClientApp()


def _hospital(context: Context):
    import django

    django.setup()
    from hospitals.models import Hospital

    return Hospital.objects.get(slug=str(context.node_config["hospital"]))


def _local_data(context: Context, config):
    from federation.datasets import hospital_training_set

    hospital = _hospital(context)
    if not hospital.federation_opt_in:
        # The hospital's admin withdrew while the run was going: send nothing more.
        raise PermissionError(f"hospital {hospital.slug} is not opted in to federated learning")
    kind = str(config["model-kind"])
    x, y = hospital_training_set(hospital, kind=kind, image_size=int(config["image-size"]))
    _refuse_too_few_cases(x, y, kind)
    return x, y


def _refuse_too_few_cases(x, y, kind: str) -> None:
    """Neither weights trained on, nor figures measured on, fewer cases than this node's own minimum leave it.
    The minimum is the node's configuration (federation.conf.min_node_cases), whatever the message says.

    The segmenter's cases are counted as the coordinator counts them: tumours with an outline. Its "no
    tumour" cases (empty outlines) train it too, but a node with one tumour among twenty of them would
    send an update that says much about that one patient."""
    from federation.learning import MODEL_SEGMENTER

    count = int(sum(bool(mask.any()) for mask in y)) if kind == MODEL_SEGMENTER else len(x)
    problem = _too_few_cases(count, kind)
    if problem:
        raise PermissionError(problem)


def _too_few_cases(count: int, kind: str) -> str | None:
    """The sentence when `count` cases of a `kind` model fall short of this node's own minimum, else None."""
    from federation.conf import min_node_cases
    from federation.learning import MODEL_SEGMENTER

    least = min_node_cases()
    if count >= least:
        return None
    what = "outlined tumour" if kind == MODEL_SEGMENTER else "reviewed case"
    return (f"this hospital has {count} {what}{'' if count == 1 else 's'} for this model; its node takes part "
            f"with at least {least} (FEDERATION_MIN_NODE_CASES)")


def _model(msg: Message, config):
    from federation.learning import build_model, unpack_arrays

    model = build_model(str(config["model-kind"]), int(config["image-size"]), int(config["model-width"]))
    unpack_arrays(model, msg.content["arrays"].to_numpy_ndarrays())
    return model


# The node's optimizer state lives in its Context.state, which Flower keeps on the SuperNode for the rest of
# the run and never sends to the SuperLink: it is made of the node's own gradients, so it stays home.
OPTIMIZER_STATE = "optimizer-state"


def _kept_optimizer_state(context: Context):
    record = context.state.array_records.get(OPTIMIZER_STATE)
    return record.to_numpy_ndarrays() if record is not None else None


def _keep_optimizer_state(context: Context, state) -> None:
    if state:
        context.state[OPTIMIZER_STATE] = ArrayRecord(state)
    elif OPTIMIZER_STATE in context.state:
        del context.state[OPTIMIZER_STATE]


def participation_problem(context: Context, kind: str) -> str | None:
    """Why this node will not take part in a run of a `kind` model, or None, from counts only: the same
    rules `_local_data` enforces before every round (opted in, at least this node's own minimum of cases),
    said before the first one."""
    from diagnostics.training_data import count_reviewed_cases
    from hospitals.models import Hospital

    from federation.learning import MODEL_SEGMENTER

    try:
        hospital = _hospital(context)
    except Hospital.DoesNotExist:
        # A node configured with a hospital that is not (or no longer) on the platform: say so, once.
        return f"no hospital {context.node_config['hospital']} on this platform"
    if not hospital.federation_opt_in:
        return f"hospital {hospital.slug} is not opted in to federated learning"
    return _too_few_cases(count_reviewed_cases(hospital, outlined=kind == MODEL_SEGMENTER), kind)


@app.query("identify")
def identify(msg: Message, context: Context) -> Message:
    """Say which hospital this node serves, so the coordinator samples only a run's hospitals, and, when the
    query names the run's model, whether this node declines it: a node that will refuse every round is
    left out at once rather than dropping out of each one."""
    identity = ConfigRecord({"hospital": str(context.node_config["hospital"])})
    query = msg.content.config_records.get("config")
    if query is not None and "model-kind" in query:
        problem = participation_problem(context, str(query["model-kind"]))
        if problem:
            identity["declined"] = problem
    return Message(RecordDict({"identity": identity}), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    from federation.learning import DEFAULT_PEAK_LR, pack_weights, train_round
    from federation.learning import evaluate as evaluate_model

    config = msg.content["config"]
    loading = time.monotonic()
    x, y = _local_data(context, config)
    load_s = time.monotonic() - loading
    # The node's own work is timed from here: building the network is part of it, like training.
    started = time.monotonic()
    model = _model(msg, config)
    # The global model this round starts from, measured on the hospital's own cases before it trains:
    # the round's client-side evaluation, without a second exchange that would load the cases again.
    received = _evaluation_metrics(str(config["model-kind"]), evaluate_model(model, str(config["model-kind"]), x, y))
    stats = train_round(model, str(config["model-kind"]), x, y, server_round=int(config.get("server-round", 0)),
                        num_rounds=int(config.get("num-rounds", 0)), local_epochs=int(config["local-epochs"]),
                        batch_size=int(config["batch-size"]), run_seed=int(config.get("seed", 0)),
                        peak_lr=float(config.get("learning-rate", DEFAULT_PEAK_LR)),
                        proximal_mu=float(config.get("proximal-mu", 0.0)),
                        resume_optimizer=_kept_optimizer_state(context),
                        logit_adjustment=bool(config.get("logit-adjustment", False)))
    _keep_optimizer_state(context, stats.pop("optimizer_state", None))
    metrics = {"num-examples": len(x), "train-loss": stats["loss"], "train-s": time.monotonic() - started,
               "load-s": load_s, **received}
    if "accuracy" in stats:
        metrics["train-accuracy"] = stats["accuracy"]
    log.info("trained round %s on %d cases in %.1f s", config.get("server-round"), len(x), metrics["train-s"])
    return Message(RecordDict({"arrays": ArrayRecord([pack_weights(model)]), "metrics": MetricRecord(metrics)}),
                   reply_to=msg)


def _evaluation_metrics(kind: str, result: dict) -> dict:
    """A model's figures on the node's cases under the metric names that may leave the node."""
    from federation.learning import MODEL_SEGMENTER

    metrics = {}
    if "loss" in result:
        metrics["eval-loss"] = result["loss"]
    if kind == MODEL_SEGMENTER:
        metrics["eval-dice"] = result.get("dice", 0.0)
    elif result:
        metrics["eval-accuracy"] = result["accuracy"]
        metrics["eval-macro-f1"] = result["macro_f1"]
    return metrics


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """The final model on the hospital's own cases (each round's starting model is measured in `train`)."""
    from federation.learning import evaluate as evaluate_model

    config = msg.content["config"]
    loading = time.monotonic()
    x, y = _local_data(context, config)
    load_s = time.monotonic() - loading
    started = time.monotonic()
    model = _model(msg, config)
    result = evaluate_model(model, str(config["model-kind"]), x, y)
    metrics = {"num-examples": len(x), "eval-s": time.monotonic() - started, "load-s": load_s,
               **_evaluation_metrics(str(config["model-kind"]), result)}
    return Message(RecordDict({"metrics": MetricRecord({k: float(v) if not isinstance(v, int) else v
                                                        for k, v in metrics.items()})}), reply_to=msg)
