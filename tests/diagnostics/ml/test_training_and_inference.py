import numpy as np
import pytest

from diagnostics.ml import calibration, inference, metrics, networks, preprocess, readers, training

from .helpers import kaggle_slice, requires_data, shared_tiny_bundle

pytestmark = requires_data
SIZE = 48


@pytest.fixture(scope="module")
def small_batch():
    pixels = np.stack([preprocess.preprocess_slice(kaggle_slice(name, i), SIZE).pixels
                       for name in readers.CLASS_NAMES for i in range(4)])
    return pixels, np.repeat(np.arange(4), 4)


@pytest.fixture(scope="module")
def tiny_bundle():
    return shared_tiny_bundle()


def test_a_few_training_steps_lower_the_classifier_loss(small_batch):
    import keras

    keras.utils.set_random_seed(0)
    x, y = small_batch
    model = networks.build_classifier(SIZE, width=8)
    before = training.evaluate_classifier(model, x, y)
    training.train_classifier(model, x, y, epochs=6, batch_size=16, augment=False, ema=False,
                              peak_lr=3e-3, warmup_epochs=0.0, log=lambda *a: None)
    after = training.evaluate_classifier(model, x, y)
    assert set(after) == {"loss", "accuracy", "macro_f1"}
    assert after["loss"] < before["loss"]


def test_a_few_training_steps_lower_the_segmenter_loss(small_batch):
    import keras

    keras.utils.set_random_seed(0)
    x = small_batch[0][:8]
    masks = np.zeros_like(x, dtype=bool)
    masks[:, 16:30, 18:34] = True
    model = networks.build_segmenter(SIZE, base_filters=4)
    before = training.evaluate_segmenter(model, x, masks)["loss"]
    training.train_segmenter(model, x, masks, epochs=5, batch_size=8, augment=True, ema=False, peak_lr=3e-3,
                             warmup_epochs=0.0, log=lambda *a: None)
    assert training.evaluate_segmenter(model, x, masks)["loss"] < before


def test_augmentation_moves_masks_with_images():
    from diagnostics.ml.augment import augment_batch

    images = np.zeros((4, 32, 32, 1), np.float32)
    images[:, 10:20, 12:22] = 200.0
    masks = (images > 0).astype(np.float32)
    augmented, moved = augment_batch(images, masks, intensity=0.0)
    bright = np.asarray(augmented)[..., 0] > 100
    overlap = np.logical_and(bright, np.asarray(moved)[..., 0] > 0.5).sum() / max(bright.sum(), 1)
    assert overlap > 0.9


def test_temperature_scaling_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 4)) * 2.0
    labels = np.array([rng.choice(4, p=p) for p in calibration.softmax(true_logits)])
    overconfident = true_logits * 3.0
    temperature = calibration.fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(3.0, rel=0.15)
    before = calibration.expected_calibration_error(calibration.softmax(overconfident), labels)
    after = calibration.expected_calibration_error(calibration.softmax(overconfident, temperature), labels)
    assert after < 0.03 < before


def test_tflite_and_keras_paths_agree_and_maps_have_the_input_size(tiny_bundle):
    image = kaggle_slice("glioma")
    lite = inference.Predictor.from_model_dir(tiny_bundle, backend="tflite")
    keras_path = inference.Predictor.from_model_dir(tiny_bundle, backend="keras")
    a, b = lite.predict(image, pixel_spacing_mm=(0.5, 0.5)), keras_path.predict(image)
    assert a.label == b.label
    for name in lite.classes:
        assert a.probabilities[name] == pytest.approx(b.probabilities[name], abs=1e-4)
    assert sum(a.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert a.mask.shape == image.shape and a.mask.dtype == bool
    assert a.heatmap.shape == image.shape and 0.0 <= a.heatmap.min() and a.heatmap.max() <= 1.0
    if a.tumour_found:
        assert a.area_mm2 == pytest.approx(a.tumour_area_px * 0.25)
        assert a.bbox["height"] > 0
    assert {"preprocess", "classify", "segment", "heatmap", "total"} <= set(a.timings_ms)
    batch = lite.predict_batch([image, kaggle_slice("notumor")[:200, :180]])
    assert [p.mask.shape for p in batch] == [image.shape, (200, 180)]


def test_class_activation_map_equals_grad_cam_up_to_scale():
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    model = networks.build_classifier(SIZE, width=8)
    # Non-trivial BN scales so that the residual branches contribute.
    model.set_weights([w + np.random.default_rng(0).normal(scale=0.1, size=w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    cam_model = networks.classifier_with_features(model)
    x = np.stack([preprocess.preprocess_slice(kaggle_slice("glioma"), SIZE).pixels])[..., None].astype(np.float32)
    with tf.GradientTape() as tape:
        logits, features = cam_model(x, training=False)
        chosen = int(np.argmax(logits[0]))
        score = logits[:, chosen]
    gradients = tape.gradient(score, features)
    grad_cam = tf.nn.relu(tf.reduce_sum(tf.reduce_mean(gradients, axis=(1, 2), keepdims=True) * features, -1))[0].numpy()
    dense_kernel = model.get_layer(networks.LOGITS_LAYER).get_weights()[0]
    cam = inference.class_activation_maps(np.asarray(features), dense_kernel, np.array([chosen]))[0]
    assert np.allclose(cam, grad_cam / grad_cam.max(), atol=1e-4)


def test_clean_mask_drops_speckle_and_bbox_is_tight():
    mask = np.zeros((40, 40), bool)
    mask[5:15, 20:30] = True
    mask[35, 2] = True
    cleaned = inference.clean_mask(mask, 4)
    assert cleaned.sum() == 100
    assert inference.bounding_box(cleaned) == {"top": 5, "left": 20, "height": 10, "width": 10}
    assert inference.bounding_box(np.zeros((3, 3), bool)) is None


def test_an_empty_outline_falls_back_to_the_most_likely_region_only_when_asked():
    logits = np.full((40, 40), -9.0, np.float32)
    logits[10:16, 10:16] = -2.0  # a faint tumour: under the threshold everywhere
    logits[12, 12] = -0.5
    logits[30:33, 30:33] = -2.5  # a second faint region, not connected to the most likely pixel
    assert not inference.tumour_mask(logits, 0.0, 4).any()
    assert not inference.tumour_mask(logits, 0.0, 4, fallback_threshold=-0.1).any()  # nothing that likely
    outline = inference.tumour_mask(logits, 0.0, 4, fallback_threshold=-3.0)
    assert outline.sum() == 36 and outline[10:16, 10:16].all()
    confident = logits.copy()
    confident[20:26, 20:26] = 2.0
    assert inference.tumour_mask(confident, 0.0, 4, fallback_threshold=-3.0).sum() == 36  # found: no fallback
    assert inference.tumour_mask(confident, 0.0, 4, fallback_threshold=-3.0)[20:26, 20:26].all()


def test_an_outline_is_drawn_at_the_inputs_resolution_from_the_logits_not_the_coarse_mask():
    box = preprocess.CropBox(top=0, left=0, side=200, input_shape=(200, 200))  # 40 px model, 5 input px each
    model_rows, model_cols = np.mgrid[0:40, 0:40]
    # A disc of radius 37 input pixels centred on input pixel (100, 100): in model pixels (19.6, 19.6), 7.4.
    logits = (7.4 - np.hypot(model_rows - 19.6, model_cols - 19.6)).astype(np.float32)
    logits[2, 2] = 1.0  # speckle, dropped in model space
    rows, cols = np.mgrid[0:200, 0:200]
    truth = np.hypot(rows - 100, cols - 100) <= 37

    model_mask, cut = inference.tumour_outline(logits, 0.0, 4)
    assert cut == 0.0 and not model_mask[2, 2]
    drawn = inference.outline_at_input(logits, model_mask, cut, box)
    staircase = preprocess.paste_to_input(model_mask.astype(np.float32), box, binary=True)
    assert drawn.shape == (200, 200) and not drawn[:20, :20].any()
    assert metrics.dice(drawn, truth) > max(metrics.dice(staircase, truth), 0.99)

    faint = logits - 9.0  # under the threshold: the fallback's region, cut at the fallback's logit
    model_mask, cut = inference.tumour_outline(faint, 0.0, 4, fallback_threshold=-9.0)
    assert cut == -9.0
    assert metrics.dice(inference.outline_at_input(faint, model_mask, cut, box), truth) > 0.99
    assert not inference.outline_at_input(faint, np.zeros((40, 40), bool), cut, box).any()


def test_mask_thresholds_keep_healthy_brains_empty_then_fit_the_tumours():
    from diagnostics.ml import export

    truth = np.zeros((4, 20, 20), bool)
    truth[:, 5:11, 5:11] = True
    tumours = np.full((4, 20, 20), -9.0, np.float32)
    tumours[:3, 4:12, 4:12] = -1.0  # a rim that a fallback below -1 would add to the outline
    tumours[:3, 5:11, 5:11] = 1.2   # outlined exactly at thresholds up to 1.0
    tumours[3, 5:11, 5:11] = -2.0   # a faint one: only a fallback below -2 finds it
    empties = np.full((20, 20, 20), -9.0, np.float32)
    empties[:2, 2:8, 2:8] = 0.7     # two healthy brains with a blob: 90 % empty at 0.5 and below
    chosen = export.choose_mask_thresholds(tumours, truth, empties, min_area=4, log=lambda *a: None)
    assert chosen == (1.0, -3.0)
    # Without no-tumour images nothing weighs false outlines, so the mask threshold stays at 0.
    assert export.choose_mask_thresholds(tumours, truth, None, min_area=4, log=lambda *a: None) == (0.0, -3.0)


def test_the_empty_mask_floor_can_hold_for_the_masks_served_behind_the_classifier():
    from diagnostics.ml import export

    truth = np.zeros((2, 20, 20), bool)
    truth[:, 2:6, 2:6] = truth[:, 12:16, 12:16] = True
    tumours = np.full((2, 20, 20), -9.0, np.float32)
    tumours[:, 2:6, 2:6] = -1.2     # two faint tumours per slice: only thresholds below -1.3 find both,
    tumours[:, 12:16, 12:16] = -1.3  # a fallback only the one around the most likely pixel
    empties = np.full((20, 20, 20), -9.0, np.float32)
    empties[:4, 2:8, 2:8] = 0.0     # four healthy brains the segmenter alone outlines below 0
    quiet = dict(min_area=4, log=lambda *a: None)
    # Judged alone, the segmenter may not go below 0 (80 % empty) and the fallback finds one tumour.
    assert export.choose_mask_thresholds(tumours, truth, empties, **quiet) == (1.5, -2.0)
    # The classifier calls three of those four "notumor", so patients would see one false outline in
    # twenty (95 % empty): the threshold may go low enough for both tumours.
    says_notumor = np.ones(20, bool)
    says_notumor[3] = False
    chosen = export.choose_mask_thresholds(tumours, truth, empties, empty_classified_notumor=says_notumor, **quiet)
    assert chosen == (-1.5, None)
    assert export.empty_mask_rate(empties, -1.5, 4, classified_notumor=says_notumor) == 0.95
    # A fallback outlines whatever the classifier calls a tumour, so it counts against the floor too.
    says_notumor[4] = False
    assert export.empty_mask_rate(empties, 0.5, 4, classified_notumor=says_notumor) == 1.0
    assert export.empty_mask_rate(empties, 0.5, 4, fallback=-1e9, classified_notumor=says_notumor) == 0.9


def test_the_classifiers_notumor_verdicts_are_the_served_labels(tiny_bundle):
    from diagnostics.ml import export

    info = __import__("json").loads((tiny_bundle / "classifier.json").read_text())
    images = [kaggle_slice(name, i) for name in readers.CLASS_NAMES for i in range(3)]
    pixels = np.stack([preprocess.preprocess_slice(image, info["input_size"]).pixels for image in images])
    served = inference.Predictor.from_model_dir(tiny_bundle).predict_batch(images)
    verdicts = export.classified_notumor(tiny_bundle / "classifier.json", pixels)
    assert verdicts.tolist() == [p.label == "notumor" for p in served]
    with pytest.raises(ValueError, match="takes 48 px images"):
        export.classified_notumor(tiny_bundle / "classifier.json", pixels[:, :40, :40])


def test_small_tumours_are_found_and_only_they():
    masks = np.zeros((4, 10, 10), bool)
    masks[0, :1, :2] = True      # 2 % of the image: small
    masks[1, :5, :5] = True      # 25 %: large
    masks[3, :1, :1] = True      # 1 %: small
    assert training.small_tumour_slices(masks, 0.05).tolist() == [True, False, False, True]
    assert training.small_tumour_slices(masks, 0.015).tolist() == [False, False, False, True]


def test_slices_are_repeated_as_often_as_asked_and_stay_paired_with_their_masks():
    masks = np.zeros((4, 10, 10), bool)
    masks[:, 0, :4] = np.arange(4)[:, None] > np.arange(4)[None, :]
    x = np.arange(4, dtype=np.uint8)[:, None, None] * np.ones((1, 10, 10), np.uint8)
    more_x, more_masks = training.repeat_slices(x, masks, np.array([3, 1, 1, 2]))
    assert more_x[:, 0, 0].tolist() == [0, 1, 2, 3, 0, 0, 3]
    assert all(np.array_equal(m, masks[i]) for m, i in zip(more_masks, more_x[:, 0, 0]))
    assert training.repeat_slices(x, masks, np.ones(4, int))[0] is x
    for copies in (np.array([1, 0, 1, 1]), np.ones(3, int)):
        with pytest.raises(ValueError):
            training.repeat_slices(x, masks, copies)


def test_hard_slices_are_those_the_model_segments_badly():
    """A fixed 'model' that marks the left half of every image as tumour: right for a left-half tumour,
    half right for a left-quarter one, wrong for a right-half one and for an empty mask."""
    import keras

    inputs = keras.Input((8, 8, 1))
    left_half = np.where(np.arange(8) < 4, 5.0, -5.0).astype(np.float32)[None, None, :, None]
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 0 + left_half)(inputs))
    masks = np.zeros((4, 8, 8), bool)
    masks[0, :, :4] = True
    masks[1, :, :2] = True
    masks[2, :, 4:] = True
    x = np.zeros((4, 8, 8), np.uint8)
    assert training.hard_slices(model, x, masks, 0.5).tolist() == [False, False, True, True]
    assert training.hard_slices(model, x, masks, 0.9).tolist() == [False, True, True, True]


def test_pseudo_labels_are_the_masks_a_segmenter_serves_cut_at_its_threshold_without_speckle():
    """A 'model' whose logit is the pixel's brightness minus 100: bright regions are tumour, and one
    bright pixel alone is speckle the served mask drops."""
    import keras

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t - 100.0)(inputs))
    x = np.zeros((3, 8, 8), np.uint8)
    x[0, 2:5, 2:5] = 150          # a 9-pixel tumour
    x[1, 0, 0] = 255              # a lone bright pixel
    x[2, 5:8, 5:8] = 120          # tumour only under a threshold below logit 20
    masks = training.pseudo_labels(model, x, threshold=30.0, min_component_px=2)
    assert masks.dtype == bool and masks.shape == (3, 8, 8)
    assert np.array_equal(masks[0], x[0] > 0) and not masks[1].any() and not masks[2].any()
    assert np.array_equal(training.pseudo_labels(model, x, threshold=10.0, min_component_px=2)[2], x[2] > 0)
    assert training.pseudo_labels(model, x[:0], threshold=0.0, min_component_px=2).shape == (0, 8, 8)


def test_the_exported_segmenter_carries_thresholds_chosen_from_the_candidates(tiny_bundle):
    import json

    from diagnostics.ml import export

    info = json.loads((tiny_bundle / "segmenter.json").read_text())
    assert info["threshold_logit"] in export.THRESHOLD_CANDIDATES
    fallback = info["fallback_threshold_logit"]
    assert fallback is None or (fallback in export.FALLBACK_CANDIDATES and fallback < info["threshold_logit"])


def test_the_predictor_outlines_every_tumour_its_classifier_finds_when_the_bundle_asks(tiny_bundle, tmp_path):
    import json
    import shutil

    guided = tmp_path / "guided"
    shutil.copytree(tiny_bundle, guided)
    info = json.loads((guided / "segmenter.json").read_text())
    info["fallback_threshold_logit"] = -1e9  # any pixel will do: the fallback always finds a region
    (guided / "segmenter.json").write_text(json.dumps(info))
    images = [kaggle_slice(name, i) for name in readers.CLASS_NAMES for i in range(3)]
    plain = inference.Predictor.from_model_dir(tiny_bundle).predict_batch(images)
    outlined = inference.Predictor.from_model_dir(guided).predict_batch(images)
    for before, after in zip(plain, outlined):
        assert after.label == before.label
        if after.label == "notumor":
            assert np.array_equal(after.mask, before.mask)  # "no tumour" is never given an outline
        else:
            assert after.tumour_found


def test_an_image_classified_notumor_never_gets_an_outline(tiny_bundle, tmp_path):
    import json
    import shutil

    def bundle_copy(name, notumor_bias=None):
        copy = tmp_path / name
        shutil.copytree(tiny_bundle, copy)
        info = json.loads((copy / "segmenter.json").read_text())
        info["threshold_logit"] = -1e9  # the segmenter outlines every pixel of every image
        info["min_component_px"] = 1
        (copy / "segmenter.json").write_text(json.dumps(info))
        if notumor_bias is not None:  # the dense head's bias is the last array of the Keras weights
            weights_path = copy / json.loads((copy / "classifier.json").read_text())["keras_weights"]
            with np.load(weights_path) as stored:
                weights = {key: stored[key] for key in stored.files}
            bias = sorted(weights)[-1]
            weights[bias][readers.CLASS_NAMES.index("notumor")] = notumor_bias
            np.savez(weights_path, **weights)
        return copy

    images = [kaggle_slice(name, 0) for name in readers.CLASS_NAMES]
    as_trained = inference.Predictor.from_model_dir(bundle_copy("as-trained"), backend="keras").predict_batch(images)
    assert all(p.label != "notumor" and p.tumour_found and p.bbox for p in as_trained)
    says_notumor = inference.Predictor.from_model_dir(bundle_copy("notumor", 1e4), backend="keras").predict_batch(images)
    assert all(p.label == "notumor" and not p.tumour_found and p.bbox is None for p in says_notumor)


def test_rounds_of_a_federated_run_follow_one_cosine_schedule():
    from federation.learning import round_window

    windows = [round_window(r, 4) for r in range(1, 5)]
    assert windows[0][0] == 0.0 and windows[-1][1] == 1.0
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))

    def learning_rates(window, steps=5):
        schedule = training.WarmupCosine(1.0, epochs=1, steps_per_epoch=steps, warmup_epochs=0.0, window=window)
        rates = []
        for _ in range(steps):
            rates.append(schedule._lr())
            schedule.step += 1
        return rates

    one_go = learning_rates((0.0, 1.0), steps=20)
    in_rounds = [rate for window in windows for rate in learning_rates(window)]
    assert in_rounds == pytest.approx(one_go, abs=1e-9)
    assert in_rounds[5] < in_rounds[4] and in_rounds[-1] < 0.05


def test_a_federated_run_warms_up_once_over_its_first_epoch_not_every_round():
    from federation.learning import round_window, schedule_warmup

    rounds, steps = 4, 5
    warmup = schedule_warmup(rounds * 1)
    assert warmup == 0.25 and schedule_warmup(0) == 0.0 and schedule_warmup(0.5) == 1.0
    assert schedule_warmup(20) == pytest.approx(0.1) and schedule_warmup(100) == pytest.approx(0.1)

    def learning_rates(window, count, fraction):
        schedule = training.WarmupCosine(1.0, epochs=1, steps_per_epoch=count, warmup_epochs=0.0, window=window,
                                         warmup_fraction=fraction)
        rates = []
        for _ in range(count):
            rates.append(schedule._lr())
            schedule.step += 1
        return rates

    one_go = learning_rates((0.0, 1.0), rounds * steps, warmup)
    in_rounds = [rate for r in range(1, rounds + 1) for rate in learning_rates(round_window(r, rounds), steps, warmup)]
    assert in_rounds == pytest.approx(one_go, abs=1e-9)
    # The first round ramps up from a small but non-zero rate; later rounds only decay.
    first = in_rounds[:steps]
    assert 0 < first[0] < 0.25 and all(a < b for a, b in zip(first, first[1:])) and first[-1] > 0.85
    assert all(a >= b for a, b in zip(in_rounds[steps:], in_rounds[steps + 1:]))


def test_segmentation_loss_weighs_each_tumour_slice_alike_whatever_its_size():
    """Missing a small tumour costs as much Dice as missing a large one: the targets read the mean over slices."""
    import tensorflow as tf

    large = np.zeros((32, 32, 1), np.float32)
    large[2:30, 2:30] = 1
    small = np.zeros((32, 32, 1), np.float32)
    small[10:13, 10:13] = 1
    truth = np.stack([large, small])

    def dice_part(found_large: bool, found_small: bool) -> float:
        logits = np.stack([large if found_large else 0 * large, small if found_small else 0 * small]) * 24 - 12
        bce = float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=truth, logits=logits)))
        return float(training.dice_bce_loss(truth, logits)) - bce

    assert dice_part(True, True) == pytest.approx(0.0, abs=0.01)
    # Half the batch's Dice each (less a little smoothing for the 9-pixel tumour); pooled over the batch,
    # missing the small one would cost under 0.01 and the large one nearly 1.
    assert 0.4 < dice_part(True, False) <= 0.5
    assert 0.4 < dice_part(False, True) <= 0.5


def test_dice_per_slice_counts_empty_slices_and_missed_tumours():
    truth = np.zeros((3, 8, 8), bool)
    truth[0, 2:4, 2:4] = True
    predicted = np.zeros_like(truth)
    predicted[0, 2:4, 2:3] = True
    predicted[2, 0, 0] = True
    # Slice 0: 2·2 / (4 + 2); slice 1: empty and answered empty; slice 2: a false outline on an empty slice.
    assert metrics.dice_per_slice(predicted, truth) == pytest.approx([2 / 3, 1.0, 0.0])
    assert [metrics.dice(p, t) for p, t in zip(predicted, truth)] == pytest.approx([2 / 3, 1.0, 0.0])


def test_a_later_fit_resumes_the_optimizer_and_refuses_a_state_of_another_network(small_batch):
    x, y = small_batch
    model = networks.build_classifier(SIZE, width=8)
    options = dict(epochs=1, batch_size=8, augment=False, ema=False, warmup_epochs=0.0, log=lambda *a: None)
    training.train_classifier(model, x, y, **options)
    state = training.optimizer_state(model)
    assert int(state[0]) == 2  # 16 images at batch 8
    training.train_classifier(model, x, y, resume_optimizer=state, **options)
    assert int(training.optimizer_state(model)[0]) == 4
    other = networks.build_classifier(SIZE, width=4)
    with pytest.raises(ValueError, match="does not fit"):
        training.train_classifier(other, x, y, resume_optimizer=state, **options)


def test_a_fit_continuing_its_optimizer_keeps_the_traced_step_and_other_settings_compile_again(small_batch):
    x, y = small_batch
    model = networks.build_classifier(SIZE, width=8)
    options = dict(epochs=1, batch_size=8, augment=False, ema=False, warmup_epochs=0.0, log=lambda *a: None)
    training.train_classifier(model, x, y, **options)
    traced, optimizer = model.train_function, model.optimizer
    training.train_classifier(model, x, y, resume_optimizer=training.optimizer_state(model), **options)
    assert model.train_function is traced and model.optimizer is optimizer
    assert int(training.optimizer_state(model)[0]) == 4

    prior = np.array([0.4, 0.2, 0.2, 0.2])
    training.train_classifier(model, x, y, resume_optimizer=training.optimizer_state(model), class_prior=prior,
                              **options)
    assert model.optimizer is not optimizer  # another loss: compiled again, the optimizer state carried over
    assert int(training.optimizer_state(model)[0]) == 6
    optimizer = model.optimizer
    training.train_classifier(model, x, y, class_prior=prior, **options)
    assert model.optimizer is not optimizer  # no state to continue: a fresh optimizer
    assert int(training.optimizer_state(model)[0]) == 2


def test_the_proximal_term_holds_a_fit_near_the_weights_it_started_from(small_batch):
    import keras

    x, y = small_batch
    options = dict(epochs=2, batch_size=8, augment=False, ema=False, warmup_epochs=0.0, peak_lr=1e-2,
                   log=lambda *a: None)

    def distance_travelled(proximal_mu):
        keras.utils.set_random_seed(3)
        model = networks.build_classifier(SIZE, width=8)
        start = [w.numpy() for w in model.trainable_weights]
        training.train_classifier(model, x, y, proximal_mu=proximal_mu, **options)
        return np.sqrt(sum(np.sum((w.numpy() - s) ** 2) for w, s in zip(model.trainable_weights, start)))

    # At mu = 1 / rate the pull takes each weight all the way back before the next step: what is left is
    # about one step's movement, where the plain fit moves four steps' worth.
    plain, pulled = distance_travelled(0.0), distance_travelled(100.0)
    assert plain > 0 and pulled < 0.6 * plain


def test_logit_adjusted_loss_is_cross_entropy_of_the_logits_plus_the_log_prior():
    logits = np.array([[2.0, -1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    labels = np.array([1, 3])
    prior = np.array([0.7, 0.1, 0.1, 0.1])
    shifted = logits + np.log(prior)
    log_softmax = shifted - np.logaddexp.reduce(shifted, axis=1, keepdims=True)
    expected = -log_softmax[np.arange(2), labels].mean()
    assert float(training.logit_adjusted_loss(prior)(labels, logits)) == pytest.approx(expected, rel=1e-5)
    plain = -(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))[np.arange(2), labels].mean()
    assert float(training.logit_adjusted_loss(np.full(4, 0.25))(labels, logits)) == pytest.approx(plain, rel=1e-5)


def test_the_smoothed_prior_keeps_an_unseen_class_finite():
    prior = training.smoothed_class_prior(np.array([0, 0, 0, 2]), 4)
    assert prior.sum() == pytest.approx(1.0)
    assert prior.tolist() == pytest.approx([4 / 8, 1 / 8, 2 / 8, 1 / 8])


def test_logit_adjustment_keeps_the_case_mix_out_of_the_model():
    """On images that say nothing, plain training learns the hospital's case mix; adjusted, it learns none."""
    import keras

    x = np.zeros((40, SIZE, SIZE), np.uint8)
    y = np.repeat(np.arange(4), [30, 5, 3, 2])
    probabilities = {}
    for adjusted in (False, True):
        keras.utils.set_random_seed(0)
        model = networks.build_classifier(SIZE, width=8)
        prior = training.smoothed_class_prior(y, 4) if adjusted else None
        training.train_classifier(model, x, y, epochs=40, batch_size=8, augment=False, ema=False, peak_lr=1e-2,
                                  warmup_epochs=0.0, log=lambda *a: None, class_prior=prior)
        logits = training.predict_logits(model, x[:1])[0]
        probabilities[adjusted] = np.exp(logits - np.logaddexp.reduce(logits))
    assert probabilities[False][0] > 0.5  # pulled towards the training mix, 30 of 40
    assert np.abs(probabilities[True] - 0.25).max() < 0.1


def test_a_segmenter_can_be_exported_to_serve_without_the_mirror_image(tmp_path):
    import json
    from pathlib import Path

    import keras

    from diagnostics.ml import export
    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(3)
    model = networks.build_segmenter(SIZE, base_filters=4)
    bundle = export.export_segmenter(model, tmp_path, figshare_validation_slices(SIZE), log=lambda *a: None,
                                     test_time_flip=False)
    info = json.loads(Path(bundle["bundle_path"]).read_text())
    assert info["test_time_flip"] is False
    assert info["validation_metrics"]["slices"] == 4


def test_an_encoder_segmenter_is_built_on_the_classifiers_own_layers_and_trains(small_batch):
    import keras

    keras.utils.set_random_seed(0)
    classifier = networks.build_classifier(SIZE, width=8)
    segmenter = networks.build_encoder_segmenter(SIZE, decoder_filters=4, trunk=classifier)
    features = classifier.get_layer(networks.FEATURE_LAYER)
    assert segmenter.get_layer(networks.FEATURE_LAYER) is features
    # Training the segmenter moves the trunk's weights, so it starts from what the classifier learned.
    stem = next(layer for layer in classifier.layers if isinstance(layer, keras.layers.Conv2D))
    stem_before = np.array(stem.get_weights()[0])
    x = small_batch[0][:8]
    masks = np.zeros_like(x, dtype=bool)
    masks[:, 16:30, 18:34] = True
    before = training.evaluate_segmenter(segmenter, x, masks)["loss"]
    # Enough steps for the batch-norm statistics that inference uses to follow the training batches.
    training.train_segmenter(segmenter, x, masks, epochs=30, batch_size=8, augment=False, ema=False, peak_lr=3e-3,
                             warmup_epochs=0.0, log=lambda *a: None)
    assert training.evaluate_segmenter(segmenter, x, masks)["loss"] < before
    assert not np.allclose(stem_before, stem.get_weights()[0])
    with pytest.raises(ValueError):
        networks.build_encoder_segmenter(SIZE * 2, decoder_filters=4, trunk=classifier)


def test_an_exported_encoder_segmenter_is_rebuilt_from_its_bundle(tmp_path):
    import json
    from pathlib import Path

    import keras

    from diagnostics.ml import export
    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(3)
    model = networks.build_encoder_segmenter(SIZE, width=8, decoder_filters=4)
    slices = figshare_validation_slices(SIZE)
    bundle = export.export_segmenter(model, tmp_path, slices, log=lambda *a: None, test_time_flip=False)
    info = json.loads(Path(bundle["bundle_path"]).read_text())
    assert info["architecture"] == {"builder": "build_encoder_segmenter", "width": 8, "decoder_filters": 4}
    rebuilt, _ = inference.load_keras(info, tmp_path)
    x = slices.pixels[..., None].astype(np.float32)
    # The bundle's weights are float16.
    np.testing.assert_allclose(rebuilt(x), model(x), atol=0.05)
    plain = networks.build_segmenter(SIZE, base_filters=4)
    assert networks.segmenter_architecture(plain) == {"builder": "build_segmenter", "base_filters": 4}


def test_an_ensemble_segmenter_averages_its_members_and_is_rebuilt_from_its_bundle(tmp_path):
    import json
    from pathlib import Path

    import keras

    from diagnostics.ml import export
    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(5)
    plain = networks.build_segmenter(SIZE, base_filters=4)
    encoder = networks.build_encoder_segmenter(SIZE, width=8, decoder_filters=4)
    members = [networks.segmenter_architecture(plain), networks.segmenter_architecture(encoder)]
    ensemble = networks.build_segmenter_ensemble(SIZE, members)
    ensemble.set_weights(plain.get_weights() + encoder.get_weights())
    slices = figshare_validation_slices(SIZE)
    x = slices.pixels[..., None].astype(np.float32)
    np.testing.assert_allclose(ensemble(x), (plain(x) + encoder(x)) / 2.0, atol=1e-5)

    bundle = export.export_segmenter(ensemble, tmp_path, slices, log=lambda *a: None, test_time_flip=False)
    info = json.loads(Path(bundle["bundle_path"]).read_text())
    assert info["architecture"] == {"builder": "build_segmenter_ensemble", "members": members}
    rebuilt, _ = inference.load_keras(info, tmp_path)
    np.testing.assert_allclose(rebuilt(x), ensemble(x), atol=0.05)
    with pytest.raises(ValueError):
        networks.build_segmenter_ensemble(SIZE, [{"builder": "build_classifier", "width": 8}])


def test_an_ensemble_fine_tuned_as_one_network_trains_every_member_on_the_averaged_logits(small_batch):
    import keras

    keras.utils.set_random_seed(3)
    x = small_batch[0][:8]
    masks = np.zeros_like(x, dtype=bool)
    masks[:, 16:30, 18:34] = True
    first, second = (networks.build_segmenter(SIZE, base_filters=4) for _ in range(2))
    pair = networks.build_segmenter_ensemble(SIZE, [networks.segmenter_architecture(first)] * 2)
    pair.set_weights(first.get_weights() + second.get_weights())
    before = training.evaluate_segmenter(pair, x, masks)["loss"]

    training.train_segmenter(pair, x, masks, epochs=30, batch_size=8, augment=False, ema=False, peak_lr=3e-3,
                             warmup_epochs=0.0, log=lambda *a: None)

    assert training.evaluate_segmenter(pair, x, masks)["loss"] < before
    for member, start in zip(networks.segmenter_members(pair), (first, second)):
        assert not np.allclose(member.get_layer("mask_logits").get_weights()[0],
                               start.get_layer("mask_logits").get_weights()[0])


def test_an_ensemble_bundle_given_as_a_member_adds_each_of_its_segmenters(tmp_path):
    import keras

    from diagnostics.ml import export
    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(7)
    first, second, third = (networks.build_segmenter(SIZE, base_filters=4) for _ in range(3))
    pair = networks.build_segmenter_ensemble(SIZE, [networks.segmenter_architecture(first)] * 2)
    pair.set_weights(first.get_weights() + second.get_weights())
    slices = figshare_validation_slices(SIZE)
    quiet = dict(log=lambda *a: None, test_time_flip=False)
    pair_bundle = export.export_segmenter(pair, tmp_path / "pair", slices, **quiet)["bundle_path"]
    third_bundle = export.export_segmenter(third, tmp_path / "third", slices, **quiet)["bundle_path"]

    trio = export.segmenter_ensemble_from_bundles([pair_bundle, third_bundle], SIZE)

    assert networks.segmenter_architecture(trio)["members"] == [{"builder": "build_segmenter", "base_filters": 4}] * 3
    x = slices.pixels[..., None].astype(np.float32)
    # Each U-Net weighs a third, not the pair a half; the bundles' weights are float16.
    np.testing.assert_allclose(trio(x), (first(x) + second(x) + third(x)) / 3.0, atol=0.05)
    assert not np.allclose(trio(x), (pair(x) + third(x)) / 2.0, atol=0.05)


def test_a_mirror_channel_segmenter_sees_the_other_hemisphere_and_is_rebuilt_from_its_bundle(tmp_path):
    import json
    from pathlib import Path

    import keras

    from diagnostics.ml import export
    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(11)
    model = networks.build_segmenter(SIZE, base_filters=4, mirror_channel=True)
    slices = figshare_validation_slices(SIZE)
    x = slices.pixels[..., None].astype(np.float32)
    seen = keras.Model(model.input, model.get_layer("with_mirror").output)(x)
    np.testing.assert_allclose(seen, np.concatenate([x, x[:, :, ::-1]], axis=-1) / 255.0, atol=1e-6)

    bundle = export.export_segmenter(model, tmp_path, slices, log=lambda *a: None, test_time_flip=False)
    info = json.loads(Path(bundle["bundle_path"]).read_text())
    assert info["architecture"] == {"builder": "build_segmenter", "base_filters": 4, "mirror_channel": True}
    rebuilt, _ = inference.load_keras(info, tmp_path)
    # The bundle's weights are float16.
    np.testing.assert_allclose(rebuilt(x), model(x), atol=0.05)


@pytest.mark.parametrize("mirror_channel", [False, True])
def test_a_widened_segmenter_answers_as_the_narrow_one_then_trains_its_new_channels(mirror_channel, small_batch):
    import keras

    keras.utils.set_random_seed(12)
    narrow = networks.build_segmenter(SIZE, base_filters=4, mirror_channel=mirror_channel)
    x = small_batch[0][:8]
    masks = np.zeros_like(x, dtype=bool)
    masks[:, 16:30, 18:34] = True
    fit = dict(epochs=2, batch_size=4, ema=False, peak_lr=3e-3, warmup_epochs=0.0, log=lambda *a: None)
    training.train_segmenter(narrow, x, masks, **fit)  # so the batch-norm statistics are not their defaults
    wide = networks.widen_segmenter(narrow, 6)
    assert networks.segmenter_architecture(wide) == networks.segmenter_architecture(narrow) | {"base_filters": 6}
    assert wide.count_params() > 2 * narrow.count_params()
    np.testing.assert_allclose(wide.predict(x, verbose=0), narrow.predict(x, verbose=0), atol=1e-4)

    output = wide.get_layer("mask_logits")
    assert not output.get_weights()[0][0, 0, 4:].any()  # the added channels start unread
    training.train_segmenter(wide, x, masks, **fit)
    assert np.abs(output.get_weights()[0][0, 0, 4:]).max() > 1e-4  # and training makes them count


def test_only_a_plain_unet_can_be_widened_and_only_wider():
    narrow = networks.build_segmenter(SIZE, base_filters=4)
    with pytest.raises(ValueError, match="cannot widen a U-Net of 4 base filters to 3"):
        networks.widen_segmenter(narrow, 3)
    with pytest.raises(ValueError, match="only a plain U-Net"):
        networks.widen_segmenter(networks.build_encoder_segmenter(SIZE, width=8, decoder_filters=4), 6)


def test_the_served_segmenter_holds_float16_weights_and_answers_as_measured(tmp_path):
    import keras

    from diagnostics.ml import export
    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(13)
    model = networks.build_segmenter(SIZE, base_filters=8)
    float32_size = len(export.tflite_bytes(model, SIZE))
    slices = figshare_validation_slices(SIZE)
    export.export_segmenter(model, tmp_path, slices, log=lambda *a: None, test_time_flip=False)
    served = (tmp_path / "segmenter.tflite")
    assert served.stat().st_size < 0.6 * float32_size
    x = slices.pixels[..., None].astype(np.float32)
    # Half-precision weights move the logits by a small fraction of their range.
    logits = np.asarray(model(x))
    np.testing.assert_allclose(inference.TFLiteRunner(served, 1)(x)[0], logits, atol=0.01 * np.abs(logits).max())


def test_an_ensemble_is_built_from_segmenter_bundles_and_refuses_anything_else(tmp_path, tiny_bundle):
    import json

    import keras

    from diagnostics.ml import export
    from tests.diagnostics.bundles import figshare_validation_slices

    keras.utils.set_random_seed(17)
    slices = figshare_validation_slices(SIZE)
    paths = []
    for name, member in (("plain", networks.build_segmenter(SIZE, base_filters=4)),
                         ("mirror", networks.build_segmenter(SIZE, base_filters=4, mirror_channel=True))):
        bundle = export.export_segmenter(member, tmp_path / name, slices, log=lambda *a: None, test_time_flip=False)
        paths.append(bundle["bundle_path"])
    members = [inference.load_keras(json.loads(open(p).read()), tmp_path / name)[0]
               for p, name in zip(paths, ("plain", "mirror"))]
    ensemble = export.segmenter_ensemble_from_bundles(paths, SIZE)
    x = slices.pixels[..., None].astype(np.float32)
    np.testing.assert_allclose(ensemble(x), (members[0](x) + members[1](x)) / 2.0, atol=1e-5)

    classifier_bundle = tiny_bundle / "classifier.json"
    for bad, message in (([paths[0], str(classifier_bundle)], "not a segmenter bundle"),
                         ([paths[0], str(tmp_path / "missing.json")], "not a readable model bundle")):
        with pytest.raises(ValueError, match=message):
            export.segmenter_ensemble_from_bundles(bad, SIZE)
    with pytest.raises(ValueError, match=f"made for {SIZE} px input"):
        export.segmenter_ensemble_from_bundles(paths, SIZE * 2)
