"""Train the classifier or the segmenter from scratch on the shared data, then calibrate and export.

    manage.py train_model --task classify --size 128 --time-budget-min 50
    manage.py train_model --task segment --size 128 --time-budget-min 50
    manage.py train_model --task classify --checkpoint var/models/classify/best.weights.h5 --epochs 0
    manage.py train_model --task segment --architecture encoder-unet --size 160 --pretrain-min 25 --time-budget-min 70
    manage.py train_model --task segment --size 160 --ensemble-of var/models/a/segmenter.json var/models/b/segmenter.json --epochs 0
    manage.py train_model --task segment --size 160 --ensemble-of A B --time-budget-min 60 --peak-lr 3e-4
    manage.py train_model --task segment --size 160 --checkpoint M.weights.h5 --pseudo-labels-by diagnostics/weights/segmenter.json

Preprocessed arrays are cached under ``--cache-dir``; the best checkpoint (by the calibration split for
the classifier, by the Figshare calibration blocks for the segmenter) is written to
``<output-dir>/best.weights.h5`` as training goes (for ``--ensemble-of``, the members are fine-tuned
together on their averaged logits, the mask the bundle serves), and at the end the bundle (TFLite model, float16
Keras weights, JSON with temperature and metrics) is exported to ``<output-dir>``. ``--install`` copies
the bundle into settings.MODEL_DIR, the committed baseline weights. Either bundle is swapped in only once
complete. A bundle that a registered model version points at is not written over (the version would fail
its checksum and stop serving): register the new bundle with promote_model instead, or pass
``--overwrite-registered``.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from neurofed.files import publish, staged


def untrained_network(options, trunk=None):
    """The network (and its name for messages) this run trains, as its options build it, before any weights
    are loaded: one place, so the checkpoint check builds what training builds. An encoder U-Net is built
    on `trunk` when given (a pretrained classifier), else on a fresh one."""
    from diagnostics.ml import networks

    size, width = options["size"], options["width"]
    if options["task"] == "classify":
        return networks.build_classifier(size, width=width or 48), "classifier"
    if options["architecture"] == "unet":
        return networks.build_segmenter(size, base_filters=width or 12,
                                        mirror_channel=options["mirror_channel"]), "U-Net"
    trunk = trunk if trunk is not None else networks.build_classifier(size, width=width or 40)
    return networks.build_encoder_segmenter(size, decoder_filters=16, trunk=trunk), "encoder U-Net"


class Command(BaseCommand):
    help = "Train the tumour classifier or segmenter from scratch and export a model bundle."

    def add_arguments(self, parser):
        parser.add_argument("--task", choices=["classify", "segment", "baseline", "gate"], required=True,
                            help="baseline = the logistic-regression floor on simple image features; gate = the "
                                 "check that an upload looks like a brain MRI (diagnostics/ml/gate.py)")
        parser.add_argument("--data-dir", default=str(settings.NEUROFED_DATA_DIR))
        parser.add_argument("--cache-dir", default=str(Path(settings.VAR_DIR) / "cache"),
                            help="preprocessed images (NEUROFED_VAR_DIR/cache by default, which the federation's "
                                 "coordinator reads too)")
        parser.add_argument("--output-dir", default=None, help="default: var/models/<task>")
        parser.add_argument("--size", type=int, default=128, help="model input side in pixels")
        parser.add_argument("--epochs", type=int, default=60, help="upper bound; 0 = export the checkpoint only")
        parser.add_argument("--time-budget-min", type=float, default=None,
                            help="fit the number of epochs (and the schedule) to this wall-clock budget")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--peak-lr", type=float, default=2e-3)
        parser.add_argument("--width", type=int, default=None,
                            help="classifier width (default 48) / segmenter base filters (default 12) / "
                                 "encoder-unet trunk width (default 40)")
        parser.add_argument("--architecture", choices=["unet", "encoder-unet"], default="unet",
                            help="segmenter: a plain U-Net, or a U-Net on the classifier's residual trunk")
        parser.add_argument("--mirror-channel", action="store_true",
                            help="segment: the U-Net also sees the slice's mirror image (the other hemisphere)")
        parser.add_argument("--ensemble-of", nargs="+", metavar="BUNDLE", default=None,
                            help="segment: one network averaging these segmenter bundles' logits, its thresholds "
                                 "chosen again on the calibration data; an ensemble bundle adds each of its members. "
                                 "With --epochs 0 the members are exported as they are; otherwise they are "
                                 "fine-tuned together on the averaged logits")
        parser.add_argument("--pretrain-min", type=float, default=0.0,
                            help="encoder-unet: first train its trunk as a classifier for this many minutes on "
                                 "the Kaggle training images that are not copies of Figshare calibration or "
                                 "validation slices")
        parser.add_argument("--small-tumour-copies", type=int, default=1,
                            help="segment: train on this many copies of each slice whose tumour is small")
        parser.add_argument("--small-tumour-fraction", type=float, default=0.01,
                            help="segment: a tumour is small below this share of the image (default 0.01)")
        parser.add_argument("--hard-slice-copies", type=int, default=1,
                            help="segment, with --checkpoint: train on this many copies of each training slice the "
                                 "checkpoint segments badly")
        parser.add_argument("--hard-slice-dice", type=float, default=0.5,
                            help="segment: a slice is segmented badly below this Dice at logit 0 (default 0.5)")
        parser.add_argument("--hard-slices-scored-by", metavar="BUNDLE", default=None,
                            help="segment: score the slices with this segmenter bundle (an ensemble averages its "
                                 "members) instead of the checkpoint, e.g. to fine-tune a member on what the "
                                 "served pair gets wrong")
        parser.add_argument("--pseudo-labels-by", metavar="BUNDLE", default=None,
                            help="also train on the classification set's training tumour images that are not "
                                 "copies of a segmentation slice, with the outlines this segmenter bundle serves "
                                 "on them (an image it leaves empty is left out)")
        parser.add_argument("--classifier-bundle", default=str(Path(settings.MODEL_DIR) / "classifier.json"),
                            help="segment: the classifier served with it; the empty-mask floor is measured behind "
                                 "its 'notumor' verdicts (default: the installed one; segmenter alone if absent)")
        parser.add_argument("--threads", type=int, default=0, help="TensorFlow CPU threads (0 = all)")
        parser.add_argument("--checkpoint", default=None, help="start from these weights (*.weights.h5)")
        parser.add_argument("--checkpoint-width", type=int, default=0,
                            help="segment: the --checkpoint is a U-Net of this many base filters; it is widened "
                                 "to --width, computing the same logits until training moves them")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--install", action="store_true", help="copy the exported bundle into MODEL_DIR")
        parser.add_argument("--overwrite-registered", action="store_true",
                            help="write over a bundle in --output-dir or MODEL_DIR even though a registered model "
                                 "version points at it (that version then fails its checksum and cannot be served)")
        parser.add_argument("--no-test-time-flip", action="store_true",
                            help="segmenter: serve without averaging over the mirror image (half the segment time)")

    def log(self, message: str) -> None:
        self.stdout.write(f"[{time.strftime('%H:%M:%S')}] {message}")
        self.stdout.flush()

    def handle(self, *args, **options):
        import tensorflow as tf

        if options["threads"] < 0:  # TensorFlow would take it, and abort the process at its first operation
            raise CommandError(f"--threads must be 0 (all cores) or more, not {options['threads']}")
        if options["threads"]:
            tf.config.threading.set_intra_op_parallelism_threads(options["threads"])
            tf.config.threading.set_inter_op_parallelism_threads(options["threads"])
        from diagnostics.ml import data, networks, training

        task, size = options["task"], options["size"]
        output_dir = Path(options["output_dir"] or Path(settings.VAR_DIR) / "models" / task)
        data_dir, cache_dir = Path(options["data_dir"]), Path(options["cache_dir"])
        # Both sets, whatever the task: the classification split groups the Kaggle images that copy
        # Figshare slices, so it reads the segmentation set too.
        for folder in ("brain-tumor-mri", "figshare-brain-tumor-seg"):
            if not (data_dir / folder).is_dir():
                raise CommandError(f"no {folder} folder under {data_dir}; pass --data-dir the folder that holds "
                                   "brain-tumor-mri/ and figshare-brain-tumor-seg/ (see the data's README)")
        if options["width"] is not None and options["width"] < 1:
            raise CommandError(f"--width must be a positive number of filters, not {options['width']}")
        if options["small_tumour_copies"] < 1:
            raise CommandError("--small-tumour-copies must be at least 1")
        if not 0 < options["small_tumour_fraction"] < 1:
            raise CommandError("--small-tumour-fraction must lie between 0 and 1")
        if options["hard_slice_copies"] < 1:
            raise CommandError("--hard-slice-copies must be at least 1")
        if not 0 < options["hard_slice_dice"] <= 1:
            raise CommandError("--hard-slice-dice must lie in (0, 1]")
        if options["hard_slice_copies"] > 1 and (task != "segment" or not (options["checkpoint"]
                                                                          or options["ensemble_of"])):
            raise CommandError("--hard-slice-copies needs --task segment and weights to score the slices with: "
                               "a --checkpoint or --ensemble-of")
        if options["checkpoint_width"] and not (
                task == "segment" and options["checkpoint"] and options["architecture"] == "unet"
                and not options["ensemble_of"] and (options["width"] or 12) > options["checkpoint_width"] > 0):
            raise CommandError("--checkpoint-width needs --task segment, a U-Net --checkpoint of that many base "
                               "filters, no --ensemble-of, and a larger --width to widen it to")
        if size < 1:
            raise CommandError("--size must be a positive number of pixels")
        if options["epochs"] < 0:
            raise CommandError("--epochs must be 0 or more")
        # A budget of 0 or less would stop nothing (fit runs for --epochs), or never stop at all.
        for option, value in (("--time-budget-min", options["time_budget_min"]), ("--peak-lr", options["peak_lr"]),
                              ("--batch-size", options["batch_size"])):
            if value is not None and not value > 0:
                raise CommandError(f"{option} must be above 0, not {value}")
        if task == "gate":
            from diagnostics.ml.gate import GATE_SIZE

            size = GATE_SIZE  # the gate's features are defined at one size
        if task not in ("baseline", "gate"):
            self._refuse_to_overwrite_registered(task, output_dir, options)
        hard_slice_scorer = None
        if options["hard_slices_scored_by"]:
            if options["hard_slice_copies"] < 2:
                raise CommandError("--hard-slices-scored-by needs --hard-slice-copies of at least 2")
            hard_slice_scorer = self._segmenter_from_bundles([options["hard_slices_scored_by"]], size)
        pseudo_labeller = None
        if options["pseudo_labels_by"]:
            if task != "segment":
                raise CommandError("--pseudo-labels-by needs --task segment")
            pseudo_labeller = (self._segmenter_from_bundles([options["pseudo_labels_by"]], size),
                               json.loads(Path(options["pseudo_labels_by"]).read_text()))
        ensemble = None
        if options["ensemble_of"]:
            if task != "segment":
                raise CommandError("--ensemble-of needs --task segment")
            ensemble = self._segmenter_from_bundles(options["ensemble_of"], size)
            self.log(f"ensemble of {len(networks.segmenter_members(ensemble))} segmenters, "
                     f"{ensemble.count_params():,} parameters")
        if task not in ("baseline", "gate"):
            self._check_checkpoint(options, output_dir / "best.weights.h5")
            self._check_checkpoint_fits(options)
        widened = self._widened_checkpoint(options) if options["checkpoint_width"] else None
        if task == "segment":
            self._check_classifier_bundle(Path(options["classifier_bundle"]))
        # Made once every argument is checked, so that a refused run leaves no empty folder behind.
        try:
            output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"cannot make the output folder {output_dir}: {error.strerror or error}; pass "
                               "--output-dir a folder you can write to") from error
        self.log(f"loading and preprocessing data at {size}px (cached in {cache_dir})")
        kaggle = data.kaggle_dataset(data_dir, cache_dir, size)
        budget = options["time_budget_min"] * 60 if options["time_budget_min"] is not None else None
        checkpoint = output_dir / "best.weights.h5"
        common = dict(peak_lr=options["peak_lr"], time_budget_s=budget, checkpoint_path=checkpoint,
                      seed=options["seed"], log=self.log)

        if task == "baseline":
            self._train_baseline(kaggle, output_dir, options["install"])
            return
        if task == "gate":
            self._train_gate(kaggle, output_dir, options["install"], data_dir)
            return
        if task == "classify":
            model, _ = untrained_network(options)
            x_train, y_train = kaggle.subset("train")
            calibration = kaggle.subset("calib")
            self.log(f"classifier: {model.count_params():,} parameters; train {len(x_train)}, "
                     f"calibration {len(calibration[0])}, validation {int((kaggle.splits == 'val').sum())} images")
            if options["checkpoint"]:
                model.load_weights(options["checkpoint"])
            if options["epochs"] > 0:
                training.train_classifier(model, x_train, y_train, options["epochs"],
                                          options["batch_size"] or 64, validation=calibration, **common)
                model.load_weights(checkpoint)
            from diagnostics.ml import export

            bundle = export.export_classifier(model, output_dir, kaggle, log=self.log)
        else:
            figshare = data.figshare_dataset(data_dir, cache_dir, size)
            notumor = kaggle.labels == data.readers.CLASS_NAMES.index("notumor")
            empty_train = kaggle.pixels[(kaggle.splits == "train") & notumor]
            empty_calib = kaggle.pixels[(kaggle.splits == "calib") & notumor]
            tumour_train = figshare.splits == "train"
            tumour_calib = figshare.splits == "calib"
            # No-tumour images with empty masks teach the segmenter to answer "nothing here".
            x_train = np.concatenate([figshare.pixels[tumour_train], empty_train])
            m_train = np.concatenate([figshare.masks[tumour_train], np.zeros(empty_train.shape, bool)])
            # The checkpoint is chosen on the calibration blocks and calibration no-tumour images; the
            # validation split stays untouched until the figures are measured.
            x_calib = np.concatenate([figshare.pixels[tumour_calib], empty_calib])
            m_calib = np.concatenate([figshare.masks[tumour_calib], np.zeros(empty_calib.shape, bool)])
            if ensemble is not None:
                model = ensemble
            elif widened is not None:
                model = widened
            else:
                model = self._build_segmenter(options, kaggle, data_dir)
            self.log(f"segmenter: {model.count_params():,} parameters; train {int(tumour_train.sum())} tumour + "
                     f"{len(empty_train)} empty, checkpoint choice on {int(tumour_calib.sum())} tumour + {len(empty_calib)} empty")
            if options["checkpoint"] and widened is None:
                model.load_weights(options["checkpoint"])
            if pseudo_labeller is not None:
                x_train, m_train = self._with_pseudo_labelled(kaggle, data_dir, *pseudo_labeller, x_train, m_train)
            x_train, m_train = self._repeat_slices(options, model if hard_slice_scorer is None else hard_slice_scorer,
                                                   x_train, m_train)
            if options["epochs"] > 0:
                training.train_segmenter(model, x_train, m_train, options["epochs"], options["batch_size"] or 16,
                                         validation=(x_calib, m_calib), **common)
                model.load_weights(checkpoint)
            from diagnostics.ml import export

            empty_val = (kaggle.splits == "val") & notumor
            verdicts = self._classifier_verdicts(Path(options["classifier_bundle"]), kaggle, data_dir, cache_dir,
                                                 (kaggle.splits == "calib") & notumor, empty_val)
            bundle = export.export_segmenter(model, output_dir, figshare, log=self.log,
                                             empty_val=kaggle.pixels[empty_val], empty_calib=empty_calib,
                                             test_time_flip=not options["no_test_time_flip"],
                                             empty_calib_notumor=verdicts[0], empty_val_notumor=verdicts[1])
        if options["install"]:
            from diagnostics.ml import export

            export.install_bundle(bundle, Path(settings.MODEL_DIR), log=self.log)
        self.log("done: " + json.dumps(bundle.get("validation_metrics", {})))

    @staticmethod
    def _check_checkpoint(options, best: Path) -> None:
        """Refuse, before minutes of data loading, a run that would export weights nobody trained or
        lose the checkpoint it starts from."""
        checkpoint = options["checkpoint"]
        if not checkpoint:
            if options["ensemble_of"]:
                return  # the members' bundles hold the starting weights
            if options["epochs"] == 0:
                raise CommandError("--epochs 0 exports the --checkpoint's weights; without a --checkpoint it "
                                   "would export untrained, random weights. Give --checkpoint or some epochs.")
            return
        if not Path(checkpoint).is_file():
            raise CommandError(f"no checkpoint file at {checkpoint}; pass the path of a *.weights.h5 file")
        import h5py

        if not h5py.is_hdf5(checkpoint):  # Keras would say so only after the data is loaded, in a traceback
            raise CommandError(f"{checkpoint} is not a weights file (*.weights.h5, which train_model writes as "
                               "best.weights.h5 in its --output-dir)")
        if options["epochs"] > 0 and Path(checkpoint).resolve() == best.resolve():
            # Training writes its best epoch there from the first epoch on, over the starting weights.
            raise CommandError(f"--checkpoint {checkpoint} is where this run writes its own best epoch, and "
                               "training would overwrite it; copy it elsewhere first or choose another --output-dir")

    @staticmethod
    def _check_checkpoint_fits(options) -> None:
        """Load the --checkpoint into the network this run builds, before minutes of data loading: weights
        of another network (a segmenter's for a classifier, another width) fail Keras only after them."""
        if not options["checkpoint"] or options["ensemble_of"] or options["checkpoint_width"]:
            return  # no checkpoint, or one _widened_checkpoint loads and checks itself
        size, task = options["size"], options["task"]
        model, what = untrained_network(options)
        try:
            model.load_weights(options["checkpoint"])
        except (ValueError, OSError) as error:
            raise CommandError(f"{options['checkpoint']} does not hold the weights of the {what} this run builds "
                               f"(--task {task}, --size {size}, --width, --architecture and --mirror-channel as "
                               f"given): {error}") from error

    @staticmethod
    def _refuse_to_overwrite_registered(task: str, output_dir: Path, options) -> None:
        """A registered version's files stay as they were registered: writing over them would make that
        version fail its checksum, and every scan it serves would fail with it."""
        if options["overwrite_registered"]:
            return
        from diagnostics.registry import BUNDLE_NAMES, versions_stored_at

        name = BUNDLE_NAMES[task]
        targets = [(output_dir / name, "choose another --output-dir")]
        if options["install"]:
            targets.append((Path(settings.MODEL_DIR) / name,
                            f"register the new bundle with promote_model --register {output_dir / name} "
                            "instead of --install"))
        for target, advice in targets:
            versions = versions_stored_at(target)  # none when nothing is stored there
            if versions:
                names = ", ".join(f"{v.task} {v.version!r} ({v.status})" for v in versions)
                raise CommandError(f"{target} is registered as model version {names}; writing over it would "
                                   f"make that version unloadable. To keep it, {advice}; to replace it anyway, "
                                   "pass --overwrite-registered.")

    @staticmethod
    def _segmenter_from_bundles(bundle_paths, size: int):
        """One network averaging these segmenter bundles' logits; a bad bundle is a CommandError."""
        from diagnostics.ml import export

        try:
            return export.segmenter_ensemble_from_bundles(bundle_paths, size)
        except ValueError as error:
            raise CommandError(str(error)) from error
        except OSError as error:  # a bundle whose weights file is missing or unreadable
            raise CommandError(f"cannot load the segmenter bundles {', '.join(map(str, bundle_paths))}: "
                               f"{error.strerror or error} ({getattr(error, 'filename', None) or ''})") from error

    def _repeat_slices(self, options, scorer, x_train, m_train):
        """The training slices with small tumours, and those ``scorer`` (the checkpoint unless
        --hard-slices-scored-by names another segmenter) segments badly, repeated."""
        from diagnostics.ml import training

        copies = np.ones(len(x_train), int)
        if options["small_tumour_copies"] > 1:
            small = training.small_tumour_slices(m_train, options["small_tumour_fraction"])
            copies[small] = options["small_tumour_copies"]
            self.log(f"{int(small.sum())} tumour slices under {options['small_tumour_fraction']:.1%} of the image, "
                     f"each trained on {options['small_tumour_copies']} times")
        if options["hard_slice_copies"] > 1:
            hard = training.hard_slices(scorer, x_train, m_train, options["hard_slice_dice"])
            # A slice that is both small and hard is trained on the larger count, not the product.
            copies[hard] = np.maximum(copies[hard], options["hard_slice_copies"])
            tumour = m_train.reshape(len(m_train), -1).any(axis=1)
            self.log(f"{int((hard & tumour).sum())} tumour and {int((hard & ~tumour).sum())} empty training slices "
                     f"segmented below Dice {options['hard_slice_dice']:g} by the "
                     f"{'scoring segmenter' if options['hard_slices_scored_by'] else 'starting weights'}, each trained on "
                     f"at least {options['hard_slice_copies']} times")
        return training.repeat_slices(x_train, m_train, copies)

    def _with_pseudo_labelled(self, kaggle, data_dir: Path, labeller, bundle: dict, x_train, m_train):
        """The training slices plus the Kaggle training tumour images outlined by ``labeller``.

        A Kaggle image that copies a Figshare slice is left out whatever the slice's split: a copy of a
        training slice has its expert outline already, and one of a calibration or validation slice
        would let the checkpoint choice and the figures see a picture trained on.
        """
        from diagnostics.ml import data, training

        copies = data.kaggle_copies_of_figshare(kaggle.manifest, data_dir, ("train", "calib", "val"))
        tumour = kaggle.labels != data.readers.CLASS_NAMES.index("notumor")
        chosen = (kaggle.splits == "train") & tumour & ~copies
        masks = training.pseudo_labels(labeller, kaggle.pixels[chosen], bundle["threshold_logit"],
                                       bundle["min_component_px"])
        outlined = masks.reshape(len(masks), -1).any(axis=1)
        self.log(f"{int(outlined.sum())} of {int(chosen.sum())} classification training tumour images outlined by "
                 f"the pseudo-labelling segmenter for training ({int(((kaggle.splits == 'train') & tumour & copies).sum())} "
                 f"copies of segmentation slices left out, {int((~outlined).sum())} left empty and left out)")
        return (np.concatenate([x_train, kaggle.pixels[chosen][outlined]]),
                np.concatenate([m_train, masks[outlined]]))

    @staticmethod
    def _check_classifier_bundle(bundle_path: Path) -> None:
        """Refuse, before the training it would end, a --classifier-bundle the export cannot use (no bundle
        at all is fine: the empty-mask floor is then the segmenter's alone)."""
        if not bundle_path.is_file():
            return
        try:
            bundle = json.loads(bundle_path.read_text())
            usable = isinstance(bundle.get("input_size"), int) and "notumor" in bundle.get("classes", [])
        except (OSError, ValueError, AttributeError, TypeError):
            usable = False
        if not usable:
            raise CommandError(f"--classifier-bundle {bundle_path} is not a classifier bundle with a 'notumor' class; "
                               "give the classifier.json that train_model --task classify wrote")

    def _classifier_verdicts(self, bundle_path: Path, kaggle, data_dir: Path, cache_dir: Path, *selections):
        """The classifier's "notumor" verdicts on each selection of Kaggle images, or Nones without one."""
        from diagnostics.ml import data, export

        if not bundle_path.is_file():
            self.log(f"no classifier bundle at {bundle_path}: the empty-mask floor is the segmenter's alone")
            return [None] * len(selections)
        size = json.loads(bundle_path.read_text())["input_size"]
        images = kaggle if kaggle.pixels.shape[1] == size else data.kaggle_dataset(data_dir, cache_dir, size)
        if not (np.array_equal(images.labels, kaggle.labels) and np.array_equal(images.splits, kaggle.splits)):
            raise CommandError(f"the {size} px cache does not hold the same images; delete {cache_dir} and run again")
        try:
            verdicts = [export.classified_notumor(bundle_path, images.pixels[s]) for s in selections]
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.log(f"classifier {bundle_path} calls " + ", ".join(
            f"{int(v.sum())} of {len(v)}" for v in verdicts) + " no-tumour images (calibration, validation) 'notumor'")
        return verdicts

    def _widened_checkpoint(self, options):
        """The --checkpoint's U-Net of --checkpoint-width base filters, widened to --width."""
        from diagnostics.ml import networks

        narrow = networks.build_segmenter(options["size"], base_filters=options["checkpoint_width"],
                                          mirror_channel=options["mirror_channel"])
        try:
            narrow.load_weights(options["checkpoint"])
        except (ValueError, OSError) as error:
            raise CommandError(f"{options['checkpoint']} does not hold a U-Net of {options['checkpoint_width']} base "
                               f"filters{' with the mirror channel' if options['mirror_channel'] else ''}: "
                               f"{error}") from error
        model = networks.widen_segmenter(narrow, options["width"] or 12)
        self.log(f"widened the checkpoint's U-Net from {narrow.count_params():,} to {model.count_params():,} parameters")
        return model

    def _build_segmenter(self, options, kaggle, data_dir):
        from diagnostics.ml import data, networks, training

        if options["architecture"] == "unet":
            if options["pretrain_min"]:
                raise CommandError("--pretrain-min needs --architecture encoder-unet")
            return untrained_network(options)[0]
        if options["mirror_channel"]:
            raise CommandError("--mirror-channel needs --architecture unet")
        trunk = networks.build_classifier(options["size"], width=options["width"] or 40)
        if options["pretrain_min"] and not options["checkpoint"]:
            copies = data.kaggle_copies_of_figshare(kaggle.manifest, data_dir, ("calib", "val"))
            train = (kaggle.splits == "train") & ~copies
            calib = (kaggle.splits == "calib") & ~copies
            self.log(f"pretraining the trunk as a classifier for {options['pretrain_min']:g} min on {int(train.sum())} "
                     f"images ({int(((kaggle.splits == 'train') & copies).sum())} copies of Figshare calibration or "
                     "validation slices left out)")
            checkpoint = Path(options["output_dir"] or Path(settings.VAR_DIR) / "models" / "segment")
            checkpoint = checkpoint / "trunk.weights.h5"
            training.train_classifier(trunk, kaggle.pixels[train], kaggle.labels[train], 10_000, 64,
                                      validation=(kaggle.pixels[calib], kaggle.labels[calib]),
                                      time_budget_s=options["pretrain_min"] * 60, checkpoint_path=checkpoint,
                                      seed=options["seed"], log=self.log)
            trunk.load_weights(checkpoint)
            self.log(f"trunk on the calibration images: {training.evaluate_classifier(trunk, kaggle.pixels[calib], kaggle.labels[calib])}")
        return untrained_network(options, trunk=trunk)[0]

    def _train_gate(self, kaggle, output_dir: Path, install: bool, data_dir: Path) -> None:
        from diagnostics.ml.gate import GATE_QUANTILE, InputGate, fills_the_frame, measure_gate
        from diagnostics.ml.readers import read_grayscale

        gate = InputGate.fit(kaggle.subset("train")[0], kaggle.subset("calib")[0], GATE_QUANTILE)
        filled = np.asarray([fills_the_frame(read_grayscale(data_dir / row["path"]))
                             for row, split in zip(kaggle.manifest, kaggle.splits) if split == "val"])
        gate.metrics = measure_gate(gate, kaggle.subset("val")[0], validation_fills_frame=filled)
        self.log(f"gate: flag above {gate.flag_threshold:.0f}, refuse above {gate.refuse_threshold:.0f}; "
                 f"validation {gate.metrics['validation']}; synthetic non-MRI {gate.metrics['synthetic_non_mri']}")
        path = self._replace_file(output_dir / "input_gate.json", gate.save)
        if install:
            self._install(path, Path(settings.INPUT_GATE_PATH))

    def _train_baseline(self, kaggle, output_dir: Path, install: bool) -> None:
        from diagnostics.ml.baseline import LogisticBaseline
        from diagnostics.ml.metrics import classification_report
        from diagnostics.ml.readers import CLASS_NAMES

        x_train, y_train = kaggle.subset("train")
        x_val, y_val = kaggle.subset("val")
        baseline = LogisticBaseline().fit(x_train, y_train, list(CLASS_NAMES))
        report = classification_report(y_val, baseline.predict_proba(x_val), list(CLASS_NAMES))
        metrics = {k: report[k] for k in ("images", "accuracy", "macro_f1", "ece", "roc_auc_ovr_macro")}
        metrics["input_size"] = int(x_train.shape[1])
        path = self._replace_file(output_dir / "baseline_logreg.json", lambda file: baseline.save(file, metrics))
        self.log(f"baseline validation {metrics}")
        if install:
            self._install(path, Path(settings.MODEL_DIR) / path.name)

    @staticmethod
    def _replace_file(path: Path, write) -> Path:
        """``write(a path)`` in a staging folder beside ``path``, then rename it over ``path``: a worker
        reading the file sees the old one or the new one, never a part, and a write that fails (a full
        disk) leaves the old one as it was."""
        try:
            with staged(path.parent, path.stem) as staging:
                write(staging / path.name)
                publish(staging, path.parent)
        except OSError as error:
            raise CommandError(f"{path} could not be written ({error.strerror or error}); the file there is "
                               "unchanged") from error
        return path

    def _install(self, source: Path, target: Path) -> None:
        self._replace_file(target, lambda file: shutil.copy2(source, file))
        self.log(f"installed {target}")
