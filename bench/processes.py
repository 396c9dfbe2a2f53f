"""Starting, watching and stopping the processes a benchmark launches."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

STOP_TIMEOUT_S = 25.0
"""gunicorn's graceful timeout is 20 s; past this the process group is killed."""


class ProcessFailed(RuntimeError):
    """A launched process exited early or never became ready."""


class Launched:
    """A process the benchmark started, in its own session, with its output in a log file."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path, cwd: Path
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Tell whether the process still runs."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the process's output."""
        self._log.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise :class:`ProcessFailed` with the log's end if the process has exited."""
        if not self.alive():
            raise ProcessFailed(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """Ask the process to stop (SIGTERM), then kill its process group if it lingers."""
        try:
            if self.alive():
                self.process.terminate()
                try:
                    self.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    self._kill_group()
                    self.process.wait(5)
            # gunicorn workers are in the group; none should outlive their master.
            self._kill_group()
        finally:
            self._log.close()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(launched: Launched, port: int, *, timeout_s: float = 60.0) -> float:
    """Poll ``GET /healthz`` until it answers 200; return the seconds it took."""
    started = time.monotonic()
    while True:
        launched.check_alive()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return time.monotonic() - started
            finally:
                connection.close()
        except OSError:
            pass
        if time.monotonic() - started > timeout_s:
            raise ProcessFailed(
                f"{launched.name} did not answer /healthz within {timeout_s:.0f} s:\n"
                + launched.log_tail()
            )
        time.sleep(0.2)


def children_of(pid: int) -> list[int]:
    """Return the ids of the live processes whose parent is ``pid``."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the fields after it do not.
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            children.append(int(entry.name))
    return sorted(children)


def rss_bytes(pid: int) -> int:
    """Return a process's resident set size (``VmRSS`` in ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            amount, unit = line.split()[1:3]
            if unit.lower() != "kb":
                raise ValueError(f"unexpected VmRSS unit {unit!r}")
            return int(amount) * 1024
    raise ValueError(f"process {pid} reports no VmRSS")


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time a process has used (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the name.
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_busy() -> tuple[int, int]:
    """Return the machine's (busy, total) CPU ticks so far, from ``/proc/stat``."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return total - idle, total


def machine_busy(sample_s: float = 1.0) -> float:
    """Return the share of the machine's CPU time that was busy over ``sample_s`` seconds."""
    busy_before, total_before = cpu_busy()
    time.sleep(sample_s)
    busy, total = cpu_busy()
    return (busy - busy_before) / max(1, total - total_before)


class CpuMeter:
    """How busy the machine was over a stretch of time, and how much of that was not ours.

    Ours is this process and the children it has waited for (``os.times``), so the share of
    other processes is known once every launched process has been stopped.
    """

    def __init__(self) -> None:
        """Start measuring."""
        self._ticks = cpu_busy()
        self._ours = _own_cpu_seconds()
        self._wall = time.monotonic()

    def shares(self) -> tuple[float, float]:
        """Return (busy share of the machine, share used by other processes) so far."""
        busy, total = cpu_busy()
        busy_share = (busy - self._ticks[0]) / max(1, total - self._ticks[1])
        capacity = (time.monotonic() - self._wall) * (os.cpu_count() or 1)
        ours = (_own_cpu_seconds() - self._ours) / capacity if capacity > 0 else 0.0
        return busy_share, max(0.0, busy_share - ours)


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
