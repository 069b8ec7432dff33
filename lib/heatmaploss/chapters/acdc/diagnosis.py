"""The ACDC chapter, diagnosis from the segmentation: clinical measurements on ED/ES masks and a
random forest over the five groups, as the challenge's best teams diagnosed patients.

    tables = {"predicted": feature_table(data.train, predicted_masks, patients, spacing),
              "ground_truth": feature_table(data.train, data.train.labels, patients, spacing)}
    result = diagnose(tables, {"validation": {"predicted": ..., "ground_truth": ...}}, seed=0)
    result.scores["validation"]["predicted"]["accuracy"]

Two pipelines, each a forest trained on the training patients (id % 5 != 0) and scored on the
evaluation patients with measurements of the same kind: **predicted** — every measurement from
the U-Net's masks (the full pipeline, as a user without annotations runs it) — and
**ground_truth** — every measurement from the organisers' masks (the ceiling); the difference
is what segmentation errors cost. The ground-truth forest is also scored on the predicted
masks' measurements (``transfer``): how far a forest that never saw the U-Net's systematic
errors (e.g. a thicker myocardium) is misled by them. Measurements come from
:mod:`heatmaploss.acdc.measures` on the grid the masks lie on (the network's grid, the
profile's ``target_spacing``). TensorFlow-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ...acdc import GROUPS
from ...acdc.measures import FEATURES, patient_features

#: Where the measurements of a scored patient come from.
FEATURE_SOURCES = ("predicted", "ground_truth")
#: The challenge's reported 5-group test accuracies (``docs/acdc.md`` § The thesis's ACDC work).
PUBLISHED_ACCURACY = {"Isensee et al. 2017": 0.92, "Khened et al. 2017": 1.00,
                      "Wolterink et al. 2017": 0.86, "Cetin et al. 2017": 0.92}
#: What the chapter asks of the full pipeline on the fixture's validation patients.
TARGET_ACCURACY = 0.9


def feature_table(arrays: Any, labels: np.ndarray, patients: Mapping[int, Any],
                  spacing) -> pd.DataFrame:
    """One row of :data:`~heatmaploss.acdc.measures.FEATURES` per patient of ``arrays``.

    Args:
        arrays: :class:`~heatmaploss.chapters.acdc.data.AcdcArrays` (one row per patient and
            phase); its ``numbers``, ``groups`` and ``phases`` pair the rows of ``labels``.
        labels: (N, X, Y, Z) masks aligned with ``arrays`` (ground truth or predicted).
        patients: patient id → :class:`~heatmaploss.acdc.AcdcPatient` (height, weight).
        spacing: voxel size (x, y, z) in mm of the masks' grid.

    Returns:
        Columns ``patient``, ``group`` and the features, sorted by patient.

    Raises:
        ValueError: when a patient lacks its ED or ES row, or ``labels`` does not match.
    """
    labels = np.asarray(labels)
    if len(labels) != len(arrays.numbers):
        raise ValueError(f"labels has {len(labels)} volumes for {len(arrays.numbers)} rows")
    rows = []
    for number in np.unique(arrays.numbers):
        index = {phase: np.flatnonzero((arrays.numbers == number) & (arrays.phases == phase))
                 for phase in ("ED", "ES")}
        missing = [phase for phase, i in index.items() if len(i) != 1]
        if missing:
            raise ValueError(f"patient {int(number)}: needs one ED and one ES volume; "
                             f"{', '.join(missing)} missing or repeated")
        patient = patients[int(number)]
        rows.append({"patient": int(number), "group": arrays.groups[index["ED"][0]],
                     **patient_features(labels[index["ED"][0]], labels[index["ES"][0]],
                                        spacing, patient.height, patient.weight)})
    return pd.DataFrame(rows, columns=["patient", "group", *FEATURES])


def train_forest(table: pd.DataFrame, seed: int, n_trees: int = 500) -> Any:
    """A scikit-learn random forest over the five groups, fitted on ``table``'s features.

    Args:
        table: :func:`feature_table` of the training patients (every group present).
        seed: the forest's ``random_state``.
        n_trees: trees in the forest.

    Returns:
        The fitted ``RandomForestClassifier`` (it handles NaN features natively).
    """
    from sklearn.ensemble import RandomForestClassifier

    missing = sorted(set(GROUPS) - set(table["group"]))
    if missing:
        raise ValueError(f"training table lacks groups {missing}: the forest needs all of "
                         f"{', '.join(GROUPS)}")
    forest = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)
    return forest.fit(table[list(FEATURES)], table["group"])


def score(forest: Any, table: pd.DataFrame) -> dict:
    """Accuracy, balanced accuracy and the confusion matrix of ``forest`` on ``table``.

    Returns:
        ``accuracy``, ``balanced_accuracy``, ``confusion`` (rows: true group, columns:
        predicted group, both in :data:`~heatmaploss.acdc.GROUPS` order), ``groups``,
        ``n_patients`` and ``predictions`` (one row per patient: ``patient``, ``group``,
        ``predicted``).
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix

    predicted = forest.predict(table[list(FEATURES)])
    truth = table["group"].to_numpy()
    return {"accuracy": float(accuracy_score(truth, predicted)),
            "balanced_accuracy": float(balanced_accuracy_score(truth, predicted)),
            "confusion": confusion_matrix(truth, predicted, labels=list(GROUPS)).tolist(),
            "groups": list(GROUPS), "n_patients": int(len(table)),
            "predictions": pd.DataFrame({"patient": table["patient"].to_numpy(),
                                         "group": truth, "predicted": predicted})}


@dataclass
class DiagnosisResult:
    """The trained forests and their scores.

    Attributes:
        forests: feature source → the forest trained on the training patients' measurements
            from that source.
        train: feature source → the training patients' feature table.
        tables: evaluation set → feature source → feature table.
        scores: evaluation set → feature source → :func:`score` of that source's forest.
        transfer: evaluation set → :func:`score` of the ground-truth forest on the predicted
            masks' measurements.
    """

    forests: dict[str, Any]
    train: dict[str, pd.DataFrame]
    tables: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    scores: dict[str, dict[str, dict]] = field(default_factory=dict)
    transfer: dict[str, dict] = field(default_factory=dict)

    def importances(self) -> pd.DataFrame:
        """Mean decrease in impurity per feature (rows) and forest (columns), largest first
        (by the predicted-masks forest when there is one)."""
        frame = pd.DataFrame({source: forest.feature_importances_
                              for source, forest in self.forests.items()}, index=list(FEATURES))
        return frame.sort_values(frame.columns[0], ascending=False)

    def table(self) -> pd.DataFrame:
        """One row per (evaluation set, pipeline): accuracy, balanced accuracy, n."""
        rows = [{"set": name, "features": source, **{k: s[k] for k in (
                    "accuracy", "balanced_accuracy", "n_patients")}}
                for name, by_source in self.scores.items() for source, s in by_source.items()]
        rows += [{"set": name, "features": "transfer", **{k: s[k] for k in (
                     "accuracy", "balanced_accuracy", "n_patients")}}
                 for name, s in self.transfer.items()]
        return pd.DataFrame(rows)


def diagnose(train: Mapping[str, pd.DataFrame],
             evaluation: Mapping[str, Mapping[str, pd.DataFrame]], seed: int,
             n_trees: int = 500) -> DiagnosisResult:
    """Train one forest per feature source and score each on the same source's measurements
    of every evaluation set (and the ground-truth forest on the predicted measurements).

    Args:
        train: feature source (:data:`FEATURE_SOURCES`) → :func:`feature_table` of the
            training patients.
        evaluation: evaluation set (``validation``, ``test``) → feature source → table.
        seed: the forests' seed.
        n_trees: trees per forest.
    """
    for name, by_source in [("train", train), *evaluation.items()]:
        unknown = set(by_source) - set(FEATURE_SOURCES)
        if unknown:
            raise ValueError(f"{name} has feature sources {sorted(unknown)}; allowed "
                             f"{', '.join(FEATURE_SOURCES)}")
    forests = {source: train_forest(table, seed, n_trees) for source, table in train.items()}
    scores = {name: {source: score(forests[source], table)
                     for source, table in by_source.items() if source in forests}
              for name, by_source in evaluation.items()}
    transfer = ({name: score(forests["ground_truth"], by_source["predicted"])
                 for name, by_source in evaluation.items() if "predicted" in by_source}
                if "ground_truth" in forests else {})
    return DiagnosisResult(forests, dict(train), {k: dict(v) for k, v in evaluation.items()},
                           scores, transfer)


def summary_entry(result: DiagnosisResult, evaluation_set: str = "validation") -> dict:
    """``acdc.diagnosis``: per pipeline (``predicted``, ``ground_truth``) and for
    ``transfer``, the 5-group ``accuracy``, ``balanced_accuracy`` and ``confusion`` on
    ``evaluation_set`` (with ``groups`` order and ``n_patients``); the set's name; the
    feature importances per forest; other evaluation sets under ``by_set``."""
    def strip(s: dict) -> dict:
        return {k: v for k, v in s.items() if k != "predictions"}

    def one_set(name: str) -> dict:
        out = {source: strip(s) for source, s in result.scores.get(name, {}).items()}
        if name in result.transfer:
            out["transfer"] = strip(result.transfer[name])
        return out

    return {**one_set(evaluation_set), "set": evaluation_set,
            "n_training_patients": int(len(next(iter(result.train.values())))),
            "importances": result.importances().round(6).to_dict(),
            "by_set": {name: one_set(name) for name in result.scores if name != evaluation_set}}


def diagnosis_verdict(predicted: float, ground_truth: float,
                      target: float = TARGET_ACCURACY) -> str:
    """One sentence judging the diagnosis from the segmentation on one evaluation set.

    Args:
        predicted: 5-group accuracy with measurements on the U-Net's masks.
        ground_truth: the same forest's accuracy with measurements on the ground-truth masks.
        target: the accuracy the full pipeline should reach.
    """
    reached = "reaches" if predicted >= target else "does not reach"
    cost = ground_truth - predicted
    effect = ("segmentation errors cost nothing measurable" if abs(cost) < 1e-9 else
              f"segmentation errors cost {cost:+.2f}" if cost > 0 else
              f"the predicted masks score {-cost:.2f} higher than the ground truth")
    return (f"diagnosis from the predicted segmentation {reached} {target:.2f} accuracy "
            f"({predicted:.2f}; ground-truth masks {ground_truth:.2f}: {effect})")


__all__ = ["DiagnosisResult", "FEATURE_SOURCES", "PUBLISHED_ACCURACY", "TARGET_ACCURACY",
           "diagnose", "diagnosis_verdict", "feature_table", "score", "summary_entry",
           "train_forest"]
