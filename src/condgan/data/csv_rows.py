"""Reading a CSV manifest the user keeps (image paths and labels): its rows, bad rows, and the split.

Shared by the class CSV (class_csv.py: path,label) and the pairs CSV (pair_csv.py: source,target[,label]).
A missing column is a whole-file mistake and refused; a bad row (too many cells, an empty required cell,
a split other than train/test, a missing or unreadable image) is skipped with a warning naming its line,
or refused with data.bad_files=error, so one stray row never costs a long run.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from .. import untrusted
from ..errors import DataError
from .folders import HELD_OUT_EVERY

MAX_CSV_BYTES = 50_000_000
SPLIT_VALUES = ("train", "test")


class BadRows:
    """Bad rows of one CSV: refused at once (data.bad_files=error), or collected and reported as warnings."""

    def __init__(self, csv_file: Path, policy: str):
        if policy not in ("skip", "error"):
            raise DataError(f"data.bad_files must be 'skip' or 'error', not {untrusted.shown(policy)}")
        self.csv_file, self.policy, self.messages = csv_file, policy, []

    def add(self, line: int, message: str) -> None:
        text = f"{self.csv_file}, line {line}: {message}"
        if self.policy == "error":
            raise DataError(f"{text} (set data.bad_files=skip to skip such rows)")
        self.messages.append(text)

    def warn(self) -> None:
        for message in self.messages[:10]:
            warnings.warn(f"skipped {message}", stacklevel=3)
        if len(self.messages) > 10:
            warnings.warn(f"skipped {len(self.messages) - 10} more bad rows of {self.csv_file}", stacklevel=3)


def read_rows(path: Path, required: tuple[str, ...], optional: tuple[str, ...], bad: BadRows) -> list[tuple[int, dict]]:
    """(line number, row) of every good data row; the header must name the required columns (any order,
    any case). Columns it does not know are ignored with one warning."""
    text = untrusted.read_text(path, "data CSV", MAX_CSV_BYTES)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        numbered = [(reader.line_num, cells) for cells in reader if any(c.strip() for c in cells)]
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV file ({e})") from None
    expected = ",".join(required) + "".join(f"[,{c}]" for c in optional)
    if not numbered:
        raise DataError(f"{path} is empty; its first line must be the header {expected}")
    header = [c.strip().lower() for c in numbered[0][1]]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: the header lacks the column(s) {', '.join(missing)}; the first line must be "
                        f"{expected}, found {untrusted.shown(','.join(numbered[0][1]), 120)}")
    unknown = [c for c in header if c not in required + optional]
    if unknown:
        warnings.warn(f"{path}: ignoring the column(s) {untrusted.shown(', '.join(unknown), 120)} "
                      f"(condgan reads {expected})", stacklevel=3)
    rows = []
    for line, cells in numbered[1:]:
        row = dict.fromkeys(header, "") | dict(zip(header, (c.strip() for c in cells)))
        empty = [c for c in required if not row.get(c)]
        if len(cells) > len(header):
            bad.add(line, f"{len(cells)} cells, but the header names {len(header)} columns")
        elif empty:
            bad.add(line, f"empty {', '.join(empty)}" if len(cells) == len(header) else
                    f"{len(cells)} cells, but the header names {len(header)} columns")
        elif "split" in header and row["split"].lower() not in SPLIT_VALUES:
            bad.add(line, f"split must be train or test, not {untrusted.shown(row['split'], 40)}")
        else:
            rows.append((line, row))
    if not rows:
        raise DataError(f"{path} has no usable rows (the header is {expected})")
    return rows


def choose_split(rows: list[tuple[int, dict]], split: str, group=None) -> list[tuple[int, dict]]:
    """The rows of `split`: by the `split` column when the CSV has one, else every HELD_OUT_EVERY-th row
    (of each group, e.g. each class, when `group(row)` is given) is 'test', as for folders."""
    if split == "all":
        return rows
    if rows and "split" in rows[0][1]:
        return [(n, r) for n, r in rows if r["split"].lower() == split]
    seen: dict = {}
    chosen = []
    for n, r in rows:
        key = group(r) if group else None
        i = seen[key] = seen.get(key, -1) + 1
        if (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == (split == "test"):
            chosen.append((n, r))
    return chosen


def file_of(csv_file: Path, text: str) -> Path:
    """The file a cell names: relative to the CSV's folder (rows naming files outside it: untrusted.paths_outside)."""
    f = Path(text).expanduser()
    return f if f.is_absolute() else csv_file.parent / f


def label_names(values) -> list[str]:
    """Class names from a label column's values: sorted, numerically when every one is an integer."""
    names = {str(v) for v in values}
    if all(n.lstrip("-").isdigit() for n in names):
        return sorted(names, key=int)
    return sorted(names)
