"""Reference trainer of the retraining loop: logistic regression in pure Python, warm-started when it can be.

The container contract (examples/loop/README.md), under the root $MODELPLANE_CONTENT (default /content):
    data/train.csv, data/eval.csv   the dataset version to train on and score on (read-only); a header row, numeric
                                    columns, and a 0/1 `label` column
    model/weights.json              the model version to warm-start from (read-only; absent or empty: cold start)
    params.json                     spec.params: `epochs` (default 5), `learning_rate` (or learningRate; default
                                    0.05), `seed` (0)
    data-diff.json                  what changed in the data since the parent's version (optional; logged)
    artifacts/                      where this run writes weights.json and metrics.json
    checkpoints/                    this run's checkpoints (read-write; when $MODELPLANE_CHECKPOINT_DIR is set): one
                                    after each epoch; a run that finds one resumes from it (a pod replacing a
                                    preempted one)
Environment: MODELPLANE_DATASET_VERSION, MODELPLANE_MODEL_VERSION, MODELPLANE_PARENT_VERSION (empty: cold start),
MODELPLANE_CHECKPOINT_DIR (unset: no checkpoints).

Features are standardized (mean 0, standard deviation 1) with a scaler computed from train.csv on a cold start and
kept from the parent on a warm start, so the parent's weights keep their meaning; weights.json holds both. Training
is stochastic gradient descent over the rows in a seeded shuffled order, so the same inputs give the same weights,
byte for byte. A checkpoint holds the model and the shuffling generator's state after an epoch, so a resumed run
ends with the same weights, byte for byte, as one that was never interrupted. Exit status 2 means missing or
malformed inputs, with the reason on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import statistics
import sys
from pathlib import Path
from typing import Any

LABEL = "label"
CHECKPOINT = "checkpoint.json"
DEFAULTS: dict[str, float] = {"epochs": 5, "learning_rate": 0.05, "seed": 0}


class InputError(Exception):
    """Inputs missing or malformed: the run fails with this message."""


def content_root() -> Path:
    return Path(os.environ.get("MODELPLANE_CONTENT") or "/content")


def camel(key: str) -> str:
    """learning_rate -> learningRate: the spelling the platform's own specs use."""
    first, *rest = key.split("_")
    return first + "".join(part.title() for part in rest)


def param(params: dict[str, Any], key: str) -> float:
    """spec.params[key] (or its camelCase spelling) from params.json, else PARAM_<KEY>, else the default."""
    value = params.get(key, params.get(camel(key), os.environ.get(f"PARAM_{key.upper()}", DEFAULTS[key])))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"param {key} must be a number, not {value!r}") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read {path}: {error}") from None


def read_table(path: Path) -> tuple[list[str], list[list[float]], list[int]]:
    """(feature names, feature rows, labels) of a CSV with a header and a 0/1 `label` column."""
    if not path.is_file():
        raise InputError(f"{path} is missing: the dataset must hold train.csv and eval.csv")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header or LABEL not in header:
            raise InputError(f"{path} has no header row with a {LABEL!r} column")
        at = header.index(LABEL)
        features = [name for i, name in enumerate(header) if i != at]
        rows, labels = [], []
        for line, record in enumerate(reader, start=2):
            if not record:
                continue
            try:
                values = [float(v) for v in record]
            except ValueError:
                raise InputError(f"{path}:{line}: a value is not a number: {record}") from None
            if len(values) != len(header) or values[at] not in (0.0, 1.0):
                raise InputError(f"{path}:{line}: expected {len(header)} values and a 0/1 label: {record}")
            labels.append(int(values[at]))
            rows.append([v for i, v in enumerate(values) if i != at])
    if not rows:
        raise InputError(f"{path} has no rows")
    return features, rows, labels


def sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


class Model:
    """Logistic regression over standardized features: p = sigmoid(bias + sum(w * (x - mean) / scale))."""

    def __init__(self, features: list[str], weights: list[float], bias: float, mean: list[float],
                 scale: list[float]) -> None:
        self.features, self.weights, self.bias, self.mean, self.scale = features, weights, bias, mean, scale

    def standardize(self, rows: list[list[float]]) -> list[list[float]]:
        return [[(x - m) / s for x, m, s in zip(row, self.mean, self.scale, strict=True)] for row in rows]

    def probability(self, z_row: list[float]) -> float:
        return sigmoid(self.bias + sum(w * z for w, z in zip(self.weights, z_row, strict=True)))

    def to_json(self) -> dict[str, Any]:
        def by_name(values: list[float]) -> dict[str, float]:
            return dict(zip(self.features, values, strict=True))
        return {"features": self.features, "weights": by_name(self.weights), "bias": self.bias,
                "mean": by_name(self.mean), "scale": by_name(self.scale)}


def scaler(rows: list[list[float]], column: int) -> tuple[float, float]:
    """A column's mean and standard deviation (1 for a constant column, which then only shifts)."""
    values = [row[column] for row in rows]
    return statistics.fmean(values), statistics.pstdev(values) or 1.0


def evaluate(model: Model, rows: list[list[float]], labels: list[int]) -> dict[str, float]:
    """Accuracy (threshold 0.5) and mean log loss."""
    eps, correct, loss = 1e-12, 0, 0.0
    for z_row, label in zip(model.standardize(rows), labels, strict=True):
        p = model.probability(z_row)
        correct += int((p >= 0.5) == (label == 1))
        loss -= math.log(max(p, eps)) if label else math.log(max(1 - p, eps))
    return {"accuracy": round(correct / len(rows), 6), "loss": round(loss / len(rows), 6)}


def start(model_dir: Path, features: list[str], rows: list[list[float]]) -> Model:
    """The starting model: the parent's weights and scaler (by feature name; a feature new since the parent starts at
    weight 0 with a scaler from train.csv), or zeros and a scaler from train.csv."""
    fresh = [scaler(rows, i) for i in range(len(features))]
    parent = os.environ.get("MODELPLANE_PARENT_VERSION", "")
    if not (model_dir.is_dir() and any(model_dir.iterdir())):
        if parent:
            raise InputError(f"MODELPLANE_PARENT_VERSION is {parent!r} but {model_dir} is empty: nothing to warm-start")
        print("cold start: no parent model, weights start at 0")
        return Model(features, [0.0] * len(features), 0.0, [m for m, _ in fresh], [s for _, s in fresh])
    path = model_dir / "weights.json"
    if not path.is_file():
        raise InputError(f"{model_dir} holds a model but no weights.json: not a model this trainer wrote")
    saved = read_json(path)
    try:
        weights, mean, scale = ({str(k): float(v) for k, v in saved[key].items()}
                                for key in ("weights", "mean", "scale"))
        bias = float(saved["bias"])
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError(f"{path} is not weights.json as this trainer writes it") from None
    if not set(weights) <= set(mean) & set(scale) or any(s <= 0 for s in scale.values()):
        raise InputError(f"{path} is not weights.json as this trainer writes it (its scaler does not fit)")
    new = [name for name in features if name not in weights]
    dropped = sorted(set(weights) - set(features))
    print(f"warm start from model version {parent or saved.get('version') or '(unnamed)'}: "
          f"{len(features) - len(new)} of {len(features)} features' weights reused"
          + (f", new at 0: {', '.join(new)}" if new else "") + (f", dropped: {', '.join(dropped)}" if dropped else ""))
    return Model(features, [weights.get(name, 0.0) for name in features], bias,
                 [mean.get(name, fresh[i][0]) for i, name in enumerate(features)],
                 [scale.get(name, fresh[i][1]) for i, name in enumerate(features)])


def save_checkpoint(path: Path, epoch: int, model: Model, rng: random.Random, order: list[int]) -> None:
    """The state after `epoch`, written whole under another name and renamed: a pod killed mid-write leaves the
    previous checkpoint, never half of one."""
    version, state, gauss = rng.getstate()
    checkpoint = {"epoch": epoch, "model": model.to_json(), "rng": [version, list(state), gauss], "order": order}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(checkpoint))
    partial.replace(path)


def resume(path: Path, model: Model, rng: random.Random, order: list[int]) -> int:
    """Load the checkpoint into the model and the generator, if there is one; returns the first epoch to run."""
    if not path.is_file():
        return 1
    checkpoint = read_json(path)
    try:
        saved = checkpoint["model"]
        model.weights = [float(saved["weights"][name]) for name in model.features]
        model.bias = float(saved["bias"])
        version, state, gauss = checkpoint["rng"]
        rng.setstate((version, tuple(state), gauss))
        order[:] = [int(i) for i in checkpoint["order"]]
        epoch = int(checkpoint["epoch"])
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{path} is not a checkpoint this trainer wrote") from None
    print(f"resumed from the checkpoint after epoch {epoch}")
    return epoch + 1


def log_diff(path: Path) -> None:
    if not path.is_file():
        print("data diff: none given (training on the whole dataset)")
        return
    diff = read_json(path)
    if not isinstance(diff, dict):
        raise InputError(f"{path} is not a JSON object")
    counts = {key: len(diff.get(key) or []) for key in ("added", "changed", "removed")}
    print(f"data diff {diff.get('from') or '(none)'} -> {diff.get('to') or '(unknown)'}: {counts['added']} added, "
          f"{counts['changed']} changed, {counts['removed']} removed; training on the whole dataset")


def train(root: Path) -> dict[str, float]:
    data, artifacts = root / "data", root / "artifacts"
    params_path = root / "params.json"
    params = read_json(params_path) if params_path.is_file() else {}
    if not isinstance(params, dict):
        raise InputError(f"{params_path} is not a JSON object")
    unknown = sorted(set(params) - set(DEFAULTS) - {camel(key) for key in DEFAULTS})
    if unknown:
        print(f"ignoring params this trainer does not know: {', '.join(map(str, unknown))}")
    epochs, rate, seed = int(param(params, "epochs")), param(params, "learning_rate"), int(param(params, "seed"))
    if epochs < 0 or rate <= 0:
        raise InputError(f"need epochs >= 0 and learning_rate > 0, got {epochs} and {rate}")
    print(f"model version {os.environ.get('MODELPLANE_MODEL_VERSION') or '(unnamed)'} on dataset version "
          f"{os.environ.get('MODELPLANE_DATASET_VERSION') or '(unnamed)'}: {epochs} epochs, learning rate {rate}")

    features, rows, labels = read_table(data / "train.csv")
    eval_features, eval_rows, eval_labels = read_table(data / "eval.csv")
    if eval_features != features:
        raise InputError(f"eval.csv columns {eval_features} differ from train.csv's {features}")
    print(f"train.csv: {len(rows)} rows, eval.csv: {len(eval_rows)} rows, features: {', '.join(features)}")
    log_diff(root / "data-diff.json")
    model = start(root / "model", features, rows)
    print(f"before training: eval {evaluate(model, eval_rows, eval_labels)}")

    z_rows, rng, order = model.standardize(rows), random.Random(seed), list(range(len(rows)))
    # The variable says the run has checkpoints; like every path of the contract, they are under the content root.
    checkpoints = root / "checkpoints" if os.environ.get("MODELPLANE_CHECKPOINT_DIR") else None
    first = 1
    if checkpoints:
        first = resume(checkpoints / CHECKPOINT, model, rng, order)
    for epoch in range(first, epochs + 1):
        rng.shuffle(order)
        for i in order:
            error = model.probability(z_rows[i]) - labels[i]
            model.weights = [w - rate * error * z for w, z in zip(model.weights, z_rows[i], strict=True)]
            model.bias -= rate * error
        print(f"epoch {epoch}: train {evaluate(model, rows, labels)}")
        if checkpoints:
            save_checkpoint(checkpoints / CHECKPOINT, epoch, model, rng, order)

    metrics = evaluate(model, eval_rows, eval_labels)
    artifacts.mkdir(parents=True, exist_ok=True)
    saved = {**model.to_json(), "version": os.environ.get("MODELPLANE_MODEL_VERSION", ""),
             "parent": os.environ.get("MODELPLANE_PARENT_VERSION", ""),
             "dataset": os.environ.get("MODELPLANE_DATASET_VERSION", "")}
    (artifacts / "weights.json").write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    (artifacts / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(f"eval: {metrics}; wrote {artifacts / 'weights.json'} and {artifacts / 'metrics.json'}")
    return metrics


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):  # keep the log in order when stdout is a file or a pipe
        sys.stdout.reconfigure(line_buffering=True)
    try:
        train(content_root())
    except InputError as error:
        print(f"trainer: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
