"""The oracle every tfnas strategy builds on.

A strategy is a keras-tuner ``Oracle`` whose logic sits in
:meth:`NASOracle.propose` (return a genome); the genome travels to the tuner as
a JSON string hyperparameter named ``genome``. Before a genome becomes a
trial, the oracle screens it with the genome-level estimate
(:func:`tfnas.memory.estimate_memory`) and analytic costs against the
constraints: a candidate that cannot fit is recorded as *rejected* (kept in the
oracle's JSON state, never trained, never counted as a failure) and another is
proposed.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from tfnas._kt import keras_tuner
from tfnas.errors import InfeasibleModelError, SearchSpaceError, TrialsFailedError
from tfnas.genome import Genome, SearchSpace
from tfnas.objectives import Constraints
from tfnas.strategies.core import hybrid_scores, screen

__all__ = ["NASOracle"]

logger = logging.getLogger("tfnas")


class NASOracle(keras_tuner.Oracle):
    """Base oracle: proposes genomes, screens them, keeps rejected ones.

    Parameters
    ----------
    space:
        The :class:`~tfnas.genome.SearchSpace` to search.
    constraints:
        Device bounds (:class:`~tfnas.objectives.Constraints`).
    objective:
        keras-tuner objective; default ``Objective("score", "min")``, the
        constraint-aware scalarised score the tuner reports.
    max_trials:
        Trained trials (rejected candidates do not count).
    max_rejections:
        Consecutive rejected proposals after which the search stops with
        :class:`~tfnas.errors.InfeasibleModelError` (the space cannot meet the
        constraints).
    seed:
        Seeds every random choice; a resumed search continues the same stream.
    proxy_pool:
        Zero-shot pre-ranking: draw this many screened candidates per trial
        and train only the best by the MicroNAS hybrid objective
        (:func:`tfnas.strategies.core.hybrid_scores`); 1 (default) trains every
        proposal. Needs :meth:`set_proxy_data` (the tuner calls it).
    proxy_weights:
        Hybrid weights on ``macs``, ``latency_ms``, ``params`` and ``width`` (and ``ntk_cond``,
        ``regions``).
    halving:
        Successive halving (asynchronous, as ASHA): ``{"min_epochs": e0, "eta": eta,
        "max_epochs": E}``. A new candidate trains ``e0`` epochs (rung 0);
        whenever ``eta`` trials of a rung have completed per promotion so far,
        the best of them not yet promoted continues from its weights to
        ``e0 * eta**r`` epochs, up to ``E``. Promotions are trials too (they
        count in ``max_trials``) and carry ``tuner/trial_id`` (the parent),
        ``tuner/initial_epoch`` and ``tuner/epochs``, as keras-tuner's Hyperband does.
        With ``"min_data": f`` (a fraction in (0, 1], default 1) the training
        set is a fidelity too: rung ``r`` trains on the first
        ``min(1, f * eta**r)`` of one fixed, seeded shuffle of it (the tuner
        takes the subset; a promotion sees every sample its parent saw, and
        more), so a large dataset screens new candidates at a fraction of an
        epoch's cost. Trials carry the fraction as ``tuner/data``.
    lease_seconds:
        Distributed search (keras-tuner's chief and workers): a worker that
        has not been heard from for this long (workers send a heartbeat every
        quarter of it while they run a trial) loses its trial, which goes back
        to the queue for another worker. While a trial is out on a lease, a
        worker asking for one more waits instead of stopping, so a dead
        worker's trial is always run.
    """

    #: Whether a genome already tried may be proposed again (MSNAS re-samples on purpose).
    allow_duplicates = False

    def __init__(
        self,
        space: SearchSpace,
        constraints: Constraints | None = None,
        *,
        objective=None,
        max_trials: int = 10,
        max_rejections: int = 500,
        seed: int = 0,
        max_consecutive_failed_trials: int = 3,
        proxy_pool: int = 1,
        proxy_weights: dict | None = None,
        halving: dict | None = None,
        lease_seconds: float = 300.0,
    ) -> None:
        from tfnas.validation import check_int

        check_int("max_trials", max_trials, 1)
        check_int("max_rejections", max_rejections, 1)
        check_int("seed", seed, 0)
        check_int("max_consecutive_failed_trials", max_consecutive_failed_trials, 1)
        if not isinstance(space, SearchSpace):
            raise ValueError(f"space must be a tfnas SearchSpace. Received: {type(space).__name__}")
        if constraints is not None and not isinstance(constraints, Constraints):
            raise ValueError(
                f"constraints must be a tfnas Constraints. Received: {type(constraints).__name__}"
            )
        super().__init__(
            objective=objective or keras_tuner.Objective("score", "min"),
            max_trials=max_trials,
            seed=seed,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        # keras-tuner replaces a seed of 0 by a random one; tfnas keeps the caller's seed.
        self.seed = self._seed_state = int(seed)
        self.space = space
        self.constraints = constraints or Constraints()
        self.max_rejections = max_rejections
        self.rejected: list[dict] = []
        self.saved_constraints: dict | None = None
        self._display.verbose = 0  # tfnas prints its own one-line progress
        if isinstance(proxy_pool, bool) or not isinstance(proxy_pool, int) or proxy_pool < 1:
            raise ValueError(
                f"proxy_pool must be an integer >= 1. Received: proxy_pool={proxy_pool!r}"
            )
        self.proxy_pool = proxy_pool
        self.proxy_weights = dict(proxy_weights or {})
        hybrid_scores([], self.proxy_weights)  # validates the weight names
        self.halving = _check_halving(halving)
        if (
            isinstance(lease_seconds, bool)
            or not isinstance(lease_seconds, (int, float))
            or not lease_seconds > 0
        ):
            raise ValueError(
                f"lease_seconds must be a positive number. Received: lease_seconds={lease_seconds!r}"
            )
        self.lease_seconds = float(lease_seconds)
        #: Last time each running trial's worker was heard from (monotonic seconds; not saved).
        self._beats: dict[str, float] = {}
        #: Which tuner (worker) ran each trial, and trials whose lease ran out (JSON state).
        self.assignments: dict[str, list[str]] = {}
        #: Called after each ended trial (the chief's tuner writes the report with it).
        self.on_trial_ended = None
        self.proxy_x = None
        #: Zero-shot indicators of every candidate scored, by genome hash (JSON state).
        self.proxies: dict[str, dict] = {}

    # ------------------------------------------------------------- proxies

    def set_proxy_data(self, x) -> None:
        """Training inputs for the zero-shot indicators (the first 64 are used)."""
        self.proxy_x = None if x is None else x[:64]

    def zero_shot(self, genome: Genome) -> dict:
        """The hybrid objective's metrics of ``genome`` (cached by genome hash)."""
        key = genome.canonical_hash()
        if key not in self.proxies:
            if self.proxy_x is None:
                raise ValueError(
                    "Zero-shot ranking needs training samples. Expected set_proxy_data(x) "
                    "before the search (NASTuner.search does it). Received: none"
                )
            from tfnas.proxies import hardware_indicators, zero_shot

            z = zero_shot(genome, self.proxy_x)
            cal = self.constraints.latency_calibration
            # A calibration is for the target's kernels; without one, the earlier default stays.
            kernels = cal.kernels if cal is not None else "optimized"
            hw = hardware_indicators(
                genome, self.constraints.latency_device, kernels=kernels, calibration=cal
            )
            self.proxies[key] = {"ntk_cond": z.ntk_cond, "regions": z.regions,
                                 "macs": hw["macs"], "latency_ms": hw["latency_ms"], "params": hw["params"],
                                 "width": hw["width"], "proxy_seconds": z.seconds}  # fmt: skip
        elif "width" not in self.proxies[key]:
            # saved by a search from before the width indicator: add it, without the proxies' cost
            from tfnas.genome.costs import narrowest_channels

            self.proxies[key]["width"] = float(narrowest_channels(genome))
        return self.proxies[key]

    def rank_by_proxy(self, genomes: list[Genome]) -> list[int]:
        """Indices of ``genomes``, best hybrid score first."""
        scores = hybrid_scores([self.zero_shot(g) for g in genomes], self.proxy_weights)
        return [int(i) for i in np.argsort(scores, kind="stable")]

    # -------------------------------------------------------------- strategy

    def propose(self, rng: np.random.Generator) -> Genome:
        """Return the next genome to try (subclasses implement the strategy)."""
        raise NotImplementedError

    def rng(self, trial_id: str, attempt: int) -> np.random.Generator:
        """A generator determined by the seed, the trial and the attempt (resumable)."""
        return np.random.default_rng([self.seed, int(trial_id), attempt])

    def populate_space(self, trial_id: str) -> dict:
        """A promotion when successive halving has one due, else a new candidate."""
        if self.halving:
            promotion = self._promotion()
            if promotion is not None:
                return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": promotion}
        return self.new_candidate(trial_id)

    def new_candidate(self, trial_id: str) -> dict:
        """The next untried genome: proposed, screened and (with ``proxy_pool``) pre-ranked."""
        running = keras_tuner.engine.trial.TrialStatus.RUNNING
        pool: list[Genome] = []
        for attempt in range(self.max_rejections):
            rng = self.rng(trial_id, attempt)
            try:
                genome = self.propose(rng)
            except SearchSpaceError as e:
                logger.debug("proposal failed: %s", e)
                continue
            values = {"genome": genome.to_json()}
            if not self.allow_duplicates and (
                self._duplicate(self._fidelity(values)) or genome in pool
            ):
                continue
            checked = screen(genome, self.constraints)
            if checked["violations"]:
                self.rejected.append({"trial_id": trial_id, "genome": values["genome"], **checked})
                continue
            pool.append(genome)
            if len(pool) == self.proxy_pool:
                break
        if pool:  # the full pool, or fewer screened candidates: rank what there is
            best = pool[self.rank_by_proxy(pool)[0]] if len(pool) > 1 else pool[0]
            return {"status": running, "values": self._fidelity({"genome": best.to_json()})}
        self.save()
        raise InfeasibleModelError(
            f"No candidate met the constraints in {self.max_rejections} proposals. Expected a search "
            f"space that can fit {self.constraints.bounds()}. Received: {len(self.rejected)} "
            "rejected candidates (see the search report)"
        )

    # --------------------------------------------------- distributed leases

    @keras_tuner.synchronized
    def create_trial(self, tuner_id: str):
        """keras-tuner's ``create_trial``, with leases for distributed workers.

        Expired leases go back to the queue first. When every trial has been
        handed out but another worker still holds one, the caller gets an
        ``IDLE`` trial (ask again) rather than ``STOPPED``: that trial may
        come back to the queue if its worker has died.
        """
        self.expire_leases()
        Trial = keras_tuner.engine.trial.Trial
        status = keras_tuner.engine.trial.TrialStatus
        if (
            tuner_id not in self.ongoing_trials
            and not self._retry_queue
            and self.max_trials
            and len(self.trials) >= self.max_trials
            and any(other != tuner_id for other in self.ongoing_trials)
        ):
            self.tuner_ids.add(tuner_id)
            return Trial(self.get_space(), status=status.IDLE)
        trial = super().create_trial(tuner_id)
        if trial.status == status.RUNNING:
            self._beats[trial.trial_id] = time.monotonic()
            runs = self.assignments.setdefault(trial.trial_id, [])
            if not runs or runs[-1] != tuner_id:
                runs.append(tuner_id)
                self.save()
        return trial

    @keras_tuner.synchronized
    def get_trial(self, trial_id: str):
        """The trial; from a worker it is also the heartbeat that renews its lease."""
        self._beats[trial_id] = time.monotonic()
        return super().get_trial(trial_id)

    @keras_tuner.synchronized
    def expire_leases(self) -> list[str]:
        """Put back in the queue every running trial whose worker fell silent; returns their ids."""
        now = time.monotonic()
        expired = []
        for tuner_id, trial in list(self.ongoing_trials.items()):
            last = self._beats.setdefault(trial.trial_id, now)
            if now - last > self.lease_seconds:
                self.ongoing_trials.pop(tuner_id)
                self.tuner_ids.discard(tuner_id)
                if trial.trial_id not in self._retry_queue:
                    self._retry_queue.append(trial.trial_id)
                self._beats.pop(trial.trial_id, None)
                expired.append(trial.trial_id)
                logger.warning("worker %s was silent for %.0f s: trial %s goes back to the queue",
                               tuner_id, now - last, trial.trial_id)  # fmt: skip
        if expired:
            self.save()
        return expired

    @keras_tuner.synchronized
    def end_trial(self, trial) -> None:
        """keras-tuner's ``end_trial``; a second end of a finished trial (a worker that came back
        after its lease ran out) is ignored, so no trial is counted twice."""
        if trial.trial_id in self.end_order:
            logger.warning(
                "trial %s already ended; a late result for it is ignored", trial.trial_id
            )
            # Whoever still holds it is free again (else keras-tuner hands it the same trial forever).
            self._release(trial.trial_id)
            self._beats.pop(trial.trial_id, None)
            return
        if trial.trial_id in self._retry_queue:  # its worker came back before anyone else took it
            self._retry_queue.remove(trial.trial_id)
        self._beats.pop(trial.trial_id, None)
        super().end_trial(trial)
        if self.on_trial_ended is not None:
            self.on_trial_ended(self.trials[trial.trial_id])

    def reload(self) -> None:
        """keras-tuner's ``reload``, without re-queueing trials that had already ended.

        keras-tuner saves the oracle in ``end_trial`` before it takes the trial
        off the running list, and ``reload`` puts every running trial back in
        the queue. A chief killed between the two would run an ended trial
        again (and flip its status) after its restart.
        """
        super().reload()
        self._drop_ended_from_queue()

    def _release(self, trial_id: str) -> None:
        """Take ``trial_id`` off the running list of every tuner that holds it."""
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial_id:
                self.ongoing_trials.pop(tuner_id)

    def _drop_ended_from_queue(self) -> None:
        ended = set(self.end_order)
        queue = [t for t in dict.fromkeys(self._retry_queue) if t not in ended]
        if queue != self._retry_queue:
            logger.debug("ended trials taken out of the retry queue: %s",
                         sorted(set(self._retry_queue) - set(queue)))  # fmt: skip
            self._retry_queue[:] = queue

    # ----------------------------------------------------- successive halving

    def _fidelity(self, values: dict) -> dict:
        if self.halving:
            values.update(self._rung_values(0))
        return values

    def _rung_values(self, rung: int) -> dict:
        """The fidelity of a trial of ``rung``: its epochs (from where its parent stopped), and its data."""
        values = {"tuner/initial_epoch": self.rung_epochs(rung - 1) if rung else 0,
                  "tuner/epochs": self.rung_epochs(rung), "tuner/rung": rung}  # fmt: skip
        if self.halving["min_data"] < 1:
            values["tuner/data"] = self.rung_data(rung)
        return values

    def rung_data(self, rung: int) -> float:
        """The fraction of the training set a trial of ``rung`` trains on (``min_data * eta**rung``, capped at 1)."""
        h = self.halving
        return float(min(1.0, h["min_data"] * h["eta"] ** rung))

    def rung_epochs(self, rung: int) -> int:
        """Epochs a trial of ``rung`` has trained in all (``min_epochs * eta**rung``, capped)."""
        h = self.halving
        return int(min(h["max_epochs"], h["min_epochs"] * h["eta"] ** rung))

    def _promotion(self) -> dict | None:
        """The next promotion due, if any: the best unpromoted trial of the highest rung possible."""
        h = self.halving
        done = self.completed_trials()
        promoted = {
            t.hyperparameters.values.get("tuner/trial_id")
            for t in self.trials.values()
            if t.hyperparameters.values.get("tuner/trial_id")
        }
        top = 0
        while self.rung_epochs(top) < h["max_epochs"]:
            top += 1
        for rung in reversed(range(top)):
            members = [t for t in done if t.hyperparameters.values.get("tuner/rung", 0) == rung]
            quota = len(members) // h["eta"]
            ranked = sorted(
                members, key=lambda t: (self.trial_metrics(t).get("score", np.inf), t.trial_id)
            )
            for trial in ranked[:quota]:
                if trial.trial_id not in promoted:
                    return {
                        "genome": trial.hyperparameters.values["genome"],
                        "tuner/trial_id": trial.trial_id,
                        **self._rung_values(rung + 1),
                    }
        return None

    def _check_consecutive_failures(self) -> None:
        """keras-tuner's limit on failures in a row, as a one-line error that loses nothing."""
        try:
            super()._check_consecutive_failures()
        except RuntimeError as e:
            last = self.trials[self.end_order[-1]]
            self._save_trial(last)
            self._release(last.trial_id)
            self.save()
            lines = [line.strip() for line in (last.message or "").splitlines() if line.strip()]
            raise TrialsFailedError(
                f"{self.max_consecutive_failed_trials} trials in a row failed, so the search stopped. "
                f"Last reason: {lines[-1] if lines else 'unknown'}. Completed trials are kept; fix the "
                "cause and run the search again to resume"
            ) from e

    # -------------------------------------------------------------- results

    def get_best_trials(self, num_trials: int = 1) -> list:
        """The best trials: feasible ones first, each group by score (lower is better)."""
        done = keras_tuner.engine.trial.TrialStatus.COMPLETED
        ranked = sorted(
            (t for t in self.trials.values() if t.status == done),
            key=lambda t: (not self.trial_metrics(t).get("feasible"), t.score, t.trial_id),
        )
        return ranked[:num_trials]

    def completed_trials(self) -> list:
        """Completed trials in the order they ended."""
        done = keras_tuner.engine.trial.TrialStatus.COMPLETED
        return [self.trials[t] for t in self.end_order if self.trials[t].status == done]

    @staticmethod
    def trial_genome(trial) -> Genome:
        return Genome.from_json(trial.hyperparameters.values["genome"])

    @staticmethod
    def trial_metrics(trial) -> dict[str, float]:
        return {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}

    # ---------------------------------------------------------------- state

    def get_state(self) -> dict:
        state = super().get_state()
        state["tfnas"] = {
            "space": {"name": self.space.name, "config": self.space.get_config()},
            "constraints": self.constraints.to_dict(),
            "rejected": self.rejected,
            "proxies": self.proxies,
            "proxy_pool": self.proxy_pool,
            "halving": self.halving,
            "strategy": type(self).__name__,
            "assignments": self.assignments,
        }
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        saved = state.get("tfnas", {})
        self.rejected = saved.get("rejected", [])
        self.proxies = saved.get("proxies", {})
        #: The constraints the saved trials were scored with (the tuner re-scores when they differ).
        self.saved_constraints = saved.get("constraints")
        self.assignments = saved.get("assignments", {})
        if saved.get("strategy") and saved["strategy"] != type(self).__name__:
            raise SearchSpaceError(
                f"The search being resumed used another strategy. Expected {saved['strategy']}. "
                f"Received: {type(self).__name__} (use another output folder, or overwrite=True to start anew)"
            )
        if saved.get("space"):
            mine = json.loads(json.dumps(self.space.get_config()))
            if saved["space"]["config"] != mine:
                raise SearchSpaceError(
                    "The search being resumed used another search space. Expected "
                    f"{saved['space']['config']}. Received: {mine} (pass overwrite=True to start anew)"
                )


def _check_halving(halving: dict | None) -> dict | None:
    if halving is None:
        return None
    if not isinstance(halving, dict):
        raise ValueError(
            "halving must be a dict with min_epochs, eta and max_epochs. "
            f"Received: halving={halving!r}"
        )
    unknown = sorted(set(halving) - {"min_epochs", "eta", "max_epochs", "min_data"})
    if unknown:
        raise ValueError(
            f"Unknown halving settings {unknown}. Expected min_epochs, eta, max_epochs, min_data. "
            f"Received: {halving}"
        )
    h = {"min_epochs": 1, "eta": 3, "min_data": 1.0, **halving}
    data = h["min_data"]
    if isinstance(data, bool) or not isinstance(data, (int, float)) or not 0 < data <= 1:
        raise ValueError(
            "halving['min_data'] must be a fraction of the training set in (0, 1]. "
            f"Received: min_data={data!r}"
        )
    h["min_data"] = float(data)
    for key in ("min_epochs", "eta", "max_epochs"):
        value = h.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < (2 if key == "eta" else 1)
        ):
            raise ValueError(
                f"halving[{key!r}] must be an integer >= {2 if key == 'eta' else 1}. "
                f"Received: {key}={value!r}"
            )
    if h["max_epochs"] <= h["min_epochs"]:
        raise ValueError(
            "halving needs max_epochs > min_epochs (otherwise nothing is promoted). "
            f"Received: min_epochs={h['min_epochs']}, max_epochs={h['max_epochs']}"
        )
    return h
