import numpy as np
import pytest

from federation import learning


@pytest.fixture(scope="module")
def networks():
    return learning.build_model("classifier", 32, 4), learning.build_model("classifier", 32, 4)


def test_weights_travel_as_one_vector_and_come_back_exactly(networks):
    sender, receiver = networks
    flat = learning.pack_weights(sender)
    assert flat.ndim == 1 and flat.dtype == np.float32
    assert flat.size == sum(w.size for w in sender.get_weights())
    learning.unpack_weights(receiver, flat)
    for sent, received in zip(sender.get_weights(), receiver.get_weights()):
        np.testing.assert_array_equal(sent, received)


def test_averaging_vectors_is_averaging_the_weights(networks):
    first, second = networks
    second.set_weights([w + 1.0 for w in first.get_weights()])
    mean = (learning.pack_weights(first) + learning.pack_weights(second)) / 2
    learning.unpack_weights(first, mean)
    for averaged, other in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_allclose(averaged, other - 0.5, rtol=1e-6, atol=1e-6)


def test_a_vector_for_another_network_is_refused(networks):
    model, _ = networks
    with pytest.raises(ValueError, match="does not fit this network"):
        learning.unpack_weights(model, np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="does not fit this network"):
        learning.unpack_weights(model, learning.pack_weights(model)[None, :])
