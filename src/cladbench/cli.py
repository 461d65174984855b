"""The `cladbench` command: doctor, fetch, gw, search, train, bench, onnx, calib, root.
(The main job is the Snakemake workflow.)"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from .matrix import ALLOCS, DEVICES, ENGINES, LAYOUTS, PYTHON_ENGINES, engine_module, variant_name
from .options import add_train_arguments, train_argv
from .paths import NotBuiltError, alloc_counter_library, trainer


def train_command(engine: str, layout: str, alloc: str, argv: list[str], device: str = "cpu") -> tuple[list[str], dict]:
    """The command line (and environment) that trains one variant. The C++ trainers are one binary
    per device (build/cuda-*/cladbench-train); the Python engines take --device."""
    env = dict(os.environ)
    # Every engine's OpenMP and MKL pools get the run's --threads, set before the process starts
    # (both read them once, at start-up); the engines also call torch.set_num_threads.
    options = argparse.ArgumentParser(add_help=False)
    add_train_arguments(options)
    threads = str(options.parse_known_args(argv)[0].threads)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    if engine in PYTHON_ENGINES:
        library = alloc_counter_library()
        if library.exists():  # count the Python engines' heap allocations too
            env["LD_PRELOAD"] = f"{library} {env.get('LD_PRELOAD', '')}".strip()
        return [sys.executable, "-m", engine_module(engine), *argv, "--device", device], env
    return [str(trainer(variant_name(engine, layout, alloc, device))), *argv], env


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    print("\n".join(report()))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .data.fetch import GROUPS, DataError, stage_all

    names = [name for group in args.group for name in GROUPS[group]]
    try:
        for path in stage_all(names, args.resources, args.mirror):
            print(path)
    except DataError as error:
        print(f"cladbench fetch: {error}", file=sys.stderr)
        return 2
    return 0


def cmd_gw(args: argparse.Namespace) -> int:
    from .data import gw
    from .data.fetch import GW150914, DataError, stage_all

    if args.what == "simulate":
        gw.simulate(
            args.out,
            n_windows=args.n,
            seed=args.seed,
            snr_range=(args.snr_low, args.snr_high),
            glitch_fraction=args.glitch_fraction,
        )
    else:
        try:
            h1, l1 = stage_all(GW150914, args.resources, args.mirror)
        except DataError as error:
            print(f"cladbench gw: {error}", file=sys.stderr)
            return 2
        gw.real_windows(h1, l1, args.out)
    print(args.out)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .gw_search import main as search_main  # imports torch: only when asked

    return search_main(args.argv)


def cmd_train(args: argparse.Namespace) -> int:
    command, env = train_command(args.engine, args.layout, args.alloc, train_argv(args), args.device)
    return subprocess.run(command, env=env).returncode


def cmd_calib(args: argparse.Namespace) -> int:
    from .calib.fit import main as calib_main  # imports torch: only when asked

    return calib_main(args.argv, prog="cladbench calib")


def cmd_root(args: argparse.Namespace) -> int:
    from . import root

    return root.main(args.args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cladbench", description="Clad as a LibTorch gradient engine, measured.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("doctor", help="what this machine has and which variants it can build").set_defaults(func=cmd_doctor)

    fetch = sub.add_parser("fetch", help="stage verified data files into resources/ (mirror first, then publishers)")
    fetch.add_argument("group", nargs="+", choices=("mnist-t10k", "mnist-train", "gw150914"))
    fetch.add_argument("--mirror", default=None, help="mirror directory (default: $DATA_MIRROR, else ../shared/data)")
    fetch.add_argument("--resources", default="resources", help="where verified files go")
    fetch.set_defaults(func=cmd_fetch)

    gw_cmd = sub.add_parser("gw", help="build GW datasets: simulated windows, or the real GW150914 windows")
    gw_cmd.add_argument("what", choices=("simulate", "real"))
    gw_cmd.add_argument("--out", required=True, help="HDF5 file to write")
    gw_cmd.add_argument("--n", type=int, default=4000, help="simulate: number of windows (half with a signal)")
    gw_cmd.add_argument("--seed", type=int, default=1)
    gw_cmd.add_argument("--snr-low", type=float, default=8.0)
    gw_cmd.add_argument("--snr-high", type=float, default=20.0)
    gw_cmd.add_argument(
        "--glitch-fraction",
        type=float,
        default=0.0,
        help="simulate: share of noise windows with a single-detector glitch",
    )
    gw_cmd.add_argument(
        "--mirror", default=None, help="real: data mirror with gwosc/ (default: $DATA_MIRROR, ../shared/data)"
    )
    gw_cmd.add_argument("--resources", default="resources", help="real: where verified GWOSC files go")
    gw_cmd.set_defaults(func=cmd_gw)

    search = sub.add_parser(
        "search",
        add_help=False,
        help="the GW classifier as a search: scan real and simulated data, FAR, sensitivity (see search --help)",
    )
    search.add_argument("argv", nargs=argparse.REMAINDER)
    search.set_defaults(func=cmd_search)

    train = sub.add_parser("train", help="train a model with one engine and write its run record")
    train.add_argument("--engine", choices=ENGINES, required=True)
    train.add_argument("--layout", choices=LAYOUTS, default="rowmajor")
    train.add_argument("--alloc", choices=ALLOCS, default="arena")
    train.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="cuda: the engine's cuda variant (clad, libtorch: build/cuda-*; pytorch on the GPU)",
    )
    add_train_arguments(train)
    train.set_defaults(func=cmd_train)

    from .bench import study as bench

    bench_cmd = sub.add_parser(
        "bench",
        help="time every engine on the study's models (the performance benchmark)",
        description=bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_arguments(bench_cmd)
    bench_cmd.set_defaults(func=bench.run)

    from .onnx import cli as onnx_cli

    onnx = sub.add_parser(
        "onnx", help="ONNX models as emitted C++ with Clad gradients: emit, check (round trip), bench"
    )
    onnx_cli.add_arguments(onnx)
    onnx.set_defaults(func=onnx_cli.run)
    calib = sub.add_parser(
        "calib",
        add_help=False,
        help="Z->ee detector calibration: gains by grid scan, Adam, L-BFGS-B (see calib --help)",
    )
    calib.add_argument("argv", nargs=argparse.REMAINDER)
    calib.set_defaults(func=cmd_calib)

    root = sub.add_parser(
        "root",
        add_help=False,
        help="ROOT: datasets as TTrees and RNTuples, training fed from them, feeding times (cladbench.root)",
    )
    root.add_argument("args", nargs=argparse.REMAINDER)
    root.set_defaults(func=cmd_root)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except NotBuiltError as error:
        print(f"cladbench: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
