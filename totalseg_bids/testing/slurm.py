"""A real single-node SLURM in one folder, for the cluster tests and for trying the cluster commands on one machine.

:class:`LocalSlurm` starts Debian's ``munged`` (its own key and socket), ``slurmctld`` and ``slurmd`` from
a ``slurm.conf`` it writes for this host: no cgroups (``proctrack/linuxproc``, ``task/none``), no accounting
database, one partition with one node. The node declares more CPUs than the machine has
(``SlurmdParameters=config_overrides``) and four GPU slots (``gres/gpu`` on links to ``/dev/null``, no
CUDA behind them), so the array scripts run with their own ``#SBATCH`` resources (``--cpus-per-task=4``,
``--gres=gpu:1``) four tasks at a time, as on a GPU node. Everything lives under ``root``: clients reach
this SLURM through ``SLURM_CONF`` (:attr:`LocalSlurm.env`), nothing under ``/etc`` is read or changed.

The daemons run as the user who starts them, ``SlurmUser`` included: as root in CI containers (slurmd
launches jobs as their owner, which needs root; here the owner is root too). ``munged --force`` accepts a
socket under a private temporary folder (pytest's are mode 0700), which munged refuses by default.
Timings are cut for tests: ``KillWait=3`` (SIGTERM to SIGKILL), a requeued job may start again after
about 11 s (``cred_expire=10``; SLURM's default is 120 s), the scheduler looks at pending jobs every 2 s.

    with LocalSlurm(tmp / "slurm") as slurm:       # raises SlurmUnavailable with the reason
        subprocess.run(["sbatch", "--wait", "--wrap", "hostname"], env={**os.environ, **slurm.env})
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
#: What a fresh machine needs (scripts/install.sh installs them when missing).
INSTALL_HINT = "install Debian's slurm-wlm and munge (bash scripts/install.sh does it when they are missing)"


class SlurmUnavailable(RuntimeError):
    """SLURM could not start here; the message says why (and the daemon's last log lines)."""


def binary(name: str) -> str | None:
    """The path of a SLURM or munge program; the daemons live in sbin, which a user's PATH may lack."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def free_port() -> int:
    """A TCP port nobody listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(root: Path, node: str, cpus: int, gpus: int, ports: tuple[int, int]) -> str:
    """The ``slurm.conf`` of a one-node cluster whose state and logs all live under ``root``.

    >>> text = slurm_conf(Path("/s"), "n1", 8, 2, (7001, 7002))
    >>> "ProctrackType=proctrack/linuxproc" in text, "NodeName=n1 " in text, "Gres=gpu:2" in text
    (True, True, True)
    """
    host, user = socket.gethostname(), getpass.getuser()
    gres = f" Gres=gpu:{gpus}" if gpus else ""
    lines = [
        "ClusterName=tsb", f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={ports[0]}", f"SlurmdPort={ports[1]}", f"SlurmUser={user}", f"SlurmdUser={user}",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={root}/run/munge.socket,cred_expire=10",
        f"StateSaveLocation={root}/spool/ctld", f"SlurmdSpoolDir={root}/spool/d",
        f"SlurmctldPidFile={root}/run/slurmctld.pid", f"SlurmdPidFile={root}/run/slurmd.pid",
        f"SlurmctldLogFile={root}/log/slurmctld.log", f"SlurmdLogFile={root}/log/slurmd.log",
        f"PlugStackConfig={root}/etc/plugstack.conf", "MailProg=/bin/true",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=2,bf_interval=2", "SlurmdParameters=config_overrides",
        "ReturnToService=1", "KillWait=3", "MinJobAge=300", "GresTypes=gpu",
        f"NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=65536{gres} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class LocalSlurm:
    """munged + slurmctld + slurmd on localhost, all state under ``root`` (removed by :meth:`stop`)."""

    root: Path
    cpus: int = 32
    gpus: int = 4
    node: str = "tsbnode"
    procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, dask-jobqueue) needs to reach this SLURM."""
        return {"SLURM_CONF": str(self.conf)}

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 60.0) -> LocalSlurm:
        """Write the configuration, start the three daemons, wait until the node is idle."""
        found = {name: binary(name) for name in ("munged", "slurmctld", "slurmd", "sbatch")}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise SlurmUnavailable(f"{', '.join(missing)} not found; {INSTALL_HINT}")
        try:
            self._write_files()
            self._start_munged(found["munged"])
            self._spawn("slurmctld", [found["slurmctld"], "-D", "-c", "-f", str(self.conf)])
            self._spawn("slurmd", [found["slurmd"], "-D", "-N", self.node, "-f", str(self.conf)])
            self.wait_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _write_files(self) -> None:
        self.root = Path(self.root).absolute()
        for sub in ("etc", "run", "log", "dev", "spool/ctld", "spool/d", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        os.chmod(self.root / "run", 0o755)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        ports = (free_port(), free_port())
        while ports[1] == ports[0]:
            ports = (ports[0], free_port())
        self.conf.write_text(slurm_conf(self.root, self.node, self.cpus, self.gpus, ports), encoding="utf-8")
        (self.root / "etc" / "plugstack.conf").write_text("", encoding="utf-8")
        for i in range(self.gpus):  # GPU slots for the scheduler: character devices, no CUDA behind them
            (self.root / "dev" / f"gpu{i}").symlink_to("/dev/null")
        gres = f"NodeName={self.node} Name=gpu File={self.root}/dev/gpu[0-{self.gpus - 1}]\n" if self.gpus else ""
        (self.root / "etc" / "gres.conf").write_text(gres, encoding="utf-8")

    def _start_munged(self, munged: str) -> None:
        r = self.root
        self._spawn("munged", [munged, "--foreground", "--force", f"--socket={r}/run/munge.socket",
                               f"--key-file={r}/munge/munge.key", f"--pid-file={r}/run/munged.pid",
                               f"--seed-file={r}/munge/munged.seed", f"--log-file={r}/log/munged.log"])
        deadline = time.monotonic() + 15
        while not (r / "run" / "munge.socket").exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise SlurmUnavailable(f"munged made no socket in 15 s: {self.log_tail('munged')}")
            time.sleep(0.1)

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 - the daemon keeps it
        self.procs[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            env={**os.environ, **self.env}, start_new_session=True)
        out.close()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SlurmUnavailable(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 8) -> str:
        """The last lines a daemon wrote (its log file and its console), for error messages."""
        text = []
        for path in (self.root / "log" / f"{name}.log", self.root / "log" / f"{name}.out"):
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return " | ".join(line for line in text if line.strip()) or "(no log)"

    def client(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a SLURM client command (``squeue``, ``scontrol``, ...) against this cluster."""
        return subprocess.run(list(argv), env={**os.environ, **self.env}, capture_output=True, encoding="utf-8",
                              errors="replace", check=check, timeout=timeout)

    def node_state(self) -> str:
        """The node's state as sinfo prints it (``idle``, ``mixed``, ``down*``, ...)."""
        return self.client("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until the node is idle (registered, nothing running)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            self._check_alive()
            state = self.node_state()
            if state == "idle":
                return
            time.sleep(0.3)
        raise SlurmUnavailable(f"node {self.node} not idle after {timeout:g} s (state {state!r}): "
                               f"slurmctld: {self.log_tail('slurmctld')}; slurmd: {self.log_tail('slurmd')}")

    def jobs(self) -> list[str]:
        """Ids of the jobs this cluster still holds as pending or running."""
        proc = self.client("squeue", "-h", "-o", "%i", check=False)
        return proc.stdout.split() if proc.returncode == 0 else []

    def cancel_all(self, timeout: float = 20.0) -> None:
        """Cancel every job and wait until the queue is empty."""
        if "slurmctld" not in self.procs:
            return
        self.client("scancel", "--user", getpass.getuser(), check=False)
        deadline = time.monotonic() + timeout
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(0.3)

    def stop(self) -> None:
        """Cancel the jobs, stop the daemons (slurmd, slurmctld, munged) and remove ``root``."""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.cancel_all()
        for name in reversed(DAEMONS):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)
