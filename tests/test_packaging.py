"""What a package index shows: the license, the project's URLs, and README images that
render there (absolute URLs into the repository, to files that exist)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
META = metadata.metadata("lazysession")


def project_urls() -> dict[str, str]:
    return dict(entry.split(", ", 1) for entry in META.get_all("Project-URL") or [])


def test_the_license_file_is_the_license_the_metadata_names() -> None:
    assert META["License-Expression"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")


def test_the_project_names_its_home_docs_and_issues() -> None:
    assert {"Homepage", "Documentation", "Repository", "Issues"} <= set(project_urls())


def test_readme_images_are_absolute_urls_to_files_in_the_repository() -> None:
    repository = project_urls()["Repository"].removeprefix("https://github.com/")
    raw = f"https://raw.githubusercontent.com/{repository}/main/"
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", (ROOT / "README.md").read_text())
    assert images
    for url in images:
        assert url.startswith(raw), url
        assert (ROOT / url.removeprefix(raw)).is_file(), url


def test_there_is_an_extra_for_each_framework() -> None:
    assert {"starlette", "fastapi", "flask"} <= set(META.get_all("Provides-Extra") or [])
