"""Run the named mutations: ``python -m tests.mutation [--only NAME] [--list] ...``.

The committed tree (``git archive HEAD``; ``--worktree``: the working tree's tracked and
untracked files instead) is copied to a temporary directory. The tests named by the
mutations run there once unmutated (the baseline: a mutant only counts against green
tests), then each mutation is applied to the copy alone, its tests run with
``-x -q -p no:randomly`` under a time limit, and the file is put back. A table says which
mutants were caught and which survived.

Outcomes: ``caught`` (a test failed), ``survived`` (every test passed), ``timeout``,
``broken`` (the mutant did not import or collect: fix the catalogue), ``stale`` (its
original text is no longer in the file exactly once: the code moved on). The exit status
is 0 whatever the mutants do; it is non-zero only when the run itself could not be made
(no git tree, a failing baseline, an unknown name).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.mutation.catalogue import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parents[2]
PYTEST_OPTIONS = ("-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider")
DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Outcome:
    mutation: Mutation
    result: str  # caught, survived, timeout, broken, stale
    seconds: float
    detail: str = ""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run this mutation (repeatable; a prefix selects a group)",
    )
    parser.add_argument("--list", action="store_true", help="list the mutations and stop")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only say which mutations still apply to the copied tree",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per test run (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--worktree",
        action="store_true",
        help="copy the working tree (uncommitted files too) instead of HEAD",
    )
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the unmutated run of the selected tests"
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        metavar="FILE",
        help="also write the result table to FILE as Markdown",
    )
    args = parser.parse_args(argv)

    chosen = select(MUTATIONS, args.only)
    if chosen is None:
        return 2
    if args.list:
        for mutation in chosen:
            print(f"{mutation.name:<40} {mutation.path}")
        return 0
    with tempfile.TemporaryDirectory(prefix="brokerage-hub-mutants-") as scratch:
        copy = Path(scratch) / "repo"
        try:
            copy_tree(copy, worktree=args.worktree)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"could not copy the tree: {exc}", file=sys.stderr)
            return 2
        if args.check:
            stale = [
                m
                for m in chosen
                if applicable(copy, m) is None or test_files(copy, m.tests) is None
            ]
            for mutation in chosen:
                print(f"{'stale' if mutation in stale else 'ok':<6} {mutation.name}")
            return 0
        if not args.no_baseline:
            tests = sorted({t for m in chosen for t in test_files(copy, m.tests) or ()})
            print(f"baseline: {len(tests)} test file(s), unmutated ...", flush=True)
            result, seconds, tail = run_tests(copy, tests, args.timeout * len(tests))
            if result != "survived":
                print(
                    f"the unmutated tests did not pass ({result}, {seconds:.0f} s):\n{tail}",
                    file=sys.stderr,
                )
                return 2
            print(f"baseline: green in {seconds:.0f} s", flush=True)
        outcomes = []
        for number, mutation in enumerate(chosen, 1):
            outcome = run_mutant(copy, mutation, args.timeout)
            outcomes.append(outcome)
            print(
                f"[{number}/{len(chosen)}] {outcome.result:<8} {outcome.seconds:5.0f} s  "
                f"{mutation.name}",
                flush=True,
            )
    table = render(outcomes)
    print()
    print(table)
    if args.markdown is not None:
        args.markdown.write_text(table + "\n", encoding="utf-8")
    return 0


def select(mutations: Sequence[Mutation], names: Iterable[str]) -> list[Mutation] | None:
    names = list(names)
    if not names:
        return list(mutations)
    chosen = [m for m in mutations if any(m.name.startswith(n) for n in names)]
    unknown = [n for n in names if not any(m.name.startswith(n) for m in mutations)]
    if unknown:
        print(f"no mutation named {', '.join(unknown)} (see --list)", file=sys.stderr)
        return None
    return chosen


def copy_tree(target: Path, *, worktree: bool) -> None:
    """The repository's files in ``target``: HEAD's tree, or the working tree's files."""
    target.mkdir(parents=True)
    if not worktree:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", "HEAD"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def applicable(copy: Path, mutation: Mutation) -> tuple[Path, str, str] | None:
    """Where the mutation applies, the file's text and its mutant; None when no original
    is in its file exactly once. A guard whose module moved is looked for by its text in
    every other module of the tree (not the tests): found in exactly one, it applies there.
    """
    named = copy / mutation.path
    modules = [p for p in copy.rglob("*.py") if "tests" not in p.relative_to(copy).parts]
    for before, after in mutation.alternatives:
        if named.is_file():
            text = named.read_text(encoding="utf-8")
            if text.count(before) == 1:
                return named, text, text.replace(before, after)
            if before in text:
                continue  # more than once in its own module: ambiguous
        holders = [(p, t) for p in modules if before in (t := p.read_text(encoding="utf-8"))]
        if len(holders) == 1 and holders[0][1].count(before) == 1:
            path, text = holders[0]
            return path, text, text.replace(before, after)
    return None


def test_files(copy: Path, tests: Sequence[str]) -> list[str] | None:
    """The tests' paths in the copy; a test file that moved is found by its name."""
    found = []
    for test in tests:
        name, _, node = test.partition("::")
        if (copy / name).is_file():
            found.append(test)
            continue
        moved = sorted((copy / "tests").rglob(Path(name).name))
        if len(moved) != 1:
            return None
        found.append(str(moved[0].relative_to(copy)) + (f"::{node}" if node else ""))
    return found


def run_mutant(copy: Path, mutation: Mutation, timeout: float) -> Outcome:
    texts = applicable(copy, mutation)
    tests = test_files(copy, mutation.tests)
    if texts is None or tests is None:
        why = "its original text is not in one module once" if texts is None else "tests gone"
        return Outcome(mutation, "stale", 0.0, why)
    path, original, mutant = texts
    path.write_text(mutant, encoding="utf-8")
    try:
        result, seconds, tail = run_tests(copy, tests, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
    where = str(path.relative_to(copy))
    detail = tail if result == "broken" else ("" if where == mutation.path else f"in {where}")
    return Outcome(mutation, result, seconds, detail)


def run_tests(copy: Path, tests: Sequence[str], timeout: float) -> tuple[str, float, str]:
    """Run ``tests`` in ``copy``: the outcome, the seconds taken, the output's last lines."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # a stale .pyc could hide a mutant
    env.pop("PYTEST_ADDOPTS", None)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", *PYTEST_OPTIONS, *tests],
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: a timeout ends all it started
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return "timeout", time.monotonic() - started, ""
    seconds = time.monotonic() - started
    tail = "\n".join(output.decode(errors="replace").splitlines()[-15:])
    # pytest: 0 all passed, 1 some failed; 2 interrupted (a collection error), 3-5 usage.
    result = {0: "survived", 1: "caught"}.get(process.returncode, "broken")
    return result, seconds, tail


def where(outcome: Outcome) -> str:
    """The module the mutant was made in (the catalogue's, unless the guard moved)."""
    moved = outcome.detail.startswith("in ")
    return outcome.detail.removeprefix("in ") if moved else outcome.mutation.path


def render(outcomes: Sequence[Outcome]) -> str:
    counts = {
        r: sum(o.result == r for o in outcomes)
        for r in ("caught", "survived", "timeout", "broken", "stale")
    }
    lines = [
        "| mutation | file | outcome | seconds | what it breaks |",
        "|---|---|---|---|---|",
        *(
            f"| {o.mutation.name} | `{where(o)}` | **{o.result}** | {o.seconds:.0f} | "
            f"{o.mutation.breaks} |"
            for o in outcomes
        ),
        "",
        ", ".join(f"{n} {r}" for r, n in counts.items() if n) + f" of {len(outcomes)}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
