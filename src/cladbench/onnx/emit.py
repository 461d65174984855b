"""ONNX graph -> plain C++ forward code on the kernel contract, for Clad to differentiate (in the
spirit of ROOT's SOFIE). One C++ file per model, its weights in a separate file (format in
cpp/onnx/weights.hpp). The layers are calls into cpp/onnx/onnx_ops.hpp; the emitted file adds the
losses, the clad::gradient calls and a C ABI (extern "C", loaded by cladbench.onnx.compile).

Supported: a graph with one input [batch, ...] and one output, made of the ops in SUPPORTED. The
first axis of every activation is the batch, chosen at run time; the other sizes are fixed.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .source_template import ABI, SOURCE

SUPPORTED = (
    "Add",
    "Conv (1-D)",
    "Flatten",
    "Gemm",
    "MatMul",
    "Relu",
    "Reshape (to [batch, n])",
    "Sigmoid",
    "Softmax",
    "Tanh",
)


class UnsupportedModelError(ValueError):
    """The graph uses an op (or an op's form) the emitter cannot turn into C++."""


def _unsupported(node: onnx.NodeProto, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"ONNX node '{node.name or node.output[0]}' ({node.op_type}): {why}; "
        f"cladbench's emitter supports {', '.join(SUPPORTED)}"
    )


@dataclass
class Tensor:
    """Where a tensor lives: the input x, params (an initializer) or ws (an intermediate), and its
    shape without the batch axis (params: its full shape)."""

    name: str
    shape: tuple[int, ...]
    where: str  # "x", "params" or "ws"
    offset: int = 0  # params: offset in values; ws: offset per sample (ws + offset * batch)
    symbol: str = ""  # the C++ constant naming the offset

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def pointer(self) -> str:
        return {"x": "x", "params": f"params + {self.symbol}", "ws": f"ws + {self.symbol} * batch"}[self.where]


@dataclass
class EmittedModel:
    """The C++ source of one model, its parameters and the sizes its C ABI works with."""

    name: str
    source: str
    params: np.ndarray  # float64, the initializers concatenated in params order
    params_layout: list[dict]  # name, shape, offset per initializer
    input_name: str
    input_shape: tuple[int, ...]  # without the batch axis
    output_name: str
    output_shape: tuple[int, ...]
    workspace_per_sample: int
    output_offset: int  # the output starts at ws + output_offset * batch
    output_is_probability: bool  # the graph ends in Softmax: cross-entropy takes -log p[label]
    ops: list[str] = field(default_factory=list)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape))

    def write(self, directory: Path) -> tuple[Path, Path]:
        """<dir>/<name>.cpp and <dir>/<name>.weights."""
        directory.mkdir(parents=True, exist_ok=True)
        cpp, weights = directory / f"{self.name}.cpp", directory / f"{self.name}.weights"
        cpp.write_text(self.source)
        write_weights(weights, self.params, self.params_layout)
        return cpp, weights


def write_weights(path: Path, params: np.ndarray, layout: list[dict]) -> None:
    """The weights file (format: cpp/onnx/weights.hpp)."""
    header = json.dumps({"tensors": layout}).encode()
    with open(path, "wb") as f:
        f.write(b"CLADBW01" + struct.pack("<QQ", params.size, len(header)) + header)
        f.write(np.ascontiguousarray(params, dtype="<f8").tobytes())


def read_weights(path: Path) -> np.ndarray:
    data = Path(path).read_bytes()
    if data[:8] != b"CLADBW01":
        raise ValueError(f"{path} is not a cladbench weights file (no CLADBW01 magic)")
    count, header = struct.unpack("<QQ", data[8:24])
    return np.frombuffer(data, dtype="<f8", count=count, offset=24 + header).copy()


def _identifier(text: str) -> str:
    ident = re.sub(r"\W+", "_", text).strip("_")
    return ident if ident and not ident[0].isdigit() else f"t_{ident}"


def _attributes(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _shape(d: str) -> str:
    return " x ".join(str(s) for s in d) if d else "scalar"


class _Emitter:
    def __init__(self, model: onnx.ModelProto, name: str, source_name: str):
        self.model, self.name, self.source_name = model, name, source_name
        graph = model.graph
        self.constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.tensors: dict[str, Tensor] = {}
        self.params: list[np.ndarray] = []
        self.params_layout: list[dict] = []
        self.param_count = 0
        self.ws_per_sample = 0
        self.symbols: set[str] = set()
        self.lines: list[str] = []  # the body of forward()
        self.ops: list[str] = []
        self.ends_in_softmax = False

    def symbol(self, prefix: str, name: str) -> str:
        base = prefix + "_" + re.sub(r"\W+", "_", name).strip("_")
        sym, i = base, 1
        while sym in self.symbols:
            i += 1
            sym = f"{base}_{i}"
        self.symbols.add(sym)
        return sym

    # -- tensors ---------------------------------------------------------------------------------
    def param(self, node: onnx.NodeProto, name: str) -> Tensor:
        """An initializer as a parameter (added to params on first use)."""
        if name in self.tensors:
            if self.tensors[name].where != "params":
                raise _unsupported(node, f"input '{name}' must be a weight (an initializer), not an activation")
            return self.tensors[name]
        if name not in self.constants:
            raise _unsupported(node, f"input '{name}' must be a weight (an initializer), not an activation")
        array = self.constants[name]
        if array.dtype.kind != "f":
            raise _unsupported(node, f"weight '{name}' has type {array.dtype}, not floating point")
        t = Tensor(name, tuple(array.shape), "params", self.param_count, self.symbol("P", name))
        self.params.append(array.astype(np.float64).ravel())
        self.params_layout.append({"name": name, "shape": list(array.shape), "offset": self.param_count})
        self.param_count += t.size
        self.tensors[name] = t
        return t

    def activation(self, node: onnx.NodeProto, name: str) -> Tensor:
        if name in self.tensors and self.tensors[name].where != "params":
            return self.tensors[name]
        raise _unsupported(node, f"input '{name}' must be an activation (computed from the graph input)")

    def new(self, name: str, shape: tuple[int, ...]) -> Tensor:
        t = Tensor(name, tuple(int(s) for s in shape), "ws", self.ws_per_sample, self.symbol("W", name))
        self.ws_per_sample += t.size
        self.tensors[name] = t
        return t

    def alias(self, name: str, of: Tensor, shape: tuple[int, ...]) -> Tensor:
        t = Tensor(name, tuple(shape), of.where, of.offset, of.symbol)
        self.tensors[name] = t
        return t

    def is_param(self, name: str) -> bool:
        return (
            name in self.constants
            and name not in self.tensors
            or (name in self.tensors and self.tensors[name].where == "params")
        )

    def emit(self, node: onnx.NodeProto, call: str, description: str) -> None:
        self.lines.append(f'  // "{node.name or node.output[0]}" {node.op_type}: {description}')
        self.lines.append(f"  {call};")

    # -- ops -------------------------------------------------------------------------------------
    def node(self, node: onnx.NodeProto) -> None:
        handler = getattr(self, f"op_{node.op_type}", None)
        if node.domain not in ("", "ai.onnx") or handler is None:
            raise _unsupported(node, "op not supported")
        handler(node, _attributes(node))
        if node.op_type != "Constant":  # a constant emits no code
            self.ops.append(node.op_type)
            self.ends_in_softmax = node.op_type == "Softmax"

    def op_Constant(self, node, attrs):
        if "value" not in attrs:
            raise _unsupported(node, "only a Constant with a tensor 'value' is supported")
        self.constants[node.output[0]] = numpy_helper.to_array(attrs["value"])

    def _dense(self, node, x: Tensor, W: Tensor, b: Tensor | None, w_transposed: int) -> None:
        if len(x.shape) != 1 or len(W.shape) != 2:
            raise _unsupported(node, f"needs a [batch, n] input and a 2-D weight, got {x.shape} and {W.shape}")
        n_in, n_out = (W.shape[1], W.shape[0]) if w_transposed else W.shape
        if x.shape[0] != n_in:
            raise _unsupported(node, f"input width {x.shape[0]} does not match the weight {W.shape}")
        if b is not None and b.size != n_out:
            raise _unsupported(node, f"bias '{b.name}' of shape {b.shape} is not a [{n_out}] vector")
        y = self.new(node.output[0], (n_out,))
        w = f'"{W.name}"' + ("^T" if w_transposed else "")
        if b is None:
            self.emit(
                node,
                f"matmul({x.pointer()}, {W.pointer()}, {y.pointer()}, batch, {n_in}, {n_out}, {w_transposed})",
                f'"{x.name}" [{n_in}] x {w} -> "{y.name}" [{n_out}]',
            )
        else:
            self.emit(
                node,
                f"dense({x.pointer()}, {W.pointer()}, {b.pointer()}, {y.pointer()}, batch, {n_in}, {n_out}, "
                f"{w_transposed})",
                f'"{x.name}" [{n_in}] x {w} + "{b.name}" -> "{y.name}" [{n_out}]',
            )

    def op_Gemm(self, node, attrs):
        if (
            attrs.get("transA", 0)
            or attrs.get("alpha", 1.0) != 1.0
            or (len(node.input) > 2 and attrs.get("beta", 1.0) != 1.0)
        ):
            raise _unsupported(node, "only alpha = beta = 1 and transA = 0 are supported")
        x = self.activation(node, node.input[0])
        W = self.param(node, node.input[1])
        b = self.param(node, node.input[2]) if len(node.input) > 2 and node.input[2] else None
        self._dense(node, x, W, b, int(attrs.get("transB", 0)))

    def op_MatMul(self, node, attrs):
        self._dense(node, self.activation(node, node.input[0]), self.param(node, node.input[1]), None, 0)

    def op_Add(self, node, attrs):
        a_name, b_name = node.input
        if self.is_param(a_name):
            a_name, b_name = b_name, a_name
        a = self.activation(node, a_name)
        if self.is_param(b_name):
            b = self.param(node, b_name)
            if (
                b.size != a.size
                or any(s != 1 for s in b.shape[: len(b.shape) - len(a.shape)])
                or tuple(b.shape[len(b.shape) - len(a.shape) :]) != a.shape
            ):
                raise _unsupported(
                    node,
                    f"a weight added to an activation must have the activation's shape "
                    f"{list(a.shape)} per sample, got {list(b.shape)}",
                )
            y = self.new(node.output[0], a.shape)
            self.emit(
                node,
                f"add_bias({a.pointer()}, {b.pointer()}, {y.pointer()}, batch, {a.size})",
                f'"{a.name}" + "{b.name}" -> "{y.name}" [{_shape(a.shape)}]',
            )
            return
        b = self.activation(node, b_name)
        if a.shape != b.shape:
            raise _unsupported(node, f"two activations must have the same shape, got {a.shape} and {b.shape}")
        y = self.new(node.output[0], a.shape)
        self.emit(
            node,
            f"add({a.pointer()}, {b.pointer()}, {y.pointer()}, batch * {a.size})",
            f'"{a.name}" + "{b.name}" -> "{y.name}" [{_shape(a.shape)}]',
        )

    def _elementwise(self, node, function: str) -> None:
        z = self.activation(node, node.input[0])
        h = self.new(node.output[0], z.shape)
        self.emit(
            node,
            f"{function}({z.pointer()}, {h.pointer()}, batch * {z.size})",
            f'"{z.name}" -> "{h.name}" [{_shape(z.shape)}]',
        )

    def op_Relu(self, node, attrs):
        self._elementwise(node, "relu")

    def op_Sigmoid(self, node, attrs):
        self._elementwise(node, "sigmoid")

    def op_Tanh(self, node, attrs):
        self._elementwise(node, "tanh_act")

    def op_Softmax(self, node, attrs):
        z = self.activation(node, node.input[0])
        opset = next((o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")), 13)
        axis = attrs.get("axis", -1 if opset >= 13 else 1)
        rank = len(z.shape) + 1
        if axis % rank != rank - 1:
            raise _unsupported(
                node, f"softmax over axis {axis} of a rank-{rank} tensor: only the last axis is supported"
            )
        p = self.new(node.output[0], z.shape)
        rows = z.size // z.shape[-1]
        self.emit(
            node,
            f"softmax({z.pointer()}, {p.pointer()}, batch{f' * {rows}' if rows > 1 else ''}, {z.shape[-1]})",
            f'"{z.name}" -> "{p.name}" [{_shape(z.shape)}], over the last axis',
        )

    def op_Flatten(self, node, attrs):
        if attrs.get("axis", 1) != 1:
            raise _unsupported(node, "only Flatten with axis = 1 (keeping the batch axis) is supported")
        x = self.activation(node, node.input[0])
        self.alias(node.output[0], x, (x.size,))
        self.lines.append(
            f'  // "{node.name or node.output[0]}" Flatten: "{x.name}" [{_shape(x.shape)}] -> '
            f'"{node.output[0]}" [{x.size}], the same memory'
        )

    def op_Reshape(self, node, attrs):
        x = self.activation(node, node.input[0])
        shape = self.constants.get(node.input[1]) if len(node.input) > 1 else None
        if shape is None or shape.ndim != 1 or len(shape) != 2 or shape[1] not in (-1, x.size):
            raise _unsupported(node, "only a Reshape to a constant [batch, n] shape (a flatten) is supported")
        self.alias(node.output[0], x, (x.size,))
        self.lines.append(
            f'  // "{node.name or node.output[0]}" Reshape: "{x.name}" [{_shape(x.shape)}] -> '
            f'"{node.output[0]}" [{x.size}], the same memory'
        )

    def op_Conv(self, node, attrs):
        kernel_shape = attrs.get("kernel_shape")
        if kernel_shape is not None and len(kernel_shape) != 1:
            raise _unsupported(
                node, f"a {len(kernel_shape)}-D convolution: only Conv over one axis (Conv1d) is supported"
            )
        if attrs.get("group", 1) != 1 or attrs.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
            raise _unsupported(node, "only group = 1 and explicit pads are supported")
        x = self.activation(node, node.input[0])
        W = self.param(node, node.input[1])
        if len(x.shape) != 2 or len(W.shape) != 3 or W.shape[1] != x.shape[0]:
            raise _unsupported(
                node,
                f"needs a [batch, channels, length] input and a [c_out, c_in, k] weight, got {x.shape} and {W.shape}",
            )
        if len(node.input) < 3 or not node.input[2]:
            raise _unsupported(node, "a Conv without bias is not supported")
        b = self.param(node, node.input[2])
        c_out, c_in, kernel = W.shape
        length = x.shape[1]
        pads = attrs.get("pads", [0, 0])
        stride = attrs.get("strides", [1])[0]
        dilation = attrs.get("dilations", [1])[0]
        l_out = (length + pads[0] + pads[1] - dilation * (kernel - 1) - 1) // stride + 1
        col = self.new(node.output[0] + "_im2col", (l_out, c_in * kernel))
        y = self.new(node.output[0], (c_out, l_out))
        self.emit(
            node,
            f"conv1d({x.pointer()}, {W.pointer()}, {b.pointer()}, {col.pointer()}, {y.pointer()}, batch, "
            f"/*c_in*/ {c_in}, /*length*/ {length}, /*c_out*/ {c_out}, /*kernel*/ {kernel}, /*stride*/ {stride}, "
            f"/*pad*/ {pads[0]}, /*dilation*/ {dilation}, /*l_out*/ {l_out})",
            f'"{x.name}" [{c_in} x {length}] * "{W.name}" [{c_out} x {c_in} x {kernel}] + "{b.name}" -> '
            f'"{y.name}" [{c_out} x {l_out}]',
        )

    # -- the whole graph ---------------------------------------------------------------------------
    def run(self) -> EmittedModel:
        graph = self.model.graph
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise UnsupportedModelError(
                f"the graph must have one input and one output; it has inputs "
                f"{[i.name for i in inputs]} and outputs {[o.name for o in graph.output]}"
            )
        x_info = inputs[0]
        dims = x_info.type.tensor_type.shape.dim
        rest = [d.dim_value if d.HasField("dim_value") else None for d in dims[1:]]
        if len(dims) < 2 or None in rest:
            raise UnsupportedModelError(
                f"input '{x_info.name}' must be [batch, ...] with fixed sizes after the batch "
                f"axis, got {[d.dim_param or d.dim_value for d in dims]}"
            )
        self.tensors[x_info.name] = x = Tensor(x_info.name, tuple(rest), "x")
        for node in graph.node:
            self.node(node)
        out_name = graph.output[0].name
        out = self.tensors.get(out_name)
        if out is None or out.where != "ws":
            raise UnsupportedModelError(f"the graph output '{out_name}' is not computed by any supported node")
        return EmittedModel(
            name=self.name,
            source=self.source(x, out),
            params=np.concatenate(self.params) if self.params else np.zeros(0),
            params_layout=self.params_layout,
            input_name=x.name,
            input_shape=x.shape,
            output_name=out.name,
            output_shape=out.shape,
            workspace_per_sample=self.ws_per_sample,
            output_offset=out.offset,
            output_is_probability=self.ends_in_softmax,
            ops=self.ops,
        )

    def source(self, x: Tensor, out: Tensor) -> str:
        m = self.name
        producer = f"{self.model.producer_name} {self.model.producer_version}".strip() or "unknown producer"
        opset = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in self.model.opset_import)
        P = [t for t in self.tensors.values() if t.where == "params"]
        seen, W = set(), []
        for t in self.tensors.values():
            if t.where == "ws" and t.symbol not in seen:
                seen.add(t.symbol)
                W.append(t)
        w = max(len(t.symbol) for t in P + W)
        if self.ends_in_softmax:
            ce = (
                "total -= std::log(ws[kOutputOffset * batch + i * kOutputSize + labels[i]]);  "
                "// the output is a probability (Softmax)"
            )
        else:
            ce = (
                "total += sample_cross_entropy(ws + kOutputOffset * batch + i * kOutputSize, labels[i], "
                "int(kOutputSize));"
            )
        abi = "\n".join(ABI.format(m=m, T=T, s=s, S=s.upper()) for T, s in (("float", "f32"), ("double", "f64")))
        return SOURCE.format(
            m=m,
            source_name=self.source_name,
            producer=producer,
            opset=opset,
            x=x.name,
            x_shape=_shape(x.shape),
            y=out.name,
            y_shape=_shape(out.shape),
            ops=", ".join(sorted(set(self.ops))),
            param_count=self.param_count,
            ws_per_sample=self.ws_per_sample,
            params="\n".join(
                f'constexpr long {t.symbol:<{w}} = {t.offset};  // "{t.name}" [{_shape(t.shape)}]' for t in P
            ),
            workspace="\n".join(
                f'constexpr long {t.symbol:<{w}} = {t.offset};  // "{t.name}" [{_shape(t.shape)}]' for t in W
            ),
            input_size=x.size,
            output_size=out.size,
            output_symbol=out.symbol,
            body="\n".join(self.lines),
            cross_entropy=ce,
            abi=abi,
        )


def emit(model: onnx.ModelProto | str | Path, name: str | None = None) -> EmittedModel:
    """The C++ of an ONNX model (a ModelProto or a .onnx path). Raises UnsupportedModelError, naming
    the op, the node and the supported set, for what it cannot translate."""
    source_name = "an in-memory ONNX model"
    if not isinstance(model, onnx.ModelProto):
        source_name = Path(model).name
        name = name or Path(model).stem
        model = onnx.load(str(model))
    return _Emitter(model, _identifier(name or model.graph.name or "model"), source_name).run()
