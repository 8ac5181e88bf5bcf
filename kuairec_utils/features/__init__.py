"""User, item, context and history features of the value model (notebook 02_features).

``build_features(interactions, side, cfg)`` turns the study's interaction table (01_data) and the
release's side tables into one float32 column per feature, and ``write_processed`` writes
``{train,val,test}.parquet`` and the manifest ``features.json`` that later stages read instead of
repeating lists of columns. The four groups (docs/design.md section 4):

- **user** (``user_*``): activity degree, low-active period, live streamer, video author, follow /
  fan / friend counts and register days (log) with their range bins (ordinal), and the eighteen
  encrypted ``onehot_feat*``.
- **item** (``item_*``): duration and aspect ratio (log), days since upload, video type, upload
  type, visibility, author and music ids, the caption's three category levels, the 31 tags
  (multi-hot), and the video's statistics of the latest day *before* the interaction's day in
  ``item_daily_features`` (a day's counts include that day's outcomes, so never the same day).
- **context** (``ctx_*``): burst, day within the burst, position in session, hour of day as sine /
  cosine, weekend.
- **history** (``hist_*``): per user, exponential moving averages (EMAs) of each head's past
  outcomes at two half-lives, the EMA of ``complete`` within the video's category, the user's
  share of past events in that category and the entropy of their category mix, time since they
  last watched the author, the last outcome's ``complete``, past events, and the previous
  session's length and the gap since it ended.

Leakage rules. History features count only events with a timestamp strictly before the
interaction's: events sharing a timestamp all get the state from before the first of them.
Encoders, imputation values and scalers are fitted on the training split only, so the features
of every event before a time ``t`` at or after the first non-training day do not depend on any
event at or after ``t`` (``tests/test_features.py`` checks this by changing and deleting them).

Encodings. A categorical with at most ``max_onehot_levels`` levels among the training rows is
one-hot with the most frequent level as the reference (no column). Levels on less than
``onehot_min_share`` of the training rows, and levels never seen in training, pool into
``<name>_other``; when the rare levels together are still below that share there is no ``other``
column and they join the reference (all zeros). Missing is a level (``na``). A categorical with
more levels (author and music ids, the finer category levels, some encrypted user features)
becomes ``log1p`` of its count among the training rows (an unseen level counts 0). Tags on less
than ``onehot_min_share`` of the training rows pool into ``item_tag_other``. Numeric, ordinal
and frequency columns are imputed with their training mean where missing, then standardised
with the training mean and sd (``manifest["scaler"]``); where missingness itself says something
(no previous event, never watched this author, first session, no earlier daily statistics, no
item metadata, empty encrypted user features) a 0/1 indicator column says so. Binary, one-hot,
multi-hot and cyclic (sine / cosine) columns are left as they are.

The category of the history features is the video's first tag in ``item_categories`` (31
levels, one for every video), rather than the caption's first-level category, which is
``UNKNOWN`` for some videos.

The history features are one pass of a numba loop over the rows sorted by user and time, and
every other feature is computed once per user, per video or per day and gathered to the rows, so
the full 12.5M-row KuaiRec takes minutes (``benchmarks/bench_features.py``).
"""

from kuairec_utils.features.build import (
    QUERY_COLUMNS,
    FeatureSet,
    build_features,
    query_features,
    read_manifest,
    write_processed,
)
from kuairec_utils.features.config import (
    CATEGORY_SOURCE,
    GROUPS,
    ID_COLUMNS,
    LABEL_COLUMNS,
    MANIFEST_NAME,
    QUERY_SPLIT,
    ROW_GROUP_ROWS,
    SCALED_TYPES,
    FeatureConfig,
    SideTables,
    check_split_days,
    load_side_tables,
)
from kuairec_utils.features.context_history import (
    HISTORY_TYPES,
    history_features,
    previous_session_features,
)
from kuairec_utils.features.encoders import CategoricalEncoder, FittedFeatures
from kuairec_utils.features.encoders import _range_rank as _range_rank
from kuairec_utils.features.user_item import (
    DAILY_RATES,
    N_ENCRYPTED,
    USER_COUNTS,
    USER_FLAGS,
    lagged_item_stats,
)

__all__ = [
    "CATEGORY_SOURCE",
    "DAILY_RATES",
    "GROUPS",
    "HISTORY_TYPES",
    "ID_COLUMNS",
    "LABEL_COLUMNS",
    "MANIFEST_NAME",
    "N_ENCRYPTED",
    "QUERY_COLUMNS",
    "QUERY_SPLIT",
    "ROW_GROUP_ROWS",
    "SCALED_TYPES",
    "USER_COUNTS",
    "USER_FLAGS",
    "CategoricalEncoder",
    "FeatureConfig",
    "FeatureSet",
    "FittedFeatures",
    "SideTables",
    "build_features",
    "check_split_days",
    "history_features",
    "lagged_item_stats",
    "load_side_tables",
    "previous_session_features",
    "query_features",
    "read_manifest",
    "write_processed",
]
