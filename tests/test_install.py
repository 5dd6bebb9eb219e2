"""README's two commands, in README's order, in a fresh venv; then the other order,
and an uninstall. Each step must leave an install that imports from any folder.

Numba used to cache kernels in ``site-packages/fastnet/kernels/__pycache__``; pip
uninstall left that folder behind, and it shadowed the next editable install
(``import fastnet`` found a namespace package without ``MLPClassifier``).

Slow (a venv and three installs, two cold kernel compilations): ``--run-slow``.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
pytestmark = pytest.mark.slow

# copies of the tree leave out what a clean clone does not have
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".ci-venv", "__pycache__", "*.egg-info", "build", "dist",
    ".pytest_cache", ".hypothesis", ".benchmarks", ".ruff_cache", "*.npz",
)  # fmt: skip


def _readme_command(pattern):
    match = re.search(pattern, README, re.MULTILINE)
    assert match, f"README has no line matching {pattern!r}"
    return match.group(0).strip()


class Venv:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.bin = tmp_path / "venv" / "bin"
        subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("NUMBA_CACHE_DIR", "FASTNET_CACHE_DIR", "VIRTUAL_ENV")
            and not k.startswith("PYTHON")
        }
        self.env["PATH"] = f"{self.bin}{os.pathsep}{self.env['PATH']}"
        self.env["XDG_CACHE_HOME"] = str(tmp_path / "user-cache")  # a fresh ~/.cache
        self.elsewhere = tmp_path / "elsewhere"
        self.elsewhere.mkdir()

    def sh(self, command, cwd, check=True):
        run = subprocess.run(
            command, shell=True, cwd=cwd, env=self.env, capture_output=True, text=True
        )
        if check:
            assert run.returncode == 0, (
                f"{command!r}:\n{run.stdout[-2000:]}{run.stderr[-3000:]}"
            )
        return run

    @property
    def site_packages(self):
        code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
        return pathlib.Path(self.sh(f"python -c {code!r}", self.tmp).stdout.strip())

    def fastnet_from_elsewhere(self):
        """Where ``import fastnet`` resolves from another folder; the command runs."""
        code = (
            "import fastnet, fastnet.kernels; fastnet.MLPClassifier; "
            "print(fastnet.__file__)"
        )
        where = self.sh(f"python -c {code!r}", self.elsewhere).stdout.strip()
        self.sh("fastnet --help", self.elsewhere)
        return pathlib.Path(where)

    def assert_nothing_unrecorded_in_site_packages(self):
        """Every file under site-packages/fastnet is one pip recorded (so uninstall
        removes it), and no kernel cache is anywhere in the venv."""
        site = self.site_packages
        stray = [
            p for p in (self.tmp / "venv").rglob("*") if p.suffix in (".nbi", ".nbc")
        ]
        assert stray == []
        package = site / "fastnet"
        if not package.exists():
            return
        (record,) = site.glob("fastnet-*.dist-info/RECORD")
        recorded = {line.split(",")[0] for line in record.read_text().splitlines()}
        files = {
            p.relative_to(site).as_posix() for p in package.rglob("*") if p.is_file()
        }
        assert files - recorded == set()

    def assert_uninstall_leaves_nothing(self):
        self.sh("pip uninstall -y fastnet", self.tmp)
        assert not (self.site_packages / "fastnet").exists()
        gone = self.sh("python -c 'import fastnet'", self.elsewhere, check=False)
        assert gone.returncode == 1 and "No module named 'fastnet'" in gone.stderr


def test_readme_commands_in_order_then_the_reverse_order(tmp_path):
    main = _readme_command(r"^pip install [^&\n]*&& *fastnet train$")
    test = _readme_command(r"^pip install [^&\n]*&& *(python -m )?pytest.*$")
    install_test_extra = test.split("&&")[0].strip()
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    venv = Venv(tmp_path)

    # 1. README's main command, then the install half of its test command
    venv.sh(main, src)
    venv.assert_nothing_unrecorded_in_site_packages()
    assert venv.fastnet_from_elsewhere().parent.parent == venv.site_packages
    venv.sh(install_test_extra, src)
    assert venv.fastnet_from_elsewhere().parent == src / "fastnet"  # the editable one
    venv.sh("fastnet train --epochs 2 --out model.npz", venv.elsewhere)
    venv.assert_nothing_unrecorded_in_site_packages()
    venv.assert_uninstall_leaves_nothing()

    # 2. the other order: editable first, then a regular install over it
    venv.sh("pip install -e .", src)
    venv.sh("fastnet train --epochs 2 --out model.npz", venv.elsewhere)
    venv.sh("pip install .", src)
    assert venv.fastnet_from_elsewhere().parent.parent == venv.site_packages
    venv.sh("fastnet train --epochs 2 --out model.npz", venv.elsewhere)
    venv.assert_nothing_unrecorded_in_site_packages()
    venv.assert_uninstall_leaves_nothing()

    # the kernels were cached in the per-user folder, none in the source tree:
    # Numba's files, or on Linux the native cache's objects (a cold compilation
    # there writes those, fastnet._runtime.native)
    cached = tmp_path / "user-cache" / "fastnet"
    assert list(cached.rglob("*.nbi")) or list(cached.rglob("native-*/*.o"))
    assert not list(src.rglob("*.nbi")) and not list(src.rglob("native-*"))
