"""The ServerApp of a federated run: strategy, deadlines, round records, and a guard on the wire.

It runs in its own process, started by the SuperLink's SuperExec with the SuperLink's environment, so it
calls django.setup() and writes the run's rows and live updates itself (federation/services.py). That
keeps the round records in the process that alone knows them, with no second API, token or retry logic
between two processes of the same coordinator; every write is guarded so a database or Redis hiccup is
logged and never ends a run.

Three things Flower 1.42 leaves to us, done by `FederationGrid`, a wrapper of the Grid handed to the
strategy (so they apply to FedAvg, FedProx, FedAdam and the DP wrappers alike):
- which nodes belong to the run: each node says which hospital it serves (its node config, set by whoever
  runs it), and only the run's hospitals are sampled. Where nodes are enrolled (node authentication),
  a node is believed only for the hospital its key was enrolled for; and a hospital is served by one
  node, so a second node claiming it is refused (it would count the hospital's cases twice, or be an
  impostor). The question names the run's model, so a node that will refuse every round of it (its own
  minimum of cases, FEDERATION_MIN_NODE_CASES, may be higher than the coordinator's) declines at once and
  is recorded as a dropout before round 1 instead of dropping out of each round;
- deadlines: Flower waits forever for `min_available_nodes`; here too few nodes for `node_wait_s` ends the
  run with a reason, and too few replies in a round ends it too;
- the wire: a reply may carry only the model's arrays (same shapes as sent) and numeric metrics from a
  fixed list; anything else is refused and the node is counted as a dropout for that round.
"""

import logging
import math
import time

import numpy as np

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp

log = logging.getLogger("federation.server")

# A train reply also carries the node's figures for the model it received (measured before training).
MODEL_METRICS = {"eval-loss", "eval-accuracy", "eval-macro-f1", "eval-dice"}
TRAIN_METRICS = {"num-examples", "train-loss", "train-accuracy", "train-s", "load-s", *MODEL_METRICS}
EVALUATE_METRICS = {"num-examples", "eval-s", "load-s", *MODEL_METRICS}
IDENTIFY = "query.identify"
DECLINE_REASON_CHARS = 300
# What nodes send their weights as (learning.pack_weights), whatever the coordinator's aggregate became.
WEIGHTS_DTYPE = "float32"
# Flower's own grid waits 3 s between pulls of replies, a large share of a short round. Each pull is one
# query on the SuperLink's SQLite state: cheap at five pulls a second.
POLL_S = 0.2
# Flower's sampler asks for the nodes about once a second while it waits for them; calls further apart
# than this belong to different waits (a round's sampling, the next round's).
SAMPLER_POLL_GAP_S = 5.0


def inspect_reply(content: RecordDict, kind: str, sent_shapes=None) -> str | None:
    """What is wrong with a reply's content, or None: only weights and aggregate metrics may pass.

    What passes is averaged into the global model as it is, so the weights must also be finite and
    float32, the dtype nodes send them in (learning.pack_weights): one NaN, or a vector of another type,
    from one node would end in every hospital's next model. The case count that weighs them must be a
    whole number of at least one case: zero for every node divides by zero, a negative one turns the
    average around, and a reply that measured no case has nothing to contribute.
    """
    if kind == "train":
        allowed_arrays, allowed_metrics = {"arrays"}, TRAIN_METRICS
    else:
        allowed_arrays, allowed_metrics = set(), EVALUATE_METRICS
    if set(content.config_records.keys()):
        return f"unexpected config records {sorted(content.config_records.keys())}"
    if set(content.array_records.keys()) != allowed_arrays:
        return f"array records {sorted(content.array_records.keys())}, expected {sorted(allowed_arrays)}"
    if set(content.metric_records.keys()) != {"metrics"}:
        return f"metric records {sorted(content.metric_records.keys())}, expected ['metrics']"
    extra = set(content.metric_records["metrics"].keys()) - allowed_metrics
    if extra:
        return f"metrics {sorted(extra)} are not on the list of aggregate metrics"
    metrics = content.metric_records["metrics"]
    if any(isinstance(value, list) for value in metrics.values()):
        return "a metric holds a list; only single numbers may leave a node"
    if not all(math.isfinite(value) for value in metrics.values()):
        return "a metric is not a finite number"
    examples = metrics.get("num-examples")
    if examples is None or examples != int(examples) or examples < 1:
        return "num-examples must be a whole number of at least one case"
    if allowed_arrays and sent_shapes is not None:
        arrays = list(content.array_records["arrays"].values())
        if [a.shape for a in arrays] != sent_shapes:
            return "arrays do not have the model's shapes"
        if any(a.dtype != WEIGHTS_DTYPE for a in arrays):
            return f"arrays are not {WEIGHTS_DTYPE}"
        if not all(np.isfinite(a.numpy()).all() for a in arrays):
            return "arrays hold values that are not finite numbers"
    return None


def keep_common_metrics(replies: list[Message]) -> None:
    """Leave in each accepted reply only the metrics every one of them carries.

    Flower's aggregation refuses replies whose metric names differ and ends the whole run; one node that
    reports a figure fewer (another version of the node) must not. What each node reported is already
    in the round's record (`_record_reply`); num-examples, required of every reply by `inspect_reply`,
    is always common.
    """
    if not replies:
        return
    common = set.intersection(*(set(r.content.metric_records["metrics"].keys()) for r in replies))
    for reply in replies:
        metrics = reply.content.metric_records["metrics"]
        for name in set(metrics.keys()) - common:
            del metrics[name]


def admission_problem(node_id: int, claimed: str, *, enrolled: dict[int, str] | None) -> str | None:
    """Why a node's claim to serve `claimed` is refused for the whole run, or None.

    `enrolled`: {node id: hospital} bound at enrolment, or None where nodes are not enrolled (one machine,
    where the platform starts every node itself). A hospital another connected node already serves is not
    a refusal: that node may be a dead one the SuperLink still lists (FederationGrid.waiting_nodes).
    """
    if enrolled is not None:
        bound = enrolled.get(node_id)
        if bound is None:
            return "its key is not enrolled for any hospital"
        if bound != claimed:
            return f"it says it serves {claimed} but its key is enrolled for {bound}"
    return None


class RunAborted(RuntimeError):
    """The run cannot go on (too few nodes, a deadline); the message is the reason people will read."""


class RoundLog:
    """What one round looked like from the coordinator: nodes, replies, bytes and time."""

    def __init__(self, number: int):
        self.number = number
        self.started = time.time()
        self.nodes: dict[int, dict] = {}
        self.dropouts: list[dict] = []
        self.bytes_sent = 0
        self.bytes_received = 0

    def node(self, node_id: int, hospital: str) -> dict:
        return self.nodes.setdefault(node_id, {"node_id": str(node_id), "hospital": hospital})


class FederationGrid(Grid):
    def __init__(self, grid: Grid, *, hospitals: set[str], min_nodes: int, node_wait_s: float,
                 on_round_start=None, on_dropout=None, enrolled: dict[int, str] | None = None,
                 model_kind: str | None = None, cases_on_record=None):
        self.grid = grid
        # hospital slug -> how many reviewed cases the platform holds for it: the most a node's reply may
        # weigh in the average (None: the claim is taken).
        self.cases_on_record = cases_on_record
        self.enrolled = enrolled
        # Told to nodes when they are asked who they are, so one that will refuse this model says so then.
        self.model_kind = model_kind
        # Nodes whose identity was refused, or that declined the run: not asked again during this run.
        self.refused_nodes: dict[int, str] = {}
        # node id -> hospital, for a node claiming a hospital another connected node serves: a node restarted
        # under a new id while the SuperLink still lists its dead predecessor (for about a minute). It serves
        # the hospital once that holder is gone.
        self.waiting_nodes: dict[int, str] = {}
        self.declined_nodes: dict[int, str] = {}
        self.hospitals = set(hospitals)
        self.min_nodes = min_nodes
        self.node_wait_s = node_wait_s
        self.node_hospital: dict[int, str] = {}
        self.rounds: dict[int, RoundLog] = {}
        self.inspected_replies = 0
        self.rejected_replies: list[dict] = []
        self._short_since: float | None = None
        self._asked_since: float | None = None
        self._last_asked: float | None = None
        self._on_round_start = on_round_start or (lambda log_: None)
        self._on_dropout = on_dropout or (lambda log_, entry: None)

    # -- Grid API, delegated -------------------------------------------------------------------------
    @property
    def run(self):
        return self.grid.run

    def set_run(self, run_id: int) -> None:
        self.grid.set_run(run_id)

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return self.grid.create_message(content, message_type, dst_node_id, group_id, ttl)

    def push_messages(self, messages):
        return self.grid.push_messages(messages)

    def pull_messages(self, message_ids):
        return self.grid.pull_messages(message_ids)

    # -- Which nodes serve the run ------------------------------------------------------------------
    def get_node_ids(self):
        asked = time.monotonic()
        if self._last_asked is None or asked - self._last_asked > SAMPLER_POLL_GAP_S:
            self._asked_since = asked
        self._last_asked = asked
        connected = list(self.grid.get_node_ids())
        unknown = [n for n in connected if n not in self.node_hospital and n not in self.refused_nodes
                   and n not in self.declined_nodes and n not in self.waiting_nodes]
        if unknown:
            self._identify(unknown, connected)
        self._admit_waiting(connected)
        eligible, served = [], set()
        for node_id in connected:
            hospital = self.node_hospital.get(node_id)
            # One node per hospital even if an earlier holder of the hospital comes back.
            if hospital in self.hospitals and hospital not in served:
                served.add(hospital)
                eligible.append(node_id)
        # Flower's sampler polls this once a second while too few nodes are up, with no deadline.
        if len(eligible) < self.min_nodes:
            now = time.monotonic()
            self._short_since = self._short_since or now
            if now - self._short_since > self.node_wait_s:
                have = sorted({self.node_hospital[n] for n in eligible})
                raise RunAborted(
                    f"Only {len(eligible)} of the {self.min_nodes} nodes this run needs were connected for "
                    f"{self.node_wait_s:.0f} s (connected: {', '.join(have) or 'none'})."
                    + "".join(f" Node {n} was refused: {why}." for n, why in sorted(self.refused_nodes.items()))
                    + "".join(f" Node {n} declined: {why}." for n, why in sorted(self.declined_nodes.items()))
                )
        else:
            self._short_since = None
            # Enough for the run, yet asked again and again: Flower sized its sample from an earlier answer
            # with more nodes, and waits for that many, with no deadline, after one of them left.
            if time.monotonic() - self._asked_since > self.node_wait_s + SAMPLER_POLL_GAP_S:
                have = sorted({self.node_hospital[n] for n in eligible})
                raise RunAborted(
                    f"A node left while the round was choosing its nodes, and the round waited "
                    f"{self.node_wait_s:.0f} s for it (connected: {', '.join(have)}).")
        return eligible

    def _identify(self, node_ids: list[int], connected: list[int]) -> None:
        messages = [Message(self._identify_query(), dst_node_id=n, message_type=IDENTIFY) for n in node_ids]
        # A node's first task waits for its executor and, on a busy machine, for a fork to load the app.
        replies, destinations = self._exchange(messages, timeout=max(30.0, self.node_wait_s))
        for reply in replies:
            if reply.has_error():
                continue
            identity = reply.content.config_records.get("identity")
            if identity is None or not {"hospital"} <= set(identity.keys()) <= {"hospital", "declined"}:
                self._reject(reply, "identity reply with unexpected content")
                continue
            node_id = destinations.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
            claimed = str(identity["hospital"])
            problem = admission_problem(node_id, claimed, enrolled=self.enrolled)
            if problem:
                self.refused_nodes[node_id] = problem
                self._reject(reply, f"identity refused: {problem}")
                continue
            # A node of a hospital outside the run may decline too; it is not sampled either way.
            if "declined" in identity and claimed in self.hospitals:
                self._decline(node_id, claimed, identity["declined"])
                continue
            holder = self._holders(connected).get(claimed)
            if holder is not None and holder != node_id:
                log.info("node %s says it serves %s, which node %s serves: it waits for that node to leave",
                         node_id, claimed, holder)
                self.waiting_nodes[node_id] = claimed
                continue
            self.node_hospital[node_id] = claimed
        for node_id in node_ids:
            # A node that does not say who it serves is not used, but asked again next time.
            if node_id in self.node_hospital:
                log.info("node %s serves hospital %s", node_id, self.node_hospital[node_id])

    def _holders(self, connected: list[int]) -> dict[str, int]:
        """{hospital: node id} of the admitted nodes still connected."""
        return {slug: n for n, slug in self.node_hospital.items() if n in connected}

    def _admit_waiting(self, connected: list[int]) -> None:
        for node_id, hospital in list(self.waiting_nodes.items()):
            if node_id not in connected:
                del self.waiting_nodes[node_id]  # gone too: asked again if it comes back
            elif hospital not in self._holders(connected):
                log.info("node %s serves hospital %s, whose earlier node has left", node_id, hospital)
                del self.waiting_nodes[node_id]
                self.node_hospital[node_id] = hospital

    def _identify_query(self) -> RecordDict:
        return RecordDict({"config": ConfigRecord({"model-kind": self.model_kind})} if self.model_kind else {})

    def _decline(self, node_id: int, hospital: str, why) -> None:
        """A node of the run's hospitals that will refuse every round of this model (too few cases by its own
        minimum, its hospital opted out) is left out, and recorded once, as a dropout before the first round.
        The reason is the node's own sentence, cut short: it is shown to people, not interpreted."""
        why = str(why)[:DECLINE_REASON_CHARS]
        self.declined_nodes[node_id] = f"{hospital}: {why}"
        entry = {"round": 0, "phase": "join", "hospital": hospital, "node_id": str(node_id),
                 "reason": f"declined: {why}"}
        log.warning("node %s (%s) declined the run: %s", node_id, hospital, why)
        self._on_dropout(None, entry)

    # -- Exchanges ------------------------------------------------------------------------------------
    def _exchange(self, messages, timeout):
        """push, then pull every POLL_S until every reply is in or the timeout passes.

        Returns (replies, {message id: destination node}) so that an error the SuperLink writes on a
        node's behalf (its source is not the node) is still put down to that node.
        """
        messages = list(messages)
        ids = list(self.grid.push_messages(messages))
        destinations = {mid: m.metadata.dst_node_id for mid, m in zip(ids, messages)}
        pending = set(ids)
        end = time.monotonic() + (timeout if timeout is not None else 10 * 365 * 86400)
        replies = []
        while pending and time.monotonic() < end:
            got = list(self.grid.pull_messages(pending))
            replies.extend(got)
            pending.difference_update(m.metadata.reply_to_message_id for m in got)
            if pending:
                time.sleep(POLL_S)
        return replies, destinations

    def send_and_receive(self, messages, *, timeout=None):
        self._last_asked = None  # the round went on: whatever asks for the nodes next starts a new wait
        messages = list(messages)
        if not messages:
            return []
        kind = messages[0].metadata.message_type
        number = int(messages[0].content.config_records.get("config", ConfigRecord()).get("server-round", 0))
        round_log = self.rounds.get(number)
        if round_log is None:
            round_log = self.rounds[number] = RoundLog(number)
            self._on_round_start(round_log)
        sent_shapes = None
        for message in messages:
            arrays = message.content.array_records.get("arrays")
            if arrays is not None:
                round_log.bytes_sent += arrays.count_bytes()
                sent_shapes = [a.shape for a in arrays.values()]
        destinations = {m.metadata.dst_node_id for m in messages}
        started = time.monotonic()
        replies, sent_to = self._exchange(messages, timeout)
        accepted = []
        answered = set()
        for reply in replies:
            node_id = sent_to.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
            hospital = self.node_hospital.get(node_id, "?")
            if reply.has_error():
                self._dropout(round_log, node_id, hospital, kind, f"node error: {reply.error.reason}")
                answered.add(node_id)
                continue
            self.inspected_replies += 1
            problem = inspect_reply(reply.content, kind, sent_shapes)
            if problem:
                self._reject(reply, problem)
                self._dropout(round_log, node_id, hospital, kind, f"reply refused: {problem}")
                answered.add(node_id)
                continue
            answered.add(node_id)
            if kind == "train":
                self._cap_claimed_cases(node_id, hospital, reply)
            accepted.append(reply)
            self._record_reply(round_log, node_id, hospital, kind, reply)
        for node_id in destinations - answered:
            self._dropout(round_log, node_id, self.node_hospital.get(node_id, "?"), kind,
                          f"no reply within {time.monotonic() - started:.0f} s")
        if len(accepted) < self.min_nodes:
            raise RunAborted(
                f"Round {number} ({kind}): only {len(accepted)} of {len(messages)} nodes replied and this run "
                f"needs {self.min_nodes}."
            )
        keep_common_metrics(accepted)
        return accepted

    def _cap_claimed_cases(self, node_id: int, hospital: str, reply: Message) -> None:
        """A train reply's num-examples weighs its update in the average: a node claiming more cases than
        its hospital has reviewed on the platform would take the average over. It weighs as that many."""
        if self.cases_on_record is None:
            return
        metrics = reply.content.metric_records["metrics"]
        claimed = int(metrics["num-examples"])
        ceiling = self.cases_on_record(hospital)
        if ceiling is not None and claimed > ceiling:
            log.warning("node %s (%s) claimed %d cases; its hospital has %d reviewed: weighed as %d",
                        node_id, hospital, claimed, ceiling, ceiling)
            metrics["num-examples"] = max(int(ceiling), 1)

    def _reject(self, reply: Message, problem: str) -> None:
        entry = {"node_id": str(reply.metadata.src_node_id), "problem": problem}
        self.rejected_replies.append(entry)
        log.warning("refused a reply from node %s: %s", reply.metadata.src_node_id, problem)

    def _record_reply(self, round_log: RoundLog, node_id: int, hospital: str, kind: str, reply: Message):
        metrics = dict(reply.content.metric_records["metrics"])
        node = round_log.node(node_id, hospital)
        evaluation = {"eval_examples": int(metrics.get("num-examples", 0)), "eval_loss": metrics.get("eval-loss"),
                      "eval_accuracy": metrics.get("eval-accuracy")}
        if kind == "train":
            round_log.bytes_received += reply.content.array_records["arrays"].count_bytes()
            node.update({"num_examples": int(metrics.get("num-examples", 0)), "train_loss": metrics.get("train-loss"),
                         "train_accuracy": metrics.get("train-accuracy"), "train_s": metrics.get("train-s"),
                         "train_load_s": metrics.get("load-s"), **evaluation})
        else:
            node.update({**evaluation, "eval_s": metrics.get("eval-s"), "eval_load_s": metrics.get("load-s")})

    def _dropout(self, round_log: RoundLog, node_id: int, hospital: str, kind: str, reason: str):
        entry = {"round": round_log.number, "phase": kind, "hospital": hospital, "node_id": str(node_id),
                 "reason": reason}
        round_log.dropouts.append(entry)
        log.warning("round %s %s: node %s (%s) dropped out: %s", round_log.number, kind, node_id, hospital, reason)
        self._on_dropout(round_log, entry)


def evaluate_on_nodes_after_the_last_round(strategy, num_rounds: int):
    """Send the nodes an evaluate message only for the final model.

    Flower's loop sends every round a train and then an evaluate message to each node; each is a full
    exchange (push, pull, a fresh task process, the hospital's cases decrypted and preprocessed again).
    The nodes already measure the model each round starts from inside the train message, before they
    train, so the separate exchange is needed once, for the model the run ends with. That halves the
    messages of a run, and with them most of the round overhead (docs/federation.md).
    """
    configure_evaluate = strategy.configure_evaluate

    def final_round_only(server_round, arrays, config, grid):
        if server_round < num_rounds:
            return []
        return configure_evaluate(server_round, arrays, config, grid)

    strategy.configure_evaluate = final_round_only
    return strategy


def with_server_step(strategy, step: float, trainable):
    """Move the global model `step` times the nodes' averaged update (a server learning rate), on the
    trainable weights; BatchNorm's statistics are averaged plainly.

    A node's Adam step is normalised by the gradient noise of its own small batch. Averaging the nodes'
    updates cancels much of that noise but keeps each node's step length, shorter than one step on the
    pooled batch would be; scaling the average up makes up for it (Reddi et al., ICLR 2021; Charles and
    Konečný, 2020, on server learning rates in local-update methods). Statistics are not updates and
    extrapolating them could make a variance negative, so those entries keep the plain average.
    """
    import numpy as np

    from federation.learning import apply_server_step

    if step == 1.0:
        return strategy
    configure_train, aggregate_train = strategy.configure_train, strategy.aggregate_train
    sent: dict[str, np.ndarray] = {}

    def configure_and_remember(server_round, arrays, config, grid):
        sent["weights"] = arrays.to_numpy_ndarrays()[0]
        return configure_train(server_round, arrays, config, grid)

    def aggregate_and_step(server_round, replies):
        arrays, metrics = aggregate_train(server_round, replies)
        if arrays is None or "weights" not in sent:
            return arrays, metrics
        before = sent["weights"]
        averaged = arrays.to_numpy_ndarrays()[0]
        return ArrayRecord([apply_server_step(before, averaged, step, trainable)]), metrics

    strategy.configure_train = configure_and_remember
    strategy.aggregate_train = aggregate_and_step
    return strategy


def _reply_weights(reply: Message) -> np.ndarray:
    return reply.content.array_records["arrays"].to_numpy_ndarrays()[0]


def with_central_dp(strategy, *, noise_multiplier: float, clipping_norm: float, trainable: np.ndarray,
                    statistics=None, rng=None):
    """Central differential privacy over the nodes' weight updates (DP-FedAvg with fixed clipping; McMahan et
    al., ICLR 2018), done here rather than by Flower's wrapper, which sized its noise for the hospitals asked
    and added it to the whole weights vector:

    - each reply's update of the trainable weights (its weights minus the global model sent) is clipped to
      `clipping_norm` (L2); an update of zero stays zero;
    - the clipped updates are averaged with equal weights: weighted by case counts, one hospital's update
      could move the average by more than `clipping_norm / n`, the sensitivity the noise is sized for;
    - Gaussian noise of standard deviation `noise_multiplier * clipping_norm / n` is added, `n` the number
      of replies averaged in this round, not of the hospitals asked (a hospital that dropped out does not
      leave the others with too little noise);
    - BatchNorm's statistics are not taken from the nodes: they are functions of their patients' scans that
      no noise covers, and noise on a variance can turn it negative. `statistics(weights)` sets them from
      the coordinator's own images (main: its calibration split); without it they stay as sent.

    The wrapped strategy still aggregates the round's metrics; what DP covers is the model's weights.
    """
    configure_train, aggregate_train = strategy.configure_train, strategy.aggregate_train
    sent: dict[str, np.ndarray] = {}
    # Unseeded: noise a node could predict would protect nothing.
    rng = rng or np.random.default_rng()

    def configure_and_remember(server_round, arrays, config, grid):
        sent["weights"] = arrays.to_numpy_ndarrays()[0]
        return configure_train(server_round, arrays, config, grid)

    def aggregate_privately(server_round, replies):
        replies = list(replies)
        arrays, metrics = aggregate_train(server_round, replies)
        if arrays is None or "weights" not in sent:
            return arrays, metrics
        before = sent["weights"].astype(np.float64)
        updates = []
        for reply in replies:
            update = _reply_weights(reply).astype(np.float64)[trainable] - before[trainable]
            norm = float(np.linalg.norm(update))
            updates.append(update * (clipping_norm / norm) if norm > clipping_norm else update)
        deviation = noise_multiplier * clipping_norm / len(updates)
        weights = before.copy()
        weights[trainable] += np.mean(updates, axis=0) + rng.normal(0.0, deviation, size=updates[0].shape)
        weights = weights.astype(np.float32)
        return ArrayRecord([statistics(weights) if statistics is not None else weights]), metrics

    strategy.configure_train = configure_and_remember
    strategy.aggregate_train = aggregate_privately
    return strategy


def with_averaged_statistics(strategy, trainable: np.ndarray):
    """FedAdam's server optimizer steps every entry of the weights vector, BatchNorm's statistics too, where
    its momentum can carry a variance below zero (and the model to NaN); those entries take the nodes'
    average by cases instead, as in with_server_step."""
    aggregate_train = strategy.aggregate_train

    def aggregate_and_average_statistics(server_round, replies):
        replies = list(replies)
        arrays, metrics = aggregate_train(server_round, replies)
        if arrays is None or not replies:
            return arrays, metrics
        cases = np.asarray([float(r.content.metric_records["metrics"]["num-examples"]) for r in replies])
        average = np.average(np.stack([_reply_weights(r) for r in replies]), axis=0, weights=cases)
        stepped = arrays.to_numpy_ndarrays()[0]
        return ArrayRecord([np.where(trainable, stepped, average).astype(stepped.dtype)]), metrics

    strategy.aggregate_train = aggregate_and_average_statistics
    return strategy


def build_strategy(run, trainable=None, statistics=None):
    """The run's strategy. `trainable`: learning.trainable_mask of the model (None: every entry, as in
    tests of plain vectors); `statistics`: what sets BatchNorm's statistics under central DP."""
    from flwr.serverapp.strategy import FedAdam, FedAvg, FedProx

    common = {"min_train_nodes": run.min_nodes, "min_evaluate_nodes": run.min_nodes,
              "min_available_nodes": run.min_nodes}
    dp = run.dp_noise_multiplier is not None
    if dp and run.strategy == "fedadam":
        # FedAdam's moments would be kept from the averages before the noise, and its step multiplies the
        # sensitivity; the API refuses the combination (StartRunSerializer).
        raise ValueError("central differential privacy is applied with FedAvg or FedProx, not FedAdam")
    if run.strategy == "fedprox":
        strategy = FedProx(proximal_mu=run.proximal_mu, **common)
    elif run.strategy == "fedadam":
        strategy = FedAdam(eta=run.server_learning_rate, **common)
        if trainable is not None:
            strategy = with_averaged_statistics(strategy, trainable)
    else:
        strategy = FedAvg(**common)
    if dp:
        strategy = with_central_dp(strategy, noise_multiplier=run.dp_noise_multiplier,
                                   clipping_norm=run.dp_clipping_norm or 1.0, statistics=statistics,
                                   trainable=trainable if trainable is not None else slice(None))
    if run.strategy != "fedadam" and trainable is not None:
        # Outside the DP wrapper: the step scales the noisy average, which is post-processing and keeps
        # the guarantee; inside, it would scale the clipped updates' sensitivity before the noise is added.
        # FedAdam has a server optimizer of its own (`server_learning_rate`).
        strategy = with_server_step(strategy, run.server_step, trainable)
    return evaluate_on_nodes_after_the_last_round(strategy, run.num_rounds)


def _guarded(what: str, function, *args, **kwargs):
    """Platform bookkeeping must never end a run: log and carry on."""
    try:
        return function(*args, **kwargs)
    except Exception:  # noqa: BLE001 - see docstring
        log.exception("could not %s", what)
        return None


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    import django

    django.setup()
    from federation import conf, learning, services
    from federation.datasets import coordinator_statistics_images, coordinator_validation_set
    from federation.models import FederatedRun

    run_id = int(context.run_config["platform-run-id"])
    run = FederatedRun.objects.prefetch_related("hospitals").get(pk=run_id)
    hospitals = {h.slug for h in run.hospitals.all()}
    _guarded("mark the run running", services.mark_running, run_id, flower_run_id=str(context.run_id))
    try:
        x_val, y_val = coordinator_validation_set(kind=run.model_kind, image_size=run.image_size,
                                                  limit_per_class=run.validation_per_class)
        # The run's seed fixes its initial weights, so that two runs (or a run and the centralised
        # baseline of federation_experiment) with one seed differ only in how they train.
        model = learning.build_model(run.model_kind, run.image_size, run.model_width, seed=run.seed)

        def round_started(round_log: RoundLog):
            _guarded("record a round start", services.start_round, run_id, round_log.number)

        def dropout(round_log: RoundLog, entry: dict):
            _guarded("record a dropout", services.record_dropout, run_id, entry)

        fed_grid = FederationGrid(grid, hospitals=hospitals, min_nodes=run.min_nodes,
                                  node_wait_s=conf.node_wait_s(), on_round_start=round_started, on_dropout=dropout,
                                  enrolled=services.enrolled_nodes(), model_kind=run.model_kind,
                                  cases_on_record=lambda slug: _guarded("count a hospital's cases",
                                                                        services.cases_on_record, slug,
                                                                        run.model_kind))

        def evaluate_fn(server_round: int, arrays: ArrayRecord):
            started = time.monotonic()
            learning.unpack_arrays(model, arrays.to_numpy_ndarrays())
            metrics = learning.evaluate(model, run.model_kind, x_val, y_val)
            eval_s = time.monotonic() - started
            round_log = fed_grid.rounds.get(server_round)
            if round_log is not None:
                _guarded("record a round", services.finish_round, run_id, round_log, metrics, eval_s)
            return MetricRecord({k: float(v) for k, v in metrics.items()})

        config = ConfigRecord({"local-epochs": run.local_epochs, "batch-size": run.batch_size,
                               "image-size": run.image_size, "model-kind": run.model_kind,
                               "model-width": run.model_width, "num-rounds": run.num_rounds,
                               "learning-rate": float(run.learning_rate),
                               "logit-adjustment": bool(run.logit_adjustment), "seed": int(run.seed)})
        statistics = None
        if run.dp_noise_multiplier is not None:
            # Under central DP, BatchNorm's statistics come from the coordinator's own images
            # (with_central_dp), not from the hospitals' updates.
            own_images = coordinator_statistics_images(kind=run.model_kind, image_size=run.image_size)

            def statistics(weights):
                learning.unpack_arrays(model, [weights])
                learning.recalibrate_batchnorm(model, own_images)
                return learning.pack_weights(model)

        strategy = build_strategy(run, trainable=learning.trainable_mask(model), statistics=statistics)
        result = strategy.start(
            grid=fed_grid, initial_arrays=ArrayRecord([learning.pack_weights(model)]), num_rounds=run.num_rounds,
            timeout=conf.phase_timeout_s(), train_config=config, evaluate_config=config, evaluate_fn=evaluate_fn,
        )
        learning.unpack_arrays(model, result.arrays.to_numpy_ndarrays())
        final = learning.evaluate(model, run.model_kind, x_val, y_val)
        services.complete_run(run_id, model=model, metrics=final,
                              wire={"inspected_replies": fed_grid.inspected_replies,
                                    "rejected_replies": fed_grid.rejected_replies})
    except Exception as exc:
        reason = str(exc) if isinstance(exc, RunAborted) else f"{type(exc).__name__}: {exc}"
        _guarded("record the failure", services.fail_run, run_id, reason)
        raise
