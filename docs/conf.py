"""Sphinx configuration of convpool's documentation: `python -m sphinx -W -b html docs build/docs`.

The API pages are generated from the code: the compiled functions' docstrings (one place,
cpp/bindings/docstrings.hpp) and their signatures from the type stubs (python/convpool/_core.pyi),
the Python modules' docstrings, and each module's __all__. The gallery's scripts (examples/) run at
build time, so every picture on its pages comes from the code beside it.
"""

import ast
import os
import re
import sys
from pathlib import Path

import convpool
from convpool._ops import classes, functions, semantics_of

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

project = "convpool"
author = "convpool developers"
copyright = "2026, convpool developers"
release = version = convpool.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
    "cpp_headers",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
templates_path = ["_templates"]

html_theme = "pydata_sphinx_theme"
html_title = f"convpool {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# The kernels' docstrings follow PyTorch's layout: summary, Args, Shape, Returns, Raises, Example.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [("Shape", "notes_style")]
napoleon_use_rtype = False

autosummary_generate = True
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
}
os.environ.setdefault("MPLBACKEND", "Agg")


def _readable(node, aliases):
    """An annotation of the stubs as a reader wants it: the stub's private aliases expanded,
    Union/Optional/Literal as alternatives, NumPy's array types as ndarray and array_like."""
    if isinstance(node, ast.Name) and node.id in aliases:
        return _readable(aliases[node.id], aliases)
    if isinstance(node, ast.Attribute):
        return {"ArrayLike": "array_like", "NDArray": "ndarray"}.get(node.attr, ast.unparse(node))
    if isinstance(node, ast.Subscript):
        kind = ast.unparse(node.value).split(".")[-1]
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if kind == "NDArray":
            return "ndarray"
        if kind in ("Union", "Literal"):
            return " | ".join(_readable(item, aliases) for item in items)
        if kind == "Optional":
            return f"{_readable(items[0], aliases)} | None"
        if kind == "Tuple":
            return "tuple[" + ", ".join(_readable(item, aliases) for item in items) + "]"
        if kind == "Sequence":
            return f"sequence of {_readable(items[0], aliases)}"
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else repr(node.value)
    return ast.unparse(node)


def _stub_signatures():
    """name -> (parameters, return annotation) of every function in _core.pyi, in readable types;
    an overloaded function takes the union of its overloads' annotations."""
    tree = ast.parse((ROOT / "python" / "convpool" / "_core.pyi").read_text())
    aliases = {node.targets[0].id: node.value for node in tree.body
               if isinstance(node, ast.Assign) and node.targets[0].id.startswith("_")}
    aliases.update({node.name: ast.Name("dict") for node in tree.body
                    if isinstance(node, ast.ClassDef) and node.name.startswith("_")})
    overloads = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            overloads.setdefault(node.name, []).append(node)
    signatures = {}
    for name, nodes in overloads.items():
        widest = max(nodes, key=lambda node: len(node.args.args))
        parameters = []
        for index, argument in enumerate(widest.args.args):
            kinds = []
            for node in nodes:
                for other in node.args.args + node.args.kwonlyargs:
                    kind = _readable(other.annotation, aliases) if other.arg == argument.arg else None
                    if kind is not None and kind not in kinds:
                        kinds.append(kind)
            kinds = ["bool"] if len(kinds) > 1 and all(k in ("False", "True") for k in kinds) else kinds
            defaults = widest.args.defaults
            offset = len(widest.args.args) - len(defaults)
            default = f" = {ast.unparse(defaults[index - offset])}" if index >= offset else ""
            parameters.append(f"{argument.arg}: {' | '.join(kinds)}{default}")
        returns = []
        for node in nodes:
            kind = _readable(node.returns, aliases)
            if kind not in returns:
                returns.append(kind)
        signatures[name] = (f"({', '.join(parameters)})", " | ".join(returns))
    return signatures


STUB_SIGNATURES = _stub_signatures()
# The package's names that are compiled functions (exported() wraps them; __wrapped__ is pybind11's).
COMPILED = {name for name in convpool.__all__ if name in STUB_SIGNATURES
            and type(getattr(getattr(convpool, name), "__wrapped__", getattr(convpool, name))).__name__
            == "builtin_function_or_method"}


def stub_signature(app, what, name, obj, options, signature, return_annotation):
    """The compiled functions' signatures from the stubs (pybind11's own name every argument's
    type `object`)."""
    short = name.rsplit(".", 1)[-1]
    if what == "function" and name.startswith("convpool.") and short in COMPILED:
        return STUB_SIGNATURES[short]
    return None


def drop_binding_signature(app, what, name, obj, options, lines):
    """pybind11 starts each docstring with its signature line, which the stub signature replaces."""
    if lines and lines[0].startswith(name.rsplit(".", 1)[-1] + "(") and ") ->" in lines[0]:
        del lines[:2 if len(lines) > 1 and not lines[1].strip() else 1]


SECTION = re.compile(r"^(Args|Arguments|Returns|Raises|Shape|Example|Examples|Note|Notes|See Also):\s*$")


def shape_as_literal(app, what, name, obj, options, lines):
    """A Shape section's lines (the output shape and its size formula, line by line) as a literal
    block, before napoleon reads the docstring: as prose they would run together."""
    for index, line in enumerate(lines):
        if line.strip() == "Shape:":
            end = index + 1
            while end < len(lines) and not SECTION.match(lines[end]):
                end += 1
            body = [text for text in lines[index + 1:end] if text.strip()]
            literal = ["        " + text.strip() for text in body]
            lines[index + 1:end] = ["    .. code-block:: text", ""] + literal + [""]
            return


RAISES = """Raises:
    TypeError: an argument of the wrong type, or an array of another dtype (integer, complex and
        float16 arrays are refused, not converted), naming the argument.
    ValueError: shapes or arguments that do not fit (a window larger than the input, indices
        outside their plane, an ``out`` that shares memory with an input), naming the argument and
        the shapes, before any work; a refused call changes nothing it was given.
    MemoryError: an array that cannot be allocated."""


def raises_and_semantics(app, what, name, obj, options, lines):
    """The kernels' common Raises section (the bindings' rules, :doc:`/reliability`), and for the
    kernels, the layers and the torch operators a link to the section of the semantics page that
    specifies the result."""
    module, _, short = name.rpartition(".")
    if module not in ("convpool", "convpool.nn", "convpool.torch") or what not in ("function", "class"):
        return
    if module == "convpool" and short in functions() + classes():
        lines.extend([""] + RAISES.splitlines())
    label = semantics_of(short)
    if label:
        lines.extend(["", f"The result is specified exactly in :ref:`{label}`; see also :doc:`/reliability`."])


def setup(app):
    app.connect("autodoc-process-signature", stub_signature)
    app.connect("autodoc-process-docstring", drop_binding_signature, priority=400)
    app.connect("autodoc-process-docstring", shape_as_literal, priority=450)
    app.connect("autodoc-process-docstring", raises_and_semantics, priority=420)

