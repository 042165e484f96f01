"""Starting and stopping moto in server mode on a loopback port; clients for it.

Every process the local stack starts stays in the starting command's process group, so a signal
to the group (Ctrl-C, a closed terminal's SIGHUP) reaches all of them, and on Linux each child
also gets SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), so even a killed ``llmmon`` leaves
nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "llmmon-local",
    "AWS_SECRET_ACCESS_KEY": "llmmon-local",
    "AWS_DEFAULT_REGION": REGION,
}


class PortBusyError(RuntimeError):
    pass


def die_with_parent() -> None:
    """Run in a child before exec. Ctrl-C reaches the whole process group, but the children
    ignore it: the parent stops them in order (workers, then moto) instead of all of them dying
    at once mid-call or mid-import. On Linux a child also gets SIGTERM when its parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def own_group_dying_with_parent() -> None:
    """``die_with_parent`` for a child that installs its own SIGINT and SIGTERM handlers (moto's
    server does, undoing the ignored SIGINT): in a process group of its own, a Ctrl-C or a
    signal to the owner's group does not reach it, so it stops only when the owner stops it
    (after the workers that call it) or dies."""
    die_with_parent()
    os.setpgrp()


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for the local endpoint. Retries are off: moto answers an unimplemented
    call with HTTP 500, which must surface at once."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60
        ),
    )


QUEUE_COUNTS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    """A queue's messages: visible, in flight (received, not yet deleted) and delayed."""
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[*QUEUE_COUNTS.values()])
    return {name: int(attributes["Attributes"][key]) for name, key in QUEUE_COUNTS.items()}


@dataclass
class MotoServer:
    """moto in server mode, as a child process listening on 127.0.0.1 only."""

    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> str:
        if self.port and not port_free(self.port):
            raise PortBusyError(
                f"127.0.0.1:{self.port} is in use (another local stack? see `llmmon local "
                "status`): choose another --port, or leave it out to get a free one"
            )
        self.port = self.port or free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            preexec_fn=own_group_dying_with_parent,
            env={**os.environ, **CREDENTIALS},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                time.sleep(0.1)
                continue
            time.sleep(0.1)
            if self.process.poll() is None:  # listening, and it is our process that listens
                return self.endpoint
        self.stop()
        raise RuntimeError("moto server did not start listening in time")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None


def stop_process(process: subprocess.Popen[Any] | None, grace: float = 5.0) -> None:
    """Terminate a child, then kill it if it has not exited after ``grace`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)
