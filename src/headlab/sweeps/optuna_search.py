"""Hyperparameter search on current Optuna, with pruning: a thin Hydra sweeper around Optuna's
ask-and-tell interface (hydra-optuna-sweeper pins Optuna 2 and never hands the trial to the job).

The sweeper asks the study (in a storage: SQLite, any SQLAlchemy URL, or a journal file) for
trials, ``n_jobs`` at a time, and launches one Hydra job per trial with the trial's values as
overrides plus ``optuna_trial=<number>``. The job opens the same storage and reports its
validation metric every epoch (``headlab.callbacks.pruning``); when the pruner stops it, its
``metrics.json`` says ``pruned``. The sweeper reads each job's status and tells the study
(complete / pruned / failed), then asks again until the study holds ``n_trials`` trials.
Because the count is the study's, not this process's, the same command resumes a crashed
search, and a second worker (another shell, another machine on the same database) joins it.
A resumed search reseeds its sampler with ``seed + trials already in the study``: rebuilt with
the seed it started with, a seeded sampler would propose the trials it already ran again.
Each trial records the worker (host and process) that asked it, so a worker restarted after a
SIGKILL fails its dead predecessor's ``RUNNING`` trials at once; other machines' dead workers
are found by their heartbeats, which the sweeper waits for while the budget looks used up.

The Hydra plugin class lives in ``hydra_plugins.headlab_sweeper`` (Hydra only loads sweepers
from that package); all logic is here.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from headlab.errors import ConfigValueError, RunError

log = logging.getLogger(__name__)

TRIAL_KEY = "optuna_trial"  # the job's config key holding its trial number
STATUS_ATTR = "headlab_status"  # user attribute: how the job ended
WORKER_ATTR = "headlab_worker"  # user attribute: "<host>:<pid>" of the sweeper that asked it
INTERRUPTED = "interrupted"  # the sweeper stopped before the job ended: not counted
WAIT_POLL_SECONDS = 5  # how often a sweeper waiting for other workers' trials looks again


class SearchSpaceError(ConfigValueError):
    """A ``hydra.sweeper.params`` entry that is not an Optuna distribution."""


def distribution_of(override: Any) -> Any:
    """The Optuna distribution of one parsed Hydra sweep override; ``None`` for a plain value.

    ``choice(a,b)`` or ``a,b`` -> categorical; ``range(lo,hi,step)`` -> int/float with that step,
    ``hi`` excluded as in Hydra; ``interval(lo,hi)`` -> float (int with ``tag(int, ...)``),
    log-scaled with ``tag(log, ...)``.
    """
    from hydra.core.override_parser.types import (
        ChoiceSweep,
        IntervalSweep,
        RangeSweep,
        Transformer,
    )
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if not override.is_sweep_override():
        return None
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices = list(override.sweep_iterator(transformer=Transformer.identity))
        bad = [c for c in choices if not isinstance(c, (str, int, float, bool, type(None)))]
        if bad:
            raise ValueError(f"choices must be scalars, got {bad[0]!r} (quote it: '{bad[0]}')")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_iterator(transformer=Transformer.identity))
        if not values:
            raise ValueError("the range is empty")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if isinstance(value, IntervalSweep):  # Hydra makes both ends floats: `int` tag for ints
        log_scale = "log" in value.tags
        if "int" in value.tags:
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ValueError(f"{type(value).__name__} is not supported")


def search_space(entries: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """``key=value`` overrides -> (distributions by key, fixed overrides passed to every job)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    chosen: dict[str, Any] = {}  # key -> distribution or fixed override; the last one wins
    parser = OverridesParser.create()
    for entry in entries:
        try:
            (override,) = parser.parse_overrides([entry])
            distribution = distribution_of(override)
        except Exception as err:
            message = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
            raise SearchSpaceError(
                f"search space {entry!r} is not a valid distribution: {message}"
            ) from None
        key = override.get_key_element()
        chosen.pop(key, None)
        chosen[key] = entry if distribution is None else distribution
    fixed = [v for v in chosen.values() if isinstance(v, str)]
    return {k: v for k, v in chosen.items() if not isinstance(v, str)}, fixed


def flat(params: Any, prefix: str = "") -> dict[str, Any]:
    """``{model: {optimizer: {lr: ...}}}`` (a key set from the command line) as dotted keys."""
    out: dict[str, Any] = {}
    for key, value in dict(params).items():
        name = f"{prefix}{key}"
        if isinstance(value, (dict, DictConfig)):
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def render(value: Any) -> str:
    """A trial value as a Hydra override value (``'[256,128]'`` comes back as a list)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def trial_overrides(params: dict[str, Any], fixed: Sequence[str], number: int) -> list[str]:
    return [*fixed, *(f"{k}={render(v)}" for k, v in params.items()), f"{TRIAL_KEY}={number}"]


def probe_params(distributions: dict[str, Any]) -> dict[str, Any]:
    """One value per distribution (the first choice, the low end): enough to compose a job."""
    return {
        key: dist.choices[0] if hasattr(dist, "choices") else dist.low
        for key, dist in distributions.items()
    }


def given_up(trial: Any) -> bool:
    """Asked but never run to an end: given up by a stopped sweeper (``interrupted``), or
    failed as stale (no heartbeat: its sweeper was killed) before anyone told its result."""
    from optuna.trial import TrialState

    status = trial.user_attrs.get(STATUS_ATTR)
    return status == INTERRUPTED or (trial.state == TrialState.FAIL and status is None)


def counted(study: Any) -> int:
    """Trials that count toward ``n_trials``: all but those given up (run again instead)."""
    return sum(not given_up(t) for t in study.get_trials(deepcopy=False))


def fail_stale(study: Any) -> list[int]:
    """Fail the running trials whose sweeper stopped sending heartbeats (a SIGKILLed worker,
    a lost machine); returns their numbers. A no-op without heartbeats."""
    import optuna
    from optuna.trial import TrialState

    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9, unchanged through 5.0
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    now_failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    stale = sorted(t.number for t in now_failed if t.number in running)
    for number in stale:
        log.warning("Trial %d: no heartbeat from its worker; failed, to be run again", number)
    return stale


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def fail_orphaned(study: Any) -> list[int]:
    """Fail the running trials asked by a sweeper on this machine whose process is gone (a
    SIGKILLed worker restarted at once: its heartbeats are not yet stale); returns their
    numbers. Trials of other machines are left to ``fail_stale``."""
    from optuna.trial import TrialState

    host, orphans = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get(WORKER_ATTR, "")).rpartition(":")
        mine = worker_host == host and pid.isdigit() and int(pid) != os.getpid()
        if mine and not process_alive(int(pid)):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            orphans.append(trial.number)
    for number in orphans:
        log.warning(
            "Trial %d: its sweeper on this machine is gone; failed, to be run again", number
        )
    return orphans


def running_trials(study: Any, of_sweepers: bool = False) -> list[int]:
    """Numbers of the ``RUNNING`` trials; with ``of_sweepers``, only those a headlab sweeper
    asked (they carry its worker and its heartbeats; another tool's may never end)."""
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t.number for t in running if not of_sweepers or WORKER_ATTR in t.user_attrs]


def failure_rate(study: Any) -> float:
    """Failed trials (told ``failed`` by a sweeper; given-up ones excluded) over the trials
    that ended: what ``max_failure_rate`` bounds."""
    from optuna.trial import TrialState

    ended = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.RUNNING]
    ended = [t for t in ended if not given_up(t)]
    failed = sum(t.state == TrialState.FAIL for t in ended)
    return failed / len(ended) if ended else 0.0


class FailureRateExceeded(RunError):
    """More trials failed than ``hydra.sweeper.max_failure_rate`` allows."""


def build_sampler(sampler: Any, trials_held: int) -> Any:
    """The sampler from its config node, its ``seed`` advanced by the trials the study already
    holds: a fresh study gets the seed as given (a repeatable search), a resumed one a new
    random stream instead of the proposals it already tried. An object is used as is."""
    if sampler is None or not isinstance(sampler, (dict, DictConfig)):
        return sampler
    from hydra.utils import instantiate

    if isinstance(sampler, DictConfig):
        sampler = OmegaConf.to_container(sampler, resolve=True)
    node = OmegaConf.create(dict(sampler))
    if node.get("seed") is not None:
        node.seed = int(node.seed) + int(trials_held)
    return instantiate(node)


class Heartbeats:
    """While a batch of trials runs, record each one's heartbeat every ``interval`` seconds
    from this (the sweeper's) process: it outlives its jobs, and if it is killed the
    heartbeats stop and the next sweeper fails the trials (``fail_stale``)."""

    def __init__(self, storage: Any, study: Any, trials: Sequence[Any], interval: int | None):
        self.storage, self.interval = storage, interval
        study_id = storage.get_study_id_from_name(study.study_name)
        self.trial_ids = [
            storage.get_trial_id_from_study_id_trial_number(study_id, t.number) for t in trials
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while True:
            for trial_id in self.trial_ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception as err:  # a storage hiccup must not end the search
                    log.warning("heartbeat of trial id %d not recorded: %s", trial_id, err)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> Heartbeats:
        if self.interval and hasattr(self.storage, "record_heartbeat"):
            self._thread = threading.Thread(target=self._beat, name="optuna-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def study_counts(study: Any) -> dict[str, Any]:
    """Trials by state, epochs trained (one report per validated epoch) and the best value:
    what pruning saves, in the numbers the sweeper logs at its end."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {
        state.name.lower(): sum(t.state == state for t in trials)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    counts["epochs"] = sum(len(t.intermediate_values) for t in trials)
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    counts["best"] = study.best_value if done else None
    return counts


def job_status(job_return: Any) -> tuple[str, dict[str, Any], Path | None]:
    """How a job ended (its metrics.json ``status``) and its metrics, from the job's folder."""
    from headlab.sweeps.summary import job_metrics

    hydra_cfg = getattr(job_return, "hydra_cfg", None)
    folder = OmegaConf.select(hydra_cfg, "hydra.runtime.output_dir") if hydra_cfg else None
    if folder is None:
        return "missing", {}, None
    metrics = job_metrics(Path(folder))
    return str(metrics.get("status")), metrics, Path(folder)


def tell(study: Any, trial: Any, job_return: Any, direction_metric: str) -> str:
    """Tell the study how the trial's job ended; returns the status, also stored on the trial
    and in the job's metrics.json (``trial``)."""
    from hydra.core.utils import JobStatus
    from optuna.trial import TrialState

    from headlab.layout import metrics_path, write_metrics

    status, metrics, folder = job_status(job_return)
    value = None
    if job_return.status == JobStatus.COMPLETED and status == "completed":
        returned = job_return.return_value
        value = returned if isinstance(returned, (int, float)) else None
        if value is None or math.isnan(value):
            log.error("Trial %d: %s missing from its metrics", trial.number, direction_metric)
            status, value = "failed", None
    elif status == "completed":  # metrics written, then the process died: not a value to trust
        status = "failed"
    trial.set_user_attr(STATUS_ATTR, status)
    if folder is not None:
        trial.set_user_attr("run_dir", str(folder))
    if status == "completed":
        study.tell(trial, float(value))
    elif status == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
    if folder is not None and metrics_path(folder).is_file():
        write_metrics(folder, {**metrics, "trial": trial.number})
    return status


class OptunaSearch:
    """What the Hydra sweeper does; the plugin class only forwards to it."""

    def __init__(
        self,
        storage: str,
        study_name: str,
        n_trials: int,
        n_jobs: int = 1,
        direction: str = "maximize",
        sampler: Any = None,
        pruner: Any = None,
        params: DictConfig | dict | None = None,
        heartbeat_interval: int | None = 60,
        max_failure_rate: float = 1.0,
    ) -> None:
        self.storage = storage
        self.max_failure_rate = float(max_failure_rate)
        self.heartbeat_interval = heartbeat_interval
        self.study_name = study_name
        self.n_trials = int(n_trials)
        self.n_jobs = int(n_jobs)
        self.direction = str(direction)
        self.sampler = sampler
        self.pruner = pruner
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.sweeper: Any = None  # the Hydra plugin, whose validate_batch_is_legal composes jobs
        self.waiting_for: list[int] = []  # other workers' running trials last logged

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig, sweeper: Any):
        from hydra.core.plugins import Plugins

        self.config = config
        self.sweeper = sweeper
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def check(self, distributions: dict[str, Any]) -> None:
        if self.n_trials < 1 or self.n_jobs < 1:
            raise ConfigValueError(
                f"hydra.sweeper.n_trials={self.n_trials} and n_jobs={self.n_jobs} must be >= 1"
            )
        if self.direction not in ("maximize", "minimize"):
            raise ConfigValueError(
                f"hydra.sweeper.direction={self.direction!r}: use maximize or minimize"
            )
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ConfigValueError(
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate}: give a share of "
                "failed trials in [0, 1] (1: never stop)"
            )
        if not distributions:
            raise SearchSpaceError("hydra.sweeper.params holds no search space (choice/interval)")

    def open_study(self, metric: str) -> Any:
        """The study, created or loaded; its sampler seeded past the trials it holds and its
        objective named ``metric`` (the dashboard's axis). A study made for another metric
        or direction is refused: its values would mix two objectives."""
        import optuna

        from headlab.callbacks.pruning import make_pruner, open_storage

        self.opened = open_storage(str(self.storage), self.heartbeat_interval)
        study = optuna.create_study(
            storage=self.opened,
            pruner=make_pruner(self.pruner),
            study_name=self.study_name,
            direction=self.direction,
            load_if_exists=True,
        )
        if study.direction.name.lower() != self.direction:
            raise ConfigValueError(
                f"study {self.study_name!r} in {self.storage} was created to "
                f"{study.direction.name.lower()}; hydra.sweeper.direction={self.direction} "
                "would mix them: give another study_name"
            )
        named = study.metric_names
        if named is not None and named != [metric]:
            raise ConfigValueError(
                f"study {self.study_name!r} in {self.storage} optimizes {named[0]}; "
                f"optimized_metric={metric} would mix them: give another study_name"
            )
        if named is None:
            with warnings.catch_warnings():  # "experimental" since Optuna 3.2
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([metric])
        study.sampler = build_sampler(self.sampler, len(study.get_trials(deepcopy=False)))
        return study

    def wait_for_others(self, study: Any) -> bool:
        """With the budget used up but trials still ``RUNNING`` elsewhere: whether to wait for
        them (they may be a killed worker's, which its heartbeats will reveal). Without
        heartbeats nobody can tell, and the sweeper ends saying so."""
        running = running_trials(study, of_sweepers=True)
        if not running:
            return False
        if not (self.heartbeat_interval and hasattr(self.opened, "record_heartbeat")):
            log.warning(
                "Trials %s are still RUNNING in other workers; this storage keeps no "
                "heartbeats, so a killed worker's trial stays RUNNING: run the search again "
                "once they end",
                running,
            )
            return False
        if running != self.waiting_for:  # one line per change, not one per look
            self.waiting_for = running
            log.info(
                "Waiting for trials %s of other workers (failed and run again if their "
                "heartbeats stop for %d s)",
                running, 2 * int(self.heartbeat_interval),
            )  # fmt: skip
        # a trial that ends is seen within seconds; a dead worker's after its grace period
        time.sleep(min(int(self.heartbeat_interval), WAIT_POLL_SECONDS))
        return True

    def check_failure_rate(self, study: Any, sweep_dir: Path) -> None:
        rate = failure_rate(study)
        if rate > self.max_failure_rate:
            self.write_results(study, sweep_dir)
            raise FailureRateExceeded(
                f"{rate:.0%} of the study's ended trials failed, above "
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate}: see the failed "
                "trials' metrics.json; the same command resumes once fixed"
            )

    def sweep(self, arguments: list[str]) -> list[Any]:
        try:
            return self._sweep(arguments)
        except RunError as err:
            log.error("%s", err)
            raise SystemExit(1) from None

    def _sweep(self, arguments: list[str]) -> list[Any]:
        assert self.config is not None and self.launcher is not None
        entries = [f"{k}={v}" for k, v in flat(self.params).items()] + list(arguments)
        distributions, fixed = search_space(entries)
        self.check(distributions)
        # the job config must compose before any trial exists (a typo'd key fails here)
        probe = trial_overrides(probe_params(distributions), fixed, 0)
        self.sweeper.validate_batch_is_legal([probe])
        metric = str(OmegaConf.select(self.config, "optimized_metric", default="value"))
        study = self.open_study(metric)

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        running = running_trials(study)
        log.info(
            "Study %r in %s: %d of %d trials done or running (running: %s); %s %s",
            self.study_name, self.storage, counted(study), self.n_trials, running or "none",
            self.direction, metric,
        )  # fmt: skip
        returns: list[Any] = []
        pending: list[Any] = []
        try:
            while True:
                fail_stale(study)  # a killed worker's trials: failed here, run again below
                fail_orphaned(study)
                left = self.n_trials - counted(study)
                if left <= 0:
                    if self.wait_for_others(study):
                        continue
                    break
                with warnings.catch_warnings():  # Optuna: heartbeats are "for optimize()"
                    warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                    pending = [study.ask(distributions) for _ in range(min(self.n_jobs, left))]
                for trial in pending:
                    trial.set_user_attr(WORKER_ATTR, this_worker())
                batch = [trial_overrides(t.params, fixed, t.number) for t in pending]
                with Heartbeats(self.opened, study, pending, self.heartbeat_interval):
                    results = self.launcher.launch(batch, initial_job_idx=pending[0].number)
                for trial, job_return in zip(pending, results, strict=True):
                    status = tell(study, trial, job_return, metric)
                    log.info("Trial %d %s: %s", trial.number, status, dict(trial.params))
                pending = []
                returns.append(results)
                self.check_failure_rate(study, sweep_dir)
        finally:
            give_up(study, pending)
        self.write_results(study, sweep_dir)
        return returns

    def write_results(self, study: Any, sweep_dir: Path) -> None:
        """``optimization_results.yaml`` (best trial) and ``study_trials.csv`` (every trial of
        the study, all workers and resumes included) in the sweep folder."""
        from optuna.trial import TrialState

        from headlab.files import atomic_write_text

        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if done:
            best = study.best_trial
            results = {
                "name": "optuna",
                "study_name": self.study_name,
                "storage": str(self.storage),
                "best_trial": best.number,
                # typed as the trial holds them: ints, floats, the categories as written
                "best_params": dict(best.params),
                "best_value": best.value,
            }
            OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
            log.info("Best trial %d: %s = %s", best.number, best.params, best.value)
        else:
            log.warning("No trial of study %r completed: no best parameters", self.study_name)
        log.info("Study %r: %s", self.study_name, study_counts(study))
        log.info("To look at the study: %s", dashboard_command(str(self.storage)))
        frame = study.trials_dataframe(attrs=("number", "value", "state", "params", "user_attrs"))
        atomic_write_text(sweep_dir / "study_trials.csv", frame.to_csv(index=False))


def dashboard_command(storage: str) -> str:
    """The ``optuna-dashboard`` command for a storage URL: a database URL as it is, a journal
    file by its path (the dashboard tells a journal from a database by the file itself)."""
    from headlab.callbacks.pruning import JOURNAL_PREFIX

    if storage.startswith(JOURNAL_PREFIX):
        return f"optuna-dashboard {storage[len(JOURNAL_PREFIX) - 1 :]}"
    return f"optuna-dashboard {storage}"


def give_up(study: Any, trials: Sequence[Any]) -> None:
    """Trials asked but never told (Ctrl-C, a launcher error) end as failed, marked
    ``interrupted`` so that a resumed search runs them again instead of counting them."""
    from optuna.trial import TrialState

    for trial in trials:
        try:
            trial.set_user_attr(STATUS_ATTR, INTERRUPTED)
            study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        except Exception as err:  # the storage itself may be what failed
            log.warning("Trial %d left running in the study: %s", trial.number, err)
