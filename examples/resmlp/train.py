"""A model of your own, trained from Python: the residual MLP of resmlp.cpp compiled with Clad by
cladbench.compile_model, used as a torch module (cladbench.nn.Model) with torch.optim.Adam and
F.cross_entropy, on MNIST (the verified t10k files, from the data mirror) or on given IDX files.

    python examples/resmlp/train.py [--epochs 2] [--samples 4000] [--mnist IMAGES LABELS]

Prints the mean training loss of each epoch and the accuracy on the samples it did not train on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

import cladbench
from cladbench.core import core


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=4000, help="training samples; the next 1000 test")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--mnist", nargs=2, metavar=("IMAGES", "LABELS"), help="default: MNIST t10k, verified")
    args = parser.parse_args(argv)
    if args.mnist:
        images, labels = args.mnist
    else:
        from cladbench.data.fetch import mnist_t10k

        images, labels = mnist_t10k()
    x, y = core.load_mnist(str(images), str(labels))
    y = y.long()
    train, test = slice(0, args.samples), slice(args.samples, args.samples + 1000)

    resmlp = cladbench.compile_model(Path(__file__).with_name("resmlp.cpp"))
    torch.manual_seed(0)
    model = resmlp.module(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        order = torch.randperm(args.samples)
        total = 0.0
        for start in range(0, args.samples, args.batch):
            rows = order[start : start + args.batch]
            loss = F.cross_entropy(model(x[train][rows]), y[train][rows])
            optimizer.zero_grad()
            loss.backward()  # Clad's vector-Jacobian product of resmlp.cpp
            optimizer.step()
            total += loss.item() * len(rows)
        with torch.no_grad():
            accuracy = (model(x[test]).argmax(1) == y[test]).float().mean().item()
        print(f"epoch {epoch} train loss {total / args.samples:.4f} test accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
