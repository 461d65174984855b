"""The models in plain torch.nn, as a PyTorch user writes them: the pytorch engine trains these,
and the tests compare them with the kernels. Shapes follow the kernels (cpp/kernels/mlp.hpp,
cnn.hpp): mlp dims = widths; cnn dims = {channels, length, (c_out, kernel, pool)..., hidden, classes}."""

from __future__ import annotations

import torch
from torch import nn


def conv_blocks(dims: list[int]) -> list[tuple[int, int, int]]:
    return [tuple(dims[2 + 3 * i : 5 + 3 * i]) for i in range((len(dims) - 4) // 3)]


def torch_nn_model(model: str, dims: list[int], layers: list[torch.Tensor]) -> nn.Sequential:
    """The model with parameters copied from `layers` ([W0, b0, W1, b1, ...], as core.init_params)."""
    modules: list[nn.Module] = []
    next_layer = 0
    if model == "cnn":
        modules.append(nn.Unflatten(1, (dims[0], dims[1])))
        c_in = dims[0]
        for c_out, kernel, pool in conv_blocks(dims):
            conv = nn.Conv1d(c_in, c_out, kernel)
            with torch.no_grad():
                conv.weight.copy_(layers[2 * next_layer].reshape(c_out, c_in, kernel))
                conv.bias.copy_(layers[2 * next_layer + 1])
            modules += [conv, nn.MaxPool1d(pool), nn.ReLU()]
            c_in = c_out
            next_layer += 1
        modules.append(nn.Flatten())  # [batch][channels][time], as the kernels keep it
    n_layers = len(layers) // 2
    for i in range(next_layer, n_layers):
        weight = layers[2 * i]
        linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(layers[2 * i + 1])
        modules.append(linear)
        if i + 1 < n_layers:
            modules.append(nn.ReLU())
    return nn.Sequential(*modules).to(layers[0].dtype)


def parse_conv(spec: str) -> list[int]:
    """ "8k16p4,16k8p4" -> [8, 16, 4, 16, 8, 4], as cladbench-train's --conv."""
    out = []
    for block in spec.split(","):
        c, rest = block.split("k")
        k, p = rest.split("p")
        out += [int(c), int(k), int(p)]
    return out
