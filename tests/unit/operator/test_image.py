"""The operator image stays lean: its dependency closure has no Pulumi, no test tools, no CLI packages."""
from importlib.metadata import requires


def test_runtime_dependencies_exclude_pulumi_and_test_tools() -> None:
    runtime = [r for r in requires("modelplane") or [] if "extra ==" not in r]
    names = {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in runtime}
    assert names == {"aiohttp", "cronsim", "google-cloud-storage", "pathspec", "prometheus-client",
                     "pydantic", "pyyaml"}
