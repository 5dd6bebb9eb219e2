"""The layers of ARCHITECTURE.md: every import inside fastnet points down (or
sideways within a layer), never up, wherever it stands (module level or inside a
function)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: module path under fastnet (the longest prefix that matches) -> its layer,
#: kernels lowest; a module may import its own layer and those below. The files
#: and preparation of tables sit below the model files, which read TabularModel;
#: the command sits above both.
LAYERS = {
    "kernels": 0,
    "_runtime": 1,
    "nn": 2,
    "optim": 2,
    "training": 3,
    "callbacks": 3,
    "sklearn": 4,
    "dask": 4,
    "tabular": 5,
    "model_files": 6,
    "model_format": 6,
    "onnx": 6,
    "onnx_tabular": 6,
    "onnx_forms": 6,
    "_bench": 6,
    "tabular.cli": 7,
    "tabular.commands": 7,
    "tabular.checkpoint": 7,
    "tabular.parser": 7,
    "tabular.errors": 7,
    "tabular.collector": 7,
    "tabular.plot": 7,
}


def _modules():
    for folder, package in ((ROOT / "fastnet", "fastnet"), (ROOT / "kernels",
                            "fastnet.kernels")):  # fmt: skip
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield path, ".".join([package, *parts])


def _layer(module):
    """The layer of ``fastnet.X...`` (None: the package's own files, which may
    import anything: ``fastnet/__init__`` lazily names every public object)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "fastnet":
        return None
    for n in range(len(parts) - 1, 0, -1):
        layer = LAYERS.get(".".join(parts[1 : n + 1]))
        if layer is not None:
            return layer
    return None


def _imports(path, module):
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
            yield node.lineno, [target, *names]
        elif isinstance(node, ast.Import):
            yield node.lineno, [a.name for a in node.names]


MODULES = [m for m in _modules() if _layer(m[1]) is not None]


@pytest.mark.parametrize("path,module", MODULES, ids=[m for _, m in MODULES])
def test_imports_point_down(path, module):
    mine = _layer(module)
    for lineno, targets in _imports(path, module):
        for target in targets:
            theirs = _layer(target)
            assert theirs is None or theirs <= mine, (
                f"{path.relative_to(ROOT)}:{lineno} imports {target} (layer "
                f"{theirs}) from layer {mine}"
            )


def test_every_folder_has_a_layer():
    folders = {p.name for p in (ROOT / "fastnet").iterdir() if p.is_dir()}
    files = {p.stem for p in (ROOT / "fastnet").glob("*.py")}
    unplaced = (folders - {"__pycache__"}) | (
        files - {"__init__", "_moved", "_version"}
    )
    assert unplaced <= set(LAYERS), sorted(unplaced - set(LAYERS))
