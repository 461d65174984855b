"""ROOT: the datasets as TTrees and RNTuples, and training fed from them, in root.exe or in PyROOT.

    cladbench root write-mnist --format rntuple --images I --labels L --train-range 0:8000 \
        --test-range 8000:10000 --out mnist.root
    cladbench root write-gw --format ttree --data simulated.h5 --real gw150914-windows.h5 --out gw.root
    cladbench root train --input rntuple-macro  --data mnist.root --engine clad --out run.json [training flags]
    cladbench root train --input ttree-pyroot   --data mnist.root --engine clad --out run.json [training flags]
    cladbench root feed --images I --labels L --mnist mnist-ttree.root mnist-rntuple.root \
        --gw-data simulated.h5 --gw gw-ttree.root gw-rntuple.root --out feed.csv

An MNIST file holds trees (or RNTuples) "train" and "test": a float array column x[784] (the pixels
as the trainers see them: scaled to [0, 1] and standardised by the C++ core's loader) and an int
column label. `--input *-macro` runs cpp/root/train_mnist.C under root.exe (no Python in that
process: the macro trains through the C ABI, libcladbench_c.so); `--input *-pyroot` reads the file
here, through PyROOT, and trains through the Python module. Both read with cpp/root/samples.h and
feed the batches in the order cladbench-train uses for the same seed, so their losses equal the
file-fed run's. `feed` times how fast each format and reader brings the samples into memory.

ROOT is in requirements.lock (the `root` wheel; or conda's envs/root.yaml): without it these
commands stop with a message saying so.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .matrix import ALLOCS, CPP_ENGINES, LAYOUTS
from .options import RUN_FLAGS, parse_range, train_argv, train_default
from .paths import REPO, alloc_counter_library, build_dir

MACRO = REPO / "cpp" / "root" / "train_mnist.C"
SAMPLES_HEADER = REPO / "cpp" / "root" / "samples.h"
MINUIT2_HESSIAN_HEADER = REPO / "cpp" / "root" / "minuit2_hessian.h"
FORMATS = ("ttree", "rntuple")
INPUTS = tuple(f"{fmt}-{where}" for fmt in FORMATS for where in ("macro", "pyroot"))
# How a ROOT file can be read into memory (cladbench.root.read_samples), as the feeding table names them.
READERS = {"dataframe": "RDataFrame", "rntuple": "RNTupleReader", "asnumpy": "RDataFrame.AsNumpy"}
FEED_COLUMNS = [  # the feeding table (root_feed.csv), one row per dataset x format x reader
    "dataset",
    "format",
    "reader",
    "samples",
    "features",
    "file_bytes",
    "repetitions",
    "seconds_median",
    "seconds_q1",
    "seconds_q3",
    "samples_per_s",
]
LOADER = "cladbench loader"  # the C++ core's IDX and HDF5 readers, which the file-fed trainers use
# The reader training uses for each format (macro and PyROOT alike): RDataFrame for a TTree;
# RNTupleReader's views for an RNTuple, which skip RDataFrame's event loop (the feeding table
# shows it is the faster of the two).
TRAINING_READER = {"ttree": "dataframe", "rntuple": "rntuple"}
MNIST_CLASSES = 10


def readers_of(fmt: str) -> list[str]:
    """The READERS that can read a file of this format (RNTupleReader reads RNTuples only)."""
    return [r for r in READERS if r != "rntuple" or fmt == "rntuple"]


def training_reader(input: str) -> str:
    """The reader a ROOT-fed run (INPUTS: <format>-macro, <format>-pyroot) trains from."""
    return TRAINING_READER[input.split("-")[0]]


class RootMissing(RuntimeError):
    """ROOT (PyROOT or root.exe) is not installed."""


def root_exe() -> Path | None:
    """root.exe, the ROOT interpreter itself (the `root` on PATH of the pip wheel is a Python
    wrapper around it): $ROOTSYS/bin, PATH, then the pip wheel's ROOT/bin."""
    candidates = [Path(os.environ["ROOTSYS"]) / "bin" / "root.exe"] if os.environ.get("ROOTSYS") else []
    if shutil.which("root.exe"):
        candidates.append(Path(shutil.which("root.exe")))
    spec = importlib.util.find_spec("ROOT")
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "bin" / "root.exe")
    return next((c for c in candidates if c.is_file()), None)


def root_missing_reason() -> str | None:
    """Why the ROOT paths cannot run here, or None when both can (without importing ROOT: cheap)."""
    missing = []
    if importlib.util.find_spec("ROOT") is None:
        missing.append("PyROOT (import ROOT)")
    if root_exe() is None:
        missing.append("root.exe")
    if not missing:
        return None
    return f"ROOT not installed ({' and '.join(missing)} not found): pip install -e '.[root]' or conda envs/root.yaml"


def import_root():
    """PyROOT, in batch mode, or RootMissing with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the pip wheel's "alpha stage" notice
            import ROOT
    except ImportError as error:
        raise RootMissing(f"{root_missing_reason() or 'ROOT cannot be imported'} ({error})") from error
    ROOT.gROOT.SetBatch(True)
    return ROOT


def declared(header: Path):
    """The namespace cladbench_root with a header of cpp/root/ declared to ROOT's interpreter."""
    ROOT = import_root()
    ROOT.gInterpreter.Declare(f'#include "{header}"')  # once: the headers have #pragma once
    return ROOT.cladbench_root


def samples_api():
    """cpp/root/samples.h: the readers and the RNTuple writer."""
    return declared(SAMPLES_HEADER)


def _fill_tree(ROOT, name: str, title: str, columns: dict[str, np.ndarray]) -> None:
    """A TTree of the columns in the current file: a 2-D column becomes a fixed-size float array
    branch (x[784]/F); 1-D int32, float32 and float64 columns become scalar branches."""
    leaf_types = {np.dtype(np.float32): "F", np.dtype(np.float64): "D", np.dtype(np.int32): "I"}
    tree = ROOT.TTree(name, title)
    buffers = {}
    for branch, column in columns.items():
        if column.ndim == 2:
            buffers[branch] = np.zeros(column.shape[1], dtype=np.float32)
            tree.Branch(branch, buffers[branch], f"{branch}[{column.shape[1]}]/F")
        else:
            buffers[branch] = np.zeros(1, dtype=column.dtype)
            tree.Branch(branch, buffers[branch], f"{branch}/{leaf_types[column.dtype]}")
    for i in range(len(next(iter(columns.values())))):
        for branch, column in columns.items():
            buffers[branch][:] = column[i]
        tree.Fill()
    tree.Write()


def _fill_rntuple(file, name: str, columns: dict[str, np.ndarray]) -> None:
    """An RNTuple of the columns in `file`: a 2-D column becomes a std::vector<float> field, 1-D
    columns scalar fields of their type."""
    writer = samples_api().RNTupleColumns(len(next(iter(columns.values()))))
    for field, column in columns.items():
        if column.ndim == 2:
            writer.add(field, column, column.shape[1])
        else:
            writer.add(field, column)
    writer.write(file, name)


def write_samples(
    out: Path,
    tables: dict[str, dict[str, np.ndarray]],
    title: str,
    fmt: str,
    parameters: dict[str, float] | None = None,
) -> Path:
    """Writes {name: {column: array}} to a ROOT file as TTrees or RNTuples (fmt), atomically (temp
    file + rename), with `title` as TNamed "description" and `parameters` as TParameter<double>s."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt}: expected one of {', '.join(FORMATS)}")
    ROOT = import_root()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.root")
    file = ROOT.TFile.Open(str(tmp), "RECREATE")
    if not file or file.IsZombie():
        raise OSError(f"cannot write {tmp}")
    for name, columns in tables.items():
        columns = {k: np.ascontiguousarray(v) for k, v in columns.items()}  # alive until written
        if fmt == "ttree":
            _fill_tree(ROOT, name, title, columns)
        else:
            _fill_rntuple(file, name, columns)
    file.cd()
    ROOT.TNamed("description", title).Write()
    for name, value in (parameters or {}).items():
        ROOT.TParameter["double"](name, float(value)).Write()
    file.Close()
    os.replace(tmp, out)
    return out


def write_mnist(
    images: str,
    labels: str,
    train_range: tuple[int, int],
    test_range: tuple[int, int],
    out: Path,
    fmt: str = "ttree",
    test_images: str = "",
    test_labels: str = "",
) -> Path:
    """MNIST rows [train_range) of images/labels as "train", rows [test_range) of the test files
    (default: the same files) as "test", with the pixels the trainers see; TTrees or RNTuples."""
    from .core import core

    x, y = (t.numpy() for t in core.load_mnist(images, labels))
    test_x, test_y = (t.numpy() for t in core.load_mnist(test_images, test_labels)) if test_images else (x, y)
    (a, b), (c, d) = train_range, test_range
    if not (0 <= a < b <= len(y) and 0 <= c < d <= len(test_y)):
        raise ValueError(f"ranges {a}:{b} and {c}:{d} do not fit {len(y)} training and {len(test_y)} test samples")
    title = "MNIST: x = pixels/255 standardised with (0.1307, 0.3081), as cladbench's trainers see them"
    tables = {"train": {"x": x[a:b], "label": y[a:b]}, "test": {"x": test_x[c:d], "label": test_y[c:d]}}
    return write_samples(out, tables, title, fmt)


def write_gw(data: str, real: str, out: Path, fmt: str = "ttree") -> Path:
    """The GW windows: "windows" (simulated: x[channels*length] whitened strain, H1 then L1, label,
    snr) and, with `real`, "gw150914" (x, t_start GPS); TTrees or RNTuples. channels, length and
    merger_offset are TParameter<double>s in the file."""
    from .core import core

    sim = core.load_gw_windows(data)
    tables = {"windows": {"x": sim["x"].numpy(), "label": sim["labels"].numpy(), "snr": sim["snr"].numpy()}}
    if real:
        windows = core.load_gw_windows(real)
        tables["gw150914"] = {"x": windows["x"].numpy(), "t_start": windows["t_start"].numpy()}
    return write_samples(
        out,
        tables,
        "GW windows: whitened strain (cladbench.data.gw), channels-major",
        fmt,
        {"channels": sim["channels"], "length": sim["length"], "merger_offset": sim["merger_offset"]},
    )


def read_samples(path: Path, name: str, reader: str = "dataframe") -> tuple[np.ndarray, np.ndarray]:
    """(x float32 [n, features], labels int32 [n]) of one TTree or RNTuple, by one of READERS:
    samples.h's RDataFrame or RNTupleReader loop, or RDataFrame.AsNumpy (PyROOT's own way)."""
    if reader == "asnumpy":
        columns = import_root().RDataFrame(name, str(path)).AsNumpy(["x", "label"])
        return np.stack([np.asarray(row, dtype=np.float32) for row in columns["x"]]), columns["label"].astype(np.int32)
    if reader not in READERS:
        raise ValueError(f"reader {reader}: expected one of {', '.join(READERS)}")
    samples = getattr(samples_api(), f"read_{reader}")(str(path), name)
    x = np.array(samples.x, dtype=np.float32).reshape(samples.size(), samples.features)  # a copy: samples dies here
    return x, np.array(samples.labels, dtype=np.int32)


def train_pyroot(input: str, data: Path, engine: str, layout: str, alloc: str, flags: list[str]) -> int:
    """The PyROOT path: the file -> samples.h's reader -> numpy -> the module's FedRun, the batches
    in the seed's order. `flags`: cladbench-train's. Returns the exit status (0 trained, 3 failed)."""
    from .core import core

    reader = training_reader(input)
    x, y = read_samples(data, "train", reader)
    test_x, test_y = read_samples(data, "test", reader)
    ROOT = import_root()
    run = core.FedRun(
        engine,
        layout,
        alloc,
        [*flags, "--input", input, "--data", str(data)],
        len(y),
        x.shape[1],
        MNIST_CLASSES,
    )
    run.set_version("root", str(ROOT.gROOT.GetVersion()))
    run.set_version("python", platform.python_version())
    run.set_test(test_x, test_y)
    batch = run.batch
    for epoch in range(run.epochs):
        order = run.epoch_order(epoch)
        for s in range(run.steps_per_epoch):
            rows = order[s * batch : (s + 1) * batch]
            if np.isnan(run.step(x[rows], y[rows])):
                print(f"cladbench root train: {run.error}", file=sys.stderr)
                return run.finish()
        run.end_epoch()
    return run.finish()


def feed_benchmark(
    mnist: tuple[str, str],
    mnist_files: dict[str, Path],
    train_range: tuple[int, int],
    gw_data: str,
    gw_files: dict[str, Path],
    repetitions: int,
) -> pd.DataFrame:
    """How fast each format and reader brings a dataset's training samples into memory, as the
    training loop then gathers its batches from it: MNIST (IDX, and the "train" tree or RNTuple)
    and the GW windows (HDF5, and "windows"). The IDX and HDF5 files are read by the C++ loaders
    the file-fed trainers use; ROOT files by each of READERS. Each reader's arrays must equal the
    loader's. One untimed read first (interpreter compilation, page cache); then `repetitions`
    timed reads: median and quartiles of the seconds, samples/s from the median."""
    from .core import core

    def idx():
        return tuple(t.numpy() for t in core.load_mnist(*mnist))

    def hdf5():
        windows = core.load_gw_windows(gw_data)
        return windows["x"].numpy(), windows["labels"].numpy()

    cases = [("mnist", "idx", LOADER, idx, Path(mnist[0])), ("gw", "hdf5", LOADER, hdf5, Path(gw_data))]
    for dataset, files, name in (("mnist", mnist_files, "train"), ("gw", gw_files, "windows")):
        for fmt, path in files.items():
            for reader in readers_of(fmt):
                read = functools.partial(read_samples, path, name, reader)
                cases.append((dataset, fmt, READERS[reader], read, Path(path)))
    reference = {"mnist": idx(), "gw": hdf5()}
    a, b = train_range
    reference["mnist"] = tuple(column[a:b] for column in reference["mnist"])
    rows = []
    for dataset, fmt, reader, read, path in cases:
        x, y = read()
        n, want = len(y), reference[dataset]
        if fmt == "idx":  # the loader reads the whole file; the ROOT files hold the training rows
            x, y = x[a:b], y[a:b]
        if not (np.array_equal(x, want[0]) and np.array_equal(y, want[1])):
            raise RuntimeError(f"{path} read by {reader} differs from the {dataset} data the trainers read")
        seconds = []
        for _ in range(repetitions):
            start = time.perf_counter()
            x, _y = read()
            seconds.append(time.perf_counter() - start)
        q1, median, q3 = np.percentile(seconds, [25, 50, 75])
        rows.append(
            dict(
                dataset=dataset,
                format=fmt,
                reader=reader,
                samples=n,
                features=x.shape[1],
                file_bytes=path.stat().st_size,
                repetitions=repetitions,
                seconds_median=median,
                seconds_q1=q1,
                seconds_q3=q3,
                samples_per_s=n / median,
            )
        )
        print(f"cladbench root feed: {dataset} {fmt} {reader}: {n / median:,.0f} samples/s", file=sys.stderr)
    return pd.DataFrame(rows, columns=FEED_COLUMNS)


def counted_env() -> dict:
    """This environment with the allocation counter preloaded, so that a run's record counts heap
    allocations per step (as `cladbench train` does for the pytorch engine)."""
    env = dict(os.environ)
    library = str(alloc_counter_library())
    if Path(library).exists() and library not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = f"{library} {env.get('LD_PRELOAD', '')}".strip()
    return env


def macro_command(
    input: str, data: Path, out: str, engine: str, layout: str, alloc: str, flags: list[str]
) -> tuple[list[str], dict]:
    """root.exe running cpp/root/train_mnist.C, and its environment (the C ABI library's directory
    on LD_LIBRARY_PATH, the allocation counter preloaded)."""
    exe = root_exe()
    if exe is None:
        raise RootMissing(root_missing_reason())
    reader = training_reader(input)
    args = ", ".join(f'"{a}"' for a in (data, out, " ".join(flags), engine, layout, alloc, input, reader))
    env = counted_env()
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(build_dir()), env.get("LD_LIBRARY_PATH")]))
    return [str(exe), "-b", "-q", "-l", "-n", f"{MACRO}({args})"], env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cladbench root", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    mnist = sub.add_parser("write-mnist", help="MNIST rows as TTrees or RNTuples train and test")
    mnist.add_argument("--format", choices=FORMATS, default="ttree")
    mnist.add_argument("--images", required=True)
    mnist.add_argument("--labels", required=True)
    mnist.add_argument("--test-images", default="", help="test rows from this file (e.g. t10k); default: --images")
    mnist.add_argument("--test-labels", default="")
    mnist.add_argument("--train-range", default=train_default("train-range"))
    mnist.add_argument("--test-range", default=train_default("test-range"))
    mnist.add_argument("--out", required=True, type=Path)
    gw = sub.add_parser("write-gw", help="GW windows (cladbench gw's HDF5) as TTrees or RNTuples")
    gw.add_argument("--format", choices=FORMATS, default="ttree")
    gw.add_argument("--data", required=True)
    gw.add_argument("--real", default="")
    gw.add_argument("--out", required=True, type=Path)
    train = sub.add_parser("train", help="train the MNIST MLP from a ROOT file, in root.exe or in PyROOT")
    train.add_argument("--input", choices=INPUTS, required=True, help="the file's format, and who reads it")
    train.add_argument("--data", required=True, type=Path, help="the file with train and test (write-mnist)")
    train.add_argument("--engine", choices=CPP_ENGINES, required=True)
    train.add_argument("--layout", choices=LAYOUTS, default="rowmajor")
    train.add_argument("--alloc", choices=ALLOCS, default="arena")
    train.add_argument("--out", default="", help="the JSON run record (stdout if empty)")
    for name in RUN_FLAGS:
        default = train_default(name)  # the trainer's own (cladbench.options)
        train.add_argument("--" + name.replace("_", "-"), default=default, type=type(default))
    feed = sub.add_parser("feed", help="time each format's and reader's reading of the training samples")
    feed.add_argument("--images", required=True, help="MNIST IDX images (the file the trees were written from)")
    feed.add_argument("--labels", required=True)
    feed.add_argument("--train-range", default=train_default("train-range"), help="the rows the trees hold")
    feed.add_argument("--mnist", nargs=2, required=True, type=Path, metavar=("TTREE", "RNTUPLE"))
    feed.add_argument("--gw-data", required=True, help="the simulated GW windows (HDF5) the trees were written from")
    feed.add_argument("--gw", nargs=2, required=True, type=Path, metavar=("TTREE", "RNTUPLE"))
    feed.add_argument("--repetitions", type=int, default=5)
    feed.add_argument("--out", required=True, type=Path, help="the table (CSV)")
    args = parser.parse_args(argv)
    try:
        if args.what == "write-mnist":
            ranges = parse_range(args.train_range), parse_range(args.test_range)
            print(
                write_mnist(
                    args.images, args.labels, *ranges, args.out, args.format, args.test_images, args.test_labels
                )
            )
            return 0
        if args.what == "write-gw":
            print(write_gw(args.data, args.real, args.out, args.format))
            return 0
        if args.what == "feed":
            table = feed_benchmark(
                (args.images, args.labels),
                dict(zip(FORMATS, args.mnist)),
                parse_range(args.train_range),
                args.gw_data,
                dict(zip(FORMATS, args.gw)),
                args.repetitions,
            )
            args.out.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(args.out, index=False)
            return 0
        if args.input.endswith("-pyroot"):
            env = counted_env()
            if env.get("LD_PRELOAD") != os.environ.get("LD_PRELOAD"):  # rerun with the counter preloaded
                argv = sys.argv[1:] if argv is None else argv
                return subprocess.run([sys.executable, "-m", "cladbench.root", *argv], env=env).returncode
            out = ["--out", args.out] if args.out else []
            flags = train_argv(args, RUN_FLAGS) + out
            return train_pyroot(args.input, args.data, args.engine, args.layout, args.alloc, flags)
        command, env = macro_command(
            args.input, args.data, args.out, args.engine, args.layout, args.alloc, train_argv(args, RUN_FLAGS)
        )
        return subprocess.run(command, env=env).returncode
    except (RootMissing, ValueError, OSError, RuntimeError) as error:
        print(f"cladbench root: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
