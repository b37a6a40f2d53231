"""Build hook of the ullme package: ships the native library inside the package.

`pip install ./bindings/python` and `make wheel` copy what `make lib` built into the package, laid out as
the build tree and `make install` lay it out, so the library's own relative lookups work the same way:

    ullme/_native/lib/libullme.so                      <- build/lib/libullme.so
    ullme/_native/share/ullme/adapters/default/...     <- build/share/ullme/adapters/default/ (if present)

`ULLME_NATIVE_DIR` names another tree of that layout (default: the repository's build/). A missing
library is an error: run `make` first. Editable installs (`pip install -e`) copy nothing; the package then
loads the repository's build/lib/libullme.so. The wheel is tagged py3-none-<platform> (ctypes: any CPython 3,
one platform).
"""
import os
import re
import shutil
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
NATIVE = Path(os.environ.get("ULLME_NATIVE_DIR") or HERE.parent.parent / "build")
LIB = Path("lib") / "libullme.so"
ADAPTER = Path("share") / "ullme" / "adapters" / "default"
VERSION_SOURCE = HERE.parent.parent / "Sources" / "ULLMESwift" / "CAPI" / "Status.swift"


def library_version():
    """The version the library's source declares (the one place it is written)."""
    m = re.search(r'^public let libraryVersion = "([^"]+)"', VERSION_SOURCE.read_text(), re.M)
    if not m:
        raise SystemExit(f"ullme: no libraryVersion in {VERSION_SOURCE}")
    return m.group(1)


class BuildPyWithNative(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        src = NATIVE / LIB
        if not src.is_file():
            raise SystemExit(f"ullme: {src} not found; build it first with `make` (or set ULLME_NATIVE_DIR "
                             "to a directory holding lib/libullme.so)")
        dst = Path(self.build_lib) / "ullme" / "_native"
        shutil.rmtree(dst, ignore_errors=True)  # no stale library or adapter from an earlier build
        (dst / LIB).parent.mkdir(parents=True)
        shutil.copy2(src, dst / LIB)
        if (NATIVE / ADAPTER).is_dir():
            shutil.copytree(NATIVE / ADAPTER, dst / ADAPTER)


class NativeDistribution(Distribution):
    def has_ext_modules(self):  # a platform wheel, installed to platlib
        return True


class PlatformWheel(bdist_wheel):
    def get_tag(self):
        return ("py3", "none", super().get_tag()[2])


setup(version=library_version(), distclass=NativeDistribution, cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel})
