"""`make cuda-records`: on a GPU machine, the runs the report's CUDA section is built from, kept in
the repository as results-archive/<gpu>/<date>/ (cladbench.records.archive reads them back):

- the MLP benchmark on the GPU: clad (Clad's derivatives, cuBLAS), libtorch and pytorch, MNIST,
  batch 32 to 8192, 5 repetitions, each run with its gradient check against autograd and the
  step's cuBLAS-only floor;
- the GW classifier on simulated strain, trained on the GPU by libtorch and pytorch (the GPU clad
  engine covers the MLP only: docs/cuda.md).

Each run is a training run on real data (MNIST's test set, the mirror's; simulated strain), so the
records carry per-epoch losses, accuracy and ROC AUC as well as step times. The config they used,
and a MANIFEST.yaml (GPU, date, host, git commit, command), go beside them.

    python -m cladbench.bench.cuda_records [--archive results-archive] [--batch ...] [--repetitions N]
"""

from __future__ import annotations

import argparse
import datetime
import re
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from ..host import git_commit
from ..paths import REPO


def slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def device_name(device: str) -> str:
    """The GPU's name ("cpu" for --device cpu, which only the tests use)."""
    import torch

    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


def records_config(base: Path, out: Path) -> Path:
    """The quick config with the whole MNIST test set to train on, so that batch 8192 fits (the
    GPU machine has no network; the test set is the mirror's). Saved beside the records."""
    config = yaml.safe_load(base.read_text())
    config["mnist"].update(split="t10k", train_range=[0, 10000], test_range=[0, 10000])
    path = out / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def bench(*args: str) -> int:
    command = [sys.executable, "-m", "cladbench", "bench", *args]
    print("[cuda-records] " + " ".join(command), file=sys.stderr, flush=True)
    return subprocess.run(command).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cladbench.bench.cuda_records", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--archive", type=Path, default=REPO / "results-archive", help="archive root")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="cpu: only to test this command")
    parser.add_argument("--models", default="mlp-784-128-10,mlp-784-512-512-10")
    parser.add_argument("--engines", default="clad,libtorch,pytorch")
    parser.add_argument("--batch", default="32,256,1024,4096,8192")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--min-steps", type=int, default=200)
    parser.add_argument("--gw-engines", default="libtorch,pytorch", help="engines of the GW runs ('' for none)")
    parser.add_argument("--gw-batch", default="32,256")
    parser.add_argument("--gw-windows", type=int, default=4000)
    parser.add_argument("--images", default="", help="MNIST-format images (default: the t10k file, from the mirror)")
    parser.add_argument("--labels", default="")
    args = parser.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            f"cladbench cuda-records: no CUDA device: torch {torch.__version__} sees no GPU "
            f"({'a CPU-only build' if not torch.version.cuda else 'no GPU on this machine'}); run it on a GPU node",
            file=sys.stderr,
        )
        return 2
    name = device_name(args.device)
    date = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    out = args.archive / slug(name) / date
    (out / "runs").mkdir(parents=True, exist_ok=True)
    config = records_config(REPO / "config" / "config.yaml", out)
    common = [
        "--device",
        args.device,
        "--config",
        str(config),
        "--min-steps",
        str(args.min_steps),
        "--repetitions",
        str(args.repetitions),
        "--out-dir",
        str(out / "runs" / "bench"),
        *(["--images", args.images, "--labels", args.labels] if args.images else []),
    ]
    failed = bench("--models", args.models, "--engines", args.engines, "--batch", args.batch, *common)
    if args.gw_engines:
        windows = out / "gw-simulated.h5"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cladbench",
                "gw",
                "simulate",
                "--out",
                str(windows),
                "--n",
                str(args.gw_windows),
                "--seed",
                "1",
            ],
            check=True,
        )
        gw_config = yaml.safe_load(config.read_text())
        n_train = args.gw_windows * 4 // 5
        gw_config["gw"].update(train_range=[0, n_train], test_range=[n_train, args.gw_windows])
        config.write_text(yaml.safe_dump(gw_config, sort_keys=False))
        failed |= bench(
            "--models",
            "gw-cnn",
            "--engines",
            args.gw_engines,
            "--batch",
            args.gw_batch,
            "--gw-data",
            str(windows),
            *common,
        )
        windows.unlink()  # MBs of simulated strain, remade from its seed
    manifest = {
        "device": name,
        "date": date,
        "host": socket.gethostname(),
        "git_commit": git_commit() or "unknown",
        "command": "python -m cladbench.bench.cuda_records " + " ".join(argv if argv is not None else sys.argv[1:]),
        "torch": str(torch.__version__),
        "cuda": torch.version.cuda,
    }
    (out / "MANIFEST.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    print(
        f"[cuda-records] {out}: {len(list(out.glob('runs/**/*.json')))} records"
        + (" (some runs failed: see above)" if failed else ""),
        file=sys.stderr,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
