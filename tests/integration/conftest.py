"""
conftest.py - pytest fixtures that run facteurd as users do.

`facteurd(...)` starts a daemon with its own config in the test's tmp dir
(keyword arguments as harness.Daemon, plus start=False to only write the
config); `mx` is one daemon shared by a whole module for tests that do not
change the configuration. Daemons are stopped by PID: SIGTERM, then SIGKILL
after 5 s, even when the test fails. A daemon that did not stop cleanly on
SIGTERM, or whose stderr shows a sanitizer report, fails the test.
Must not: skip when the binaries are missing (that is a failure).
"""
import atexit
import os

import pytest

import harness


@atexit.register
def _kill_leftovers():
    for p in list(harness.LIVE):
        try:
            p.kill()
            p.wait(5)
        except Exception:
            pass


@pytest.fixture(scope="session")
def build():
    b = harness.build_dir()
    for prog in ("facteurd", "facteur"):
        path = os.path.join(b, "bin", prog)
        if not os.access(path, os.X_OK):
            pytest.fail("%s is missing: run `make all` (FACTEUR_BUILD=%s)"
                        % (path, b), pytrace=False)
    return b


@pytest.fixture
def facteurd(build, tmp_path):
    pool = harness.Pool(tmp_path)
    yield pool.new
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def mx(build, tmp_path_factory):
    pool = harness.Pool(tmp_path_factory.mktemp("mx"))
    d = pool.new()
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
