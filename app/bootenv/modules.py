"""Prune a kernel's modules to the storage, network and filesystem drivers imaging needs.

The rules name path prefixes; every module a kept one depends on (modules.dep) is kept too,
so a kept driver always loads.
"""

from __future__ import annotations

from pathlib import Path

from app.bootenv.inputs import ModuleRules


def parse_modules_dep(text: str) -> dict[str, list[str]]:
    """Parse modules.dep: module path -> the module paths it depends on."""
    deps: dict[str, list[str]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        module, _, rest = line.partition(":")
        deps[module.strip()] = rest.split()
    return deps


def modules_to_keep(deps: dict[str, list[str]], rules: ModuleRules) -> set[str]:
    """Return the modules the rules keep, closed over their dependencies."""
    keep = {m for m in deps if m.startswith("kernel/") and rules.wanted(m[len("kernel/"):])}
    todo = list(keep)
    while todo:
        for dep in deps.get(todo.pop(), []):
            if dep not in keep:
                keep.add(dep)
                todo.append(dep)
    return keep


def prune_modules(module_dir: Path, rules: ModuleRules) -> tuple[int, int]:
    """Delete the modules the rules do not keep; return (kept, total)."""
    deps = parse_modules_dep((module_dir / "modules.dep").read_text())
    keep = modules_to_keep(deps, rules)
    for module in deps:
        if module not in keep:
            (module_dir / module).unlink(missing_ok=True)
    for folder in sorted(module_dir.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return len(keep), len(deps)
