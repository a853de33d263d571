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


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(os.environ.get("LAMIA_BUILD_DIR", ROOT / "build" / "python")).resolve()
        build_dir.mkdir(parents=True, exist_ok=True)
        jobs = os.environ.get("LAMIA_BUILD_JOBS", str(os.cpu_count() or 1))
        configure = [
            "cmake", "-S", str(ROOT), "-B", str(build_dir),
            "-DLAMIA_BUILD_PYTHON=ON",
            f"-DPython3_EXECUTABLE={sys.executable}",
            f"-DLAMIA_PYTHON_OUTPUT_DIR={out_dir}",
        ]
        if "LAMIA_BUILD_DIR" not in os.environ:
            configure += ["-DLAMIA_BUILD_TESTS=OFF", "-DLAMIA_BUILD_EXAMPLES=OFF",
                          "-DLAMIA_BUILD_BENCH=OFF", "-DCMAKE_BUILD_TYPE=Release"]
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--target", "lamia_python", "-j", jobs], check=True)


setup(ext_modules=[CMakeExtension("pylamia._C")], cmdclass={"build_ext": CMakeBuild})
