"""The subdir <-> wheel tag map, as pure data."""

from __future__ import annotations

from packaging.markers import Marker

from tasks import wheeltags as T

GLIBC_217 = "m-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"


def test_manylinux_covers_every_glibc_level_and_the_legacy_aliases_best_first():
    tags = T.platform_tags("linux-64")
    assert tags[0] == "manylinux_2_39_x86_64" and tags[-1] == "manylinux1_x86_64"
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux_2_28_x86_64"} <= set(tags)
    assert tags.index("manylinux_2_17_x86_64") < tags.index("manylinux2014_x86_64") < tags.index("manylinux_2_16_x86_64")
    # manylinux1 and 2010 were defined for x86 only; 2014 covers the others
    assert "manylinux2014_aarch64" in T.platform_tags("linux-aarch64")
    assert not any(tag.startswith(("manylinux1", "manylinux2010")) for tag in T.platform_tags("linux-aarch64"))
    for subdir, arch in (("linux-32", "i686"), ("linux-ppc64le", "ppc64le"), ("linux-s390x", "s390x"),
                         ("linux-armv7l", "armv7l")):
        assert f"manylinux_2_17_{arch}" in T.platform_tags(subdir)


def test_macos_is_the_arch_and_universal2_from_10_9_to_15():
    intel, arm = T.platform_tags("osx-64"), T.platform_tags("osx-arm64")
    assert intel[0] == "macosx_15_0_x86_64" and "macosx_10_9_x86_64" in intel and "macosx_10_9_universal2" in intel
    assert not any("10_8" in tag or "intel" in tag or "fat" in tag for tag in intel)
    assert "macosx_11_0_arm64" in arm and not any(tag.endswith("x86_64") for tag in arm)


def test_windows_and_subdirs_no_wheel_describes():
    assert [T.platform_tags(s) for s in ("win-32", "win-64", "win-arm64")] == [("win32",), ("win_amd64",), ("win_arm64",)]
    assert T.platform_tags("linux-armv6l") == ()
    assert T.pip_platform_args("win-64") == ["--platform", "win_amd64"]


def test_which_wheels_serve_a_subdir_and_python():
    assert T.serves(GLIBC_217, "linux-64", "3.11")
    assert not T.serves(GLIBC_217, "linux-64", "3.12") and not T.serves(GLIBC_217, "linux-aarch64", "3.11")
    assert not T.serves("m-1-cp311-cp311-musllinux_1_1_x86_64.whl", "linux-64", "3.11")
    assert not T.serves("m-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl", "linux-64", "3.10")
    assert T.serves("m-1-cp38-abi3-win_amd64.whl", "win-64", "3.12") and not T.serves("m-1-cp38-abi3-win_amd64.whl", "win-64", "3.7")
    assert T.serves("m-1-cp312-cp312-macosx_10_9_universal2.whl", "osx-arm64", "3.12")
    assert T.serves("m-1-py3-none-any.whl", "linux-s390x", "3.9") and T.is_pure("m-1-py3-none-any.whl")


def test_the_tag_floor_becomes_a_virtual_package():
    assert T.floor(GLIBC_217, "linux-64") == "__glibc >=2.17"
    assert T.floor("m-1-cp311-cp311-manylinux_2_5_i686.manylinux1_i686.whl", "linux-32") == "__glibc >=2.5"
    assert T.floor("m-1-cp311-cp311-manylinux2010_x86_64.whl", "linux-64") == "__glibc >=2.12"
    assert T.floor("m-1-cp311-cp311-macosx_11_0_arm64.whl", "osx-arm64") == "__osx >=11.0"
    assert T.floor("m-1-cp311-cp311-macosx_10_9_x86_64.macosx_11_0_arm64.whl", "osx-64") == "__osx >=10.9"
    assert T.floor("m-1-cp311-cp311-win_amd64.whl", "win-64") is None
    assert T.floor("m-1-py3-none-any.whl", "linux-64") is None


def test_markers_are_evaluated_for_the_target_not_this_machine():
    windows = Marker('sys_platform == "win32" and platform_machine == "AMD64"')
    assert windows.evaluate(T.marker_environment("win-64", "3.11"))
    assert not windows.evaluate(T.marker_environment("linux-64", "3.11"))
    assert Marker('python_version < "3.12"').evaluate(T.marker_environment("osx-arm64", "3.11"))
    assert not Marker('python_version < "3.12"').evaluate(T.marker_environment("osx-arm64", "3.12"))
    assert Marker('platform_system == "Darwin" and platform_machine == "arm64"').evaluate(
        T.marker_environment("osx-arm64", "3.12"))
