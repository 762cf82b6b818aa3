"""The dependencies of an omnihook part, derived from the one version of the four (a hatchling
metadata hook; the same file in every part that requires another, checked by tests/packaging).

hatchling reads the version from the workspace's VERSION file ([tool.hatch.version]) before this
hook runs. The hook then writes `project.dependencies`: the omnihook parts named in `parts` of
[tool.hatch.metadata.hooks.custom], each within this release's series (the parts are released
together: 0.1.x requires `>=0.1.x,<0.2.0`), then the `dependencies` of that table as written.

An sdist carries no VERSION file and needs none: hatchling writes the version and dependencies
it computed into the sdist's PKG-INFO, and a wheel built from the sdist takes them from there
(for the fields in `project.dynamic`); this hook then has nothing left to do.
"""

from __future__ import annotations

from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface
from packaging.version import Version


def series(version: str) -> str:
    """The versions of another part that go with ``version``: from it to the next minor."""
    parsed = Version(version)
    return f">={parsed.public},<{parsed.major}.{parsed.minor + 1}.0"


class PartDependencies(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        version = metadata.get("version")
        if not isinstance(version, str):
            raise ValueError("[tool.hatch.version] must give the version before hatch_build.py")
        parts = self.config.get("parts", [])
        others = self.config.get("dependencies", [])
        metadata["dependencies"] = [f"{part}{series(version)}" for part in parts] + list(others)
