"""`cladbench onnx`: emit C++ from an ONNX file; the round trip on MNIST; the input-gradient bench."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="onnx_command", required=True)

    emit = sub.add_parser("emit", help="an ONNX model -> <out>/<name>.cpp and <name>.weights")
    emit.add_argument("model", type=Path, help="the .onnx file")
    emit.add_argument("--out", type=Path, required=True, help="directory to write to")
    emit.add_argument("--name", default=None, help="C++ name of the model (default: the file's stem)")
    emit.add_argument("--compile", action="store_true", help="also compile it with Clad and print the library")

    check = sub.add_parser(
        "check",
        help="round trip: train a torch MLP on MNIST, export it to ONNX, emit, compile "
        "with Clad, check the gradients against torch autograd, fine-tune it",
    )
    check.add_argument("--images", required=True)
    check.add_argument("--labels", required=True)
    check.add_argument("--out", type=Path, required=True, help="directory for the .onnx, .cpp, .weights and record")
    check.add_argument("--hidden", default="64", help="hidden widths, comma-separated")
    check.add_argument("--train-range", default="0:4000", help="rows torch trains on")
    check.add_argument("--tune-range", default="4000:6000", help="rows the imported model is fine-tuned on")
    check.add_argument("--epochs", type=int, default=1, help="torch training epochs")
    check.add_argument("--tune-epochs", type=int, default=2, help="fine-tuning epochs with the Clad gradients")
    check.add_argument("--batch", type=int, default=32)
    check.add_argument("--lr", type=float, default=0.05)
    check.add_argument("--seed", type=int, default=1)
    check.add_argument("--dynamo", action="store_true", help="use torch.onnx.export's torch.export-based exporter")

    bench = sub.add_parser("bench", help="input gradient of an MLP 20 -> 5x128 -> 1: emitted+Clad, torch, JAX")
    bench.add_argument("--out", type=Path, required=True, help="the table (CSV); a JSON record goes beside it")
    bench.add_argument("--reps", type=int, default=2000)
    bench.add_argument("--warmup", type=int, default=200)
    bench.add_argument("--batch", type=int, default=1)
    bench.add_argument("--threads", type=int, default=1)
    bench.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--rounds", type=int, default=10, help="the paths take turns, reps / rounds calls at a time")


def _rows(spec: str) -> slice:
    start, stop = (int(v) for v in spec.split(":"))
    return slice(start, stop)


def cmd_emit(args) -> int:
    from .emit import emit

    model = emit(args.model, args.name)
    cpp, weights = model.write(args.out)
    print(cpp)
    print(weights)
    if args.compile:
        from .compile import compile_model

        print(compile_model(model))
    return 0


def cmd_check(args) -> int:
    import numpy as np
    import onnx
    import torch
    from torch import nn

    from ..core import core
    from .compile import CompiledModel, compile_model
    from .emit import emit
    from .roundtrip import export, fine_tune, gradient_check, train_torch_classifier

    x, labels = (t.numpy() for t in core.load_mnist(args.images, args.labels))
    train, tune = _rows(args.train_range), _rows(args.tune_range)
    widths = [784, *(int(w) for w in args.hidden.split(",") if w), 10]
    torch.manual_seed(args.seed)
    layers = []
    for i in range(len(widths) - 1):
        layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    name = "mnist_mlp_" + "_".join(map(str, widths))
    say = lambda text: print(f"cladbench onnx check: {text}", file=sys.stderr)  # noqa: E731

    say(f"training {name} with PyTorch on rows {args.train_range} ({args.epochs} epochs)")
    torch_losses = train_torch_classifier(model, x[train], labels[train], args.epochs, args.batch, args.lr, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    proto = export(model, torch.tensor(x[:2]), dynamo=args.dynamo)
    onnx.save(proto, args.out / f"{name}.onnx")
    emitted = emit(proto, name)
    emitted.write(args.out)
    say("compiling with Clad")
    library = compile_model(emitted)

    errors = {}
    sample = x[tune][:16]
    for dtype in (np.float64, np.float32):
        errors[np.dtype(dtype).name] = gradient_check(model, CompiledModel(emitted, library, dtype), sample)
    tuned = CompiledModel(emitted, library, np.float32)
    tuned.load_weights(args.out / f"{name}.weights")
    say(f"fine-tuning the imported model with Clad gradients on rows {args.tune_range} ({args.tune_epochs} epochs)")
    losses = fine_tune(tuned, x[tune], labels[tune], args.tune_epochs, args.batch, args.lr / 2, args.seed)
    ok = (
        max(errors["float64"].values()) < 1e-10
        and max(errors["float32"].values()) < 1e-5
        and all(b < a for a, b in zip(losses, losses[1:]))
    )
    record = {
        "model": name,
        "exporter": "dynamo" if args.dynamo else "torchscript",
        "ops": emitted.ops,
        "params": int(emitted.params.size),
        "library": str(library),
        "torch_train_losses": torch_losses,
        "grad_max_rel_err": errors,
        "fine_tune_losses": losses,
        "ok": ok,
    }
    (args.out / "roundtrip.json").write_text(json.dumps(record, indent=1) + "\n")
    say(
        f"gradients vs torch autograd: float64 {max(errors['float64'].values()):.1e}, float32 "
        f"{max(errors['float32'].values()):.1e}; fine-tuning loss {' -> '.join(f'{v:.4f}' for v in losses)}"
    )
    if not ok:
        say("FAILED: gradients disagree with torch autograd or fine-tuning did not lower the loss")
        return 1
    return 0


def cmd_bench(args) -> int:
    from .bench import run, write

    rows, record = run(args.reps, args.warmup, args.batch, args.threads, args.activation, args.seed, args.rounds)
    write(rows, record, args.out)
    for row in rows:
        print(f"{row['path']:<32} median {row['median_us']:9.2f} us  (q1 {row['q1_us']:.2f}, q3 {row['q3_us']:.2f})")
    for path, why in record["not_run"].items():
        print(f"{path:<32} not run: {why}")
    return 0


def run(args) -> int:
    from .compile import CladUnavailableError
    from .emit import UnsupportedModelError

    try:
        return {"emit": cmd_emit, "check": cmd_check, "bench": cmd_bench}[args.onnx_command](args)
    except (UnsupportedModelError, CladUnavailableError, FileNotFoundError) as error:
        print(f"cladbench onnx: {error}", file=sys.stderr)
        return 2
