"""Latency and throughput of the models in --model-dir (the committed bundles by default), each beside a
reference measured in the same run.

    manage.py benchmark_inference [--model-dir DIR] [--runs 5] [--calls 30] [--json PATH]

For batch 1 and batch 16: p50/p95 latency per call and images per second, for

- classify: the compiled model (TFLite, or tf.function on a GPU) vs the same Keras model called eagerly;
- segment: likewise;
- heatmap: class activation map from the compiled model's feature maps (one matrix product) vs
  Grad-CAM computed eagerly with a gradient tape (the textbook method);
- full pipeline (preprocess + classify + segment + heatmap, ``Predictor.predict_batch``) vs the
  logistic-regression baseline (preprocess + features + logistic regression).

Each figure is the median over ``--runs`` runs of ``--calls`` timed calls, after a warm-up call.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from neurofed.files import publish, staged


def time_calls(function, calls: int) -> list[float]:
    function()  # warm-up: tracing, interpreter allocation, caches
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        function()
        durations.append((time.perf_counter() - started) * 1000.0)
    return durations


class Command(BaseCommand):
    help = "Benchmark classify, segment, heatmap and the full pipeline at batch 1 and 16 against references."

    def add_arguments(self, parser):
        parser.add_argument("--model-dir", default=str(settings.MODEL_DIR))
        parser.add_argument("--data-dir", default=str(settings.NEUROFED_DATA_DIR))
        parser.add_argument("--runs", type=int, default=5)
        parser.add_argument("--calls", type=int, default=30)
        parser.add_argument("--json", default=None, help="also write the results here")

    def handle(self, *args, **options):
        import tensorflow as tf

        from diagnostics.ml import inference, preprocess, readers
        from diagnostics.ml.baseline import LogisticBaseline, image_features
        from diagnostics.ml.inference import Predictor, load_keras

        model_dir, json_path = Path(options["model_dir"]), options["json"] and Path(options["json"])
        training = Path(options["data_dir"]) / "brain-tumor-mri" / "Training"
        if options["runs"] < 1 or options["calls"] < 1:
            raise CommandError("--runs and --calls must be at least 1")
        if not (model_dir / "classifier.json").is_file():
            raise CommandError(f"no classifier bundle (classifier.json) in --model-dir {model_dir}")
        if not training.is_dir():
            raise CommandError(f"no brain-tumor-mri/Training folder under --data-dir {options['data_dir']}")
        if json_path and not json_path.parent.is_dir():  # found before the minutes of timing, not after
            raise CommandError(f"--json {json_path}: no folder {json_path.parent} to write it in")
        if json_path and json_path.is_dir():
            raise CommandError(f"--json {json_path} is a folder; give the name of the file to write")
        try:
            predictor = Predictor.from_model_dir(model_dir)
            classifier, cam_model = load_keras(predictor.classifier_info, model_dir)
            segmenter = load_keras(predictor.segmenter_info, model_dir)[1] if predictor.segmenter_info else None
        except (OSError, ValueError, KeyError) as error:
            raise CommandError(f"the bundles in {model_dir} cannot be loaded ({type(error).__name__}: {error})") \
                from error
        images = [readers.read_grayscale(p) for p, _ in readers.list_kaggle_images(training)[::97][:16]]
        size_c = predictor.classify_size
        x_c = {b: np.stack([preprocess.preprocess_slice(i, size_c).pixels for i in images[:b]])[..., None].astype(np.float32)
               for b in (1, 16)}
        size_s = int(predictor.segmenter_info["input_size"]) if segmenter else None
        x_s = {b: np.stack([preprocess.preprocess_slice(i, size_s).pixels for i in images[:b]])[..., None].astype(np.float32)
               for b in (1, 16)} if segmenter else {}
        baseline_path = model_dir / "baseline_logreg.json"
        baseline = LogisticBaseline.load(baseline_path) if baseline_path.exists() else None
        baseline_size = (json.loads(baseline_path.read_text())["validation_metrics"].get("input_size", size_c)
                         if baseline else None)

        def grad_cam_eager(x):
            with tf.GradientTape() as tape:
                logits, features = cam_model(x, training=False)
                top = tf.reduce_max(logits, axis=1)
            gradients = tape.gradient(top, features)
            weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
            return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1)).numpy()

        def cam_compiled(x):
            logits, features = predictor._classify(x)
            return inference.class_activation_maps(features, predictor.dense_kernel, logits.argmax(axis=1))

        def baseline_pipeline(batch):
            pixels = np.stack([preprocess.preprocess_slice(i, baseline_size).pixels for i in batch])
            return baseline.predict_proba(pixels)

        cases = []
        for batch in (1, 16):
            cases += [
                ("classify", batch, "compiled (" + predictor.backend + ")", lambda b=batch: predictor._classify(x_c[b])),
                ("classify", batch, "reference: Keras eager", lambda b=batch: classifier(x_c[b], training=False)),
                ("heatmap", batch, "CAM from compiled features", lambda b=batch: cam_compiled(x_c[b])),
                ("heatmap", batch, "reference: Grad-CAM, eager gradient tape", lambda b=batch: grad_cam_eager(x_c[b])),
            ]
            if segmenter:
                cases += [
                    ("segment", batch, "compiled (" + predictor.backend + ")", lambda b=batch: predictor._segment(x_s[b])),
                    ("segment", batch, "reference: Keras eager", lambda b=batch: segmenter(x_s[b], training=False)),
                ]
            cases.append(("full pipeline", batch, "Predictor.predict_batch", lambda b=batch: predictor.predict_batch(images[:b])))
            if baseline:
                cases.append(("full pipeline", batch, "reference: logistic baseline", lambda b=batch: baseline_pipeline(images[:b])))

        results = []
        for name, batch, variant, function in tqdm(cases, desc="benchmark", unit="case"):
            runs = [time_calls(function, options["calls"]) for _ in range(options["runs"])]
            p50 = float(np.median([np.percentile(r, 50) for r in runs]))
            p95 = float(np.median([np.percentile(r, 95) for r in runs]))
            results.append({"stage": name, "batch": batch, "variant": variant, "p50_ms": p50, "p95_ms": p95,
                            "images_per_s": batch * 1000.0 / p50})
        lines = ["| stage | batch | variant | p50 ms | p95 ms | images/s |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['stage']} | {r['batch']} | {r['variant']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} "
                  f"| {r['images_per_s']:.1f} |" for r in results]
        self.stdout.write("\n".join(lines))
        if json_path:
            try:
                with staged(json_path.parent, json_path.name) as staging:  # whole, or the earlier file as it was
                    (staging / json_path.name).write_text(json.dumps(results, indent=2))
                    publish(staging, json_path.parent)
            except OSError as error:
                raise CommandError(f"the results could not be written to {json_path}: {error.strerror or error}; "
                                   "they are printed above") from error
