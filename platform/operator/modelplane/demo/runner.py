"""Play the kubelet for one Job: run its container as a local process over files in a GCS bucket.

The retraining loop (examples/loop) then runs on a laptop or in a test with no cluster: the operator's Job
(builders/job.py, pod shape from builders/workload.py) is read as the kubelet and the GCS FUSE CSI driver would
read it, and `programs` says which local argv stands in for each image's entrypoint.

How faithful it is:

- Volumes. Each GCS FUSE CSI volume (`gcsfuse.csi.storage.gke.io`, `only-dir=<prefix>` in its mountOptions) is
  materialized by downloading every object under the prefix into `<workdir>/content/<mount path under /content>`,
  with directories implied by object names (`implicit-dirs`); `subPath` mounts of ConfigMap volumes become the
  one file (`/content/params.json`, `/content/data-diff.json`, ...), whole ConfigMap volumes a directory of its
  keys (`items` honoured); emptyDir is an empty directory. Any other volume, a mount outside /content, nested
  mounts, or a ConfigMap not in `config_maps` is a `JobSpecError` (the kubelet would wait for a missing ConfigMap;
  here that is the caller's mistake).
- Read-only mounts (bucket mounts with `readOnly`, and every ConfigMap file, as the kubelet mounts them) are made
  read-only on disk (mode 0444/0555, which binds unless the runner is root), and compared before and after the run:
  anything created, changed or removed there fails the run, as EROFS would have failed the write in the pod.
- Read-write bucket mounts are uploaded back once the process has exited: each file created or changed to
  `<prefix><relative path>`, and each object whose downloaded file was removed deleted. GCS FUSE uploads a file
  when it is closed, so in a pod a closed file is visible in the bucket mid-run; here nothing is until the process
  ends. Neither shows a partial write. The outputs of a failed run are uploaded too (GCS FUSE keeps what was
  closed). Empty directories and symlinks are not uploaded.
- The process gets the container's `env` ($(VAR) references expanded as the kubelet does; `valueFrom` and
  `envFrom` are a `JobSpecError`: no Secrets here), PATH, HOME (`<workdir>/home`), LANG=C.UTF-8, and
  MODELPLANE_CONTENT=`<workdir>/content`, none of the caller's other variables. Its argv is
  `programs[image]` (the image name without tag or digest) plus the container's `args`; a container `command`
  (which replaces the image's entrypoint) is a `JobSpecError`. It runs in the caller's working directory.
- Outcome. stdout and stderr go to one log (`<workdir>/log`, as `kubectl logs` interleaves them); the result keeps
  its last 4 KiB. The exit code is the container's (128+N when killed by signal N; 128 when the program cannot be
  started; 137 when `activeDeadlineSeconds` passes, which kills it). One attempt: `backoffLimit` retries are not
  played (a deterministic failure fails every retry alike).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from google.cloud import storage

from modelplane.builders.workload import CONTENT, FUSE_DRIVER

LOG_LIMIT = 4096  # bytes of output kept in JobResult.log_tail
START_FAILED = 128  # a container that cannot start (the runtime's StartError)
DEADLINE_EXIT = 137  # SIGKILL, as when activeDeadlineSeconds passes
_ENV_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True)
class JobResult:
    succeeded: bool
    exit_code: int
    log_tail: str


class JobSpecError(ValueError):
    """The Job asks for something the local runner cannot play (it would not be a faithful run)."""


@dataclass(frozen=True)
class _Mount:
    path: str  # in the container
    local: Path
    read_only: bool
    prefix: str | None  # the bucket prefix of a GCS FUSE mount, or None


def image_name(image: str) -> str:
    """`registry/loader:1@sha256:...` -> `registry/loader`."""
    image = image.split("@", 1)[0]
    slash, colon = image.rfind("/"), image.rfind(":")
    return image[:colon] if colon > slash else image


def run_job(job: dict[str, Any], bucket: storage.Bucket, config_maps: Mapping[str, Mapping[str, str]],
            programs: Mapping[str, Sequence[str]], workdir: Path) -> JobResult:
    """Run the Job's one container as `programs[image]` over its volumes, materialized under `workdir`.

    `config_maps` holds the data of every ConfigMap the pod mounts, by name. `<workdir>/content` is replaced by
    this run's volumes. Raises JobSpecError for a Job it cannot run faithfully (see the module docstring).
    """
    pod = job["spec"]["template"]["spec"]
    containers = pod.get("containers") or []
    if len(containers) != 1 or pod.get("initContainers"):
        raise JobSpecError(f"the local runner runs pods of exactly one container and no init containers, "
                           f"not {len(containers)} and {len(pod.get('initContainers') or [])}")
    container = containers[0]
    if container.get("command"):
        raise JobSpecError("the container sets `command`, which replaces the image's entrypoint: the local runner "
                           "can only run programs[image] in its place")
    image = image_name(container["image"])
    if image not in programs:
        raise JobSpecError(f"no local program for image {image} (programs has: {', '.join(sorted(programs))})")

    workdir = workdir.resolve()
    content = workdir / "content"
    if content.exists():
        _make_writable(content)
        shutil.rmtree(content)
    content.mkdir(parents=True)
    mounts = _mount(pod, container, bucket, config_maps, content)
    env = _environment(container, workdir, content)
    argv = [*programs[image], *(_expand(arg, env) for arg in container.get("args") or [])]

    before = {m.path: _tree(m.local) for m in mounts}
    for m in mounts:
        if m.read_only:
            _make_read_only(m.local)
    log_path = workdir / "log"
    notes: list[str] = []
    deadline = job["spec"].get("activeDeadlineSeconds")
    try:
        with log_path.open("wb") as log:
            try:
                code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                      timeout=deadline, check=False).returncode
                code = code if code >= 0 else 128 - code
            except subprocess.TimeoutExpired:
                code = DEADLINE_EXIT
                notes.append(f"the Job's activeDeadlineSeconds ({deadline}) passed: killed (DeadlineExceeded)")
            except OSError as error:
                code = START_FAILED
                notes.append(f"cannot start {argv}: {error}")
    finally:
        for m in mounts:
            if m.read_only:
                _make_writable(m.local)

    for m in mounts:
        after = _tree(m.local)
        if m.read_only:
            touched = sorted(name for name in before[m.path].keys() | after.keys()
                             if before[m.path].get(name) != after.get(name))
            if touched:
                notes.append(f"wrote to read-only mount {m.path} ({', '.join(touched[:10])}): in the pod this is "
                             "EROFS (read-only file system); the run fails")
        elif m.prefix is not None:
            _upload(bucket, m.prefix, m.local, before[m.path], after)
    with log_path.open("ab") as log:
        for note in notes:
            log.write(f"\nrunner: {note}\n".encode())
    return JobResult(succeeded=code == 0 and not notes, exit_code=code, log_tail=_tail(log_path))


def _mount(pod: dict[str, Any], container: dict[str, Any], bucket: storage.Bucket,
           config_maps: Mapping[str, Mapping[str, str]], content: Path) -> list[_Mount]:
    volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
    mounts: list[_Mount] = []
    for spec in container.get("volumeMounts") or []:
        path = PurePosixPath(spec["mountPath"])
        if not path.is_relative_to(CONTENT) or path == PurePosixPath(CONTENT) or ".." in path.parts:
            raise JobSpecError(f"mount {path} is not under {CONTENT}/: the local runner maps only {CONTENT}")
        for other in mounts:
            if path.is_relative_to(other.path) or PurePosixPath(other.path).is_relative_to(path):
                raise JobSpecError(f"mounts {other.path} and {path} overlap: the local runner does not nest mounts")
        local = content / path.relative_to(CONTENT)
        volume = volumes.get(spec["name"])
        if volume is None:
            raise JobSpecError(f"mount {path} names volume {spec['name']!r}, which the pod does not have")
        sub_path = spec.get("subPath", "")
        if "csi" in volume:
            mounts.append(_fuse(volume, spec, sub_path, bucket, str(path), local))
        elif "configMap" in volume:
            _config_map(volume["configMap"], sub_path, config_maps, local)
            mounts.append(_Mount(str(path), local, read_only=True, prefix=None))
        elif "emptyDir" in volume:
            local.mkdir(parents=True)
            mounts.append(_Mount(str(path), local, read_only=bool(spec.get("readOnly")), prefix=None))
        else:
            raise JobSpecError(f"volume {volume['name']!r}: the local runner plays GCS FUSE CSI, configMap and "
                               f"emptyDir volumes, not {sorted(set(volume) - {'name'})}")
    return mounts


def _fuse(volume: dict[str, Any], spec: dict[str, Any], sub_path: str, bucket: storage.Bucket, path: str,
          local: Path) -> _Mount:
    csi = volume["csi"]
    if csi.get("driver") != FUSE_DRIVER:
        raise JobSpecError(f"volume {volume['name']!r} uses CSI driver {csi.get('driver')!r}, not {FUSE_DRIVER}")
    attributes = csi.get("volumeAttributes") or {}
    if attributes.get("bucketName") != bucket.name:
        raise JobSpecError(f"volume {volume['name']!r} mounts bucket {attributes.get('bucketName')!r}, "
                           f"not the runner's {bucket.name!r}")
    options: dict[str, str] = {}
    for option in str(attributes.get("mountOptions", "")).split(","):
        key, _, value = option.partition("=")
        options[key.strip()] = value.strip()
    prefix = "/".join(part for part in (options.get("only-dir", "").strip("/"), sub_path.strip("/")) if part)
    prefix = f"{prefix}/" if prefix else ""
    local.mkdir(parents=True)
    for blob in bucket.client.list_blobs(bucket, prefix=prefix):
        relative = PurePosixPath(blob.name.removeprefix(prefix))
        if blob.name.endswith("/") or not relative.parts or ".." in relative.parts:
            continue  # a directory placeholder (implicit-dirs shows the directory anyway), or not a file name
        target = local.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(target))
    return _Mount(path, local, read_only=bool(csi.get("readOnly") or spec.get("readOnly")), prefix=prefix)


def _config_map(source: dict[str, Any], sub_path: str, config_maps: Mapping[str, Mapping[str, str]],
                local: Path) -> None:
    name = source["name"]
    if name not in config_maps and not source.get("optional"):
        raise JobSpecError(f"ConfigMap {name!r} is mounted but not given (the kubelet would wait for it)")
    data = config_maps.get(name, {})
    items = source.get("items")
    files = {item["path"]: data[item["key"]] for item in items if item["key"] in data} if items else dict(data)
    if sub_path:
        if sub_path not in files:
            raise JobSpecError(f"ConfigMap {name!r} has no key {sub_path!r} for the subPath mount at {local}")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(files[sub_path])
        return
    local.mkdir(parents=True)
    for file, text in files.items():
        (local / file).parent.mkdir(parents=True, exist_ok=True)
        (local / file).write_text(text)


def _expand(value: str, env: Mapping[str, str]) -> str:
    """The kubelet's $(VAR) expansion: defined variables are replaced, `$$` is `$`, anything else stays."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        return "$" if name is None else env.get(name, match.group(0))
    return _ENV_REF.sub(one, value)


def _environment(container: dict[str, Any], workdir: Path, content: Path) -> dict[str, str]:
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "LANG": "C.UTF-8"}
    if container.get("envFrom"):
        raise JobSpecError("the container uses envFrom: the local runner has no ConfigMaps or Secrets for it")
    for var in container.get("env") or []:
        if "valueFrom" in var:
            raise JobSpecError(f"env {var['name']} comes from {sorted(var['valueFrom'])}: the local runner has no "
                               "Secrets or pod fields; give the value literally to run it locally")
        env[var["name"]] = _expand(str(var.get("value", "")), env)
    env["MODELPLANE_CONTENT"] = str(content)
    return env


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative POSIX name, path) of everything under root, not following symlinks; directories end in `/`."""
    if root.is_file() or root.is_symlink():
        yield "", root
        return
    for directory, dirs, files in os.walk(root):
        base = Path(directory)
        for name in sorted(dirs):
            yield (base / name).relative_to(root).as_posix() + "/", base / name
        for name in sorted(files):
            yield (base / name).relative_to(root).as_posix(), base / name


def _tree(root: Path) -> dict[str, str]:
    """What is under root: a file's SHA-256, a symlink's target, `dir` for a directory."""
    tree: dict[str, str] = {}
    if not root.exists() and not root.is_symlink():
        return tree
    for name, path in _walk(root):
        if path.is_symlink():
            tree[name] = f"-> {os.readlink(path)}"
        elif name.endswith("/"):
            tree[name] = "dir"
        else:
            digest = hashlib.sha256()
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
            tree[name] = digest.hexdigest()
    return tree


def _upload(bucket: storage.Bucket, prefix: str, root: Path, before: dict[str, str], after: dict[str, str]) -> None:
    for name, digest in sorted(after.items()):
        path = root.joinpath(*PurePosixPath(name).parts)
        if before.get(name) != digest and not name.endswith("/") and not path.is_symlink():
            bucket.blob(prefix + name).upload_from_filename(str(path))
    for name, digest in sorted(before.items()):
        if name not in after and not name.endswith("/") and not digest.startswith("-> "):
            bucket.blob(prefix + name).delete()


def _make_read_only(root: Path) -> None:
    for _, path in reversed(list(_walk(root))):  # files before their directories
        if not path.is_symlink():
            mode = stat.S_IMODE(path.stat().st_mode)
            path.chmod(mode & ~0o222)
    if not root.is_symlink():
        root.chmod(stat.S_IMODE(root.stat().st_mode) & ~0o222)


def _make_writable(root: Path) -> None:
    if root.is_dir() and not root.is_symlink():
        root.chmod(stat.S_IMODE(root.stat().st_mode) | 0o700)
    for _, path in _walk(root):
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) | (0o700 if path.is_dir() else 0o600))


def _tail(path: Path) -> str:
    with path.open("rb") as log:
        log.seek(max(0, path.stat().st_size - LOG_LIMIT))
        return log.read().decode("utf-8", "replace")
