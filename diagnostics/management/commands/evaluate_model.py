"""Evaluate the model bundles end to end on the held-out validation data and write a report.

    manage.py evaluate_model [--task classify|segment|all] [--model-dir DIR] [--report-dir DIR]

Every validation file is decoded and predicted through ``inference.Predictor`` exactly as an upload
would be, so the figures include preprocessing and are measured at the input's resolution.

Classification (the Kaggle validation split: duplicate groups kept whole): accuracy, macro-F1,
per-class precision/recall/F1, confusion matrix (table and PNG), one-vs-rest ROC-AUC, expected
calibration error before and after temperature scaling, and the logistic-regression baseline beside it.
Segmentation (the Figshare validation blocks, plus no-tumour validation images): Dice, IoU, 95%
Hausdorff distance, and how often a no-tumour image gets an empty mask. Latency per image is reported
for single-image calls. Output: ``report.json`` and ``report.md`` (and ``confusion_matrix.png``), replaced
together only once the whole evaluation has succeeded, so a failed run leaves the previous report as it was.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from diagnostics.ml.metrics import json_safe
from neurofed.files import publish, staged


def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]


class Command(BaseCommand):
    help = "Evaluate the classifier and segmenter on the validation data; write JSON and Markdown reports."

    def add_arguments(self, parser):
        parser.add_argument("--task", choices=["classify", "segment", "all"], default="all")
        parser.add_argument("--model-dir", default=str(settings.MODEL_DIR))
        parser.add_argument("--data-dir", default=str(settings.NEUROFED_DATA_DIR))
        parser.add_argument("--cache-dir", default=str(Path(settings.VAR_DIR) / "cache"),
                            help="preprocessed images (NEUROFED_VAR_DIR/cache by default, which the federation's "
                                 "coordinator reads too)")
        parser.add_argument("--report-dir", default=str(Path(settings.BASE_DIR) / "reports" / "evaluation"))
        parser.add_argument("--backend", choices=["auto", "tflite", "keras"], default="auto")
        parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N files (smoke runs)")
        parser.add_argument("--latency-samples", type=int, default=50)

    def handle(self, *args, **options):
        from diagnostics.ml import data
        from diagnostics.ml.inference import Predictor

        model_dir, data_dir = Path(options["model_dir"]), Path(options["data_dir"])
        report_dir = Path(options["report_dir"])
        if options["latency_samples"] < 1:
            raise CommandError("--latency-samples must be at least 1")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        if not (model_dir / "classifier.json").is_file():
            raise CommandError(f"no classifier bundle (classifier.json) in {model_dir}; pass --model-dir")
        needed = ["brain-tumor-mri"] + (["figshare-brain-tumor-seg"] if options["task"] != "classify" else [])
        missing = [name for name in needed if not (data_dir / name).is_dir()]
        if missing:
            raise CommandError(f"no {' or '.join(missing)} data set under {data_dir}; pass --data-dir")
        try:
            predictor = Predictor.from_model_dir(model_dir, backend=options["backend"])
        except (OSError, ValueError, KeyError) as error:
            raise CommandError(f"the bundles in {model_dir} cannot be loaded: {error}") from error
        try:
            report_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # asked now, not once the evaluation's minutes are spent
            raise CommandError(f"cannot make the report folder {report_dir}: {error.strerror or error}; pass "
                               "--report-dir a folder you can write to") from error
        manifest = data.kaggle_manifest(data_dir, Path(options["cache_dir"]))
        report = {"model_dir": str(model_dir), "backend": predictor.backend,
                  "evaluated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if options["limit"] is not None:  # a smoke run's figures must never pass for the validation figures
            report["limited_to_first"] = options["limit"]
        outputs = {}
        if options["task"] in ("classify", "all"):
            report["classification"], outputs["confusion_matrix.png"] = self._classification(
                predictor, manifest, data_dir, model_dir, options)
        if options["task"] in ("segment", "all") and predictor.segmenter_info:
            report["segmentation"] = self._segmentation(predictor, manifest, data_dir, options)
        report["latency_ms"] = self._latency(predictor, manifest, data_dir, options["latency_samples"])
        # JSON has no NaN (a metric of an empty class, in a smoke run): such a figure is written as null.
        outputs["report.json"] = json.dumps(json_safe(report), indent=2, allow_nan=False).encode()
        outputs["report.md"] = self._markdown(report).encode()
        # Printed first, so that a report that cannot be written (a full disk) still leaves its figures.
        self.stdout.write(self._markdown(report))
        try:
            with staged(report_dir, "report") as staging:
                for name, content in outputs.items():
                    (staging / name).write_bytes(content)
                publish(staging, report_dir)
        except OSError as error:
            raise CommandError(f"the report could not be written to {report_dir}: {error.strerror or error}; its "
                               "figures are printed above, and the previous report there is unchanged") from error
        self.stdout.write(f"report written to {report_dir}")

    def _classification(self, predictor, manifest, data_dir, model_dir, options):
        """The classification figures and the confusion matrix as PNG bytes."""
        from diagnostics.ml import metrics, preprocess, readers
        from diagnostics.ml.baseline import LogisticBaseline

        val = [m for m in manifest if m["split"] == "val"][:options["limit"]]
        labels = np.asarray([readers.CLASS_NAMES.index(m["label"]) for m in val])
        probabilities, logits_free = [], []
        baseline_path = model_dir / "baseline_logreg.json"
        baseline = LogisticBaseline.load(baseline_path) if baseline_path.exists() else None
        baseline_size = json.loads(baseline_path.read_text())["validation_metrics"].get("input_size") if baseline else None
        baseline_probabilities = []
        for chunk in tqdm(list(_batches(val, 16)), desc="classify", unit="batch"):
            slices = [readers.read_grayscale(data_dir / m["path"]) for m in chunk]
            for prediction in predictor.predict_batch(slices):
                probabilities.append([prediction.probabilities[c] for c in predictor.classes])
            if baseline:
                pixels = np.stack([preprocess.preprocess_slice(s, baseline_size).pixels for s in slices])
                baseline_probabilities.extend(baseline.predict_proba(pixels))
        probabilities = np.asarray(probabilities)
        result = metrics.classification_report(labels, probabilities, predictor.classes)
        # Near-copies (one perceptual-hash group) are drawn together, as they were kept together by the split.
        result["accuracy_interval95"] = metrics.cluster_bootstrap_interval(
            probabilities.argmax(axis=1) == labels, [m["group"] for m in val])
        # Undo the temperature to show what calibration bought.
        raw = np.log(np.clip(probabilities, 1e-12, None)) * predictor.temperature
        from diagnostics.ml.calibration import expected_calibration_error, softmax

        result["ece_before_temperature"] = expected_calibration_error(softmax(raw), labels)
        result["temperature"] = predictor.temperature
        if baseline:
            base = metrics.classification_report(labels, np.asarray(baseline_probabilities), predictor.classes)
            result["baseline_logistic"] = {k: base[k] for k in ("accuracy", "macro_f1", "ece", "roc_auc_ovr_macro")}
        return result, self._confusion_png(np.asarray(result["confusion_matrix"]), predictor.classes)

    def _segmentation(self, predictor, manifest, data_dir, options):
        from diagnostics.ml import metrics, partition, readers

        figshare = readers.list_figshare_slices(data_dir / "figshare-brain-tumor-seg")
        splits = partition.figshare_block_split([s.index for s in figshare])
        val = [s for s, split in zip(figshare, splits) if split == "val"][:options["limit"]]
        predicted, truth = [], []
        for chunk in tqdm(list(_batches(val, 16)), desc="segment", unit="batch"):
            predictions = predictor.predict_batch([readers.read_grayscale(s.image_path) for s in chunk])
            predicted.extend(p.mask for p in predictions)
            truth.extend(readers.read_mask(s.mask_path) for s in chunk)
        # Slice numbers run by patient, so a block of them stands in for a patient: the interval says how
        # far the mean could move on other patients, not on more slices of the same ones.
        blocks = [partition.figshare_block(s.index) for s in val]
        result = metrics.segmentation_metrics(predicted, truth, clusters=blocks)
        result["resolution"] = "input (256x256)"
        # The classes fail differently (non-enhancing gliomas are the hard ones), so each gets its line.
        classes = np.asarray([s.label for s in val])
        result["per_class"] = {
            name: metrics.segmentation_metrics([p for p, c in zip(predicted, classes) if c == name],
                                               [t for t, c in zip(truth, classes) if c == name])
            for name in sorted(set(classes))}
        notumor = [m for m in manifest if m["split"] == "val" and m["label"] == "notumor"][:options["limit"]]
        empty = []
        for chunk in tqdm(list(_batches(notumor, 16)), desc="no-tumour", unit="batch"):
            predictions = predictor.predict_batch([readers.read_grayscale(data_dir / m["path"]) for m in chunk])
            empty.extend(not p.tumour_found for p in predictions)
        result["notumor_images"] = len(empty)
        result["empty_mask_rate_notumor"] = float(np.mean(empty)) if empty else float("nan")
        return result

    def _latency(self, predictor, manifest, data_dir, samples):
        from diagnostics.ml import readers

        slices = [readers.read_grayscale(data_dir / m["path"]) for m in manifest if m["split"] == "val"][:samples]
        predictor.predict(slices[0])  # warm-up: interpreter allocation
        totals, parts = [], {}
        for image in slices:
            started = time.perf_counter()
            prediction = predictor.predict(image)
            totals.append((time.perf_counter() - started) * 1000)
            for key, value in prediction.timings_ms.items():
                parts.setdefault(key, []).append(value)
        return {"images": len(totals), "p50_total": float(np.median(totals)),
                "p95_total": float(np.percentile(totals, 95)),
                "p50_by_stage": {k: float(np.median(v)) for k, v in parts.items()}}

    @staticmethod
    def _confusion_png(matrix, classes) -> bytes:
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(5, 4.5))
        axis.imshow(matrix, cmap="Blues")
        axis.set_xticks(range(len(classes)), classes, rotation=30)
        axis.set_yticks(range(len(classes)), classes)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        for (row, col), value in np.ndenumerate(matrix):
            axis.text(col, row, str(value), ha="center", va="center",
                      color="white" if value > matrix.max() / 2 else "black")
        figure.tight_layout()
        png = io.BytesIO()
        figure.savefig(png, format="png", dpi=120)
        plt.close(figure)
        return png.getvalue()

    @staticmethod
    def _markdown(report) -> str:
        lines = [f"# Model evaluation ({report['evaluated']}, backend {report['backend']})", ""]
        if "limited_to_first" in report:
            lines += [f"**Smoke run**: only the first {report['limited_to_first']} files of each set were evaluated; "
                      "these are not the validation figures.", ""]
        result = report.get("classification")
        if result:
            lines += ["## Classification (validation split)", "",
                      "| model | accuracy | macro-F1 | ECE | ROC-AUC (OvR) |", "|---|---|---|---|---|",
                      f"| CNN (temperature {result['temperature']:.2f}) | {result['accuracy']:.4f} | {result['macro_f1']:.4f} "
                      f"| {result['ece']:.4f} (before scaling {result['ece_before_temperature']:.4f}) "
                      f"| {result['roc_auc_ovr_macro']:.4f} |"]
            base = result.get("baseline_logistic")
            if base:
                lines.append(f"| logistic baseline | {base['accuracy']:.4f} | {base['macro_f1']:.4f} | {base['ece']:.4f} "
                             f"| {base['roc_auc_ovr_macro']:.4f} |")
            low, high = result["accuracy_interval95"]
            lines += ["", f"{result['images']} images; accuracy, 95 % interval: {low:.4f} to {high:.4f} (bootstrap, "
                      "near-copies drawn together).", "", "| class | precision | recall | F1 | ROC-AUC | n |",
                      "|---|---|---|---|---|---|"]
            for name, row in result["per_class"].items():
                auc = f"{row['roc_auc_ovr']:.4f}" if row["roc_auc_ovr"] is not None else "-"
                lines.append(f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | {auc} | {row['support']} |")
            names = list(result["per_class"])
            lines += ["", "Confusion matrix (rows true, columns predicted):", "",
                      "| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
            for name, row in zip(names, result["confusion_matrix"]):
                lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
            lines.append("")
        seg = report.get("segmentation")
        if seg:
            lines += ["## Segmentation (Figshare validation blocks, input resolution)", "",
                      "| slices | Dice mean | Dice median | Dice pooled | IoU mean | HD95 median (px) | missed | "
                      "no-tumour images with empty mask |", "|---|---|---|---|---|---|---|---|",
                      f"| {seg['slices']} | {seg['dice_mean']:.4f} | {seg['dice_median']:.4f} | {seg['dice_pooled']:.4f} "
                      f"| {seg['iou_mean']:.4f} | {seg['hd95_px_median']:.2f} | {seg['tumour_missed_slices']} "
                      f"| {seg['empty_mask_rate_notumor']:.4f} of {seg['notumor_images']} |", "",
                      f"Dice mean, 95 % interval: {seg['dice_mean_interval95'][0]:.4f} to {seg['dice_mean_interval95'][1]:.4f} "
                      f"(bootstrap over the {seg['dice_interval_blocks']} slice-number blocks, so a patient's neighbouring "
                      "slices are drawn together)", ""]
            if seg.get("per_class"):
                lines += ["| class | slices | Dice mean | Dice median | IoU mean | HD95 median (px) | missed |",
                          "|---|---|---|---|---|---|---|"]
                for name, row in seg["per_class"].items():
                    lines.append(f"| {name} | {row['slices']} | {row['dice_mean']:.4f} | {row['dice_median']:.4f} "
                                 f"| {row['iou_mean']:.4f} | {row['hd95_px_median']:.2f} | {row['tumour_missed_slices']} |")
                lines.append("")
        latency = report.get("latency_ms")
        if latency:
            stages = ", ".join(f"{k} {v:.2f}" for k, v in latency["p50_by_stage"].items())
            lines += ["## Latency (one image at a time, classify + segment + heatmap)", "",
                      f"p50 {latency['p50_total']:.1f} ms, p95 {latency['p95_total']:.1f} ms over {latency['images']} "
                      f"images; p50 by stage (ms): {stages}", ""]
        return "\n".join(lines)
