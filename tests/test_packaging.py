"""Packaging: the wheel built from this checkout holds every file of its packages and one console command per
job; installed apart from the checkout (not editable), each command answers ``--help`` and the smallest real
runs work from a folder outside it; the ``scripts/`` shims call the same commands; ``recurrent_q`` and
``tmaze_gym`` ship a ``py.typed`` marker (PEP 561); the README names every dependency.

The install is isolated without a network: ``pip install --no-deps --no-index --target SITE`` puts the
packages and the commands (``SITE/bin``) in a folder of their own, and the subprocesses find the dependencies
(torch, ...) in the interpreter's environment. That environment may hold this project too (CI's
``pip install -e .``), so a ``sitecustomize`` put first on ``PYTHONPATH`` lets the checkout's top-level names
(``experiments``, ``recurrent_q``, ``supervised``, ``tmaze_gym``, ``scripts``, ``benchmarks``, ``tests``)
import from SITE only: a package or a module missing from the wheel fails as it would for a user.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "mm-train-tmaze": "experiments.cli.train_tmaze",
    "mm-evaluate-tmaze": "experiments.cli.evaluate_tmaze",
    "mm-train-supervised": "experiments.cli.train_supervised",
    "mm-evaluate-supervised": "experiments.cli.evaluate_supervised",
    "mm-reproduce": "experiments.cli.reproduce",
    "mm-plot-runs": "experiments.cli.plot_runs",
    "mm-stats": "experiments.cli.stats",
    "mm-select": "experiments.cli.select_settings",
}
PACKAGES = sorted(path.parent.name for path in ROOT.glob("*/__init__.py"))
# every top-level name the checkout could lend to an import: its packages and its folders of Python files
CHECKOUT_NAMES = sorted(
    {path.parent.name for path in ROOT.glob("*/*.py")} | {p.stem for p in ROOT.glob("*.py")}
)
# what a fresh clone does not hold (a stale build/ would put packages in the wheel that pyproject.toml lacks)
NOT_SOURCES = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "runs", "results"
)
GUARD = '''"""Written by tests/test_packaging.py: the checkout's top-level names import from SITE only."""
import sys
from importlib.machinery import PathFinder

SITE = {site!r}
NAMES = {names!r}


class FromTheWheelOnly:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] not in NAMES:
            return None
        spec = PathFinder.find_spec(name, [SITE] if path is None else path)
        if spec is None:
            raise ModuleNotFoundError(f"No module named {{name!r}} in the installed wheel", name=name)
        return spec


sys.meta_path.insert(0, FromTheWheelOnly)
'''


@dataclass
class Installed:
    wheel: Path
    site: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(arg) for arg in args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _check(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"{done.args}: exit status {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The wheel of a copy of the checkout, installed with pip into a folder of its own."""
    tmp = tmp_path_factory.mktemp("package")
    source = Path(shutil.copytree(ROOT, tmp / "source", ignore=NOT_SOURCES))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp / "dist", source]
    _check(subprocess.run(build, capture_output=True, text=True, timeout=300))
    (wheel,) = (tmp / "dist").glob("*.whl")
    site = tmp / "site"
    install = [*pip, "install", "--no-deps", "--no-index", "--target", site, wheel]
    _check(subprocess.run(install, capture_output=True, text=True, timeout=300))
    guard = tmp / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD.format(site=str(site), names=CHECKOUT_NAMES))
    inherited = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(guard), str(site), *inherited]),
        "MPLBACKEND": "Agg",
    }
    cwd = tmp / "work"
    cwd.mkdir()
    return Installed(wheel, site, env, cwd)


def test_the_wheel_holds_every_file_of_the_packages_and_the_commands(installed):
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = (name for name in names if name.endswith(".dist-info/entry_points.txt"))
        declared = configparser.ConfigParser()
        declared.read_string(wheel.read(entry_points).decode())
    files = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert {"experiments/cli/train_tmaze.py", "recurrent_q/py.typed", "tmaze_gym/py.typed"} <= files
    assert not files - names, f"missing from the wheel: {sorted(files - names)}"
    assert dict(declared["console_scripts"]) == {name: f"{module}:main" for name, module in COMMANDS.items()}


def test_the_commands_import_the_installed_packages(installed):
    code = (
        f"import json, sys, {', '.join(COMMANDS.values())}\n"
        "ours = {n: m.__file__ for n, m in sys.modules.items() if n.partition('.')[0] in sys.argv[1:]}\n"
        "print(json.dumps(ours))"
    )
    files = json.loads(_check(installed.run(sys.executable, "-c", code, *CHECKOUT_NAMES)).stdout)
    assert set(COMMANDS.values()) | {"recurrent_q.drqn", "supervised.train", "tmaze_gym"} <= set(files)
    outside = {name: file for name, file in files.items() if not Path(file).is_relative_to(installed.site)}
    assert not outside, f"imported from outside the install: {outside}"
    hidden = installed.run(sys.executable, "-c", "import scripts")  # the checkout's other folders are not
    assert hidden.returncode == 1 and "No module named 'scripts' in the installed wheel" in hidden.stderr


def test_every_command_answers_help(installed):
    """All at once: each imports torch, and the machine may be small."""
    started = {
        name: subprocess.Popen(
            [installed.site / "bin" / name, "--help"],
            cwd=installed.cwd,
            env=installed.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in COMMANDS
    }
    failed = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=300)
        if process.returncode != 0 or not re.search(rf"usage: \S*{name} ", out):
            failed[name] = f"exit status {process.returncode}\n{out[-1000:]}\n{err[-3000:]}"
    assert not failed, "\n\n".join(f"{name}: {why}" for name, why in failed.items())


def test_the_smallest_tmaze_run_and_its_evaluation(installed):
    """``mm-train-tmaze`` on a corridor of length 3 (4 episodes after the buffer fill, seed 0), then its
    model evaluated by ``python -m experiments.cli.evaluate_tmaze``: the two agree on the final policy."""
    flags = ["--length", "3", "--episodes", "4", "--buffer-size", "128", "--warmup-steps", "2"]
    flags += ["--vaa-interval", "0", "--seed", "0", "--logdir", "run", "--no-progress-bar"]
    out = _check(installed.run(installed.site / "bin" / "mm-train-tmaze", *flags)).stdout
    line, longer = out.splitlines()[-2:]
    assert (
        line.startswith("TMaze-v0 L=3 gru warmup seed=0: optimal policy") and "saved to run/model.zip" in line
    )
    run = installed.cwd / "run"
    result = json.loads((run / "result.json").read_text())
    assert result["episodes"] == 4 and any(run.glob("events.out.tfevents*"))
    verdict = "optimal" if result["optimal_at_generalisation_length"] else "not optimal"
    assert longer.startswith("On a corridor of length 3000 (1000 × L; ")
    assert longer.endswith(f"final model {verdict}")
    evaluated = installed.run(
        sys.executable, "-m", "experiments.cli.evaluate_tmaze", "run/model.zip", "--lengths", "3"
    )
    head, row = _check(evaluated).stdout.splitlines()
    assert head.split()[:2] == ["L", "return"]
    assert row.split()[0] == "3" and row.split()[5] == str(result["optimal_at_end"])


def test_a_smoke_grid_of_the_installed_reproduce(installed):
    flags = ["copy", "--preset", "smoke", "--workers", "1", "--no-progress", "--out", "results"]
    done = installed.run(installed.site / "bin" / "mm-reproduce", *flags)
    root = installed.cwd / "results" / "copy" / "smoke"
    assert "copy (smoke): 2 runs" in _check(done).stdout
    assert (root / "results.md").is_file() and (root / "results.png").stat().st_size > 10_000
    assert len(list(root.glob("*/metrics.json"))) == 2


def test_the_installed_statistics_of_the_committed_results(installed):
    """``mm-stats`` on the checkout's records, with few bootstrap replications: the page and its plots."""
    flags = ["--results", ROOT / "results", "--out", "stats", "--reps", "10"]
    done = _check(installed.run(installed.site / "bin" / "mm-stats", *flags))
    page = installed.cwd / "stats" / "README.md"
    assert done.stdout.strip() == "stats/README.md" and "## T-Maze, Fig. 13" in page.read_text()
    assert len(list(page.parent.glob("*.png"))) == 6  # one per section, memory suites included


@pytest.mark.parametrize("command", COMMANDS)
def test_each_script_is_a_shim_of_its_command(command):
    module = COMMANDS[command]
    shim = ROOT / "scripts" / f"{module.rpartition('.')[2]}.py"
    assert runpy.run_path(str(shim), run_name="shim")["main"] is __import__(module, fromlist=["main"]).main
    assert len(shim.read_text().splitlines()) <= 8


@pytest.mark.parametrize("package", ["recurrent_q", "tmaze_gym"])
def test_typed_packages_ship_py_typed(package):
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    assert (ROOT / package / "py.typed").is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert package in config["packages"]
    assert "py.typed" in config["package-data"][package]


def test_the_readme_names_every_dependency():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    readme = (ROOT / "README.md").read_text()
    required = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    names = [re.match(r"[A-Za-z0-9_.-]+", requirement).group() for requirement in required]
    assert len(names) >= 11
    assert not [name for name in names if f"`{name}`" not in readme], "dependencies the README does not name"
    for extra in project["optional-dependencies"]:
        assert f".[{extra}" in readme or f",{extra}]" in readme, f"the README does not name the extra {extra}"
