"""kubectl's rules for the kubeconfig files, the context and the namespace (client-go clientcmd), as the plugins
apply them."""

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.cli.errors import CliError, Exit
from modelplane.cli.kubeconfig import Target, connect, kubeconfig_paths, resolve

HOME = Path("/home/ann")


def config(current: str | None = None, **contexts: str | None) -> dict[str, Any]:
    """A parsed kubeconfig: `name=namespace` (or None) per context."""
    return {"current-context": current,
            "contexts": [{"name": name, "context": {"cluster": name, **({"namespace": ns} if ns else {})}}
                         for name, ns in contexts.items()]}


def test_the_files_are_kubeconfig_alone_else_the_kubeconfig_list_else_home() -> None:
    listed = os.pathsep.join(["/a", "", "/b", "/a"])
    assert kubeconfig_paths("/x", {"KUBECONFIG": listed}, HOME) == [Path("/x")]
    assert kubeconfig_paths(None, {"KUBECONFIG": listed}, HOME) == [Path("/a"), Path("/b")]  # in order, once each
    assert kubeconfig_paths(None, {"KUBECONFIG": ""}, HOME) == [HOME / ".kube" / "config"]
    assert kubeconfig_paths(None, {}, HOME) == [HOME / ".kube" / "config"]


def test_the_first_file_that_sets_them_decides_the_current_context_and_each_context() -> None:
    files = [config(None, dev="first"), config("dev", dev="second", prod="p"), config("prod")]
    assert resolve(files, None, None) == Target("dev", "first")


def test_the_context_flag_overrides_and_an_unknown_one_is_an_error() -> None:
    files = [config("dev", dev=None, prod="p")]
    assert resolve(files, "prod", None) == Target("prod", "p")
    with pytest.raises(CliError) as raised:
        resolve(files, "prdo", None, where="~/.kube/config")
    assert raised.value.code == Exit.NO_CLUSTER
    assert str(raised.value) == "--context 'prdo' is not a context of ~/.kube/config (known contexts: dev, prod)"


def test_a_current_context_that_is_missing_or_names_nothing_is_an_error() -> None:
    with pytest.raises(CliError, match="current-context 'gone' is not a context of the kubeconfig"):
        resolve([config("gone", dev=None)], None, None)
    with pytest.raises(CliError, match=r"no current context in the kubeconfig: give --context NAME .*dev"):
        resolve([config(None, dev=None)], None, None)


@pytest.mark.parametrize(("flag", "context_namespace", "namespace", "defaulted"), [
    ("ml", "team", "ml", False),  # -n first
    (None, "team", "team", False),  # then the context's
    (None, None, "default", True),  # then `default`
    ("", None, "default", True),  # an empty -n is no -n
])
def test_the_namespace_is_the_flag_then_the_contexts_then_default(
        flag: str | None, context_namespace: str | None, namespace: str, defaulted: bool) -> None:
    target = resolve([config("c", c=context_namespace)], None, flag)
    assert (target.namespace, target.namespace_defaulted) == (namespace, defaulted)


def test_kubectl_gets_the_same_target() -> None:
    assert Target("prod", "ml", kubeconfig="/k").kubectl_flags() == [
        "--kubeconfig", "/k", "--context", "prod", "--namespace", "ml"]
    assert Target("prod", "ml").kubectl_flags() == ["--context", "prod", "--namespace", "ml"]


def kubeconfig_file(path: Path, current: str, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": current, "cluster": {"server": server}}], "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": current, "context": {"cluster": current, "user": "u"}}]}))
    return path


def test_connect_skips_missing_and_empty_files_and_talks_to_the_resolved_context(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").write_text("")
    real = kubeconfig_file(tmp_path / "real", "here", "https://here.example:6443")
    other = kubeconfig_file(tmp_path / "other", "there", "https://there.example:6443")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(str(p) for p in (tmp_path / "missing", tmp_path / "empty",
                                                                         real, other)))
    api, target = connect(None, None, None)
    assert target == Target("here", "default", namespace_defaulted=True)
    assert api.configuration.host == "https://here.example:6443"
    api, target = connect(None, "there", "ml")
    assert (target, api.configuration.host) == (Target("there", "ml"), "https://there.example:6443")


def test_connect_refuses_a_missing_kubeconfig_flag_and_a_broken_file(tmp_path: Path) -> None:
    with pytest.raises(CliError, match=r"--kubeconfig .*/nope: no such file") as raised:
        connect(str(tmp_path / "nope"), None, None)
    assert raised.value.code == Exit.NO_CLUSTER
    (tmp_path / "broken").write_text("contexts: [\n")
    with pytest.raises(CliError, match=r"kubeconfig .*/broken: ") as raised:
        connect(str(tmp_path / "broken"), None, None)
    assert raised.value.code == Exit.NO_CLUSTER
