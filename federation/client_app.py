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
    return hospital_training_set(hospital, kind=str(config["model-kind"]), image_size=int(config["image-size"]))


def _model(msg: Message, config):
    from federation.learning import build_model, unpack_arrays

    model = build_model(str(config["model-kind"]), int(config["image-size"]), int(config["model-width"]))
    unpack_arrays(model, msg.content["arrays"].to_numpy_ndarrays())
    return model


@app.query("identify")
def identify(msg: Message, context: Context) -> Message:
    """Say which hospital this node serves, so the coordinator samples only a run's hospitals."""
    return Message(RecordDict({"identity": ConfigRecord({"hospital": str(context.node_config["hospital"])})}),
                   reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    from federation.learning import pack_weights, round_window, train_local

    config = msg.content["config"]
    loading = time.monotonic()
    x, y = _local_data(context, config)
    load_s = time.monotonic() - loading
    if len(x) == 0:
        raise ValueError("this hospital has no reviewed cases to train on")
    # The node's own work is timed from here: building the network is part of it, like training.
    started = time.monotonic()
    model = _model(msg, config)
    stats = train_local(model, str(config["model-kind"]), x, y, epochs=int(config["local-epochs"]),
                        batch_size=int(config["batch-size"]), proximal_mu=float(config.get("proximal-mu", 0.0)),
                        seed=int(config.get("server-round", 0)),
                        schedule_window=round_window(int(config.get("server-round", 0)),
                                                     int(config.get("num-rounds", 0))))
    metrics = {"num-examples": len(x), "train-loss": stats["loss"], "train-s": time.monotonic() - started,
               "load-s": load_s}
    if "accuracy" in stats:
        metrics["train-accuracy"] = stats["accuracy"]
    log.info("trained round %s on %d cases in %.1f s", config.get("server-round"), len(x), metrics["train-s"])
    return Message(RecordDict({"arrays": ArrayRecord([pack_weights(model)]), "metrics": MetricRecord(metrics)}),
                   reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    from federation.learning import MODEL_SEGMENTER, evaluate as evaluate_model

    config = msg.content["config"]
    loading = time.monotonic()
    x, y = _local_data(context, config)
    load_s = time.monotonic() - loading
    started = time.monotonic()
    model = _model(msg, config)
    result = evaluate_model(model, str(config["model-kind"]), x, y) if len(x) else {}
    metrics = {"num-examples": len(x), "eval-s": time.monotonic() - started, "load-s": load_s}
    if "loss" in result:
        metrics["eval-loss"] = result["loss"]
    if str(config["model-kind"]) == MODEL_SEGMENTER:
        metrics["eval-dice"] = result.get("dice", 0.0)
    elif result:
        metrics["eval-accuracy"] = result["accuracy"]
        metrics["eval-macro-f1"] = result["macro_f1"]
    return Message(RecordDict({"metrics": MetricRecord({k: float(v) if not isinstance(v, int) else v
                                                        for k, v in metrics.items()})}), reply_to=msg)
