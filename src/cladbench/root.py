"""ROOT: the datasets as TTrees, and training fed from a TTree, in root.exe or in PyROOT.

    cladbench root trees-mnist --images I --labels L --train-range 0:8000 --test-range 8000:10000 --out mnist.root
    cladbench root trees-gw --data simulated.h5 --real gw150914-windows.h5 --out gw.root
    cladbench root train --input ttree-macro  --trees mnist.root --engine clad --out run.json [training flags]
    cladbench root train --input ttree-pyroot --trees mnist.root --engine clad --out run.json [training flags]

An MNIST tree file holds trees "train" and "test": a float array branch x[784] (the pixels as the
trainers see them: scaled to [0, 1] and standardised by the C++ core's loader) and an int branch
label. `--input ttree-macro` runs cpp/root/train_mnist.C under root.exe (no Python in that process:
the macro trains through the C ABI, libcladbench_c.so); `--input ttree-pyroot` reads the trees with
ROOT.RDataFrame into numpy here and trains through the Python module. Both feed the batches in the
order cladbench-train uses for the same seed, so their losses equal the file-fed run's.

ROOT is optional (`pip install -e .[root]`, or conda's envs/root.yaml): without it these commands
stop with a message saying so.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

from .matrix import ALLOCS, CPP_ENGINES, LAYOUTS
from .options import RUN_FLAGS, parse_range, train_argv, train_default
from .paths import REPO, alloc_counter_library, build_dir

MACRO = REPO / "cpp" / "root" / "train_mnist.C"
MNIST_CLASSES = 10


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


def _write_trees(
    out: Path, trees: dict[str, dict[str, np.ndarray]], title: str, parameters: dict[str, float] | None = None
) -> Path:
    """Writes {tree name: {branch: column}} to a ROOT file, atomically (temp file + rename). A 2-D
    column becomes a fixed-size float array branch (x[784]/F); 1-D int32, float32 and float64
    columns become scalar branches."""
    ROOT = import_root()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.root")
    file = ROOT.TFile.Open(str(tmp), "RECREATE")
    if not file or file.IsZombie():
        raise OSError(f"cannot write {tmp}")
    leaf_types = {np.dtype(np.float32): "F", np.dtype(np.float64): "D", np.dtype(np.int32): "I"}
    for name, columns in trees.items():
        tree = ROOT.TTree(name, title)
        n = len(next(iter(columns.values())))
        buffers = {}
        for branch, column in columns.items():
            column = np.ascontiguousarray(column)
            if column.ndim == 2:
                buffers[branch] = np.zeros(column.shape[1], dtype=np.float32)
                tree.Branch(branch, buffers[branch], f"{branch}[{column.shape[1]}]/F")
            else:
                buffers[branch] = np.zeros(1, dtype=column.dtype)
                tree.Branch(branch, buffers[branch], f"{branch}/{leaf_types[column.dtype]}")
            columns[branch] = column
        for i in range(n):
            for branch, column in columns.items():
                buffers[branch][:] = column[i]
            tree.Fill()
        tree.Write()
    for name, value in (parameters or {}).items():
        ROOT.TParameter["double"](name, float(value)).Write()
    file.Close()
    os.replace(tmp, out)
    return out


def write_mnist_trees(
    images: str,
    labels: str,
    train_range: tuple[int, int],
    test_range: tuple[int, int],
    out: Path,
    test_images: str = "",
    test_labels: str = "",
) -> Path:
    """MNIST rows [train_range) of images/labels as tree "train", rows [test_range) of the test
    files (default: the same files) as tree "test", with the pixels the trainers see."""
    from .core import core

    x, y = (t.numpy() for t in core.load_mnist(images, labels))
    test_x, test_y = (t.numpy() for t in core.load_mnist(test_images, test_labels)) if test_images else (x, y)
    (a, b), (c, d) = train_range, test_range
    if not (0 <= a < b <= len(y) and 0 <= c < d <= len(test_y)):
        raise ValueError(f"ranges {a}:{b} and {c}:{d} do not fit {len(y)} training and {len(test_y)} test samples")
    title = "MNIST: x = pixels/255 standardised with (0.1307, 0.3081), as cladbench's trainers see them"
    return _write_trees(
        out, {"train": {"x": x[a:b], "label": y[a:b]}, "test": {"x": test_x[c:d], "label": test_y[c:d]}}, title
    )


def write_gw_trees(data: str, real: str, out: Path) -> Path:
    """The GW windows as trees: "windows" (simulated: x[channels*length] whitened strain, H1 then
    L1, label, snr) and, with `real`, "gw150914" (x, t_start GPS). channels, length and
    merger_offset are TParameter<double>s in the file."""
    from .core import core

    sim = core.load_gw_windows(data)
    trees = {"windows": {"x": sim["x"].numpy(), "label": sim["labels"].numpy(), "snr": sim["snr"].numpy()}}
    if real:
        windows = core.load_gw_windows(real)
        trees["gw150914"] = {"x": windows["x"].numpy(), "t_start": windows["t_start"].numpy()}
    return _write_trees(
        out,
        trees,
        "GW windows: whitened strain (cladbench.data.gw), channels-major",
        {"channels": sim["channels"], "length": sim["length"], "merger_offset": sim["merger_offset"]},
    )


def read_mnist_tree(path: Path, tree: str) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 [n, features], labels int32 [n]) of a tree, through RDataFrame."""
    ROOT = import_root()
    columns = ROOT.RDataFrame(tree, str(path)).AsNumpy(["x", "label"])
    x = np.stack([np.asarray(row, dtype=np.float32) for row in columns["x"]])
    return x, columns["label"].astype(np.int32)


def train_pyroot(trees: Path, engine: str, layout: str, alloc: str, flags: list[str]) -> int:
    """The PyROOT path: trees -> RDataFrame -> numpy -> the module's FedRun, the batches in the seed's
    order. `flags`: cladbench-train's. Returns the exit status (0 trained, 3 failed)."""
    from .core import core

    x, y = read_mnist_tree(trees, "train")
    test_x, test_y = read_mnist_tree(trees, "test")
    ROOT = import_root()
    run = core.FedRun(
        engine,
        layout,
        alloc,
        [*flags, "--input", "ttree-pyroot", "--data", str(trees)],
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


def counted_env() -> dict:
    """This environment with the allocation counter preloaded, so that a run's record counts heap
    allocations per step (as `cladbench train` does for the pytorch engine)."""
    env = dict(os.environ)
    library = str(alloc_counter_library())
    if Path(library).exists() and library not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = f"{library} {env.get('LD_PRELOAD', '')}".strip()
    return env


def macro_command(
    trees: Path, out: str, engine: str, layout: str, alloc: str, flags: list[str]
) -> tuple[list[str], dict]:
    """root.exe running cpp/root/train_mnist.C, and its environment (the C ABI library's directory
    on LD_LIBRARY_PATH, the allocation counter preloaded)."""
    exe = root_exe()
    if exe is None:
        raise RootMissing(root_missing_reason())
    args = ", ".join(f'"{a}"' for a in (trees, out, " ".join(flags), engine, layout, alloc))
    env = counted_env()
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(build_dir()), env.get("LD_LIBRARY_PATH")]))
    return [str(exe), "-b", "-q", "-l", "-n", f"{MACRO}({args})"], env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cladbench root", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    mnist = sub.add_parser("trees-mnist", help="MNIST rows as trees train and test")
    mnist.add_argument("--images", required=True)
    mnist.add_argument("--labels", required=True)
    mnist.add_argument("--test-images", default="", help="test rows from this file (e.g. t10k); default: --images")
    mnist.add_argument("--test-labels", default="")
    mnist.add_argument("--train-range", default=train_default("train-range"))
    mnist.add_argument("--test-range", default=train_default("test-range"))
    mnist.add_argument("--out", required=True, type=Path)
    gw = sub.add_parser("trees-gw", help="GW windows (cladbench gw's HDF5) as trees")
    gw.add_argument("--data", required=True)
    gw.add_argument("--real", default="")
    gw.add_argument("--out", required=True, type=Path)
    train = sub.add_parser("train", help="train the MNIST MLP from a tree file, in root.exe or in PyROOT")
    train.add_argument("--input", choices=("ttree-macro", "ttree-pyroot"), required=True)
    train.add_argument("--trees", required=True, type=Path, help="file with trees train and test (trees-mnist)")
    train.add_argument("--engine", choices=CPP_ENGINES, required=True)
    train.add_argument("--layout", choices=LAYOUTS, default="rowmajor")
    train.add_argument("--alloc", choices=ALLOCS, default="arena")
    train.add_argument("--out", default="", help="the JSON run record (stdout if empty)")
    for name in RUN_FLAGS:
        default = train_default(name)  # the trainer's own (cladbench.options)
        train.add_argument("--" + name.replace("_", "-"), default=default, type=type(default))
    args = parser.parse_args(argv)
    try:
        if args.what == "trees-mnist":
            print(
                write_mnist_trees(
                    args.images,
                    args.labels,
                    parse_range(args.train_range),
                    parse_range(args.test_range),
                    args.out,
                    args.test_images,
                    args.test_labels,
                )
            )
            return 0
        if args.what == "trees-gw":
            print(write_gw_trees(args.data, args.real, args.out))
            return 0
        if args.input == "ttree-pyroot":
            env = counted_env()
            if env.get("LD_PRELOAD") != os.environ.get("LD_PRELOAD"):  # rerun with the counter preloaded
                argv = sys.argv[1:] if argv is None else argv
                return subprocess.run([sys.executable, "-m", "cladbench.root", *argv], env=env).returncode
            out = ["--out", args.out] if args.out else []
            return train_pyroot(args.trees, args.engine, args.layout, args.alloc, train_argv(args, RUN_FLAGS) + out)
        command, env = macro_command(
            args.trees, args.out, args.engine, args.layout, args.alloc, train_argv(args, RUN_FLAGS)
        )
        return subprocess.run(command, env=env).returncode
    except (RootMissing, ValueError, OSError) as error:
        print(f"cladbench root: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
