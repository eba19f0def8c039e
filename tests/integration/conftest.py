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


class _Pool:
    def __init__(self, base):
        self.base = base
        self.daemons = []

    def new(self, start=True, **kw):
        root = os.path.join(str(self.base), "d%d" % len(self.daemons))
        d = harness.Daemon(root, **kw)
        self.daemons.append(d)
        if start:
            d.start()
        return d

    def close(self):
        problems = []
        for d in self.daemons:
            if d.proc is None:
                continue
            was_running = d.proc.poll() is None
            rc, forced = d.stop()
            if was_running and not d.killed:
                if forced:
                    problems.append("facteurd (pid %d) ignored SIGTERM for "
                                    "%ss" % (d.pid, harness.STOP_TIMEOUT))
                elif rc != 0:
                    problems.append("facteurd (pid %d) exited %s on SIGTERM"
                                    % (d.pid, rc))
            rep = d.sanitizer_report()
            if rep:
                problems.append("sanitizer report in %s:\n%s"
                                % (d.stderr_path, rep))
            if problems:
                problems.append(d.diagnostics())
        return problems


@pytest.fixture
def facteurd(build, tmp_path):
    pool = _Pool(tmp_path)
    yield pool.new
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def mx(build, tmp_path_factory):
    pool = _Pool(tmp_path_factory.mktemp("mx"))
    d = pool.new()
    yield d
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
