"""Tutorials: every `tutorials/*.py` has an in-sync `.ipynb` twin and runs top to bottom.

Tutorials are collected with a glob, so a new notebook cannot go untested. Execution uses the
fast sizes (`ROAST_TL_FAST=1`, same code path) and the `python3` kernel of this interpreter.
"""

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / "tutorials").glob("*.py"))
FAST_MODE_BUDGET_S = 180  # each tutorial, fast mode, on this project's 2-core CPU machine


def _cell_sources(notebook) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_tutorials_exist():
    assert TUTORIALS, f"no tutorials found under {ROOT / 'tutorials'}"


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_ipynb_twin_in_sync(script):
    jupytext = pytest.importorskip("jupytext")
    twin = script.with_suffix(".ipynb")
    assert twin.is_file(), (
        f"{twin.name} is missing; create it with `jupytext --to ipynb {script.name}`"
    )
    py_cells = _cell_sources(jupytext.read(script))
    nb = jupytext.read(twin)
    assert py_cells == _cell_sources(nb), (
        f"{script.name} and {twin.name} differ; run `jupytext --sync tutorials/*.py` "
        "(or `jupytext --to ipynb` after editing the .py)"
    )
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("outputs")]
    assert not with_outputs, (
        f"{twin.name} is committed with outputs in cells {with_outputs}; clear them"
    )


@pytest.mark.tutorial
@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs(script, tmp_path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    if "sae" in script.stem:  # the SAELens tutorial runs where roast_tl[sae] is installed
        pytest.importorskip("sae_lens", reason="SAELens is not installed (roast_tl[sae])")

    monkeypatch.setenv("ROAST_TL_FAST", "1")
    monkeypatch.setenv("ROAST_TL_TUTORIAL_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # One torch thread unless told otherwise: on a shared 2-core machine, two OpenMP threads per
    # process spin against the other processes and run several times slower (measured 5x).
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    notebook = jupytext.read(script)
    client = nbclient.NotebookClient(
        notebook,
        timeout=1200,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    elapsed = time.perf_counter() - start
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors, errors
    assert list(tmp_path.glob("*.png")), f"{script.name} saved no figure to ROAST_TL_TUTORIAL_OUT"
    if elapsed > FAST_MODE_BUDGET_S and os.environ.get("ROAST_TL_STRICT_TIMING") == "1":
        pytest.fail(
            f"{script.name} took {elapsed:.0f} s in fast mode (budget {FAST_MODE_BUDGET_S} s)"
        )
