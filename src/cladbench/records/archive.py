"""Recorded runs kept in the repository, so the report can show GPU runs on a machine without one:

    results-archive/<device-slug>/<YYYY-MM-DD>/runs/{bench,mnist,gw}/...json   (as under results/runs)
    results-archive/<device-slug>/<YYYY-MM-DD>/MANIFEST.yaml   device, date, host, git commit, command

This reads them into the tidy runs table of cladbench.records.aggregate (the same columns, the same code),
plus archive_device (the MANIFEST's device, else the slug) and archive_date (the MANIFEST's date,
else the folder's name):

    python -m cladbench.records.archive OUT_CSV [--archive results-archive]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

from ..paths import REPO
from .aggregate import tables

ARCHIVE = REPO / "results-archive"
ARCHIVE_COLUMNS = ["archive_device", "archive_date"]


class ArchiveError(ValueError):
    pass


def archive_dirs(root: str | Path = ARCHIVE) -> list[Path]:
    """The archives under root: <device-slug>/<date>/ folders with a runs/ folder."""
    return sorted(p.parent for p in Path(root).glob("*/*/runs") if p.is_dir())


def archive_files(root: str | Path = ARCHIVE) -> list[Path]:
    """Every file the archived section depends on: the records and the manifests."""
    files = []
    for archive in archive_dirs(root):
        files += sorted(archive.glob("runs/**/*.json"))
        files += [archive / "MANIFEST.yaml"] if (archive / "MANIFEST.yaml").exists() else []
    return files


def manifest(archive: Path) -> dict:
    """An archive's MANIFEST.yaml ({} when it has none); a malformed one is an error that names it."""
    path = archive / "MANIFEST.yaml"
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ArchiveError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ArchiveError(f"{path}: expected a mapping with device, date, host, git_commit, command")
    return data


def archive_runs(root: str | Path = ARCHIVE) -> pd.DataFrame:
    """One row per archived run: aggregate's runs columns, then archive_device and archive_date."""
    frames = []
    for archive in archive_dirs(root):
        records = {}
        for path in sorted(archive.glob("runs/**/*.json")):
            try:
                records[str(path)] = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise ArchiveError(f"{path}: not a JSON run record ({error})") from None
        if not records:
            continue
        info = manifest(archive)
        runs = tables(records)["runs"]
        runs["archive_device"] = str(info.get("device") or archive.parent.name)
        runs["archive_date"] = str(info.get("date") or archive.name)  # YAML reads 2026-01-31 as a date
        frames.append(runs)
    if not frames:
        return pd.DataFrame(columns=[*tables({})["runs"].columns, *ARCHIVE_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cladbench.records.archive", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the CSV to write (results/tables/archive_runs.csv)")
    parser.add_argument("--archive", type=Path, default=ARCHIVE, help="the archive root (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        runs = archive_runs(args.archive)
    except ArchiveError as error:
        print(f"cladbench archive: {error}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out, index=False)
    print(f"{args.out}: {len(runs)} archived runs from {len(archive_dirs(args.archive))} archive(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
