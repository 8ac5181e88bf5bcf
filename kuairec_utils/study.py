"""The study's published figures on real KuaiRec (docs/design.md section 1): the four value
models' test AUCs and the head weights w*. Tables put this repository's results beside them."""

from kuairec_utils.heads import HEADS

STUDY_AUC: dict[str, dict[str, float]] = {  # test AUCs, real KuaiRec
    "logreg": {"complete": 0.8297, "long": 0.7718, "rewatch": 0.8315, "negative": 0.8617, "mean": 0.8237},
    "edge_mlp": {"complete": 0.8485, "long": 0.8198, "rewatch": 0.8537, "negative": 0.8658, "mean": 0.8470},
    "gnn_h64": {"complete": 0.8492, "long": 0.8213, "rewatch": 0.8566, "negative": 0.8657, "mean": 0.8482},
    "gnn_h128": {"complete": 0.8446, "long": 0.8194, "rewatch": 0.8541, "negative": 0.8649, "mean": 0.8458},
}  # fmt: skip

STUDY_W = dict(zip(HEADS, (0.22, 0.10, -0.02, -0.66), strict=True))  # head weights w*, real KuaiRec
