"""Load an exported ``faces.onnx`` back into ``FaceNet``, so that experiments can start from the shipped model.

The export folds every BatchNorm into the convolution before it (weights and a bias), so the ONNX file holds
no BN statistics. Loading puts the folded weights into the convolutions and turns each BatchNorm into an
identity plus the folded bias (scale 1, mean 0, variance 1 - eps): in eval mode the network then computes
what the ONNX file computes. Training from there must keep the BatchNorms in eval mode (their statistics
are gone), which is what fine-tuning a detector usually does anyway.

The ONNX Conv nodes are in the order the export traced them, so they are paired with the network's
convolutions in the order a forward pass calls them; shapes are checked pair by pair, and ``check``
compares the outputs with onnxruntime's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from net import BasicConv, FaceNet
from torch import nn

CHECK_SIZE = (640, 384)


@contextmanager
def _evaluating(model: FaceNet) -> Iterator[None]:
    """Eval mode without gradients for a look at the network; its training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _call_order(model: FaceNet) -> list[nn.Conv2d]:
    order: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with _evaluating(model):
            model(torch.zeros(1, 3, CHECK_SIZE[1], CHECK_SIZE[0]))
    finally:
        for h in hooks:
            h.remove()
    return order


def _batchnorm_after(model: FaceNet) -> dict[nn.Conv2d, nn.BatchNorm2d]:
    """Each convolution the export folded a BatchNorm into, with that BatchNorm."""
    pairs: dict[nn.Conv2d, nn.BatchNorm2d] = {}
    for mod in model.modules():
        if isinstance(mod, nn.Sequential):
            kids = list(mod)
            for a, b in zip(kids, kids[1:], strict=False):
                if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                    pairs[a] = b
        elif isinstance(mod, BasicConv):
            pairs[mod.conv] = mod.bn
    return pairs


def load(model: FaceNet, path: Path) -> None:
    """Put the weights of the export at ``path`` into ``model`` (a fresh ``FaceNet``)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    tensors.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                    for n in graph.node if n.op_type == "Constant"})
    nodes = [n for n in graph.node if n.op_type == "Conv"]
    convs = _call_order(model)
    if len(nodes) != len(convs):
        raise ValueError(f"{path}: {len(nodes)} convolutions, the network has {len(convs)}: not a FaceNet export")
    folded = _batchnorm_after(model)
    with torch.no_grad():
        for conv, node in zip(convs, nodes, strict=True):
            weight = tensors[node.input[1]]
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: conv {node.name} is {weight.shape}, "
                                 f"the network's {tuple(conv.weight.shape)}")
            if len(node.input) < 3:  # every FaceNet conv has a bias of its own or a folded BatchNorm's
                raise ValueError(f"{path}: conv {node.name} has no bias")
            bias = torch.from_numpy(np.array(tensors[node.input[2]]))
            conv.weight.copy_(torch.from_numpy(np.array(weight)))
            if conv in folded:
                bn = folded[conv]
                bn.weight.fill_(1.0)
                bn.bias.copy_(bias)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            elif conv.bias is not None:
                conv.bias.copy_(bias)
            else:
                raise ValueError(f"{path}: conv {node.name} has a bias the network has no place for")


def check(model: FaceNet, path: Path, tolerance: float = 1e-4) -> float:
    """Largest difference between the network's outputs and onnxruntime's on one random input; raises over
    ``tolerance`` (a wrong pairing gives differences of order 1)."""
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((1, 3, CHECK_SIZE[1], CHECK_SIZE[0])).astype(np.float32)
    scores, offsets = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    with _evaluating(model):
        logits, offs = model(torch.from_numpy(x))
    diff = max(float(np.abs(torch.softmax(logits, -1).numpy() - scores).max()),
               float(np.abs(offs.numpy() - offsets).max()))
    if diff > tolerance:
        raise ValueError(f"{path}: loaded network differs from the export by {diff:.2e}")
    return diff
