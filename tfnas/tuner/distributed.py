"""Distributed search on keras-tuner's own chief and workers.

keras-tuner's convention: every process runs the same search; the environment
says which is which. ``KERASTUNER_TUNER_ID=chief`` serves the oracle over gRPC
at ``KERASTUNER_ORACLE_IP:KERASTUNER_ORACLE_PORT``; any other id
(``tuner0``, ``tuner1``, ...) is a worker that asks the chief for trials, runs
them and reports their metrics. Proposals, screening, proxy ranking,
successive-halving promotions and MSNAS updates all happen on the chief, in
the one oracle; trial folders must be on a file system every process sees.

What tfnas adds to keras-tuner's protocol:

- **Leases:** a worker renews the lease of its trial with a heartbeat (the
  ``GetTrial`` call) every quarter of ``lease_seconds``. The chief puts a trial
  whose worker fell silent back in the queue
  (:meth:`tfnas.strategies.base.NASOracle.expire_leases`), and a worker asking
  for a trial while others still hold one waits (``IDLE``) instead of stopping.
  So a dead worker never leaves the chief waiting forever.
- **A chief that restarts:** keras-tuner's client already waits for a chief
  that is down, but a call in flight when the chief dies fails with
  ``UNAVAILABLE``; keras-tuner would then mark a finished trial as failed.
  tfnas's client sends such a call again once the chief is back (every call
  is safe to repeat: a repeated end of a trial is ignored, a repeated
  ``CreateTrial`` returns the trial the worker already holds or, after a
  restart, one from the queue, and ``UpdateTrial`` sets the same value at the
  same step).
- **The chief's loop** (:func:`serve`) expires leases, writes the report after
  every trial and stops once every trial has ended and every worker has been
  told to stop.
- **A one-machine launcher** (:func:`launch`, ``tfnas search --workers N``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent import futures

__all__ = ["role", "serve", "heartbeat", "launch", "leased_client", "RetryingStub"]

logger = logging.getLogger("tfnas")


def role() -> str | None:
    """``"chief"``, ``"worker"`` or ``None`` (one process), from keras-tuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if name not in os.environ:
            raise ValueError(
                f"KERASTUNER_ORACLE_IP is set but {name} is not. Expected KERASTUNER_TUNER_ID "
                "(chief, or a worker id such as tuner1), KERASTUNER_ORACLE_IP and "
                f"KERASTUNER_ORACLE_PORT together. Received: {name} unset"
            )
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def leased_client(oracle):
    """keras-tuner's worker-side proxy for the chief's oracle, waiting a moment whenever it says IDLE."""
    from keras_tuner.src.distribute.oracle_client import OracleClient
    from keras_tuner.src.engine import trial as trial_module

    class LeasedOracleClient(OracleClient):
        """keras-tuner's worker-side oracle proxy; waits a moment when the chief says IDLE."""

        idle_seconds = 1.0

        def create_trial(self, tuner_id):
            trial = super().create_trial(tuner_id)
            if trial.status == trial_module.TrialStatus.IDLE:
                time.sleep(self.idle_seconds)  # another worker still holds a trial: ask again soon
            return trial

    client = LeasedOracleClient(oracle)
    client.stub = RetryingStub(client.stub)
    return client


class RetryingStub:
    """A gRPC stub whose calls are sent again when the chief went away while they were in flight.

    Only ``UNAVAILABLE`` is retried (the connection broke or was refused).
    keras-tuner's calls wait for the chief to be ready again, so each retry
    waits for the restarted chief; all retries together wait no longer than
    the call's own ``timeout`` after the first failure (keras-tuner's hour for
    a chief that is down). Any other error, and ``UNAVAILABLE`` after
    ``attempts`` tries, is raised.
    """

    def __init__(self, stub, attempts: int = 5, pause: float = 1.0) -> None:
        self._stub = stub
        self.attempts = attempts
        self.pause = pause

    def __getattr__(self, name):
        call = getattr(self._stub, name)

        def retrying(*args, **kwargs):
            import grpc

            deadline = None
            for attempt in range(1, self.attempts + 1):
                try:
                    return call(*args, **kwargs)
                except grpc.RpcError as e:
                    code = e.code() if callable(getattr(e, "code", None)) else None
                    if code != grpc.StatusCode.UNAVAILABLE or attempt == self.attempts:
                        raise
                    if kwargs.get("timeout") is not None:
                        deadline = deadline or time.monotonic() + kwargs["timeout"]
                        if deadline - time.monotonic() <= self.pause * attempt:
                            raise
                    logger.warning("the chief went away during %s (try %d of %d); sending it again",
                                   name, attempt, self.attempts)  # fmt: skip
                    time.sleep(self.pause * attempt)
                    if deadline is not None:
                        kwargs["timeout"] = deadline - time.monotonic()
            raise AssertionError("unreachable")  # pragma: no cover

        return retrying


@contextlib.contextmanager
def heartbeat(client, trial_id: str, every: float):
    """Renew ``trial_id``'s lease on the chief every ``every`` seconds while the block runs."""
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            try:
                client.get_trial(trial_id)
            except Exception as e:  # noqa: BLE001 -- a missed beat is retried; the chief may be restarting
                logger.debug("heartbeat for trial %s failed: %s", trial_id, e)

    thread = threading.Thread(target=beat, name=f"tfnas-heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def serve(oracle, address: str, *, poll_seconds: float = 0.5) -> None:
    """Serve ``oracle`` to the workers until every trial has ended (the chief's part of ``search``).

    keras-tuner's own gRPC servicer answers the workers; this loop expires
    leases and returns once the oracle has told a worker to stop, no trial is
    running and no worker is still registered.
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if server.add_insecure_port(address) == 0:
        raise OSError(
            f"The chief cannot listen on {address}. Expected a free port. Received: {address}"
        )
    server.start()
    try:
        while True:
            time.sleep(poll_seconds)
            oracle.expire_leases()
            if servicer.stop_triggered and _all_done(oracle):
                break
    finally:
        server.stop(grace=2)


def _all_done(oracle) -> bool:
    import keras_tuner

    @keras_tuner.synchronized
    def check(o):
        # A worker may still run a trial the chief no longer counts as running (a restarted
        # chief re-queued it and another worker ended it): wait while its heartbeat is fresh.
        now = time.monotonic()
        busy = any(now - last <= o.lease_seconds for last in o._beats.values())
        return not o.ongoing_trials and not o.tuner_ids and not o._retry_queue and not busy

    return check(oracle)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv: list[str], workers: int) -> int:
    """Run ``tfnas search ARGV`` as one chief and ``workers`` workers on this machine.

    Each worker gets an equal share of the cores for TensorFlow's thread
    pools. The chief's output is passed through (its progress line per
    trial and its summary); workers print only errors. Returns the chief's
    exit code; if every worker exits while the chief still waits, the chief
    is stopped and the search can be resumed by running the command again.
    """
    port = _free_port()
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    base = {**os.environ, "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    command = [sys.executable, "-m", "tfnas", "search", *argv]
    chief = subprocess.Popen(command, env={**base, "KERASTUNER_TUNER_ID": "chief"})
    crew = []
    for i in range(workers):
        env = {**base, "KERASTUNER_TUNER_ID": f"tuner{i}", "TF_NUM_INTRAOP_THREADS": threads}
        crew.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL))
    try:
        while chief.poll() is None:
            time.sleep(0.5)
            if all(w.poll() is not None for w in crew):
                time.sleep(5)  # the chief may be finishing its last report
                if chief.poll() is None:
                    codes = [w.returncode for w in crew]
                    print(f"tfnas search: error: every worker exited (codes {codes}) before the "
                          "search ended; completed trials are kept, run the same command to "
                          "resume", file=sys.stderr)  # fmt: skip
                    chief.send_signal(signal.SIGINT)
                    chief.wait(timeout=60)
                    return 1
    except KeyboardInterrupt:
        for p in (chief, *crew):
            p.send_signal(signal.SIGINT)
        for p in (chief, *crew):
            p.wait(timeout=60)
        return 130
    for w in crew:
        try:
            w.wait(timeout=30)
        except subprocess.TimeoutExpired:
            w.kill()
    return chief.returncode
