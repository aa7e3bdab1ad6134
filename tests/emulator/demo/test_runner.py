"""The local Job runner over fake-gcs-server: Jobs shaped as the operator builds them, run as local processes."""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from google.cloud import storage

from modelplane.api.dataset import DatasetSpec
from modelplane.builders.job import run_children
from modelplane.builders.workload import ARTIFACTS_PATH, Mount
from modelplane.demo.runner import LOG_LIMIT, JobResult, JobSpecError, run_job
from tests.support.facts import DEV_CLUSTER, owner
from tests.support.loop_scripts import DATA, LOADER, TRAINER

REGISTRY = "us-central1-docker.pkg.dev/modelplane-dev/ml"
PROGRAMS = {f"{REGISTRY}/loop-loader": [sys.executable, str(LOADER)],
            f"{REGISTRY}/loop-trainer": [sys.executable, str(TRAINER)]}
DIGEST = "@sha256:" + "ab" * 32


def fuse(name: str, bucket: str, prefix: str, read_only: bool) -> dict[str, Any]:
    """A GCS FUSE CSI volume as builders/workload.py writes it."""
    options = ["implicit-dirs", f"only-dir={prefix.rstrip('/')}", "uid=1000", "gid=1000"]
    if read_only:
        options += ["file-cache:max-size-mb:5120", "file-cache:cache-file-for-range-read:true",
                    "file-cache:enable-parallel-downloads:true", "metadata-cache:ttl-secs:-1"]
    return {"name": name, "csi": {"driver": "gcsfuse.csi.storage.gke.io", "readOnly": read_only,
                                  "volumeAttributes": {"bucketName": bucket, "mountOptions": ",".join(options)}}}


def job(name: str, image: str, bucket: storage.Bucket, mounts: dict[str, tuple[str, bool]],
        env: dict[str, str] | None = None, files: dict[str, str] | None = None,
        args: list[str] | None = None, deadline: int = 3 * 24 * 3600) -> dict[str, Any]:
    """A Job with the operator's pod shape: `mounts` maps a path under /content to (prefix, read-only); the params
    ConfigMap `<name>-params` is at /content/params.json, and `files` maps more /content paths to keys of the
    ConfigMap `<name>-files`, each by subPath."""
    volume_names = {path: path.rsplit("/", 1)[1] for path in mounts}
    container: dict[str, Any] = {
        "name": "main", "image": image,
        "env": [{"name": key, "value": value} for key, value in (env or {}).items()],  # in order, as $(VAR) reads it
        "resources": {"requests": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "10Gi"},
                      "limits": {"memory": "1Gi", "ephemeral-storage": "10Gi"}},
        "volumeMounts": [{"name": volume_names[path], "mountPath": path, "readOnly": read_only}
                         for path, (_, read_only) in mounts.items()]
        + [{"name": "params", "mountPath": "/content/params.json", "subPath": "params.json", "readOnly": True}]
        + [{"name": "files", "mountPath": path, "subPath": key, "readOnly": True}
           for path, key in (files or {}).items()],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if args:
        container["args"] = args
    volumes = [fuse(volume_names[path], bucket.name, prefix, read_only) for path, (prefix, read_only) in mounts.items()]
    volumes.append({"name": "params", "configMap": {"name": f"{name}-params"}})
    if files:
        volumes.append({"name": "files", "configMap": {"name": f"{name}-files"}})
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "ml"},
            "spec": {"backoffLimit": 2, "activeDeadlineSeconds": deadline, "ttlSecondsAfterFinished": 604800,
                     "template": {"metadata": {"annotations": {"gke-gcsfuse/volumes": "true"}},
                                  "spec": {"serviceAccountName": "workload", "automountServiceAccountToken": False,
                                           "restartPolicy": "Never",
                                           "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
                                           "containers": [container], "volumes": volumes}}}}


def objects(bucket: storage.Bucket, prefix: str) -> dict[str, bytes]:
    return {blob.name.removeprefix(prefix): blob.download_as_bytes()
            for blob in bucket.client.list_blobs(bucket, prefix=prefix)}


def params_map(name: str, params: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {f"{name}-params": {"params.json": json.dumps(params)}}


def load(bucket: storage.Bucket, workdir: Path, generation: int, feed: str) -> str:
    prefix = f"ml/datasets/churn/gen-{generation}/"
    name = f"dataset-churn-{generation}"
    params = {"source": str(DATA / feed)}
    result = run_job(job(name, f"{REGISTRY}/loop-loader:0.1{DIGEST}", bucket, {ARTIFACTS_PATH: (prefix, False)},
                         env={"PARAM_SOURCE": params["source"], "MODELPLANE_DATASET_VERSION": str(generation)}),
                     bucket, params_map(name, params), PROGRAMS, workdir / name)
    assert result.succeeded, result.log_tail
    return prefix


def train(bucket: storage.Bucket, workdir: Path, generation: int, data: str, parent: int | None) -> JobResult:
    name = f"model-churn-{generation}"
    mounts = {ARTIFACTS_PATH: (f"ml/models/churn/gen-{generation}/", False), "/content/data": (data, True)}
    files, config_maps = {}, params_map(name, {"epochs": 5})
    if parent is not None:
        mounts["/content/model"] = (f"ml/models/churn/gen-{parent}/", True)
        files["/content/data-diff.json"] = "data-diff.json"
        diff = {"from": str(parent), "to": str(generation), "added": [], "changed": ["train.csv"], "removed": []}
        config_maps[f"{name}-files"] = {"data-diff.json": json.dumps(diff)}
    env = {"PARAM_EPOCHS": "5", "MODELPLANE_MODEL_VERSION": str(generation),
           "MODELPLANE_DATASET_VERSION": data.split("/")[-2], "MODELPLANE_PARENT_VERSION": str(parent or "")}
    return run_job(job(name, f"{REGISTRY}/loop-trainer:0.1", bucket, mounts, env=env, files=files), bucket,
                   config_maps, PROGRAMS, workdir / name)


def test_the_loop_end_to_end(bucket: storage.Bucket, tmp_path: Path) -> None:
    """Load v1, train cold; load v2, retrain warm (better: promote); load v3, retrain warm (worse: refuse)."""
    data1 = load(bucket, tmp_path, 1, "v1")
    assert objects(bucket, data1) == {"train.csv": (DATA / "v1" / "train.csv").read_bytes(),
                                      "eval.csv": (DATA / "eval.csv").read_bytes()}
    first = train(bucket, tmp_path, 1, data1, parent=None)
    assert first.succeeded and first.exit_code == 0, first.log_tail
    assert "cold start" in first.log_tail and "train.csv: 40 rows" in first.log_tail
    model1 = objects(bucket, "ml/models/churn/gen-1/")
    assert set(model1) == {"weights.json", "metrics.json"}
    accuracy = [json.loads(model1["metrics.json"])["accuracy"]]

    for generation, feed in ((2, "v2"), (3, "v3")):
        data = load(bucket, tmp_path, generation, feed)
        inputs = {prefix: objects(bucket, prefix) for prefix in (data, f"ml/models/churn/gen-{generation - 1}/")}
        result = train(bucket, tmp_path, generation, data, parent=generation - 1)
        assert result.succeeded, result.log_tail
        assert f"warm start from model version {generation - 1}" in result.log_tail
        assert "data diff" in result.log_tail and "0 added, 1 changed, 0 removed" in result.log_tail
        assert {prefix: objects(bucket, prefix) for prefix in inputs} == inputs  # inputs untouched
        made = objects(bucket, f"ml/models/churn/gen-{generation}/")
        assert json.loads(made["weights.json"])["parent"] == str(generation - 1)
        accuracy.append(json.loads(made["metrics.json"])["accuracy"])
    assert accuracy[1] > accuracy[0] + 0.1 and accuracy[2] < accuracy[1] - 0.1, accuracy


def test_a_job_the_operator_builds_runs(bucket: storage.Bucket, tmp_path: Path) -> None:
    """The builders' own output, not a copy of its shape: the runner reads what the operator writes."""
    spec = DatasetSpec.model_validate({"image": f"{REGISTRY}/loop-loader:0.1", "params": {"source": str(DATA / "v2")}})
    cluster = dataclasses.replace(DEV_CLUSTER, bucket=bucket.name)
    prefix = "ml/datasets/churn/v1/"
    config_map, built = run_children(owner("Dataset", "churn"), spec, f"{REGISTRY}/loop-loader:0.1{DIGEST}", cluster,
                                     [Mount("artifacts", prefix, ARTIFACTS_PATH, read_only=False)], "dataset-churn-1",
                                     {"data-diff.json": "{}"})
    result = run_job(built, bucket, {config_map["metadata"]["name"]: config_map["data"]}, PROGRAMS, tmp_path)
    assert result.succeeded, result.log_tail
    assert objects(bucket, prefix)["train.csv"] == (DATA / "v2" / "train.csv").read_bytes()


def program(code: str) -> dict[str, list[str]]:
    return {"local/test": [sys.executable, "-u", "-c", code]}  # unbuffered, as the images set PYTHONUNBUFFERED


def test_a_failing_program_fails_the_run_with_its_log_tail(bucket: storage.Bucket, tmp_path: Path) -> None:
    code = ("import os, sys; open(os.environ['MODELPLANE_CONTENT'] + '/artifacts/partial.txt', 'w').write('half')\n"
            "for i in range(2000): print(f'line {i}')\n"
            "print('trainer: eval.csv is missing', file=sys.stderr); sys.exit(3)")
    spec = job("fails", "local/test:1", bucket, {ARTIFACTS_PATH: ("ml/models/x/gen-1/", False)})
    result = run_job(spec, bucket, params_map("fails", {}), program(code), tmp_path)
    assert (result.succeeded, result.exit_code) == (False, 3)
    assert len(result.log_tail.encode()) <= LOG_LIMIT and "line 0\n" not in result.log_tail
    assert result.log_tail.endswith("line 1999\ntrainer: eval.csv is missing\n")
    # GCS FUSE uploads a file when it is closed: what a failed run wrote stays, as it would in the bucket.
    assert objects(bucket, "ml/models/x/gen-1/") == {"partial.txt": b"half"}


@pytest.mark.parametrize("target", ["data/extra.csv", "data/train.csv", "data/sub/", "params.json"])
def test_a_write_to_a_read_only_mount_fails_the_run(bucket: storage.Bucket, tmp_path: Path, target: str) -> None:
    bucket.blob("ml/datasets/d/gen-1/train.csv").upload_from_string(b"a,label\n1,0\n")
    code = (f"import os, pathlib; p = pathlib.Path(os.environ['MODELPLANE_CONTENT'], {target!r}); "
            + ("p.mkdir()" if target.endswith("/") else "p.write_text('x')"))
    mounts = {ARTIFACTS_PATH: ("ml/models/x/gen-1/", False), "/content/data": ("ml/datasets/d/gen-1/", True)}
    result = run_job(job("ro", "local/test:1", bucket, mounts), bucket, params_map("ro", {}), program(code), tmp_path)
    assert not result.succeeded
    # As root the write lands on disk and the runner's check fails the run; as anyone else the write itself fails.
    assert "runner: wrote to read-only mount /content/" in result.log_tail or "PermissionError" in result.log_tail
    assert objects(bucket, "ml/datasets/d/gen-1/") == {"train.csv": b"a,label\n1,0\n"}  # never uploaded


def test_only_created_changed_and_removed_files_reach_the_bucket(bucket: storage.Bucket, tmp_path: Path) -> None:
    prefix = "ml/notebooks/n/workspace/"
    for name in ("keep.txt", "change.txt", "remove.txt", "deep/keep.txt"):
        bucket.blob(prefix + name).upload_from_string(name.encode())
    generation = {blob.name: blob.generation for blob in bucket.client.list_blobs(bucket, prefix=prefix)}
    code = ("import os, pathlib; a = pathlib.Path(os.environ['MODELPLANE_CONTENT'], 'artifacts')\n"
            "assert (a / 'deep/keep.txt').read_text() == 'deep/keep.txt'\n"
            "(a / 'change.txt').write_text('changed'); (a / 'remove.txt').unlink()\n"
            "(a / 'new/dir').mkdir(parents=True); (a / 'new/dir/made.txt').write_text('made'); (a / 'empty').mkdir()")
    spec = job("rw", "local/test:1", bucket, {ARTIFACTS_PATH: (prefix, False)})
    result = run_job(spec, bucket, params_map("rw", {}), program(code), tmp_path)
    assert result.succeeded, result.log_tail
    assert objects(bucket, prefix) == {"keep.txt": b"keep.txt", "deep/keep.txt": b"deep/keep.txt",
                                       "change.txt": b"changed", "new/dir/made.txt": b"made"}
    after = {blob.name: blob.generation for blob in bucket.client.list_blobs(bucket, prefix=prefix)}
    assert after[prefix + "keep.txt"] == generation[prefix + "keep.txt"]  # not uploaded again
    assert after[prefix + "change.txt"] != generation[prefix + "change.txt"]


def test_the_process_sees_the_container_env_and_args_only(bucket: storage.Bucket, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKED_FROM_THE_CALLER", "1")
    code = ("import json, os, sys; root = os.environ['MODELPLANE_CONTENT']\n"
            "json.dump({'env': dict(os.environ), 'argv': sys.argv[1:], 'params': open(root + '/params.json').read(),"
            " 'cwd': os.getcwd()}, open(root + '/artifacts/seen.json', 'w'))")
    spec = job("env", "local/test@sha256:" + "0" * 64, bucket, {ARTIFACTS_PATH: ("ml/x/", False)},
               env={"PARAM_LEARNING_RATE": "0.1", "GREETING": "rate $(PARAM_LEARNING_RATE) $$(PARAM_LEARNING_RATE)"},
               args=["--rate=$(PARAM_LEARNING_RATE)", "$(UNDEFINED)"])
    result = run_job(spec, bucket, params_map("env", {"learningRate": 0.1}), program(code), tmp_path / "w")
    assert result.succeeded, result.log_tail
    seen = json.loads(objects(bucket, "ml/x/")["seen.json"])
    assert seen["argv"] == ["--rate=0.1", "$(UNDEFINED)"]
    assert seen["params"] == '{"learningRate": 0.1}'
    env = seen["env"]
    assert env["MODELPLANE_CONTENT"] == str((tmp_path / "w" / "content").resolve())
    assert env["GREETING"] == "rate 0.1 $(PARAM_LEARNING_RATE)"
    assert set(env) - {"LC_CTYPE"} == {"PATH", "HOME", "LANG", "MODELPLANE_CONTENT", "PARAM_LEARNING_RATE", "GREETING"}


def test_the_deadline_kills_the_run(bucket: storage.Bucket, tmp_path: Path) -> None:
    spec = job("slow", "local/test:1", bucket, {ARTIFACTS_PATH: ("ml/x/", False)}, deadline=1)
    result = run_job(spec, bucket, params_map("slow", {}), program("import time; print('started', flush=True); "
                                                                   "time.sleep(60)"), tmp_path)
    assert (result.succeeded, result.exit_code) == (False, 137)
    assert "started" in result.log_tail and "DeadlineExceeded" in result.log_tail


def test_a_program_that_cannot_start_fails_the_run(bucket: storage.Bucket, tmp_path: Path) -> None:
    spec = job("nostart", "local/test:1", bucket, {ARTIFACTS_PATH: ("ml/x/", False)})
    result = run_job(spec, bucket, params_map("nostart", {}), {"local/test": [str(tmp_path / "missing")]}, tmp_path)
    assert (result.succeeded, result.exit_code) == (False, 128) and "cannot start" in result.log_tail


def test_a_rerun_in_the_same_workdir_starts_from_fresh_volumes(bucket: storage.Bucket, tmp_path: Path) -> None:
    code = "import os; os.makedirs(os.environ['MODELPLANE_CONTENT'] + '/data/left', exist_ok=True)"
    mounts = {ARTIFACTS_PATH: ("ml/x/", False), "/content/data": ("ml/d/", True)}
    spec = job("again", "local/test:1", bucket, mounts)
    assert not run_job(spec, bucket, params_map("again", {}), program(code), tmp_path).succeeded
    assert run_job(spec, bucket, params_map("again", {}), program("pass"), tmp_path).succeeded


def test_jobs_it_cannot_play_faithfully_are_refused(bucket: storage.Bucket, tmp_path: Path) -> None:
    def refused(spec: dict[str, Any], config_maps: dict[str, dict[str, str]] | None = None) -> str:
        with pytest.raises(JobSpecError) as error:
            run_job(spec, bucket, params_map("j", {}) if config_maps is None else config_maps, program("pass"),
                    tmp_path)
        return str(error.value)

    def base() -> dict[str, Any]:
        return job("j", "local/test:1", bucket, {ARTIFACTS_PATH: ("ml/x/", False)})

    def container(spec: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = spec["spec"]["template"]["spec"]["containers"][0]
        return found

    assert "no local program for image other/image" in refused(job("j", "other/image:2", bucket, {}))
    assert "ConfigMap 'j-params' is mounted but not given" in refused(base(), {})
    elsewhere = base()
    elsewhere["spec"]["template"]["spec"]["volumes"][0]["csi"]["volumeAttributes"]["bucketName"] = "elsewhere"
    assert "mounts bucket 'elsewhere'" in refused(elsewhere)
    secret = base()
    container(secret)["env"].append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}})
    assert "env HF_TOKEN comes from ['secretKeyRef']" in refused(secret)
    command = base()
    container(command)["command"] = ["python", "other.py"]
    assert "replaces the image's entrypoint" in refused(command)
    outside = base()
    container(outside)["volumeMounts"][0]["mountPath"] = "/data"
    assert "not under /content/" in refused(outside)
