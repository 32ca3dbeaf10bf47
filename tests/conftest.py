import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# measurement caches (the roofline's peaks, latency tables) go to one folder per test session, not ~/.cache
if "CNNSCOPE_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="cnnscope-test-cache.")
    os.environ["CNNSCOPE_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)


def run_cli(*args, cwd=None, timeout=300):
    """Run the real `cnnscope` entry point in a subprocess: exit code, stdout, stderr."""
    proc = subprocess.run([sys.executable, "-m", "cnnscope.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, "PYTHONPATH": ROOT})
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def cli():
    return run_cli


def run_inprocess(*args, cwd=None):
    """Run ``cnnscope ARGS`` through :func:`cnnscope.cli.main` in this process (no 4 s torch import per
    call): (exit code, stdout, stderr). Signal handlers and the working directory are restored."""
    import contextlib
    import io
    import signal

    from cnnscope.cli import main

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    here = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        os.chdir(here)
        for s, h in saved.items():
            signal.signal(s, h)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, out, err, expected_code=2, contains=None):
    assert code == expected_code, (code, out, err)
    assert "Traceback" not in err, err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    if contains:
        for c in ([contains] if isinstance(contains, str) else contains):
            assert c in lines[0], lines[0]
    return lines[0]


# -- hypothesis profiles (property tests: tests/property/) ---------------------------------------
# "default" keeps every property test together within ~2 minutes on 2 CPU cores and is derandomized,
# so CI sees the same examples on every run; `pytest --hypothesis-profile=long` explores far more.
# Registered here, not in tests/property/conftest.py, because the hypothesis plugin loads the
# profile named on the command line before pytest collects subdirectories.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - hypothesis is in the "test" extra; only tests/property needs it
    settings = None
if settings is not None:
    settings.register_profile("default", max_examples=80, deadline=None, derandomize=True, database=None,
                              print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("long", max_examples=1000, deadline=None, derandomize=False, print_blob=True,
                              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.load_profile("default")
