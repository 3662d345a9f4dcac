"""TensorBoard's HPARAMS tab from one definition: which hyperparameter and metric columns
exist, which are ticked, and what a trial is called.

The hparams plugin takes the first experiment summary it finds in any run of ``--logdir``;
without one it builds columns from every scalar tag (66 metric columns, the first five ticked
alphabetically). So a sweep writes one definition at its end (``sweeps.board``) and its jobs
write none; a single run writes its own. The summaries are built from the plugin's protos
here: ``tensorboard.plugins.hparams.summary`` needs TensorFlow, and torch's ``hparams()``
takes no trial name and one run's columns only.

The dashboard ticks the first five hyperparameters (those that differ first) and the first
five metrics of the definition: the swept hyperparameters come first and only they are marked
as differing; then the parameters only some heads have (a run without one shows it empty);
constants of a sweep are left out of the columns (the sweep's text summary lists them).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from headlab.layout import headline

#: the metrics every head has on one definition, ticked in HPARAMS by default
DEFAULT_COLUMNS = ("test/acc", "test/ece", "test/ece_adaptive", "test/brier", "test/nll")
#: prefixes of real metrics; ``epochs``, ``lr-Adam``, ``temperature``, paths are not columns
METRIC_PREFIXES = ("train/", "val/", "test/", "best/")
#: interval bounds stay in metrics.json only: a column or chart each would double what
#: TensorBoard shows
NOT_SCALARS = re.compile(r"_ci_(low|high)$")
#: each head's own training loss: its values mean different things for different heads
NOT_COMPARABLE = re.compile(r"(^|/)loss$")


#: the headline off-distribution numbers (named once in ``layout.headline``, which shift
#: writes by) become scalars and columns; the other ~1,400 ``shift/``/``ood/`` keys stay in
#: metrics.json and the npz
HEADLINE = headline.HEADLINE


def final_scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The final metrics TensorBoard gets as scalars: finite numbers of a stage, no aliases,
    and the headline off-distribution numbers (``HEADLINE``: accuracy and ECE at 60°, mean
    corruption ECE, AUROC per OOD set by the default score, none of the above)."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if (key.startswith(METRIC_PREFIXES) or HEADLINE.match(key))
        and not NOT_SCALARS.search(key)
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def metric_columns(tags: Iterable[str]) -> list[str]:
    """HPARAMS metric columns: the comparable test metrics first (the ticked five), then the
    other test metrics, the off-distribution headline, best and val metrics; no losses, no
    train curves (their last point is no final value)."""
    tags = {t for t in tags if not NOT_COMPARABLE.search(t) and not t.startswith("train/")}
    first = [t for t in DEFAULT_COLUMNS if t in tags]
    order = {"test/": 0, "shift/": 1, "ood/": 2, "best/": 3, "val/": 4}
    rest = sorted(tags - set(first), key=lambda t: (order.get(t[: t.index("/") + 1], 5), t))
    return first + rest


def meaningful(hparams: Mapping[str, Any], target_kind: str) -> dict[str, Any]:
    """Without the parameters that do nothing for this run: ``head.threshold`` only turns
    probabilities into labels for multi-hot targets."""
    drop = {"head.threshold"} if target_kind != "multi_hot" else set()
    return {k: v for k, v in hparams.items() if k not in drop}


#: a head parameter in a run of another head: a value, so parallel coordinates keep the run
NOT_APPLICABLE = "-"


def head_parameters() -> set[str]:
    """``head.<name>`` of every parameter a registered head takes (but ``threshold``)."""
    from headlab.heads import HEADS

    names = set()
    for cls in HEADS.values():
        for param in inspect.signature(cls.__init__).parameters.values():
            if (
                param.name not in ("self", "threshold")
                and param.kind == param.POSITIONAL_OR_KEYWORD
            ):
                names.add(f"head.{param.name}")
    return names


def session_hparams(hparams: Mapping[str, Any], target_kind: str) -> dict[str, Any]:
    """What a run's HPARAMS session holds: ``meaningful`` hparams, and every head parameter
    as text, ``-`` where this run's head has none. The parallel coordinates view drops a run
    that lacks a ticked column's value; with ``-`` every run of a sweep keeps its line."""
    values = meaningful(hparams, target_kind)
    for name in head_parameters():
        values[name] = str(values[name]) if name in values else NOT_APPLICABLE
    return values


def _summary(tag: str, data):
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import metadata

    plugin = SummaryMetadata.PluginData(
        plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString()
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])


def session_summaries(hparams: Mapping[str, Any], trial: str = "") -> tuple:
    """Session start (the run's values, ``trial`` as the HPARAMS "Trial ID") and end."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(group_name=trial)
    for key, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = str(value)
    end = plugin_data_pb2.SessionEndInfo(status=api_pb2.STATUS_SUCCESS)
    version = metadata.PLUGIN_DATA_VERSION
    return (
        _summary(
            metadata.SESSION_START_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_start_info=start, version=version),
        ),
        _summary(
            metadata.SESSION_END_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_end_info=end, version=version),
        ),
    )


def _hparam_info(name: str, values: list[Any], differs: bool):
    from google.protobuf import struct_pb2
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, differs=differs)
    if all(isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.CopyFrom(
            struct_pb2.ListValue(values=[struct_pb2.Value(bool_value=b) for b in (False, True)])
        )
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        info.type = api_pb2.DATA_TYPE_FLOAT64  # the dashboard filters it by an interval
    else:  # the dashboard needs a string's values to draw its filter
        info.type = api_pb2.DATA_TYPE_STRING
        distinct = sorted({str(v) for v in values})
        info.domain_discrete.CopyFrom(
            struct_pb2.ListValue(values=[struct_pb2.Value(string_value=s) for s in distinct])
        )
    return info


def hparam_groups(sessions: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Names by role: ``swept`` (every run has it, values differ), ``partial`` (only some
    runs have it: a head's own parameter), ``constant`` (one value everywhere); names no run
    has (absent or ``-``) are left out."""
    # by name within a group, as the plugin's backend orders them anyway
    names = sorted({k for s in sessions for k in s})
    groups: dict[str, list[str]] = {"swept": [], "partial": [], "constant": []}
    for name in names:
        values = [s[name] for s in sessions if s.get(name, NOT_APPLICABLE) != NOT_APPLICABLE]
        if not values:  # a parameter of heads this sweep did not run
            continue
        if len(values) < len(sessions):
            groups["partial"].append(name)
        elif len({repr(v) for v in values}) > 1:
            groups["swept"].append(name)
        else:
            groups["constant"].append(name)
    return groups


def experiment_summary(
    sessions: Sequence[Mapping[str, Any]], columns: Sequence[str], description: str = ""
):
    """The experiment definition for runs with these hparams: swept ones first (marked as
    differing, so ticked), per-head ones next; constants only when there is one run."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    groups = hparam_groups(sessions)
    shown = [(n, True) for n in groups["swept"]] + [(n, False) for n in groups["partial"]]
    if len(sessions) <= 1:
        shown += [(n, False) for n in groups["constant"]]
    infos = [
        _hparam_info(name, [s[name] for s in sessions if name in s], differs)
        for name, differs in shown
    ]
    experiment = api_pb2.Experiment(
        description=description,
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=c)) for c in columns],
    )
    data = plugin_data_pb2.HParamsPluginData(
        experiment=experiment, version=metadata.PLUGIN_DATA_VERSION
    )
    return _summary(metadata.EXPERIMENT_TAG, data)


def python_value(value) -> Any:
    """A ``google.protobuf.Value`` of a session start as the Python value it was written from."""
    kind = value.WhichOneof("kind")
    number = value.number_value
    if kind == "number_value":
        return int(number) if float(number).is_integer() else number
    return getattr(value, kind) if kind else None
