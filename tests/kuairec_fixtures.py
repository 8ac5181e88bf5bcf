"""A tiny but valid KuaiRec 2.0 release, written in the exact formats of the real files.

``write_tiny_release(data_dir)`` writes the seven csv files of a release into ``data_dir`` (the
folder that holds the csv files, i.e. ``.../KuaiRec 2.0/data``). The files reproduce the real
quirks that a reader must handle:

- ``big_matrix.csv`` writes ``date`` as an int (``20200705``) and contains one exact duplicate row
  (the real file has about 968k);
- ``small_matrix.csv`` writes ``date`` as a float (``20200705.0``) and has two rows whose ``time``,
  ``date`` and ``timestamp`` are empty (the real file has 181,992);
- ``user_features.csv`` has users with empty ``onehot_feat4`` and ``onehot_feat12..17`` fields;
- ``item_categories.csv`` writes ``feat`` as ``[8]`` or, quoted, ``"[27, 9]"``;
- ``kuairec_caption_category.csv`` has an unquoted caption with a bare carriage return, an empty
  caption, quoted captions, unquoted ``topic_tag`` lists and ``UNKNOWN`` categories with id -124;
- ``item_daily_features.csv`` leaves the four ``collect_*`` counts empty on the first day and has a
  ``music_id`` beyond the int32 range;
- ``social_network.csv`` writes ``friend_list`` as ``[3]`` or ``"[4, 1]"``.

The helpers below the writer edit such files line by line so that tests can corrupt one field,
column or row at a time. They split fields on commas outside double quotes only, so a bare
carriage return inside a field survives a round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

MATRIX_COLUMNS = [
    "user_id",
    "video_id",
    "play_duration",
    "video_duration",
    "time",
    "date",
    "timestamp",
    "watch_ratio",
]
USER_FEATURE_COLUMNS = [
    "user_id",
    "user_active_degree",
    "is_lowactive_period",
    "is_live_streamer",
    "is_video_author",
    "follow_user_num",
    "follow_user_num_range",
    "fans_user_num",
    "fans_user_num_range",
    "friend_user_num",
    "friend_user_num_range",
    "register_days",
    "register_days_range",
    *[f"onehot_feat{i}" for i in range(18)],
]
CAPTION_COLUMNS = [
    "video_id",
    "manual_cover_text",
    "caption",
    "topic_tag",
    "first_level_category_id",
    "first_level_category_name",
    "second_level_category_id",
    "second_level_category_name",
    "third_level_category_id",
    "third_level_category_name",
]
DAILY_ID_COLUMNS = [
    "video_id",
    "date",
    "author_id",
    "video_type",
    "upload_dt",
    "upload_type",
    "visible_status",
    "video_duration",
    "video_width",
    "video_height",
    "music_id",
    "video_tag_id",
    "video_tag_name",
]
DAILY_COUNT_COLUMNS = [
    "show_cnt",
    "show_user_num",
    "play_cnt",
    "play_user_num",
    "play_duration",
    "complete_play_cnt",
    "complete_play_user_num",
    "valid_play_cnt",
    "valid_play_user_num",
    "long_time_play_cnt",
    "long_time_play_user_num",
    "short_time_play_cnt",
    "short_time_play_user_num",
    "play_progress",
    "comment_stay_duration",
    "like_cnt",
    "like_user_num",
    "click_like_cnt",
    "double_click_cnt",
    "cancel_like_cnt",
    "cancel_like_user_num",
    "comment_cnt",
    "comment_user_num",
    "direct_comment_cnt",
    "reply_comment_cnt",
    "delete_comment_cnt",
    "delete_comment_user_num",
    "comment_like_cnt",
    "comment_like_user_num",
    "follow_cnt",
    "follow_user_num",
    "cancel_follow_cnt",
    "cancel_follow_user_num",
    "share_cnt",
    "share_user_num",
    "download_cnt",
    "download_user_num",
    "report_cnt",
    "report_user_num",
    "reduce_similar_cnt",
    "reduce_similar_user_num",
    "collect_cnt",
    "collect_user_num",
    "cancel_collect_cnt",
    "cancel_collect_user_num",
]
DAILY_COLUMNS = DAILY_ID_COLUMNS + DAILY_COUNT_COLUMNS

FIRST_DAY = datetime(2020, 7, 5)
BEIJING_UTC_OFFSET = timedelta(hours=8)
UNIX_EPOCH = datetime(1970, 1, 1)


# --- writing -------------------------------------------------------------------------------------


def _quote(field: str) -> str:
    """Quote a field the way the real files do: only when it holds a comma, quote or newline.

    A bare carriage return is NOT a reason to quote: the real caption file leaves it unquoted.
    """
    if any(ch in field for ch in ',"\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def _line(fields: Iterable[object]) -> str:
    return ",".join(_quote("" if f is None else str(f)) for f in fields)


def _write(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    lines = [_line(header), *(_line(r) for r in rows)]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def _time_fields(when: datetime) -> tuple[str, int, str]:
    """``time``, ``date`` and ``timestamp`` as the real files write them (Beijing time)."""
    time = when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    date = int(when.strftime("%Y%m%d"))
    seconds = (when - BEIJING_UTC_OFFSET - UNIX_EPOCH) / timedelta(milliseconds=1) / 1000
    return time, date, repr(round(seconds, 3))


def _interaction(rng: np.random.Generator, user: int, video: int, when: datetime) -> list[object]:
    video_duration = int(rng.integers(3_000, 60_000))
    play_duration = int(rng.integers(0, 3 * video_duration))
    time, date, timestamp = _time_fields(when)
    watch_ratio = play_duration / video_duration
    return [user, video, play_duration, video_duration, time, date, timestamp, repr(watch_ratio)]


def _random_moment(rng: np.random.Generator, n_days: int) -> datetime:
    ms = int(rng.integers(0, n_days * 86_400_000))
    return FIRST_DAY + timedelta(milliseconds=ms)


def _matrices(data_dir: Path, rng: np.random.Generator, n_users: int, n_videos: int) -> None:
    big = []
    for user in range(n_users):
        moments = sorted(_random_moment(rng, 10) for _ in range(n_videos))
        big += [_interaction(rng, user, video, when) for video, when in enumerate(moments)]
    big.insert(1, list(big[0]))  # an exact duplicate, as in the real big_matrix
    _write(data_dir / "big_matrix.csv", MATRIX_COLUMNS, big)

    small = []
    for user in range(max(2, n_users // 2)):
        for video in range(max(2, n_videos // 2)):
            row = _interaction(rng, user, video, _random_moment(rng, 10))
            row[5] = f"{row[5]}.0"  # small_matrix writes date as a float
            small.append(row)
    for row in (small[1], small[-1]):  # rows with empty time, date and timestamp
        row[4:7] = ["", "", ""]
    _write(data_dir / "small_matrix.csv", MATRIX_COLUMNS, small)


def _user_features(data_dir: Path, rng: np.random.Generator, n_users: int) -> None:
    degrees = ["full_active", "high_active", "middle_active", "UNKNOWN"]
    follow = ["0", "(0,10]", "(10,50]", "(250,500]", "500+"]
    fans = ["0", "[1,10)", "[10,100)", "[1w,10w)"]
    friends = ["0", "[1,5)", "[5,30)", "250+"]
    register = ["15-30", "61-90", "181-365", "730+"]
    rows = []
    for user in range(n_users):
        onehot: list[object] = [int(v) for v in rng.integers(0, [2, 8, 30, 1076, 12, *[3] * 13])]
        if user == 1:
            onehot[4] = ""  # the real file: 201 users lack onehot_feat4
        if user == 2:
            onehot[12:18] = [""] * 6  # and about 75 users lack onehot_feat12..17
        rows.append(
            [
                user,
                degrees[user % len(degrees)],
                0,
                int(user == 0),
                int(user % 3 == 0),
                int(rng.integers(0, 600)),
                follow[user % len(follow)],
                int(rng.integers(0, 20_000)),
                fans[user % len(fans)],
                int(rng.integers(0, 300)),
                friends[user % len(friends)],
                int(rng.integers(0, 2_000)),
                register[user % len(register)],
                *onehot,
            ]
        )
    _write(data_dir / "user_features.csv", USER_FEATURE_COLUMNS, rows)


def _item_categories(data_dir: Path, rng: np.random.Generator, n_videos: int) -> None:
    rows: list[list[object]] = [[0, "[8]"], [1, "[27, 9]"]]
    for video in range(2, n_videos):
        feats = rng.choice(31, size=int(rng.integers(1, 4)), replace=False)
        rows.append([video, "[" + ", ".join(str(int(f)) for f in feats) + "]"])
    _write(data_dir / "item_categories.csv", ["video_id", "feat"], rows[:n_videos])


def _captions(data_dir: Path, rng: np.random.Generator, n_videos: int) -> None:
    samples = [
        ("UNKNOWN", "精神小伙路难走 程哥你狗粮慢点撒", "[]", (8, "颜值"), (673, "颜值随拍"), None),
        ("UNKNOWN", "", "[]", (27, "高新数码"), None, None),
        ("UNKNOWN", "我不会处理\r好吗", "[]", (6, "明星娱乐"), None, None),  # bare CR, unquoted
        (
            "五爱街最美美女 一天1q",
            "#搞笑 #感谢快手我要上热门 #五爱市场 这真是完美搭配啊！",
            "[五爱市场,感谢快手我要上热门,搞笑]",
            (5, "时尚"),
            (737, "营销售卖"),
            (2596, "女装"),
        ),
        ("UNKNOWN", '他说"你好",我笑了', "[我笑了]", (19, "情感"), None, None),
    ]
    unknown = (-124, "UNKNOWN")
    rows = []
    for video in range(n_videos):
        cover, caption, tags, first, second, third = samples[video % len(samples)]
        rows.append(
            [video, cover, caption, tags, *first, *(second or unknown), *(third or unknown)]
        )
    _write(data_dir / "kuairec_caption_category.csv", CAPTION_COLUMNS, rows)


def _social_network(data_dir: Path, rng: np.random.Generator, n_users: int) -> None:
    rows = []
    for user in range(0, n_users, 2):
        others = [u for u in range(n_users) if u != user]
        friends = rng.choice(others, size=min(len(others), 1 + user % 3), replace=False)
        rows.append([user, "[" + ", ".join(str(int(f)) for f in friends) + "]"])
    _write(data_dir / "social_network.csv", ["user_id", "friend_list"], rows)


def _item_daily_features(data_dir: Path, rng: np.random.Generator, n_videos: int) -> None:
    tags = [(841, "建筑"), (2, "搞笑"), (11, "美食")]
    upload_types = ["ShortImport", "LongImport", "Web"]
    rows = []
    for video in range(n_videos):
        upload = FIRST_DAY - timedelta(days=int(rng.integers(0, 100)))
        music_id = 3_350_323_409 if video == 0 else int(rng.integers(0, 2**31))
        tag_id, tag_name = tags[video % len(tags)]
        fixed = [
            int(rng.integers(0, 10_000)),  # author_id
            "AD" if video % 4 == 3 else "NORMAL",
            upload.strftime("%Y-%m-%d"),
            upload_types[video % len(upload_types)],
            "public",
            f"{float(rng.integers(3_000, 60_000))!r}",  # video_duration, written as a float
            720,
            1280,
            music_id,
            tag_id,
            tag_name,
        ]
        for day in range(3):
            date = int((FIRST_DAY + timedelta(days=day)).strftime("%Y%m%d"))
            counts: list[object] = [int(c) for c in rng.integers(0, 20_000, size=45)]
            counts[13] = repr(float(rng.uniform(0, 1)))  # play_progress
            if day == 0:
                counts[-4:] = ["", "", "", ""]  # collect_* are empty on early dates
            rows.append([video, date, *fixed, *counts])
    _write(data_dir / "item_daily_features.csv", DAILY_COLUMNS, rows)


def write_tiny_release(
    data_dir: Path, *, n_users: int = 6, n_videos: int = 8, seed: int = 0
) -> Path:
    """Write the seven csv files of a tiny, valid KuaiRec 2.0 release into ``data_dir``.

    ``data_dir`` is the folder holding the csv files (created if missing); it is returned.
    ``big_matrix.csv`` has ``n_users * n_videos + 1`` rows (every pair once, plus one exact
    duplicate of the first row); ``small_matrix.csv`` covers the first ``max(2, n_users // 2)``
    users by the first ``max(2, n_videos // 2)`` videos, two of its rows without time fields.
    """
    if n_users < 3 or n_videos < 3:
        raise ValueError("write_tiny_release needs n_users >= 3 and n_videos >= 3")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    _matrices(data_dir, rng, n_users, n_videos)
    _user_features(data_dir, rng, n_users)
    _item_categories(data_dir, rng, n_videos)
    _captions(data_dir, rng, n_videos)
    _social_network(data_dir, rng, n_users)
    _item_daily_features(data_dir, rng, n_videos)
    return data_dir


# --- corrupting ----------------------------------------------------------------------------------


def split_line(line: str) -> list[str]:
    """Split one csv line on commas outside double quotes, unquoting fields."""
    fields, field, quoted, i = [], [], False, 0
    while i < len(line):
        ch = line[i]
        if quoted:
            if ch == '"' and line[i + 1 : i + 2] == '"':
                field.append('"')
                i += 1
            elif ch == '"':
                quoted = False
            else:
                field.append(ch)
        elif ch == '"':
            quoted = True
        elif ch == ",":
            fields.append("".join(field))
            field = []
        else:
            field.append(ch)
        i += 1
    fields.append("".join(field))
    return fields


def read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a csv file written by ``write_tiny_release``."""
    lines = Path(path).read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    header, *rows = (split_line(line) for line in lines)
    return header, rows


def write_csv_rows(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a header and rows back in the real files' format (minimal quoting, ``\\n``)."""
    _write(Path(path), header, rows)


def set_field(path: Path, row: int, column: str, value: str) -> None:
    """Set ``column`` of data row ``row`` (1-based; the header is not counted) to ``value``."""
    header, rows = read_csv_rows(path)
    rows[row - 1][header.index(column)] = value
    write_csv_rows(path, header, rows)


def rename_column(path: Path, old: str, new: str) -> None:
    """Rename a column in the header only."""
    header, rows = read_csv_rows(path)
    header[header.index(old)] = new
    write_csv_rows(path, header, rows)


def drop_column(path: Path, column: str) -> None:
    """Remove a column from the header and from every row."""
    header, rows = read_csv_rows(path)
    i = header.index(column)
    write_csv_rows(path, header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in rows])


def truncate_last_row(path: Path, n_fields: int = 3) -> None:
    """Cut the last line after its first ``n_fields`` fields, as an interrupted download would."""
    header, rows = read_csv_rows(path)
    rows[-1] = rows[-1][:n_fields]
    write_csv_rows(path, header, rows)


def keep_header_only(path: Path) -> None:
    """Leave only the header line."""
    header, _ = read_csv_rows(path)
    write_csv_rows(path, header, [])


def make_empty(path: Path) -> None:
    """Truncate the file to 0 bytes."""
    Path(path).write_bytes(b"")
