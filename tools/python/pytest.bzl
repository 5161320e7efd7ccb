"""pytest_test: pytest under Bazel with the toolchain's Python.

rules_python's hermetic interpreters are downloaded; the toolchain root already has Python 3 and
pytest from Debian, so a test is a shell test that runs them over its sources.
"""

load("@rules_shell//shell:sh_test.bzl", "sh_test")

def pytest_test(name, srcs, data = [], imports = ["."], **kwargs):
    """Runs pytest on srcs.

    Args:
      name: the test's name.
      srcs: the test files.
      data: the modules and files the tests need.
      imports: workspace directories to put on sys.path.
      **kwargs: passed to sh_test (env is merged with PYTEST_IMPORTS).
    """
    sh_test(
        name = name,
        srcs = ["//tools/python:pytest_runner.sh"],
        args = ["$(rootpaths %s)" % src for src in srcs],
        data = srcs + data,
        env = {"PYTEST_IMPORTS": " ".join(imports)} | kwargs.pop("env", {}),
        **kwargs
    )
