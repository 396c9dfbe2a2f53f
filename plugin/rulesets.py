"""Rule sets kept as files (rules as code): load a file or folder, resolve ``extends``, pick."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rules import RuleSet, RuleSetError, preset
from rules.loading import resolve_preset
from rules.presets import is_preset
from rules.ruleset import Problem, build, parse_document

RULE_FILE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class RuleCatalog:
    """The rule sets in force, and how to pick the one for an item."""

    rulesets: tuple[RuleSet, ...] = ()
    default: RuleSet = field(default_factory=preset)

    def select(self, tracker: str, project: str) -> RuleSet:
        """Return the most specific rule set for a tracker and project."""
        best: tuple[int, RuleSet] | None = None
        for ruleset in self.rulesets:
            if not ruleset.applies_to(tracker, project):
                continue
            specificity = (2 if ruleset.projects else 0) + (1 if ruleset.trackers else 0)
            if best is None or specificity > best[0]:
                best = (specificity, ruleset)
        return best[1] if best else self.default

    def by_name(self, name: str) -> RuleSet | None:
        """Return a rule set by name."""
        return next((r for r in self.rulesets if r.name == name), None)


def load_rules_path(path: Path) -> RuleCatalog:
    """Load one rule-set file, or every rule-set file in a folder; raise :class:`RuleSetError`."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in RULE_FILE_SUFFIXES)
    elif path.exists():
        files = [path]
    else:
        raise RuleSetError([Problem(str(path), "(file)", "no such file or folder")])
    documents: dict[Path, dict[str, Any]] = {}
    problems: list[Problem] = []
    for file in files:
        try:
            documents[file.resolve()] = _read(file)
        except RuleSetError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleSetError(problems)
    loader = _Loader(documents)
    rulesets = []
    for file in documents:
        try:
            rulesets.append(loader.ruleset(file))
        except RuleSetError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RuleSetError(problems)
    defaults = [r for r in rulesets if not r.trackers and not r.projects]
    return RuleCatalog(
        rulesets=tuple(rulesets), default=defaults[0] if len(defaults) == 1 else preset()
    )


def _read(file: Path) -> dict[str, Any]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError([Problem(str(file), "(file)", f"cannot be read: {exc}")]) from exc
    return parse_document(text, source=str(file))


class _Loader:
    """Resolve ``extends`` against presets, sibling files (by path) and rule sets (by name)."""

    def __init__(self, documents: Mapping[Path, dict[str, Any]]) -> None:
        self.documents = dict(documents)
        self.by_name = {
            str(doc.get("name") or path.stem): path for path, doc in self.documents.items()
        }

    def ruleset(self, path: Path) -> RuleSet:
        def resolve(reference: str) -> tuple[Mapping[str, Any], str]:
            return self._resolve(reference, relative_to=path.parent)

        return build(self.documents[path], source=str(path), resolve=resolve)

    def _resolve(self, reference: str, *, relative_to: Path) -> tuple[Mapping[str, Any], str]:
        if is_preset(reference):
            return resolve_preset(reference)
        if reference in self.by_name:
            target = self.by_name[reference]
            return self.documents[target], str(target)
        candidate = (relative_to / reference).resolve()
        if candidate not in self.documents:
            if not candidate.is_file():
                raise RuleSetError(
                    [Problem(str(relative_to), "extends", f"cannot find rule set {reference!r}")]
                )
            self.documents[candidate] = _read(candidate)
        return self.documents[candidate], str(candidate)


def describe_problems(problems: Iterable[Problem]) -> str:
    """Render problems one per line, as the CLI and logs show them."""
    return "\n".join(str(problem) for problem in problems)
