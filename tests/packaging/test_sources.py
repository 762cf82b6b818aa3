"""What the distributions are built from: one version, one licence, one build hook, and
per-distribution READMEs whose examples run."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.version import Version
from pytest_httpserver import HTTPServer

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("contracts", "store", "sender", "receiver")


def test_one_version_for_the_four_parts() -> None:
    text = (ROOT / "VERSION").read_text(encoding="utf-8")
    assert re.fullmatch(r"\S+\n", text), "VERSION holds the version and a newline, nothing else"
    version = Version(text.strip())
    assert str(version) == text.strip(), "VERSION holds the normalized form of the version"
    for part in PARTS:
        pyproject = (ROOT / part / "pyproject.toml").read_text(encoding="utf-8")
        assert '\nversion = "' not in pyproject, f"{part} writes its own version"
        # The workspace installs what it builds: uv rebuilds a part when VERSION changes.
        assert importlib.metadata.version(f"omnihook-{part}") == str(version)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "\n## [Unreleased]\n" in changelog
    if not (version.is_prerelease or version.is_devrelease):
        assert f"\n## [{version}] - " in changelog, f"CHANGELOG.md has no section for {version}"


def test_each_distribution_ships_the_one_licence() -> None:
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n\nCopyright (c) 2026 the omnihook authors\n")
    for part in PARTS:
        assert (ROOT / part / "LICENSE").read_text(encoding="utf-8") == licence, part


def test_the_build_hook_is_the_same_in_every_part_that_has_one() -> None:
    hook = (ROOT / "store" / "hatch_build.py").read_text(encoding="utf-8")
    for part in ("sender", "receiver"):
        assert (ROOT / part / "hatch_build.py").read_text(encoding="utf-8") == hook, part
    assert not (ROOT / "contracts" / "hatch_build.py").exists()  # it requires no other part


def python_blocks(part: str) -> list[str]:
    text = (ROOT / part / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("part", PARTS)
def test_the_readme_example_runs(
    part: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer
) -> None:
    blocks = python_blocks(part)
    assert len(blocks) == 1, f"{part}/README.md: one example"
    code = blocks[0]
    if part == "sender":  # sent to a local endpoint instead of the example's CRM
        assert "https://crm.example/hook" in code
        code = code.replace("https://crm.example/hook", httpserver.url_for("/hook"))
        httpserver.expect_oneshot_request("/hook", method="POST").respond_with_data("")
    monkeypatch.chdir(tmp_path)  # the store's example creates ./omnihook.db
    exec(compile(code, f"{part}/README.md", "exec"), {"__name__": "__main__"})
    if part == "sender":
        httpserver.check_assertions()
