"""headlab's Optuna sweeper: the search space, the storage, how a job's end is told to the
study, and (slow) whole searches: pruning, resuming, two workers on one study."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

optuna = pytest.importorskip("optuna", minversion="4")

from hydra.core.utils import JobStatus  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState  # noqa: E402

from headlab.callbacks.pruning import StorageError, TrialPruning, open_storage  # noqa: E402
from headlab.run.outcome import outcome_of  # noqa: E402
from headlab.sweeps.optuna_search import (  # noqa: E402
    Heartbeats,
    SearchSpaceError,
    counted,
    fail_stale,
    give_up,
    search_space,
    study_counts,
    tell,
)
from headlab.sweeps.reader import unfinished_jobs  # noqa: E402
from tests import launch  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

# ---------------------------------------------------------------- search space (fast)


def test_search_space_of_the_shipped_config_is_the_optuna_distributions():
    cfg = OmegaConf.load(ROOT / "configs" / "hparams_search" / "optuna.yaml")
    entries = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    distributions, fixed = search_space([*entries, "trainer.max_epochs=3", "head=sigmoid"])
    assert distributions == {
        "model.optimizer.lr": FloatDistribution(1e-4, 1e-2, log=True),
        "model.optimizer.weight_decay": CategoricalDistribution([0.0, 1e-5, 1e-4, 1e-3]),
        "model.backbone.hidden": CategoricalDistribution(
            ["[128]", "[256,128]", "[512,256]", "[1024,512]"]
        ),
    }
    # a plain value is fixed for every trial; the last word on `head` is the command line's
    assert fixed == ["trainer.max_epochs=3", "head=sigmoid"]


def test_ranges_keep_hydras_exclusive_end_and_intervals_their_type():
    entries = ["a=range(1,10,3)", "b=range(0.5,2.0,0.5)", "c=interval(2,8)"]
    distributions, _ = search_space([*entries, "d=tag(log,int,interval(1,64))"])
    assert distributions["a"] == IntDistribution(1, max(range(1, 10, 3)), step=3)  # 1, 4, 7
    assert distributions["b"] == FloatDistribution(0.5, 1.5, step=0.5)
    assert distributions["c"] == FloatDistribution(2.0, 8.0)  # Hydra's intervals are floats
    assert distributions["d"] == IntDistribution(1, 64, log=True)


@pytest.mark.parametrize(
    "entry",
    [
        "model.optimizer.lr=interval(0.01,0.001)",  # low > high
        "model.optimizer.lr=tag(log,interval(0,0.1))",  # log of 0
        "head=choice([1,2],soft)",  # a list is no category
        "x=range(5,1)",  # empty
        "x=choice(a,",  # not Hydra syntax
    ],
)
def test_a_search_space_that_is_no_distribution_is_one_line(entry):
    with pytest.raises(SearchSpaceError) as error:
        search_space([entry])
    assert "\n" not in str(error.value) and entry in str(error.value)


# ---------------------------------------------------------------- storage (fast)


def test_an_unopenable_storage_is_one_line_naming_the_url(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for url in (f"sqlite:///{blocker}/sub/x.db", "nosuchdialect://host/db"):
        with pytest.raises(StorageError) as error:
            open_storage(url)
        assert url in str(error.value) and "\n" not in str(error.value)


def test_opening_retries_only_while_another_process_creates_the_database(monkeypatch):
    """Two sweepers started together both create the new database's tables; the loser's
    errors (as seen in CI) are retried, anything else is reported at once."""
    import sqlalchemy.exc

    import headlab.callbacks.pruning as pruning

    monkeypatch.setattr(pruning.time, "sleep", lambda seconds: None)
    race = [
        sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed")),
        sqlalchemy.exc.OperationalError("CREATE", {}, Exception("table studies already exists")),
    ]
    calls: list[str] = []

    def open_once(url, heartbeat_interval):
        calls.append(url)
        if len(calls) <= len(race):
            raise race[len(calls) - 1]
        return "storage"

    monkeypatch.setattr(pruning, "_open_storage_once", open_once)
    assert open_storage("sqlite:///x.db") == "storage" and len(calls) == 3

    calls.clear()
    race[:] = [sqlalchemy.exc.OperationalError("", {}, Exception("unable to open database"))] * 9
    with pytest.raises(StorageError, match="unable to open"):
        open_storage("sqlite:///x.db")
    assert len(calls) == 1


@pytest.mark.slow  # four processes, five new databases (without the retry most of them fail)
def test_four_processes_opening_one_new_database_together_all_succeed(tmp_path):
    import multiprocessing

    # forked, not spawned: a spawned worker imports this module, torch and Lightning (~10 s)
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        for i in range(5):
            url = f"sqlite:///{tmp_path}/{i}/s.db"
            start = _now() + 1.0
            assert pool.map(_open_at, [(url, start)] * 4) == ["ok"] * 4


def _now() -> float:
    import time

    return time.time()


def _open_at(args: tuple[str, float]) -> str:
    """Open ``url`` at wall time ``start`` (a pool's worker: all start together); asleep until
    the last 20 ms, so four spinning workers do not starve each other of two cores."""
    import time

    url, start = args
    time.sleep(max(0.0, start - _now() - 0.02))
    while _now() < start:
        pass
    open_storage(url)
    return "ok"


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_a_study_is_found_again_in_its_storage(tmp_path, scheme):
    url = f"{scheme}:///{tmp_path}/deep/study.{'db' if scheme == 'sqlite' else 'log'}"
    study = optuna.create_study(storage=open_storage(url), study_name="s", direction="maximize")
    study.tell(study.ask({"x": FloatDistribution(0, 1)}), 0.5)
    again = optuna.load_study(study_name="s", storage=open_storage(url))
    assert [t.value for t in again.trials] == [0.5]


def test_pruning_callback_without_a_trial_does_nothing():
    callback = TrialPruning(storage=None, study_name=None, trial_number=None, monitor="val/acc")
    callback.on_validation_end(None, None)  # no trainer needed: nothing is reported


# ---------------------------------------------------------------- telling the study (fast)


def job_return(folder: Path, status: str, value: float | None, **metrics) -> SimpleNamespace:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps({"status": status, **metrics}))
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(folder)}}})
    return SimpleNamespace(
        status=JobStatus.COMPLETED, return_value=value, hydra_cfg=hydra_cfg, _return_value=value
    )


def test_each_job_ending_becomes_the_trials_state_and_metrics_json_gets_its_number(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db", direction="maximize")
    space = {"x": FloatDistribution(0, 1)}
    endings = [("completed", 0.75), ("pruned", float("nan")), ("failed", float("nan"))]
    for i, (status, value) in enumerate(endings):
        trial = study.ask(space)
        trial.report(0.25, step=0)
        ret = job_return(tmp_path / str(i), status, value, **{"val/acc": 0.25})
        assert tell(study, trial, ret, "val/acc") == status
    states = [(t.state, t.value, t.user_attrs["headlab_status"]) for t in study.trials]
    # a pruned trial keeps its last reported value (Optuna's rule); a failed one has none
    assert states == [
        (TrialState.COMPLETE, 0.75, "completed"),
        (TrialState.PRUNED, 0.25, "pruned"),
        (TrialState.FAIL, None, "failed"),
    ]
    counts = study_counts(study)  # one report each: 3 epochs
    assert counts == {"complete": 1, "pruned": 1, "fail": 1, "epochs": 3, "best": 0.75}
    for i in range(3):
        assert json.loads((tmp_path / str(i) / "metrics.json").read_text())["trial"] == i
    # a completed job whose metric is missing (NaN returned) is a failure, not a value
    trial = study.ask(space)
    ret = job_return(tmp_path / "3", "completed", float("nan"))
    assert tell(study, trial, ret, "val/acc") == "failed"


def test_trials_a_stopped_sweeper_gave_up_are_failed_and_not_counted(tmp_path):
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db")
    space = {"x": FloatDistribution(0, 1)}
    study.tell(study.ask(space), 1.0)
    asked = [study.ask(space), study.ask(space)]
    give_up(study, asked)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL]
    assert counted(study) == 1  # a resume runs those two again


@pytest.mark.slow  # waits 4.6 s for the heartbeats
def test_a_trial_whose_sweeper_stopped_beating_is_failed_and_run_again(tmp_path):
    """A SIGKILLed worker leaves its trial RUNNING; with heartbeats every second, the next
    sweeper finds it silent after the grace period, fails it and does not count it."""
    import time

    assert isinstance(open_storage(f"sqlite:///{tmp_path}/s.db", 60), optuna.storages.RDBStorage)
    # heartbeat times are kept to the second: a grace of 3 s keeps the live trial (last beat
    # under 1 s ago) clear of it, and 4.5 s of silence puts the killed one past it
    storage = optuna.storages.RDBStorage(
        f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1, grace_period=3
    )
    study = optuna.create_study(storage=storage, study_name="hb")
    space = {"x": FloatDistribution(0, 1)}
    alive, killed = study.ask(space), study.ask(space)
    with Heartbeats(storage, study, [alive, killed], interval=1):
        time.sleep(0.1)  # both beat once; then "killed"'s worker dies
    with Heartbeats(storage, study, [alive], interval=1):
        time.sleep(4.5)
        assert fail_stale(study) == [killed.number]
    states = {t.number: t.state for t in study.trials}
    assert states == {alive.number: TrialState.RUNNING, killed.number: TrialState.FAIL}
    assert counted(study) == 1  # the killed one is run again
    plain = optuna.create_study(storage=f"sqlite:///{tmp_path}/p.db")
    plain.ask(space)
    assert fail_stale(plain) == []  # without heartbeats nothing is ever stale


def test_a_pruned_run_is_recorded_as_pruned_and_does_not_fail_the_sweep(tmp_path):
    pruned = optuna.TrialPruned("Trial was pruned at epoch 1.")
    pruned.metrics = {"val/acc": 0.5, "pruned_at_epoch": 1}
    cfg = OmegaConf.create({"callbacks": {}})
    outcome = outcome_of(cfg, pruned)
    assert outcome["status"] == "pruned" and outcome["val/acc"] == 0.5
    for name, status in (("0", "pruned"), ("1", "completed"), ("2", "failed")):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / "metrics.json").write_text(json.dumps({"status": status}))
    assert list(unfinished_jobs(tmp_path)) == [str(tmp_path / "2")]


# ---------------------------------------------------------------- whole searches (slow)

TINY = (
    "data.val_size=100",
    "data.batch_size=50",
    "callbacks.rich_progress_bar=null",
    "callbacks.rich_model_summary=null",
    "logger=none",
    "test=false",
    "extras.print_config=false",
)


def search(cwd: Path, tiny_mnist: Path, *args: str, wait: bool = True):
    """``scripts/train.py hparams_search=optuna`` in ``cwd`` on tiny data."""
    pythonpath = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "HEADLAB_ROOT": str(cwd), "PYTHONPATH": pythonpath}
    command = [
        sys.executable,
        str(ROOT / "scripts" / "train.py"),
        "hparams_search=optuna",
        f"data.data_dir={tiny_mnist}",
        *TINY,
        *args,
    ]
    process = launch.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if not wait:
        return process
    output, _ = process.communicate(timeout=600)
    return process.returncode, output


def trial_folders(cwd: Path) -> dict[int, Path]:
    """Every trial's job folder over all sweep folders, by trial number (must be unique)."""
    found: dict[int, Path] = {}
    for metrics in (cwd / "logs" / "train" / "multiruns").glob("*/*/metrics.json"):
        number = json.loads(metrics.read_text())["trial"]
        assert number not in found, f"trial {number} ran twice"
        found[number] = metrics.parent
    return found


def load(cwd: Path) -> optuna.Study:
    return optuna.load_study(study_name="headlab", storage=f"sqlite:///{cwd}/logs/optuna.db")


@pytest.mark.slow
def test_search_prunes_then_resumes_from_its_storage(tiny_mnist, tmp_path):
    args = (
        "trainer.max_epochs=3",
        "optimized_metric=val/loss",  # val/acc is 1.0 for all on the tiny digits
        "hydra.sweeper.direction=minimize",
        "hydra.sweeper.pruner.n_startup_trials=1",
    )
    code, output = search(tmp_path, tiny_mnist, *args, "hydra.sweeper.n_trials=4")
    assert code == 0, output[-3000:]
    study = load(tmp_path)
    states = [t.state for t in study.trials]
    assert len(states) == 4 and TrialState.PRUNED in states, states
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    with open(sweep / "summary.csv", newline="") as handle:
        rows = {int(r["trial"]): r for r in csv.DictReader(handle)}
    for trial in study.trials:  # summary.csv and metrics.json say what the study says
        expected = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned"}[trial.state]
        assert rows[trial.number]["status"] == expected
        if trial.state == TrialState.PRUNED:
            epochs = int(rows[trial.number]["pruned_at_epoch"]) + 1
            assert epochs < 3 and len(trial.intermediate_values) == epochs
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == study.best_value
    assert set(best.best_params) == {  # the default search space
        "model.optimizer.lr",
        "model.optimizer.weight_decay",
        "model.backbone.hidden",
        "head",
    }
    for row in rows.values():  # the quoted width came back to the model as a list of ints
        job_cfg = OmegaConf.load(sweep / row["job"] / ".hydra" / "config.yaml")
        assert list(job_cfg.model.backbone.hidden) == json.loads(row["model.backbone.hidden"])
        assert job_cfg.head._target_.startswith("headlab.heads.")

    # the same command with a larger n_trials continues the study: one new trial, number 4
    code, output = search(tmp_path, tiny_mnist, *args, "hydra.sweeper.n_trials=5")
    assert code == 0, output[-3000:]
    assert [t.number for t in load(tmp_path).trials] == [0, 1, 2, 3, 4]
    assert sorted(trial_folders(tmp_path)) == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_a_ddp_trial_pruned_during_fit_ends_pruned_not_completed(tiny_mnist, tmp_path):
    """Under DDP Optuna's callback only stops training and marks the trial in the study; the
    run raises it after fit (TrialPruning.raise_if_pruned). Before, such a trial was told
    to the study as COMPLETE with the value of the epoch it stopped in."""
    args = (
        "trainer=ddp_cpu",
        "trainer.strategy.start_method=spawn",  # DDP inside a multirun
        "trainer.max_epochs=3",
        "optimized_metric=val/loss",
        "hydra.sweeper.direction=minimize",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.n_trials=3",  # with the sampler's seed, trial 2 is soft: its loss stays high
    )
    code, output = search(tmp_path, tiny_mnist, *args)
    assert code == 0, output[-3000:]
    trials = load(tmp_path).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [(t.state, t.params, t.intermediate_values) for t in trials]
    folders = trial_folders(tmp_path)
    for trial in pruned:
        metrics = json.loads((folders[trial.number] / "metrics.json").read_text())
        assert metrics["status"] == "pruned"
        assert metrics["pruned_at_epoch"] == max(trial.intermediate_values) < 2
    # the others: spawned DDP ranks train to the end inside a multirun, each job its folder
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    with open(sweep / "summary.csv", newline="") as handle:
        rows = {int(r["trial"]): r for r in csv.DictReader(handle)}
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    assert completed and all(rows[t.number]["status"] == "completed" for t in completed)
    for trial in completed:
        best = Path(rows[trial.number]["best_ckpt_path"])
        assert best.parent.parent == folders[trial.number] == sweep / rows[trial.number]["job"]


@pytest.mark.slow
def test_two_workers_share_one_study_without_running_a_trial_twice(tiny_mnist, tmp_path):
    common = ("trainer.max_epochs=1", "hydra.sweeper.pruner=null", "hydra.sweeper.n_trials=4")
    workers = [
        search(tmp_path, tiny_mnist, *common, f"hydra.sweeper.sampler.seed={seed}", wait=False)
        for seed in (1, 2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    trials = load(tmp_path).trials
    # a worker asking in the same instant as the other may add one trial: never two
    assert 4 <= len(trials) <= 5
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(trial_folders(tmp_path)) == [t.number for t in trials]
    sweeps = list((tmp_path / "logs" / "train" / "multiruns").iterdir())
    assert len(sweeps) == 2 and all(list(s.glob("*/metrics.json")) for s in sweeps)  # both ran


@pytest.mark.slow
def test_a_failed_trial_is_recorded_and_the_search_goes_on(tiny_mnist, tmp_path):
    code, output = search(
        tmp_path,
        tiny_mnist,
        "trainer.max_epochs=1",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
        "~hydra.sweeper.sampler.n_startup_trials",
        "hydra.sweeper.params={model.optimizer.lr:'choice(-1.0,0.001)'}",
    )
    assert code == 1, output[-3000:]  # a sweep with a failed job exits 1, after finishing
    by_lr = {t.params["model.optimizer.lr"]: t.state for t in load(tmp_path).trials}
    assert by_lr == {-1.0: TrialState.FAIL, 0.001: TrialState.COMPLETE}
    assert (next((tmp_path / "logs" / "train" / "multiruns").iterdir()) / "summary.csv").is_file()


@pytest.mark.slow
def test_a_bad_storage_stops_the_search_with_one_line_before_any_trial(tiny_mnist, tmp_path):
    (tmp_path / "blocker").write_text("")
    code, output = search(
        tmp_path, tiny_mnist, f"hydra.sweeper.storage=sqlite:///{tmp_path}/blocker/x.db"
    )
    assert code == 1
    assert "hydra.sweeper.storage=" in output and "Traceback" not in output
    assert not (tmp_path / "logs" / "train" / "multiruns").exists() or not list(
        (tmp_path / "logs" / "train" / "multiruns").glob("*/*/metrics.json")
    )


@pytest.mark.slow
def test_joblib_launcher_runs_a_batch_of_trials_in_parallel_processes(tiny_mnist, tmp_path):
    code, output = search(
        tmp_path,
        tiny_mnist,
        "trainer.max_epochs=1",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=2",
    )
    assert code == 0, output[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in output
    assert [t.state for t in load(tmp_path).trials] == [TrialState.COMPLETE] * 2
    assert sorted(trial_folders(tmp_path)) == [0, 1]


@pytest.mark.slow
def test_an_interrupted_search_leaves_no_trial_running_and_resumes(tiny_mnist, tmp_path):
    import signal
    import time

    args = ("trainer.max_epochs=50", "hydra.sweeper.pruner=null", "hydra.sweeper.n_trials=2")
    process = search(tmp_path, tiny_mnist, *args, wait=False)
    database = tmp_path / "logs" / "optuna.db"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until trial 0 trains
        if database.is_file() and list(tmp_path.glob("logs/train/multiruns/*/000_*/checkpoints")):
            break
        time.sleep(1)
    process.send_signal(signal.SIGTERM)  # as a scheduler stops a job (SIGINT: Ctrl-C alike)
    output, _ = process.communicate(timeout=300)
    assert process.returncode != 0, output[-2000:]
    (trial,) = load(tmp_path).trials
    assert trial.state == TrialState.FAIL and trial.user_attrs["headlab_status"] == "interrupted"
    # the same command, shorter trials: the interrupted trial does not count
    code, output = search(tmp_path, tiny_mnist, *args[1:], "trainer.max_epochs=1")
    assert code == 0, output[-3000:]
    states = [t.state for t in load(tmp_path).trials]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]


def test_pruner_is_a_config_group_median_by_default_hyperband_or_none():
    from hydra.utils import instantiate

    from headlab.callbacks.pruning import make_pruner
    from tests.test_sweeps import compose_with_hydra

    cfg = compose_with_hydra("hparams_search=optuna", "hydra.sweeper.max_failure_rate=0.25")
    assert isinstance(make_pruner(cfg.hydra.sweeper.pruner), optuna.pruners.MedianPruner)
    assert cfg.callbacks.optuna_pruning.monitor == "val/acc"  # the job reports the objective
    # the sweeper as Hydra builds it: the sampler left a config, built once the study's
    # trials are known (its seed advanced past them); max_failure_rate taken
    search = instantiate(cfg.hydra.sweeper).search
    assert search.max_failure_rate == 0.25 and search.sampler.seed == 1234
    cfg = compose_with_hydra(
        "hparams_search=optuna", "hydra/sweeper/pruner=hyperband", "trainer.max_epochs=9"
    )
    pruner = instantiate(cfg.hydra.sweeper.pruner)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner) and pruner._max_resource == 9
    cfg = compose_with_hydra("hparams_search=optuna", "hydra.sweeper.pruner=null")
    assert isinstance(make_pruner(cfg.hydra.sweeper.pruner), optuna.pruners.NopPruner)


# ------------------------------------------- the sweeper's loop, with jobs that train nothing


class ScoringLauncher:
    """A launcher whose jobs train nothing: each scores its overrides with ``score`` (None: the
    job failed) and writes the metrics.json a real job would."""

    def __init__(self, folder: Path, score):
        self.folder, self.score, self.batches = folder, score, []

    def launch(self, batch, initial_job_idx):
        self.batches.append(batch)
        returns = []
        for overrides in batch:
            values = dict(o.split("=", 1) for o in overrides)
            value = self.score(values)
            status = "failed" if value is None else "completed"
            folder = self.folder / f"trial_{values['optuna_trial']}"
            returns.append(job_return(folder, status, value, **{"val/acc": value}))
        return returns


SPACE = {"x": "interval(0,1)", "n": "range(1,100)", "kind": "choice(a,b)"}
SEEDED = {"_target_": "optuna.samplers.TPESampler", "seed": 1234, "n_startup_trials": 10}


def run_search(tmp_path: Path, n_trials: int, score=lambda v: float(v["x"]), **settings):
    """One sweeper start on the study ``s`` in ``tmp_path``; returns its launcher."""
    from headlab.sweeps.optuna_search import OptunaSearch

    settings = {"sampler": SEEDED, "params": SPACE, **settings}
    metric = settings.pop("metric", "val/acc")
    search = OptunaSearch(f"sqlite:///{tmp_path}/s.db", "s", n_trials, **settings)
    sweep = tmp_path / f"sweep_{len(list(tmp_path.glob('sweep_*')))}"
    search.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    search.config.optimized_metric = metric
    search.launcher = ScoringLauncher(sweep, score)
    search.sweeper = SimpleNamespace(validate_batch_is_legal=lambda batch: None)
    search.sweep([])
    return search.launcher


def stored(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path}/s.db")


def test_a_resumed_search_proposes_new_parameters_not_the_ones_it_ran(tmp_path):
    from headlab.sweeps.optuna_search import build_sampler, search_space

    run_search(tmp_path, 2)
    run_search(tmp_path, 4)  # the same command, resumed with a larger budget
    proposed = [tuple(sorted(t.params.items())) for t in stored(tmp_path).trials]
    assert len(proposed) == 4 and len(set(proposed)) == 4, proposed
    # the control: rebuilt with the seed it started with, the sampler repeats trial 0
    distributions, _ = search_space([f"{k}={v}" for k, v in SPACE.items()])
    fresh = optuna.create_study(sampler=build_sampler(SEEDED, 0), direction="maximize")
    assert fresh.ask(distributions).params == stored(tmp_path).trials[0].params


def dead_pid() -> int:
    """A process id that no process has now."""
    pid = int(Path("/proc/sys/kernel/pid_max").read_text()) - 1
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_a_worker_killed_in_its_last_trial_and_restarted_at_once_runs_it_again(
    tmp_path, monkeypatch
):
    """Its trial is RUNNING with a fresh heartbeat; the process that asked it is gone. Before,
    the restart counted it, said "2 of 2 done" and ended with the trial RUNNING. Now it is
    failed at once (no waiting for its heartbeat to go stale) and run again."""
    import socket

    import headlab.sweeps.optuna_search as optuna_search

    run_search(tmp_path, 1)
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=60)
    killed = optuna.load_study(study_name="s", storage=storage).ask({"x": FloatDistribution(0, 1)})
    killed.set_user_attr(optuna_search.WORKER_ATTR, f"{socket.gethostname()}:{dead_pid()}")
    storage.record_heartbeat(killed._trial_id)

    def no_waiting(seconds):
        raise AssertionError(f"waited {seconds} s for a trial whose worker is known dead")

    monkeypatch.setattr(optuna_search.time, "sleep", no_waiting)
    launcher = run_search(tmp_path, 2)
    states = [t.state for t in stored(tmp_path).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert len(launcher.batches) == 1  # trial 2 ran in place of the killed trial 1


@pytest.mark.slow  # waits ~3 s for a heartbeat to go stale
def test_a_trial_of_a_dead_worker_elsewhere_is_waited_for_failed_and_run_again(tmp_path):
    from headlab.sweeps.optuna_search import WORKER_ATTR

    run_search(tmp_path, 1, heartbeat_interval=1)
    storage = open_storage(f"sqlite:///{tmp_path}/s.db", heartbeat_interval=1)
    study = optuna.load_study(study_name="s", storage=storage)
    killed = study.ask({"x": FloatDistribution(0, 1)})
    killed.set_user_attr(WORKER_ATTR, "another-machine:1")
    storage.record_heartbeat(killed._trial_id)  # then that machine went silent
    run_search(tmp_path, 2, heartbeat_interval=1)
    states = [t.state for t in stored(tmp_path).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]


def test_best_params_keep_their_types_and_the_objective_is_named(tmp_path):
    run_search(tmp_path, 3)
    (sweep,) = tmp_path.glob("sweep_*")
    results = OmegaConf.to_container(OmegaConf.load(sweep / "optimization_results.yaml"))
    best = stored(tmp_path).best_trial
    assert results["best_params"] == best.params
    assert [type(results["best_params"][k]) for k in ("x", "n", "kind")] == [float, int, str]
    assert stored(tmp_path).metric_names == ["val/acc"]  # the dashboard's axis
    assert "value_val/acc" in (sweep / "study_trials.csv").read_text().splitlines()[0]


def test_a_study_made_for_another_metric_is_refused_in_one_line(tmp_path, caplog):
    run_search(tmp_path, 1)
    with pytest.raises(SystemExit) as stop:
        run_search(tmp_path, 2, metric="val/f1")
    assert stop.value.code == 1
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"study 's' in sqlite:///{tmp_path}/s.db optimizes val/acc; optimized_metric=val/f1 "
        "would mix them: give another study_name"
    ]


def test_max_failure_rate_stops_a_search_whose_trials_fail(tmp_path, caplog):
    fails_low = lambda v: None if float(v["x"]) < 0.5 else 1.0  # noqa: E731
    run_search(tmp_path, 6, score=lambda v: None, max_failure_rate=1.0)
    assert [t.state for t in stored(tmp_path).trials] == [TrialState.FAIL] * 6  # never stops
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(SystemExit) as stop:
        run_search(other, 6, score=fails_low, max_failure_rate=0.0)
    assert stop.value.code == 1
    trials = stored(other).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed and trials[-1].state == TrialState.FAIL and len(trials) < 6
    share = len(failed) / len(trials)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"{share:.0%} of the study's ended trials failed, above "
        "hydra.sweeper.max_failure_rate=0.0: see the failed trials' metrics.json; the same "
        "command resumes once fixed"
    ]
    assert list(other.glob("sweep_*/study_trials.csv"))  # the study's trials written first


@pytest.mark.parametrize("scheme", ["sqlite", "journal"])
def test_the_dashboard_command_opens_the_study(tmp_path, scheme):
    """The command the sweeper logs (and docs/search.md gives) finds the study: a journal
    file is given by its path, without the journal:/// the sweeper's storage key uses."""
    dashboard = pytest.importorskip("optuna_dashboard._storage_url")
    from headlab.sweeps.optuna_search import dashboard_command

    url = f"{scheme}:///{tmp_path}/study.{'db' if scheme == 'sqlite' else 'log'}"
    optuna.create_study(storage=open_storage(url), study_name="s")
    argument = dashboard_command(url).removeprefix("optuna-dashboard ")
    opened = dashboard.guess_storage_from_url(argument)
    assert [s.study_name for s in opened.get_all_studies()] == ["s"]
