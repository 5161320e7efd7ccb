"""The dependency closure of debian_packages.py, over a small dpkg status file."""

import pytest

import debian_packages

STATUS = """\
Package: app
Status: install ok installed
Version: 1.0
Architecture: amd64
Pre-Depends: libc6 (>= 2.34)
Depends: libfoo1 (= 1.0), mail-transport-agent | exim4, debconf (>= 0.5) | debconf-2.0, libbar:any

Package: libc6
Status: install ok installed
Version: 2.43-7
Architecture: amd64
Depends: libgcc-s1

Package: libgcc-s1
Status: install ok installed
Version: 16.2.0-3
Architecture: amd64

Package: libfoo1
Status: install ok installed
Version: 1.0
Architecture: amd64
Depends: libc6,
 zlib1g (>= 1:1.2)

Package: zlib1g
Status: install ok installed
Version: 1:1.3-3
Architecture: amd64

Package: postfix
Status: install ok installed
Version: 3.9
Architecture: amd64
Provides: mail-transport-agent

Package: debconf
Status: install ok installed
Version: 1.5
Architecture: all
Depends: perl-base

Package: perl-base
Status: install ok installed
Version: 5.40
Architecture: amd64

Package: libbar
Status: install ok installed
Version: 2
Architecture: amd64

Package: removed
Status: deinstall ok config-files
Version: 1
Architecture: amd64
"""


@pytest.fixture
def status(tmp_path):
    path = tmp_path / "status"
    path.write_text(STATUS)
    return debian_packages.parse_status(path)


def test_closure_follows_depends_pre_depends_providers_and_continuation_lines(status):
    installed, provides = status
    assert debian_packages.closure(["app"], installed, provides, set()) == [
        "app", "debconf", "libbar", "libc6", "libfoo1", "libgcc-s1", "perl-base", "postfix", "zlib1g",
    ]


def test_an_excluded_name_cuts_its_whole_group(status):
    installed, provides = status
    got = debian_packages.closure(["app"], installed, provides, {"debconf", "mail-transport-agent"})
    assert got == ["app", "libbar", "libc6", "libfoo1", "libgcc-s1", "zlib1g"]


def test_packages_not_installed_are_refused(status):
    installed, provides = status
    assert "removed" not in installed
    with pytest.raises(SystemExit, match="not installed"):
        debian_packages.closure(["removed"], installed, provides, set())
