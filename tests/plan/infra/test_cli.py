"""`modelplane plan`: the offline plan a reviewer reads, and a clear refusal of a bad stack file."""
import json
from pathlib import Path

import pytest
import yaml

from infra.cli import main


def test_dev_plan_lists_what_a_reviewer_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert "gcp:container/cluster:Cluster cluster" in out and "workloadPool=modelplane-dev.svc.id.goog" in out
    assert "pools-l4  machine=g2-standard-8 gpu=1 x nvidia-l4 nodes=0..2 spot=True" in out
    assert "pools-a100  machine=a2-highgpu-1g gpu=1 x nvidia-tesla-a100 nodes=0..1 spot=True" in out
    assert "gcp:storage/bucket:Bucket artifacts  name=modelplane-dev-modelplane-dev-artifacts" in out
    assert "publicAccess=enforced versioning=True" in out
    assert "gcp:artifactregistry/repository:Repository registry  id=modelplane-dev format=DOCKER" in out
    assert "Repository registry-ml  id=modelplane-dev-ml format=DOCKER" in out
    for account in ("nodes", "operator", "b-ml"):
        assert f"id=modelplane-dev-{account}" in out
    assert "kubeconfig: [secret]" in out and "apiVersion" not in out


def test_prod_plan_marks_protected_resources(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-s", "prod"]) == 0
    out = capsys.readouterr().out
    assert "gcp:storage/bucket:Bucket artifacts [protected]" in out
    assert "gcp:container/cluster:Cluster cluster [protected]" in out


def test_bad_stack_prints_every_problem_and_plans_nothing(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": {
        "modelplane:region": "mars-1",
        "modelplane:gpuPools": [{"name": "l4", "gpuType": "nvidia-l4", "machineType": "a2-highgpu-1g"}],
    }}))
    assert main(["plan", "--stack", "broken", "--stacks-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "modelplane:project: required" in captured.err
    assert "modelplane:region: 'mars-1' is not a GCP region" in captured.err
    assert "modelplane:gpuPools[0].machineType" in captured.err
    assert "Nothing was planned" in captured.err


def test_the_prod_plan_shows_what_a_security_and_cost_review_checks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "prod"]) == 0
    out = capsys.readouterr().out
    for shown in ("authorizedNetworks=[203.0.113.0/24, 198.51.100.0/28]", "dnsEndpointExternal=True",
                  '"cost-center": "ml-42"', "disk=500GB/pd-ssd", "taints=[nvidia.com/gpu=present:NO_SCHEDULE",
                  "lifecycle=[delete uploads/ after 7d, delete noncurrent versions after 90d]",
                  "from=[0.0.0.0/0] deny all", "(if objects under research/ only)",
                  "secretsEncryption=ENCRYPTED", "default=ALWAYS_DENY/ENFORCED_BLOCK_AND_AUDIT_LOG"):
        assert shown in out, shown
    outputs = out.split("Outputs:\n", 1)[1]
    assert "{'" not in outputs and "True" not in outputs  # JSON, not Python's repr
    assert '"gpuType": "nvidia-l4"' in outputs


def test_the_json_plan_is_complete_stable_and_keeps_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--stack", "prod", "--format", "json"]) == 0
    first = capsys.readouterr().out
    assert main(["plan", "--stack", "prod", "--format", "json"]) == 0
    assert capsys.readouterr().out == first
    plan = json.loads(first)
    types = [(r["type"], r["name"]) for r in plan["resources"]]
    assert types == sorted(types) and ("gcp:container/cluster:Cluster", "cluster") in types
    assert plan["outputs"]["kubeconfig"] == "[secret]"
    (provider,) = [r for r in plan["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    assert provider["inputs"]["kubeconfig"] == "[secret]"
