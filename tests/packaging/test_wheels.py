"""The four distributions as users get them: sdists built from the workspace, each wheel built
from its sdist alone, installed into fresh virtual environments outside the workspace, and run.

The dependencies come from PyPI through uv (from its cache when ``uv sync`` filled it), held to
the versions of ``uv.lock``; a registry that cannot be reached fails these tests, saying so.
"""

from __future__ import annotations

import email.message
import email.parser
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from omnihook.contracts import TOKEN_HEADER, samples

from ..conftest import free_port
from ..processes import OmnihookProcess

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()
PARTS = ("contracts", "store", "sender", "receiver")
# What each part requires of the others: this release's series (0.1.x: >=0.1.x,<0.2.0).
REQUIRES = {
    "contracts": [],
    "store": ["omnihook-contracts"],
    "sender": ["omnihook-contracts", "omnihook-store"],
    "receiver": ["omnihook-contracts", "omnihook-store"],
}
URLS = {
    "Homepage": "https://github.com/omnihook/omnihook",
    "Documentation": "https://omnihook.github.io/omnihook/",
    "Repository": "https://github.com/omnihook/omnihook",
    "Changelog": "https://github.com/omnihook/omnihook/blob/main/CHANGELOG.md",
    "Issues": "https://github.com/omnihook/omnihook/issues",
}
UV = os.environ.get("UV") or shutil.which("uv") or "uv"
REGISTRY = " (uv takes hatchling and the dependencies from PyPI or its cache: is PyPI reachable?)"

# What the commands run with: nothing of this workspace's environment (its virtual environment,
# its bin directory, an OMNIHOOK_TOKEN) may leak into the fresh installs.
ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
    and not name.startswith("OMNIHOOK_")
}
ENV["PATH"] = os.pathsep.join(
    entry for entry in ENV.get("PATH", "").split(os.pathsep) if not entry.startswith(str(ROOT))
)


def run(*args: str | Path, cwd: Path, hint: str = "") -> subprocess.CompletedProcess[str]:
    command = [str(arg) for arg in args]
    result = subprocess.run(
        command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=180, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} exited {result.returncode}{hint}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}",
            pytrace=False,
        )
    return result


def one(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    assert len(found) == 1, f"{pattern} in {directory}: {found}"
    return found[0]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four sdists, built in the workspace, and the four wheels, each built from its sdist
    alone: unpacked where nothing but what it holds is in reach (no VERSION file, no workspace),
    as pip and build do."""
    if shutil.which(UV) is None:
        pytest.fail(f"uv not found ({UV}): these tests build and install with it", pytrace=False)
    out = tmp_path_factory.mktemp("dist")
    run(UV, "build", "--all-packages", "--sdist", "--out-dir", out, cwd=ROOT, hint=REGISTRY)
    unpacked = tmp_path_factory.mktemp("unpacked")
    for archive in sorted(out.glob("*.tar.gz")):
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
    builds = [
        (tree, subprocess.Popen(
            [UV, "build", "--wheel", "--out-dir", str(out), str(tree)],
            cwd=tree, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
        for tree in sorted(unpacked.iterdir())
    ]  # fmt: skip
    for tree, build in builds:
        output, _ = build.communicate(timeout=180)
        assert build.returncode == 0, f"building a wheel from {tree.name} failed:\n{output}"
    return out


def wheel(dist: Path, part: str) -> Path:
    return one(dist, f"omnihook_{part}-*.whl")


def sdist(dist: Path, part: str) -> Path:
    return one(dist, f"omnihook_{part}-*.tar.gz")


def wheel_metadata(path: Path) -> email.message.Message:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode("utf-8"))


@pytest.fixture(scope="module")
def constraints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The third-party versions of uv.lock, so that an install takes what the workspace tested
    (and what uv's cache holds), not whatever PyPI published since."""
    path = tmp_path_factory.mktemp("constraints") / "constraints.txt"
    run(UV, "export", "--frozen", "--no-dev", "--no-emit-workspace", "--no-hashes",
        "--no-header", "--no-annotate", "--output-file", path, cwd=ROOT)  # fmt: skip
    return path


def make_venv(directory: Path, wheels: list[Path], constraints: Path) -> Path:
    """A fresh virtual environment with the same Python, outside the workspace, holding
    ``wheels`` and their dependencies."""
    run(UV, "venv", "--quiet", "--python", sys.executable, directory / "venv", cwd=directory)
    python = directory / "venv" / "bin" / "python"
    run(UV, "pip", "install", "--python", python, "--constraint", constraints, *wheels,
        cwd=directory, hint=REGISTRY)  # fmt: skip
    return directory / "venv"


@pytest.fixture(scope="module")
def full_venv(dist: Path, constraints: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = [wheel(dist, part) for part in PARTS]
    return make_venv(tmp_path_factory.mktemp("full"), wheels, constraints)


@pytest.fixture(scope="module")
def receiver_venv(dist: Path, constraints: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = [wheel(dist, part) for part in ("contracts", "store", "receiver")]
    return make_venv(tmp_path_factory.mktemp("receiver-only"), wheels, constraints)


@pytest.mark.parametrize("part", PARTS)
def test_each_wheel_carries_its_metadata_licence_and_marker(dist: Path, part: str) -> None:
    path = wheel(dist, part)
    metadata = wheel_metadata(path)
    assert metadata["Name"] == f"omnihook-{part}"
    assert metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload() == (ROOT / part / "README.md").read_text(encoding="utf-8")
    assert dict(url.split(", ", 1) for url in metadata.get_all("Project-URL", [])) == URLS
    classifiers = metadata.get_all("Classifier", [])
    assert {"Typing :: Typed", "Framework :: AsyncIO"} <= set(classifiers)
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert metadata.get_all("Keywords")
    version = Version(VERSION)
    series = SpecifierSet(f">={version},<{version.major}.{version.minor + 1}.0")
    requires = [Requirement(line) for line in metadata.get_all("Requires-Dist", [])]
    assert sorted((r.name, r.specifier) for r in requires if r.name.startswith("omnihook-")) == [
        (other, series) for other in REQUIRES[part]
    ]
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        dist_info = f"omnihook_{part}-{VERSION}.dist-info"
        assert archive.read(f"{dist_info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    assert f"omnihook/{part}/py.typed" in names
    assert f"omnihook/{part}/__init__.py" in names
    # A namespace package: every file is this part's own or its metadata, no omnihook/__init__.py.
    assert all(n.startswith((f"omnihook/{part}/", f"{dist_info}/")) for n in names), names


@pytest.mark.parametrize("part", PARTS)
def test_each_sdist_holds_what_its_wheel_is_built_from(dist: Path, part: str) -> None:
    with tarfile.open(sdist(dist, part)) as archive:
        top = f"omnihook_{part}-{VERSION}"
        names = {name.removeprefix(f"{top}/") for name in archive.getnames()}
        pkg_info = archive.extractfile(f"{top}/PKG-INFO")
        assert pkg_info is not None
        metadata = email.parser.Parser().parsestr(pkg_info.read().decode("utf-8"))
    assert {"PKG-INFO", "pyproject.toml", "README.md", "LICENSE"} <= names
    assert f"src/omnihook/{part}/py.typed" in names
    assert "src/omnihook/__init__.py" not in names
    # The version and the dependencies computed from VERSION, for the wheel to take from here.
    assert metadata["Version"] == VERSION
    assert metadata.get_all("Dynamic") is None
    assert ("hatch_build.py" in names) == bool(REQUIRES[part])


def test_a_wheel_built_in_the_workspace_equals_the_one_from_its_sdist(
    dist: Path, tmp_path: Path
) -> None:
    run(UV, "build", "--package", "omnihook-receiver", "--wheel", "--out-dir", tmp_path,
        cwd=ROOT, hint=REGISTRY)  # fmt: skip
    direct = wheel(tmp_path, "receiver")
    assert str(wheel_metadata(direct)) == str(wheel_metadata(wheel(dist, "receiver")))
    with zipfile.ZipFile(direct) as a, zipfile.ZipFile(wheel(dist, "receiver")) as b:
        assert sorted(a.namelist()) == sorted(b.namelist())


def test_the_installed_parts_run_outside_the_workspace(full_venv: Path, tmp_path: Path) -> None:
    python = full_venv / "bin" / "python"
    where = run(python, "-c", "import omnihook, omnihook.contracts, omnihook.store, "
                "omnihook.sender, omnihook.receiver as r; print(r.__file__); "
                "print(*omnihook.__path__, sep='\\n')", cwd=tmp_path).stdout.split()  # fmt: skip
    assert where, "nothing printed"
    for path in where:
        assert Path(path).resolve().is_relative_to(full_venv.resolve()), where
    omnihook = full_venv / "bin" / "omnihook"
    helped = run(omnihook, "--help", cwd=tmp_path).stdout
    for command in ("schema", "validate", "send", "send-test", "simulate", "serve", "worker"):
        assert f"  {command} " in helped
    lines = run(omnihook, "--version", cwd=tmp_path).stdout.splitlines()
    assert lines[0] == f"omnihook {VERSION}"
    assert [line.split() for line in lines[1:5]] == [[f"omnihook-{p}", VERSION] for p in PARTS]
    assert lines[5].split()[:2] == ["Python", platform.python_version()]


@contextmanager
def serving(venv: Path, cwd: Path) -> Iterator[str]:
    """``omnihook serve`` of ``venv`` in ``cwd`` on a free loopback port, until it answers
    /healthz; then stopped with SIGTERM, which it must obey at once, shutting down cleanly.
    Yields the base URL; its output is in ``cwd / "serve-PORT-….log"`` (:func:`serve_log`)."""
    port = free_port()
    server = OmnihookProcess(["serve", "--port", str(port)], cwd, ENV, port=port,
                             executable=str(venv / "bin" / "omnihook")).start()  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()  # SIGTERM, then SIGKILL after 15 s
    log = server.output()
    # uvicorn shuts down gracefully, then ends by the signal it caught (as systemd expects).
    assert server.process is not None
    assert server.process.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log, log


def serve_log(cwd: Path) -> str:
    [log] = cwd.glob("serve-*.log")
    return log.read_text()


def test_serve_from_the_wheels_answers_send_test(full_venv: Path, tmp_path: Path) -> None:
    with serving(full_venv, tmp_path) as base:
        sent = run(full_venv / "bin" / "omnihook", "send-test", f"{base}/rocketchat", cwd=tmp_path)
    assert sent.stdout.strip() == "It works"
    assert "token: from ./omnihook.token" in sent.stderr  # the token serve generated
    assert "Send Test sample received" in serve_log(tmp_path)


def test_a_receiver_only_install(receiver_venv: Path, tmp_path: Path) -> None:
    python = receiver_venv / "bin" / "python"
    missing = subprocess.run(
        [str(python), "-c", "import omnihook.sender"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "No module named 'omnihook.sender'" in missing.stderr
    omnihook = receiver_venv / "bin" / "omnihook"
    helped = run(omnihook, "--help", cwd=tmp_path).stdout
    assert "  serve " in helped
    assert "  send-test " not in helped
    lines = run(omnihook, "--version", cwd=tmp_path).stdout.splitlines()
    assert [line.split(maxsplit=1) for line in lines[1:5]] == [
        ["omnihook-contracts", VERSION],
        ["omnihook-store", VERSION],
        ["omnihook-sender", "not installed"],
        ["omnihook-receiver", VERSION],
    ]
    with serving(receiver_venv, tmp_path) as base:
        token = (tmp_path / "omnihook.token").read_text(encoding="utf-8").strip()
        answer = httpx.post(
            f"{base}/rocketchat", json=samples.send_test_sample(), headers={TOKEN_HEADER: token}
        )
    assert (answer.status_code, answer.json()) == (200, {"ok": True})
    assert "Send Test sample received" in serve_log(tmp_path)
