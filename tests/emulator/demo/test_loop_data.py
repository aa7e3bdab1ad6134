"""The loop's data and reference programs: the feed versions order as documented, warm starts use the parent, the
loader is deterministic, and both programs fail clearly on bad inputs."""
from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.loop_scripts import DATA, LOADER, LOOP, TRAINER, Run, run, train

VERSIONS = ("v1", "v2", "v3")


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    shutil.copy(DATA / "generate.py", tmp_path)
    subprocess.run([sys.executable, str(tmp_path / "generate.py")], check=True, capture_output=True)
    for name in ("eval.csv", *(f"{v}/train.csv" for v in VERSIONS)):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def accuracy(tmp_path: Path, version: str, params: dict[str, float]) -> float:
    result = train(tmp_path / version, version, params)
    assert result.exit_code == 0, result.output
    value: float = result.json("metrics.json")["accuracy"]
    return value


# The defaults, and epochs, learning rates and seeds around them (SGD's shuffle order changes with the seed).
CONFIGS = [{"epochs": 5, "learning_rate": 0.05, "seed": 0}, {"epochs": 1, "learning_rate": 0.1, "seed": 1},
           {"epochs": 3, "learning_rate": 0.01, "seed": 0}, {"epochs": 10, "learning_rate": 0.1, "seed": 1},
           {"epochs": 20, "learning_rate": 0.05, "seed": 1}]


@pytest.mark.parametrize("params", CONFIGS, ids=lambda p: "-".join(f"{k}={v}" for k, v in p.items()))
def test_v2_beats_v1_and_v3_is_worse_than_both(tmp_path: Path, params: dict[str, float]) -> None:
    v1, v2, v3 = (accuracy(tmp_path, v, params) for v in VERSIONS)
    assert v2 >= v1 + 0.08, (v1, v2, v3)  # more, unbiased data: the retrain to promote
    assert v3 <= v2 - 0.15, (v1, v2, v3)  # corrupted labels: the retrain to refuse
    assert v3 < v1, (v1, v2, v3)


def test_defaults_score_what_the_readme_says(tmp_path: Path) -> None:
    assert [accuracy(tmp_path, v, {}) for v in VERSIONS] == [0.676667, 0.826667, 0.51]


def test_warm_start_uses_the_parent_and_the_diff(tmp_path: Path) -> None:
    parent = train(tmp_path / "v1", "v1", {})
    assert parent.exit_code == 0 and "cold start" in parent.output
    diff = '{"from": "ds-1", "to": "ds-2", "added": ["a.csv", "b.csv"], "changed": ["train.csv"], "removed": []}'
    warm_content = tmp_path / "warm" / "content"
    warm_content.mkdir(parents=True)
    (warm_content / "data-diff.json").write_text(diff)
    warm = train(warm_content, "v2", {}, model=parent.artifacts, MODELPLANE_PARENT_VERSION="m-1",
                 MODELPLANE_MODEL_VERSION="m-2", MODELPLANE_DATASET_VERSION="ds-2")
    cold = train(tmp_path / "cold", "v2", {})
    assert warm.exit_code == 0, warm.output
    assert "warm start from model version m-1: 4 of 4 features' weights reused" in warm.output
    assert "data diff ds-1 -> ds-2: 2 added, 1 changed, 0 removed" in warm.output
    before, after, fresh = parent.json("weights.json"), warm.json("weights.json"), cold.json("weights.json")
    assert after["mean"] == before["mean"] and after["scale"] == before["scale"]  # the parent's scaler, kept
    assert after["weights"] != before["weights"] and after["weights"] != fresh["weights"]
    assert (after["parent"], after["version"], after["dataset"]) == ("m-1", "m-2", "ds-2")
    # Warm from v1's biased model, v2 lands with the cold v2 model, far above its parent (not above cold v2 here:
    # v1 never saw an annual customer, so the warm start begins from a biased model; this is reported, not hidden).
    scores = [run.json("metrics.json")["accuracy"] for run in (parent, warm, cold)]
    assert scores[1] >= scores[0] + 0.1 and abs(scores[1] - scores[2]) <= 0.02, scores


def test_params_in_either_spelling_and_unknown_ones_named(tmp_path: Path) -> None:
    snake = train(tmp_path / "a", "v1", {"epochs": 2, "learning_rate": 0.2})
    camel = train(tmp_path / "b", "v1", {"epochs": 2, "learningRate": 0.2, "momentum": 0.9})
    from_env = train(tmp_path / "c", "v1", None, PARAM_EPOCHS="2", PARAM_LEARNING_RATE="0.2")
    assert "2 epochs, learning rate 0.2" in snake.output
    assert snake.json("weights.json") == camel.json("weights.json") == from_env.json("weights.json")
    assert "ignoring params this trainer does not know: momentum" in camel.output


def test_training_is_deterministic(tmp_path: Path) -> None:
    first, second = train(tmp_path / "a", "v2", {}), train(tmp_path / "b", "v2", {})
    for name in ("weights.json", "metrics.json"):
        assert (first.artifacts / name).read_bytes() == (second.artifacts / name).read_bytes()


def test_a_run_preempted_after_an_epoch_resumes_there_and_ends_as_if_never_stopped(tmp_path: Path) -> None:
    """A spot preemption after epoch 3 of 8: the replacement pod (same inputs, same checkpoint directory) starts at
    epoch 4, and the weights are those of an uninterrupted run, byte for byte."""
    params = {"epochs": 8, "learning_rate": 0.1, "seed": 1}
    flag = "/content/checkpoints"  # the run has checkpoints (under its content root)
    # The first pod got through three epochs (its checkpoint is what 8 epochs would have left after 3).
    first = train(tmp_path / "first", "v2", {**params, "epochs": 3}, MODELPLANE_CHECKPOINT_DIR=flag)
    assert first.exit_code == 0 and "resumed" not in first.output
    # The replacement pod mounts the same bucket prefix.
    checkpoints = tmp_path / "resumed" / "checkpoints"
    shutil.copytree(tmp_path / "first" / "checkpoints", checkpoints)
    resumed = train(tmp_path / "resumed", "v2", params, MODELPLANE_CHECKPOINT_DIR=flag)
    assert resumed.exit_code == 0, resumed.output
    assert "resumed from the checkpoint after epoch 3" in resumed.output and "epoch 1:" not in resumed.output
    whole = train(tmp_path / "whole", "v2", params, MODELPLANE_CHECKPOINT_DIR=flag)
    for name in ("weights.json", "metrics.json"):
        assert (resumed.artifacts / name).read_bytes() == (whole.artifacts / name).read_bytes()
    assert [p.name for p in checkpoints.iterdir()] == ["checkpoint.json"]  # no partial file left


def test_trainer_fails_clearly_on_missing_inputs(tmp_path: Path) -> None:
    nothing = run(TRAINER, tmp_path / "empty")
    assert nothing.exit_code == 2 and "train.csv is missing" in nothing.output
    orphan = train(tmp_path / "orphan", "v1", {}, MODELPLANE_PARENT_VERSION="m-1")
    assert orphan.exit_code == 2 and "nothing to warm-start" in orphan.output
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "model.safetensors").write_bytes(b"\0")
    foreign = train(tmp_path / "other", "v1", {}, model=tmp_path / "foreign")
    assert foreign.exit_code == 2 and "no weights.json" in foreign.output
    bad = train(tmp_path / "bad", "v1", {"epochs": "many"})
    assert bad.exit_code == 2 and "param epochs must be a number" in bad.output
    assert not (tmp_path / "bad" / "artifacts").exists()


def load(content: Path, source: str, **params: str) -> Run:
    result = run(LOADER, content, {"source": source, **params})
    assert result.exit_code == 0, result.output
    return result


def files(run: Run) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(run.artifacts.iterdir())}


def test_loader_copies_a_feed_version_deterministically(tmp_path: Path) -> None:
    first, again = load(tmp_path / "a", str(DATA / "v2")), load(tmp_path / "b", (DATA / "v2").as_uri())
    assert files(first) == files(again) == {"eval.csv": (DATA / "eval.csv").read_bytes(),
                                            "train.csv": (DATA / "v2" / "train.csv").read_bytes()}
    assert "train.csv: 3901 bytes, 240 rows" in first.output


def test_loader_takes_a_single_csv_and_an_explicit_eval(tmp_path: Path) -> None:
    single = load(tmp_path / "a", str(DATA / "v1" / "train.csv"), eval=str(DATA / "eval.csv"))
    assert files(single) == {"eval.csv": (DATA / "eval.csv").read_bytes(),
                             "train.csv": (DATA / "v1" / "train.csv").read_bytes()}


@pytest.fixture
def http_feed() -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DATA))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_loader_downloads_over_http(tmp_path: Path, http_feed: str) -> None:
    loaded = load(tmp_path / "a", f"{http_feed}/v3/train.csv", eval=f"{http_feed}/eval.csv")
    assert files(loaded) == {"eval.csv": (DATA / "eval.csv").read_bytes(),
                             "train.csv": (DATA / "v3" / "train.csv").read_bytes()}
    missing = run(LOADER, tmp_path / "b", {"source": f"{http_feed}/v9/train.csv"})
    assert missing.exit_code == 2 and "404" in missing.output


def test_loader_fails_clearly(tmp_path: Path) -> None:
    no_source = run(LOADER, tmp_path / "a", {})
    assert no_source.exit_code == 2 and "param `source` is required" in no_source.output
    absent = run(LOADER, tmp_path / "b", {"source": str(tmp_path / "nowhere")})
    assert absent.exit_code == 2 and "does not exist" in absent.output
    (tmp_path / "feed").mkdir()
    (tmp_path / "feed" / "train.csv").write_text("a,b\n1,2\n")
    unlabelled = run(LOADER, tmp_path / "c", {"source": str(tmp_path / "feed")})
    assert unlabelled.exit_code == 2 and "no 'label' column" in unlabelled.output


def test_readme_walkthrough_runs(tmp_path: Path) -> None:
    """The README's shell block, as written, from the repository root."""
    text = (LOOP / "README.md").read_text()
    script = text.split("```sh\n", 1)[1].split("```", 1)[0]
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=LOOP.parents[1], capture_output=True,
                          text=True, check=False, env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                                       "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert "warm start from model version 1" in done.stdout and '"accuracy": 0.823333' in done.stdout
    assert '{"predictions": [{"churn": ' in done.stdout
