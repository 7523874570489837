"""The README's "Project layout" matches the tree: every module it names exists, and
every module of syncd/ is named (or lies in a folder the layout names as a whole)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRY = re.compile(r"^(?P<indent> *)(?P<name>[A-Za-z_][\w.]*/?)(?: +|$)")


def _layout_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Project layout", 1)[1]
    return section.split("```", 2)[1].splitlines()


def listed() -> tuple[set[str], set[str]]:
    """(files named, folders named without their files listed)."""
    files: set[str] = set()
    folders: list[tuple[int, str]] = []  # the open folders: (indent, name)
    leaf_folders: set[str] = set()
    previous_folder: tuple[int, str] | None = None
    for line in _layout_block():
        match = ENTRY.match(line)
        if not match or line.strip().startswith("──"):
            continue
        indent, name = len(match["indent"]), match["name"]
        while folders and folders[-1][0] >= indent:
            folders.pop()
        if previous_folder is not None and indent <= previous_folder[0]:
            leaf_folders.add(previous_folder[1])  # the folder just named had no entries
        previous_folder = None
        path = "/".join([f for _, f in folders] + [name.rstrip("/")])
        if name.endswith("/"):
            folders.append((indent, name.rstrip("/")))
            previous_folder = (indent, path)
        else:
            files.add(path)
    if previous_folder is not None:
        leaf_folders.add(previous_folder[1])
    return files, leaf_folders


def modules() -> set[str]:
    found = set()
    for package in ("syncd", "mailchimp_emulator"):
        for path in (ROOT / package).rglob("*.py"):
            relative = path.relative_to(ROOT).as_posix()
            if path.name != "__init__.py" and "/migrations/versions/" not in relative:
                found.add(relative)
    return found


def test_every_module_the_layout_names_exists() -> None:
    files, folders = listed()
    missing = sorted(f for f in files if not (ROOT / f).exists())
    missing += sorted(f + "/" for f in folders if not (ROOT / f).is_dir())
    assert not missing, f"README layout names what the tree does not have: {missing}"


def test_every_module_of_the_tree_is_in_the_layout() -> None:
    files, folders = listed()
    unlisted = sorted(m for m in modules() if m not in files
                      and not any(m.startswith(folder + "/") for folder in folders))
    assert not unlisted, f"README layout does not name: {unlisted}"
