"""Child side: the floating-point operations of one training step, counted from its trace.

The step is the workload's training step as every loop runs it: the model's forward
pass, the loss, the gradients of the trainable variables and the optimizer's update, for
one global batch, traced once with ``tf.function`` on a plain copy of the model (a model
that defines its own ``train_step``: that step, :func:`own_step_flops`). Each op
of the traced graph is counted with the FLOP statistics TensorFlow registers for it
(``ops.RegisterStatistics(..., "flops")``, what ``tf.compat.v1.profiler``'s
``float_operation`` sums): 2 per multiply-add (MatMul: 2mkn), so a count can be held
against a hand count (a convolution's gradients are counted exactly, see
:func:`_conv_backprop_flops`). Ops without registered statistics (the embedding's gather and
scatter, casts, the optimizer's element-wise update) count 0: the figure is a lower bound
that the convolutions and dense layers dominate, and ``by_op`` says where it came from.

The count depends only on the model, loss, optimizer and batch, so it is cached on disk
(:mod:`distbench.core.cache`) keyed by the model's layers, their weight shapes and
configurations, the hash of the workload's code, the loss, the optimizer's config, the batch
shape and TensorFlow's version: one trace per workload and batch, not per cell.
"""

from __future__ import annotations

from distbench.core import cache, keras_flavour

SOURCE = "TensorFlow's registered FLOP statistics over the traced training step (forward, gradients, update)"
OWN_SOURCE = "TensorFlow's registered FLOP statistics over the model's own train_step, traced"
# The op types that do the arithmetic of the layers (the hand count's terms).
DENSE_OPS = ("MatMul", "BatchMatMulV2", "Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput",
             "DepthwiseConv2dNative", "DepthwiseConv2dNativeBackpropFilter", "DepthwiseConv2dNativeBackpropInput")


def train_step_flops(model, loss, optimizer, x_spec, y_spec, code: str | None = None) -> dict:
    """FLOPs of one training step of ``model`` on a batch shaped like ``x_spec``/``y_spec``
    (``tf.TensorSpec`` with a fixed batch dimension): ``per_step``, ``forward`` and
    ``by_op`` (op type -> FLOPs). ``model`` is a plain (strategy-free) model; its weights
    are not changed (the step is traced, never run). ``code``: the hash of the code that
    built it (the workload's), part of the cache's key."""
    key = _key(model, loss, optimizer, x_spec, y_spec, code)
    file = cache.path("flops", key, ".json")
    found = cache.read_json(file)
    if found and found.get("key") == key:
        return found["count"]
    count = _count(model, loss, optimizer, x_spec, y_spec)
    cache.write_json(file, {"key": key, "count": count})
    return count


def own_step_flops(model, x_spec, y_spec) -> dict:
    """FLOPs of one call of the compiled ``model``'s own ``train_step`` (what ``fit`` and
    ``train_on_batch`` run for a model that defines one), traced, never run. Not cached:
    what the step does may hang on anything its code reads (a constant of its module, a
    file), which no key can name; the standard step's count had stood for it, so a
    train_step doing twice the work read the same FLOPs."""
    import tensorflow as tf

    step = tf.function(lambda x, y: model.train_step((x, y)))
    by_op = graph_flops(step.get_concrete_function(x_spec, y_spec).graph)
    forward = tf.function(lambda x: model(x, training=False))
    return {"per_step": sum(by_op.values()), "by_op": by_op, "batch": int(tf.nest.flatten(x_spec)[0].shape[0]),
            "forward": sum(graph_flops(forward.get_concrete_function(x_spec).graph).values()),
            "source": f"{OWN_SOURCE} ({keras_flavour.own_train_step(model).__qualname__})"}


def _count(model, loss, optimizer, x_spec, y_spec) -> dict:
    import tensorflow as tf

    optimizer.build(model.trainable_variables)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=True))
        grads = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return value

    @tf.function
    def forward(x):
        return model(x, training=False)

    by_op = graph_flops(step.get_concrete_function(x_spec, y_spec).graph)
    return {
        "per_step": sum(by_op.values()),
        "forward": sum(graph_flops(forward.get_concrete_function(x_spec).graph).values()),
        "by_op": by_op,
        "batch": int(tf.nest.flatten(x_spec)[0].shape[0]),
        "source": SOURCE,
    }


def graph_flops(graph) -> dict[str, int]:
    """Op type -> FLOPs of the ops a call of a traced graph runs, from the registered
    statistics (ops that have none, or whose shapes are not fully known, count 0)."""
    from tensorflow.python.framework import ops

    by_op: dict[str, int] = {}
    for op in _executed(graph):
        try:
            value = _EXACT[op.type](op) if op.type in _EXACT else ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        except (ValueError, TypeError):
            value = None   # a statistic that needs shapes the trace does not know
        if value:
            by_op[op.type] = by_op.get(op.type, 0) + int(value)
    return dict(sorted(by_op.items(), key=lambda kv: -kv[1]))


def _conv_backprop_flops(op) -> int:
    """A convolution's gradient (of its filter or of its input) does the multiply-adds of
    the forward convolution: 2 x (forward output elements) x kernel height x width x input
    depth. TensorFlow's registered statistic counts the *input's* positions instead (as if
    padded to the same size), 1-3% more for a 'valid' Conv1D here."""
    out_backprop = op.inputs[2].shape
    kernel = op.outputs[0].shape if op.type == "Conv2DBackpropFilter" else op.inputs[1].shape
    if not (out_backprop.is_fully_defined() and kernel.is_fully_defined()):
        raise ValueError("shapes unknown")
    return 2 * out_backprop.num_elements() * kernel[0] * kernel[1] * kernel[2]


def _depthwise_backprop_flops(op) -> int:
    """The same for a depthwise convolution (which TensorFlow registers no statistic for):
    2 x (forward output elements) x kernel height x width."""
    out_backprop = op.inputs[2].shape
    kernel = op.outputs[0].shape if op.type == "DepthwiseConv2dNativeBackpropFilter" else op.inputs[1].shape
    if not (out_backprop.is_fully_defined() and kernel.is_fully_defined()):
        raise ValueError("shapes unknown")
    return 2 * out_backprop.num_elements() * kernel[0] * kernel[1]


_EXACT = {"Conv2DBackpropFilter": _conv_backprop_flops, "Conv2DBackpropInput": _conv_backprop_flops,
          "DepthwiseConv2dNativeBackpropFilter": _depthwise_backprop_flops,
          "DepthwiseConv2dNativeBackpropInput": _depthwise_backprop_flops}


def _executed(graph) -> list:
    """The ops a call of the traced function runs: those its outputs and its stateful ops
    (the variable updates, kept as control outputs) depend on. A gradient op traces every
    input's gradient; the ones nothing reads (the gradient of the input batch) are pruned
    when the function runs, and are not counted."""
    roots = [t.op for t in graph.outputs] + list(graph.control_outputs)
    seen: dict[int, object] = {}
    while roots:
        op = roots.pop()
        if id(op) in seen:
            continue
        seen[id(op)] = op
        roots += [t.op for t in op.inputs] + list(op.control_inputs)
    return list(seen.values())


def _key(model, loss, optimizer, x_spec, y_spec, code: str | None) -> str:
    import json

    import tensorflow as tf

    parts = {
        # The architecture without layer names (Keras numbers them per process): each layer's
        # configuration too (a Conv1D of stride 2 has its stride 1 twin's weights, half its
        # FLOPs, and read the twin's cached count), and the code that built the model (what
        # a layer of the user's own computes is in its code, not its configuration).
        "model": [(type(layer).__name__, [list(w.shape) for w in layer.weights], _config(layer))
                  for layer in model.layers],
        "code": code,
        "loss": type(loss).__name__,
        "optimizer": json.dumps({k: v for k, v in optimizer.get_config().items() if k != "name"},   # numbered too
                                sort_keys=True, default=str),
        "x": tf.nest.map_structure(lambda s: [list(s.shape), s.dtype.name], x_spec),
        "y": tf.nest.map_structure(lambda s: [list(s.shape), s.dtype.name], y_spec),
        "tensorflow": tf.__version__,
        "counter": 4,   # bump when the counting or the key changes
    }
    return json.dumps(parts, sort_keys=True, default=str)


def _config(layer):
    """A layer's configuration without names (nested ones too); None when it has none."""
    def unnamed(value):
        if isinstance(value, dict):
            return {k: unnamed(v) for k, v in value.items() if k != "name"}
        if isinstance(value, (list, tuple)):
            return [unnamed(v) for v in value]
        return value

    try:
        return unnamed(layer.get_config())
    except (NotImplementedError, TypeError, ValueError):
        return None
