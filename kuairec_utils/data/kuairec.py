"""Read the seven csv files of a KuaiRec 2.0 release into typed, validated DataFrames.

``read_table(data_dir, name)`` reads ``<data_dir>/<name>.csv`` (``name`` one of ``TABLES``),
converts every column to a compact dtype, parses the list columns into Python lists and checks
the result against a pandera schema (``SCHEMAS[name]``, defined with the column lists in
``kuairec_utils.data.schemas`` and importable from here). Any problem raises
``KuaiRecFormatError``, whose message names the file, the column and the first offending rows
(at most five) as *line numbers of the csv file*: the header is line 1, the first data row line 2.
(Line numbers assume one line per row, which holds for every KuaiRec file.)

Checks run cheapest first: the file exists, is not empty, has a data row and its header is
exactly the expected column list, in order; then the parse (a value of the wrong type, a row with
the wrong number of fields); then the schema (ranges, nulls, uniqueness, cross-column rules).

Quirks of the real files that the reader handles:

- ``big_matrix`` / ``small_matrix``: ``small_matrix`` writes ``date`` as a float
  (``20200705.0``) and 181,992 of its rows have empty ``time``, ``date`` and ``timestamp``. So
  ``date`` is read as a float, checked to be a whole YYYYMMDD number and stored as nullable
  ``Int32`` in both matrices; ``time`` becomes ``datetime64[ms]`` (naive Beijing time, NaT only
  where all three time fields are empty, which ``big_matrix`` never allows). ``date`` must be a
  calendar date in 2020 and equal to ``time``'s calendar date. Exact duplicate rows (about 968k
  in the real ``big_matrix``) are kept; ``count_exact_duplicates`` counts them. The matrices are
  read with ``pyarrow.csv`` and explicit column types and checked with vectorised code only, so
  the 12.5M-row ``big_matrix`` (1 GB) reads in about 8 s with a peak of about 1.5 GB of memory
  (``benchmarks/bench_read.py``).
- ``user_features``: 277 users have empty ``onehot_feat*`` fields; all eighteen are nullable
  ``Int16`` so the missingness stays explicit. ``*_range`` columns (``(0,10]``, ``[1w,10w)``,
  ``500+``) are categories.
- ``item_categories.feat`` and ``social_network.friend_list`` are lists written as text
  (``[8]``, ``"[27, 9]"``). They are checked against a strict pattern (non-negative integers,
  commas, brackets) and only then parsed with ``json.loads``: nothing in the file is evaluated.
- ``kuairec_caption_category``: four captions contain a bare carriage return, which pyarrow and
  pandas' defaults treat as a line end; this file is read with pandas' C engine and
  ``lineterminator="\\n"``. ``topic_tag`` is not JSON (``[五爱市场,搞笑]``, items unquoted): it is
  parsed by stripping the brackets and splitting on commas (items stripped of surrounding
  whitespace; ``[]`` gives ``[]``). Captions and cover texts stay strings, an empty field being
  ``""`` (never NA). Unknown categories are ``UNKNOWN`` with id -124, so category ids are ``int16``
  that are either -124 or non-negative.
- ``item_daily_features``: the four ``collect_*`` counts are empty on early dates, so every count
  is a nullable integer (``Int32``; ``Int64`` for the summed durations ``play_duration`` and
  ``comment_stay_duration``); ``music_id`` exceeds int32 and is ``int64``. The reader is strict
  on ids, dates and durations and lenient (nullable) elsewhere: ``upload_dt`` is parsed to
  ``datetime64[ms]`` and may be empty, ``video_duration`` is a float that may be empty but must be
  positive when present.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute
import pyarrow.csv as pacsv

from kuairec_utils.data.schemas import (
    COLUMNS,
    DAILY_COUNT_COLUMNS,
    DATE_COLUMNS,
    DATETIME_COLUMNS,
    FINITE,
    FIRST_DATE,
    LAST_DATE,
    NON_NEGATIVE,
    SCHEMAS,
    TABLES,
    UNKNOWN_CATEGORY_ID,
    USER_ACTIVE_DEGREES,
    VIDEO_TYPES,
    YYYYMMDD,
)
from kuairec_utils.data.schemas import _yyyymmdd_to_days as _yyyymmdd_to_days

__all__ = [
    "COLUMNS",
    "DAILY_COUNT_COLUMNS",
    "DATE_COLUMNS",
    "DATETIME_COLUMNS",
    "FINITE",
    "FIRST_DATE",
    "INT_LIST",
    "LAST_DATE",
    "LIST_PARSERS",
    "MAX_SHOWN_ROWS",
    "NON_NEGATIVE",
    "ROW_CHECK_COLUMNS",
    "SCHEMAS",
    "TABLES",
    "UNKNOWN_CATEGORY_ID",
    "USER_ACTIVE_DEGREES",
    "VIDEO_TYPES",
    "YYYYMMDD",
    "KuaiRecFormatError",
    "count_exact_duplicates",
    "read_table",
    "validate_release",
]

MAX_SHOWN_ROWS = 5  # offending rows quoted in an error message


class KuaiRecFormatError(ValueError):
    """A KuaiRec csv file that does not have the expected format.

    The message names the file, the column where one is at fault, and the first offending rows
    as line numbers of the csv file (the header is line 1, the first data row line 2).
    """


# --- error messages -----------------------------------------------------------------------------

# The columns to quote for the checks that span a whole row.
ROW_CHECK_COLUMNS = {
    "time_date_timestamp_empty_together": ["time", "date", "timestamp"],
    "date_matches_time": ["date", "time"],
}


def _show(value: object) -> str:
    """A value as it reads in a message: text quoted (so an empty field shows), the rest plain."""
    if isinstance(value, str):
        return repr(value)
    return str(value.item() if isinstance(value, np.generic) else value)


def _problem(problem: str, examples: Sequence[str], total: int) -> str:
    """``problem in N rows (line 4: 'abc'; ...)``, quoting at most ``MAX_SHOWN_ROWS`` rows."""
    examples = list(examples)[:MAX_SHOWN_ROWS]
    more = f"; and {total - len(examples)} more" if total > len(examples) else ""
    return f"{problem} in {total} row{'' if total == 1 else 's'} ({'; '.join(examples)}{more})"


def _error(
    path: Path,
    problem: str,
    *,
    column: str | None = None,
    examples: Sequence[str] = (),
    total: int = 0,
) -> KuaiRecFormatError:
    """A ``KuaiRecFormatError`` naming the file, the column and the first offending rows."""
    where = f"{path}: column {column!r}" if column else f"{path}"
    if examples:
        problem = _problem(problem, examples, total)
    return KuaiRecFormatError(f"{where}: {problem}")


def _rows_error(
    path: Path, column: str, problem: str, bad: np.ndarray, values: Sequence[object] | None
) -> KuaiRecFormatError:
    """An error quoting the rows where the boolean mask ``bad`` (one entry per data row) holds.

    ``values`` are the column's values, quoted for those rows; ``None`` quotes an empty field.
    """
    rows = np.flatnonzero(bad)
    examples = [
        f"line {i + 2}: {_show('' if values is None else values[i])}" for i in rows[:MAX_SHOWN_ROWS]
    ]
    return _error(path, problem, column=column, examples=examples, total=len(rows))


def _schema_error(path: Path, exc: pa.errors.SchemaError | pa.errors.SchemaErrors) -> Exception:
    """Turn pandera's report into a message naming columns, checks and csv line numbers."""
    cases = getattr(exc, "failure_cases", None)
    if not isinstance(cases, pd.DataFrame) or cases.empty or "index" not in cases:
        return _error(path, f"does not match the KuaiRec schema: {exc}")
    problems = []
    by_column = cases[cases["schema_context"] != "DataFrameSchema"]
    for (column, check), group in by_column.groupby(["column", "check"], sort=False):
        if group["index"].isna().all():  # a whole-column failure such as a wrong dtype
            problems.append(
                f"column {column!r} fails {check}: {_show(group['failure_case'].iloc[0])}"
            )
            continue
        group = group.dropna(subset=["index"]).sort_values("index")
        examples = [
            f"line {int(i) + 2}: {_show(v)}"
            for i, v in zip(group["index"][:MAX_SHOWN_ROWS], group["failure_case"], strict=False)
        ]
        problems.append(_problem(f"column {column!r} fails {check}", examples, len(group)))
    by_row = cases[cases["schema_context"] == "DataFrameSchema"]
    for check, group in by_row.groupby("check", sort=False):
        shown = ROW_CHECK_COLUMNS.get(check, list(group["column"].unique()))
        rows = np.sort(group["index"].unique())
        examples = []
        for i in rows[:MAX_SHOWN_ROWS]:  # pandera leaves out missing values: show them as empty
            row = group[group["index"] == i].set_index("column")["failure_case"]
            values = [f"{c}={_show(row[c]) if c in row.index else 'empty'}" for c in shown]
            examples.append(f"line {int(i) + 2}: {', '.join(values)}")
        problems.append(_problem(f"columns {shown} fail {check}", examples, len(rows)))
    if len(problems) == 1:
        return KuaiRecFormatError(f"{path}: {problems[0]}")
    return KuaiRecFormatError(f"{path}:" + "".join(f"\n  - {p}" for p in problems))


# --- cheap checks before parsing ----------------------------------------------------------------


def _check_file(path: Path, columns: list[str]) -> None:
    """Fail fast on a missing or empty file, a header-only file and a header that differs."""
    if not path.is_file():
        raise _error(path, "file not found")
    with path.open("rb") as f:
        first_line = f.readline()
        after_header = f.read(1 << 16)
    if not first_line:
        raise _error(path, "file is empty (0 bytes)")
    header = first_line.rstrip(b"\n").decode("utf-8", errors="replace").split(",")
    if header != columns:
        missing = [c for c in columns if c not in header]
        unexpected = [c for c in header if c not in columns]
        details = [f"missing columns {missing}"] if missing else []
        details += [f"unexpected columns {unexpected}"] if unexpected else []
        detail = ", ".join(details) or "columns out of order or repeated"
        raise _error(
            path, f"header does not match: {detail}; got {header}, expected {columns} (line 1)"
        )
    if not after_header.strip():
        raise _error(path, "file has a header but no data rows")


# --- parsing ------------------------------------------------------------------------------------


def _arrow_type(name: str, column: pa.Column) -> pyarrow.DataType:
    """The type ``pyarrow.csv`` parses a column into, derived from the schema's dtype."""
    if name in DATE_COLUMNS:
        return pyarrow.float64()
    if name in DATETIME_COLUMNS:
        return pyarrow.timestamp("ms")
    dtype = column.dtype.type
    if isinstance(dtype, pd.CategoricalDtype | pd.StringDtype) or dtype == np.dtype(object):
        return pyarrow.string()
    return pyarrow.from_numpy_dtype(getattr(dtype, "numpy_dtype", dtype))


def _unparseable(values: pd.Series, arrow_type: pyarrow.DataType) -> tuple[np.ndarray, str]:
    """Mask of the non-empty strings that ``arrow_type`` cannot hold, and what was expected."""
    present = (values.notna() & (values != "")).to_numpy(dtype=bool)
    if pyarrow.types.is_integer(arrow_type):
        limits = np.iinfo(arrow_type.to_pandas_dtype())
        is_int = values.str.fullmatch(r"[+-]?[0-9]+").fillna(False).to_numpy(dtype=bool)
        number = pd.to_numeric(values.where(is_int), errors="coerce").to_numpy(dtype="float64")
        within = (number >= limits.min) & (number <= limits.max)
        return present & ~(is_int & within), f"an integer (in the {arrow_type} range)"
    if pyarrow.types.is_floating(arrow_type):
        number = pd.to_numeric(values, errors="coerce")
        return present & number.isna().to_numpy(dtype=bool), "a number"
    if pyarrow.types.is_timestamp(arrow_type):
        when = pd.to_datetime(values, format="ISO8601", errors="coerce")
        return present & when.isna().to_numpy(dtype=bool), "a date-time like 2020-07-05 00:08:23"
    return np.zeros(len(values), dtype=bool), str(arrow_type)


def _read_strings(path: Path, columns: list[str]) -> pyarrow.Table:
    """Read ``columns`` as text, single-threaded so that bad rows carry their line number.

    Only used to explain a failed typed read; raises on rows with the wrong number of fields.
    """
    examples: list[str] = []
    n_bad_rows = 0

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        nonlocal n_bad_rows
        n_bad_rows += 1
        if len(examples) < MAX_SHOWN_ROWS:
            examples.append(f"line {row.number}: {row.actual_columns} fields {row.text!r}")
        return "skip"

    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row),
        convert_options=pacsv.ConvertOptions(
            include_columns=columns, column_types=dict.fromkeys(columns, pyarrow.string())
        ),
    )
    if n_bad_rows:
        problem = "rows with the wrong number of fields (a truncated or damaged file?)"
        raise _error(path, problem, examples=examples, total=n_bad_rows)
    return table


def _explain_arrow_error(
    path: Path, types: dict[str, pyarrow.DataType], exc: Exception
) -> Exception:
    """Find the column and rows behind a failed typed read (error path only)."""
    names = list(types)
    failing = re.search(r"column #(\d+)", str(exc))
    if failing is not None and int(failing.group(1)) < len(names):
        names = [names[int(failing.group(1))]]
    try:
        text = _read_strings(path, names)
    except pyarrow.ArrowInvalid as again:
        return _error(path, f"cannot be parsed: {again}")
    for name in names:
        values = text.column(name).to_pandas()
        bad, expected = _unparseable(values, types[name])
        if bad.any():
            return _rows_error(path, name, f"value is not {expected}", bad, values)
    return _error(path, f"cannot be parsed: {exc}")


def _is_nullable_int(dtype: object) -> bool:
    return isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iu"


def _read_arrow(path: Path, schema: pa.DataFrameSchema) -> dict[str, pd.Series]:
    """Typed, multi-threaded read with ``pyarrow.csv``; the fast path for every file but one."""
    types = {name: _arrow_type(name, column) for name, column in schema.columns.items()}
    n_invalid_rows = 0

    def on_invalid_row(row: pacsv.InvalidRow) -> str:
        nonlocal n_invalid_rows
        n_invalid_rows += 1
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid_row),
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=[""], strings_can_be_null=True
            ),
        )
    except pyarrow.ArrowInvalid as exc:
        raise _explain_arrow_error(path, types, exc) from exc
    if n_invalid_rows:
        _read_strings(path, list(types)[:1])  # raises, naming the rows
    columns = {}
    for name in list(table.column_names):
        values = table.column(name)
        table = table.drop_columns(name)  # frees the arrow buffer once converted
        column = schema.columns[name]
        if values.null_count and not column.nullable:
            empty = pyarrow.compute.is_null(values).to_numpy(zero_copy_only=False)
            raise _rows_error(path, name, "empty value", empty, None)
        dtype = column.dtype.type
        if _is_nullable_int(dtype) and name not in DATE_COLUMNS:
            columns[name] = values.to_pandas(types_mapper={values.type: dtype}.get)
        else:
            columns[name] = values.to_pandas()
    pyarrow.default_memory_pool().release_unused()  # hand the parse buffers back to the OS
    return columns


def _read_c_engine(path: Path, schema: pa.DataFrameSchema) -> dict[str, pd.Series]:
    """All columns as text with pandas' C engine, ``\\n`` the only line end (the caption file).

    The C engine pads a row with too few fields with empty ones; the caption file's last fields
    (the category ids) are never empty, so a truncated row is reported as an empty id.
    """
    try:
        text = pd.read_csv(
            path,
            engine="c",
            lineterminator="\n",
            dtype=str,
            keep_default_na=False,
            encoding="utf-8",
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise _error(path, f"cannot be parsed: {exc}") from exc
    columns = {}
    for name, column in schema.columns.items():
        values = text[name]
        dtype = column.dtype.type
        if isinstance(dtype, np.dtype) and dtype.kind in "iu":
            empty = (values == "").to_numpy(dtype=bool)
            if empty.any():  # pandas pads a short row with empty fields: say so
                problem = "empty value (a required field; is the row truncated?)"
                raise _rows_error(path, name, problem, empty, values)
            bad, expected = _unparseable(values, pyarrow.from_numpy_dtype(dtype))
            if bad.any():
                raise _rows_error(path, name, f"value is not {expected}", bad, values)
            values = values.astype(dtype)
        elif isinstance(dtype, pd.CategoricalDtype):
            values = values.mask(values == "")
        columns[name] = values
    return columns


# --- conversions after parsing ------------------------------------------------------------------

INT_LIST = r"\[\s*(?:[0-9]+\s*(?:,\s*[0-9]+\s*)*)?\]"  # [], [8], [27, 9]: nothing else reaches json


def _parse_int_lists(path: Path, name: str, values: pd.Series) -> pd.Series:
    """``"[27, 9]"`` -> ``[27, 9]``; the text is matched against ``INT_LIST`` before json."""
    ok = values.str.fullmatch(INT_LIST).fillna(False).to_numpy(dtype=bool)
    if not ok.all():
        problem = "value is not a list of non-negative integers like [27, 9]"
        raise _rows_error(path, name, problem, ~ok, values)
    return pd.Series([json.loads(v) for v in values], dtype=object, name=name)


def _parse_str_lists(path: Path, name: str, values: pd.Series) -> pd.Series:
    """``"[a,b]"`` -> ``["a", "b"]`` and ``"[]"`` -> ``[]`` (topic tags are not JSON)."""
    ok = values.str.fullmatch(r"\[.*\]").fillna(False).to_numpy(dtype=bool)
    if not ok.all():
        raise _rows_error(path, name, "value is not a bracketed list like [a,b]", ~ok, values)
    inner = values.str.slice(1, -1)
    return pd.Series(
        [[item.strip() for item in v.split(",")] if v.strip() else [] for v in inner],
        dtype=object,
        name=name,
    )


LIST_PARSERS: dict[str, Callable[[Path, str, pd.Series], pd.Series]] = {
    "feat": _parse_int_lists,
    "friend_list": _parse_int_lists,
    "topic_tag": _parse_str_lists,
}


def _to_yyyymmdd(path: Path, name: str, values: pd.Series, dtype: object) -> pd.Series:
    """Float-read dates (``20200705`` or ``20200705.0``) to integers, losslessly."""
    number = values.to_numpy(dtype="float64", na_value=np.nan)
    present = ~np.isnan(number)
    whole = present & (number % 1 == 0) & (number >= 0) & (number < 100_000_000)
    if not np.array_equal(whole, present):
        raise _rows_error(path, name, "value is not a YYYYMMDD date", present & ~whole, values)
    if present.all():
        return pd.Series(number.astype("int32"), name=name).astype(dtype)
    return pd.Series(pd.array(number, dtype="Int32"), name=name).astype(dtype)


def _finish(path: Path, name: str, values: pd.Series, column: pa.Column) -> pd.Series:
    """Dates, lists and categories from their parsed text; other columns pass through."""
    dtype = column.dtype.type
    if name in DATE_COLUMNS:
        return _to_yyyymmdd(path, name, values, dtype)
    if name in LIST_PARSERS:
        return LIST_PARSERS[name](path, name, values)
    if isinstance(dtype, pd.CategoricalDtype):
        if dtype.categories is None:
            return values.astype("category")
        unknown = (values.notna() & ~values.isin(dtype.categories)).to_numpy(dtype=bool)
        if unknown.any():
            problem = f"value is not one of {list(dtype.categories)}"
            raise _rows_error(path, name, problem, unknown, values)
        return values.astype(dtype)
    return values


# --- public API ---------------------------------------------------------------------------------


def read_table(data_dir: str | Path, name: str) -> pd.DataFrame:
    """Read ``<data_dir>/<name>.csv`` of a KuaiRec 2.0 release, typed and validated.

    ``data_dir`` is the folder holding the csv files; ``name`` is one of ``TABLES``. Returns a
    DataFrame with a RangeIndex (row ``i`` is line ``i + 2`` of the file) whose columns have the
    dtypes of ``SCHEMAS[name]``, list columns holding Python lists. Raises ``ValueError`` for an
    unknown name and ``KuaiRecFormatError`` for a file that does not match the format.
    """
    if name not in SCHEMAS:
        raise ValueError(f"unknown KuaiRec table {name!r}; valid names: {', '.join(TABLES)}")
    path = Path(data_dir) / f"{name}.csv"
    schema = SCHEMAS[name]
    _check_file(path, COLUMNS[name])
    if name == "kuairec_caption_category":
        columns = _read_c_engine(path, schema)
    else:
        columns = _read_arrow(path, schema)
    for column_name, column in schema.columns.items():
        columns[column_name] = _finish(path, column_name, columns[column_name], column)
    df = pd.DataFrame(columns, copy=False)
    del columns
    try:
        schema.validate(df, lazy=True, inplace=True)
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:
        raise _schema_error(path, exc) from exc
    return df


def count_exact_duplicates(df: pd.DataFrame) -> int:
    """Rows identical in every column to an earlier row (list cells compared by value)."""
    hashable = {
        name: values.map(lambda v: tuple(v) if isinstance(v, list) else v)
        if values.dtype == object
        else values
        for name, values in df.items()
    }
    return int(pd.DataFrame(hashable, copy=False).duplicated().sum())


def validate_release(data_dir: str | Path) -> dict[str, int]:
    """Read all seven tables of the release in ``data_dir`` and return their row counts.

    The cheap file checks (present, non-empty, header) run on every file before any full read,
    so a missing or damaged small file is reported without first reading ``big_matrix``. Raises
    ``KuaiRecFormatError`` on the first bad file.
    """
    for name in TABLES:
        _check_file(Path(data_dir) / f"{name}.csv", COLUMNS[name])
    return {name: len(read_table(data_dir, name)) for name in TABLES}
