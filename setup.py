"""Builds pylamia._C with CMake (the pybind11 cmake_example shape).

Environment:
  LAMIA_BUILD_DIR   reuse this CMake build tree (the test script builds it once for
                    C++ and Python alike); default: a fresh tree under build/python.
  LAMIA_BUILD_JOBS  parallel compile jobs (default: number of CPUs).
"""
import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


def same_interpreter_configured(build_dir: Path) -> bool:
    """True when build_dir was configured for this interpreter's binary (a venv's python is a link to
    it): switching Python3_EXECUTABLE between the two would recompile for nothing."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.exists():
        return False
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("Python3_EXECUTABLE:"):
            configured = line.split("=", 1)[1]
            return os.path.realpath(configured) == os.path.realpath(sys.executable)
    return False


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(os.environ.get("LAMIA_BUILD_DIR", ROOT / "build" / "python")).resolve()
        build_dir.mkdir(parents=True, exist_ok=True)
        jobs = os.environ.get("LAMIA_BUILD_JOBS", str(os.cpu_count() or 1))
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            "-DLAMIA_BUILD_PYTHON=ON",
            f"-DLAMIA_PYTHON_OUTPUT_DIR={out_dir}",
        ]
        if not same_interpreter_configured(build_dir):
            configure.append(f"-DPython3_EXECUTABLE={sys.executable}")
        if "LAMIA_BUILD_DIR" not in os.environ:
            configure += ["-DLAMIA_BUILD_TESTS=OFF", "-DLAMIA_BUILD_EXAMPLES=OFF",
                          "-DLAMIA_BUILD_BENCH=OFF", "-DCMAKE_BUILD_TYPE=Release"]
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "lamia_python", "-j", jobs], check=True)


setup(ext_modules=[CMakeExtension("pylamia._C")], cmdclass={"build_ext": CMakeBuild})
