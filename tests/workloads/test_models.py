import numpy as np
from distbench import workloads
from distbench.workloads.metrics import roc_auc


def test_reuters_cnn_has_exactly_332856_parameters():
    model = workloads.get("reuters_cnn").build_model(30982)
    assert model.count_params() == 332_856
    assert [type(layer).__name__ for layer in model.layers] == [
        "Embedding", "Conv1D", "MaxPooling1D", "Conv1D", "MaxPooling1D", "Flatten", "Dense",
    ]
    assert model.output_shape == (None, 46)


def test_multibranch_is_the_published_model_with_78938_parameters():
    w = workloads.get("multibranch")
    model = w.build_model(w.vocab_size)
    # Input(200) -> Embedding(10000, 7) -> three SeparableConv1D branches -> Dense(1): 70,000
    # embedding weights and 8,938 in the branches and the head.
    assert model.count_params() == 78_938
    assert model.input_shape == (None, 200) and w.vocab_size == 10_000 and w.sequence_length == 200
    assert model.get_layer(index=1).output_dim == 7
    assert w.build_model(20000).count_params() == 148_938   # a user's own vocabulary stays an option
    convs = [layer for layer in model.layers if type(layer).__name__ == "SeparableConv1D"]
    assert sorted(c.kernel_size[0] for c in convs) == [3, 3, 5, 5, 7, 7]
    assert sum(type(layer).__name__ == "Concatenate" for layer in model.layers) == 1
    assert model.output_shape == (None, 1)
    assert model.layers[-1].activation.__name__ == "sigmoid"


def test_workload_losses_and_metrics():
    reuters, multi = workloads.get("reuters_cnn"), workloads.get("multibranch")
    assert type(reuters.optimizer()).__name__ == "Nadam"
    assert [m.name for m in reuters.metrics()] == ["accuracy", "top5_accuracy"]
    assert [m.name for m in multi.metrics()] == ["accuracy", "auc"]
    assert type(multi.loss()).__name__ == "BinaryCrossentropy"


def test_reuters_score_by_hand():
    probs = np.array(
        [[0.10, 0.70, 0.20, 0.00, 0.00, 0.00],    # true 1: top-1 right
         [0.50, 0.30, 0.10, 0.05, 0.04, 0.01]],   # true 5: the least likely, outside the top 5
        dtype=np.float32,
    )
    score = workloads.get("reuters_cnn").score(np.array([1, 5]), probs)
    assert score["accuracy"] == 0.5
    assert score["top5_accuracy"] == 0.5


def test_roc_auc_by_hand():
    # Positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ordered -> 0.75.
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    # A tie between a positive and a negative counts one half: (1 + 0.5) / 2.
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.2, 0.5, 0.5, 0.9])) == 0.875
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))
