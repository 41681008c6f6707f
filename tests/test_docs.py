"""The documentation's code runs as written: every Python block of README.md and of the site's
pages (docs/), page by page in one namespace, in a subprocess; every C++ block compiled against
the headers and run; and every public name of the package has its API page.

A block that cannot run here says why in a comment on the line before it:
``<!-- not run: <reason> -->`` (for instance one that needs ``mpiexec``).
"""

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
PAGES = [page for page in PAGES if "auto_examples" not in page.parts]
BLOCK = re.compile(r"(?:<!-- not run: (?P<reason>[^>]*?) -->\n)?```(?P<language>\w+)\n(?P<code>.*?)\n```", re.S)


def blocks(page, language):
    """(code, reason not to run or None) of each fenced block of `language` on `page`."""
    return [(match["code"], match["reason"]) for match in BLOCK.finditer(page.read_text())
            if match["language"] == language]


def page_id(page):
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p, "python")], ids=page_id)
def test_python_blocks_run_as_written(page, tmp_path):
    runnable = [code for code, reason in blocks(page, "python") if reason is None]
    for code, reason in blocks(page, "python"):
        assert reason is None or reason.strip(), f"{page_id(page)}: a block is skipped without a reason"
    if not runnable:
        pytest.skip("every block says why it is not run")
    if "torch" in "\n".join(runnable):  # torch itself, convpool.torch, nn.to_torch
        pytest.importorskip("torch")
    script = tmp_path / "page.py"
    # In the order of the page, one namespace, from a folder of its own (blocks may write files).
    script.write_text("\n\n".join(runnable))
    environment = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="2")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300, env=environment)
    assert result.returncode == 0, f"{page_id(page)}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


CPP_PAGES = [p for p in PAGES if blocks(p, "cpp")]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("page", CPP_PAGES, ids=page_id)
def test_cpp_blocks_compile_and_run(page, tmp_path):
    for index, (code, reason) in enumerate(blocks(page, "cpp")):
        if reason is not None:
            assert reason.strip(), f"{page_id(page)}: a block is skipped without a reason"
            continue
        source, binary = tmp_path / f"block{index}.cpp", tmp_path / f"block{index}"
        source.write_text(code + "\n")
        compiled = subprocess.run(["g++", "-std=c++17", "-O1", "-fopenmp", f"-I{ROOT / 'cpp' / 'include'}",
                                   str(source), "-o", str(binary)], capture_output=True, text=True, timeout=300)
        assert compiled.returncode == 0, f"{page_id(page)} block {index}:\n{compiled.stderr[-4000:]}"
        ran = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, f"{page_id(page)} block {index}:\n{ran.stdout}\n{ran.stderr}"


def documented_names(module):
    """The names the API page of `module` lists in its autosummary tables."""
    pages = [page for page in (ROOT / "docs" / "api").glob("*.rst")
             if f".. currentmodule:: {module}\n" in page.read_text()]
    names = set()
    for page in pages:
        for table in re.findall(r"\.\. autosummary::\n(?:   :[^\n]*\n)*\n((?:   \S[^\n]*\n)+)", page.read_text()):
            names.update(line.strip() for line in table.splitlines())
    return names


@pytest.mark.parametrize("module", ["convpool", "convpool.nn", "convpool.optim", "convpool.models",
                                    "convpool.training", "convpool.inspection", "convpool.distributed",
                                    "convpool.datasets", "convpool.plots", "convpool.torch"])
def test_every_public_name_has_its_api_page(module):
    if module == "convpool.torch":
        pytest.importorskip("torch")
    public = set(importlib.import_module(module).__all__)
    assert documented_names(module) == public


def test_readme_fits_on_two_screens_and_keeps_its_two_commands():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert 'pip install ".[plot]" && python -m convpool demo' in text
    assert 'pip install ".[test,torch]" && python -m pytest' in text


def test_every_page_is_in_the_table_of_contents():
    # Sphinx warns about a page no toctree lists, and the build fails on warnings; this says which.
    index = (ROOT / "docs" / "index.md").read_text() + (ROOT / "docs" / "api" / "index.rst").read_text()
    for page in (ROOT / "docs").rglob("*.md"):
        name = page.relative_to(ROOT / "docs").with_suffix("").as_posix()
        if "auto_examples" in name or name == "index":
            continue
        assert name in index, name



def docstring_examples():
    """(name, doctest) of every public function and class of the package with an Example."""
    import doctest

    import numpy as np

    import convpool as cp

    finder, found = doctest.DocTestFinder(recurse=False), []
    modules = [cp, cp.nn, cp.optim, cp.models, cp.training, cp.inspection, cp.datasets, cp.distributed]
    try:
        import convpool.torch

        modules.append(convpool.torch)
    except ImportError:  # without torch its examples cannot run
        pass
    for module in modules:
        for name in module.__all__:
            for test in finder.find(getattr(module, name), f"{module.__name__}.{name}", globs={"np": np, "cp": cp}):
                if test.examples:
                    found.append((test.name, test))
    return found


@pytest.mark.parametrize("name, test", docstring_examples(), ids=[name for name, _ in docstring_examples()])
def test_docstring_examples_print_what_they_show(name, test):
    import doctest

    import numpy as np

    if any("torch" in example.source for example in test.examples):
        pytest.importorskip("torch")

    with np.printoptions(precision=4, suppress=True):
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
    assert runner.failures == 0, f"{name}: {runner.failures} example(s) printed something else (run it to see)"
