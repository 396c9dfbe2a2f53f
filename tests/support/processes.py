"""Processes the production tests start: leanguard web and worker processes, and private servers.

Fault tests stop and restart Redis and PostgreSQL. Other test runs may share the servers on
the default ports, so those tests never touch them: they start a private ``redis-server`` and
a private PostgreSQL cluster (``initdb`` into a temporary folder, run as the ``postgres`` user
when the tests run as root, since PostgreSQL refuses to run as root) on free ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pytest
import requests
from redis import Redis
from redis.exceptions import RedisError

from plugin.storage.db import temporary_schema

ROOT = Path(__file__).resolve().parents[2]
LEANGUARD = Path(sys.executable).with_name("leanguard")
STOP_TIMEOUT_S = 25.0


def missing(reason: str) -> None:
    """Fail in CI, skip elsewhere (as the suite does for a missing PostgreSQL or Redis)."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}", pytrace=False)
        time.sleep(0.1)


class Launched:
    """A process started by a test, in its own process group, its output kept in a file."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The process id (the group id too)."""
        return self.process.pid

    def alive(self) -> bool:
        """Tell whether the process still runs."""
        return self.process.poll() is None

    def output(self) -> str:
        """Return what the process has written so far."""
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no goodbye."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the group if it lingers."""
        try:
            if self.alive():
                self.process.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(STOP_TIMEOUT_S)
            self.kill()
        finally:
            self._log.close()


def leanguard_env(**settings: str) -> dict[str, str]:
    """This environment without any LEANGUARD_* setting, plus ``settings`` (name: value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEANGUARD_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update({f"LEANGUARD_{name.upper()}": value for name, value in settings.items()})
    return env


def start_web(name: str, env: Mapping[str, str], port: int, log_dir: Path) -> Launched:
    """Start ``leanguard serve`` (gunicorn, one worker process) and wait for /healthz."""
    launched = Launched(
        name,
        [str(LEANGUARD), "serve", "--workers", "1", "--threads", "4"],
        {**env, "LEANGUARD_HOST": "127.0.0.1", "LEANGUARD_PORT": str(port)},
        log_dir,
    )

    def healthy() -> bool:
        if not launched.alive():
            pytest.fail(f"{name} exited:\n{launched.output()[-3000:]}", pytrace=False)
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    wait_until(healthy, timeout_s=60, what=f"{name} to answer /healthz")
    return launched


def start_worker(name: str, env: Mapping[str, str], log_dir: Path) -> Launched:
    """Start ``leanguard worker`` (an rq worker with its sweeper)."""
    return Launched(name, [str(LEANGUARD), "worker"], env, log_dir)


def run_migrate(env: Mapping[str, str]) -> None:
    """Run ``leanguard migrate`` and fail with its output if it fails."""
    done = subprocess.run(
        [str(LEANGUARD), "migrate"], env=dict(env), cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def postgres_schema(server_url: str) -> contextlib.AbstractContextManager[str]:
    """Create an empty schema; yield a URL whose connections use it; drop it afterwards."""
    return temporary_schema(server_url, prefix="leanguard_prod")


class PrivateRedis:
    """A ``redis-server`` of the test's own, stopped and started at will, never persisted."""

    def __init__(self, log_dir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server is not installed; the Redis fault test starts its own")
        self.binary = str(binary)
        self.port = free_port()
        self.log_dir = log_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of database 0 of this private server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server on its port and wait until it answers."""
        log = (self.log_dir / "redis.log").open("ab")
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.log_dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        client = Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except RedisError:
                return False

        wait_until(answers, timeout_s=20, what="the private redis-server to answer")
        client.close()

    def stop(self) -> None:
        """Stop the server (its data is gone: nothing is persisted)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._process = None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own in a temporary folder, on a free port."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        initdb = shutil.which("initdb") or (str(found[-1]) if found else None)
        if initdb is None:
            missing("initdb is not installed; the PostgreSQL restart test starts its own cluster")
        self.bin = Path(str(initdb)).parent
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root; run it as its own system user.
            if shutil.which("runuser") is None:
                missing("tests run as root and runuser is missing; cannot start PostgreSQL")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        # Not under pytest's tmp_path: that is private to the user running the tests.
        self.base = Path(tempfile.mkdtemp(prefix="leanguard-pg-"))
        if self._as_user:
            shutil.chown(self.base, "postgres")
        self.data = self.base / "data"
        self.port = free_port()

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of its ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        """Create the cluster: trust authentication, no fsync (a test's data is disposable)."""
        done = self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        if done:
            missing(f"cannot create a private PostgreSQL cluster with initdb: {done}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off"
        )
        self._pg_ctl("-o", options, "-l", str(self.base / "postgres.log"), "-w", "start")

    def stop(self) -> None:
        """Stop the server at once (``-m fast``: open connections are cut)."""
        self._pg_ctl("-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs and delete the cluster."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def _pg_ctl(self, *args: str) -> None:
        problem = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args)
        if problem:
            log = (self.base / "postgres.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"pg_ctl {args[-1]} failed: {problem}\n{log}", pytrace=False)

    def _run(self, *argv: str) -> str:
        """Run a PostgreSQL program; return its output when it fails, else an empty string."""
        done = subprocess.run(
            [*self._as_user, *argv], capture_output=True, timeout=60, cwd=self.base
        )
        if done.returncode == 0:
            return ""
        return (done.stdout + done.stderr).decode(errors="replace")
