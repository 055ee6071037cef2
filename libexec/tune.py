"""The tune researcher's Optuna study, driven over stdin/stdout by the harness.

One JSON request per line in, one JSON answer per line out. Requests:

  {"op": "open", "storage": "sqlite:///…", "study": "tune", "direction": "minimize",
   "sampler": "tpe" | "gp" | "cmaes", "seed": 42, "x0": {name: value} (CMA-ES's start)}
      -> {"ok": true, "optuna": "3.1.0", "told": [trial numbers of the run already told]}
  {"op": "ask", "for": n, "space": {name: dimension}}
      -> {"ok": true, "number": k, "params": {name: value}}
  {"op": "tell", "number": k, "trial": n | null, "value": x | null, "failed": bool}
  {"op": "add", "trial": n, "space": {...}, "params": {...}, "value": x | null, "failed": bool}
      -> {"ok": true}

A dimension is {"type": "float" | "int", "low", "high", "log"} or {"type": "choice",
"choices": [...]}. Every study trial that holds the result of one of the run's trials
carries its number (or `tag#n` for another run's) as the user attribute "trial", a
string; a sample told a result already known (a repeat) carries none. Every asked
trial carries the number of the trial it was asked for as "proposed_for". Errors are answered {"ok": false, "error": "..."}.
"""

import json
import os
import sys
import warnings

# The helper's matrices are small: BLAS threads only contend, with each other and with
# the trials running beside it.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def main():
    try:
        import optuna
    except ImportError as e:  # the harness checks this before the run; say it plainly anyway
        reply({"ok": False, "error": f"cannot import optuna: {e}"})
        return
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = None
    pending = {}  # asked trials, by number, until they are told
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            op = request["op"]
            if op == "version":
                reply({"ok": True, "optuna": optuna.__version__})
            elif op == "open":
                study = open_study(optuna, request)
                told = sorted(
                    str(t.user_attrs["trial"])
                    for t in study.get_trials(deepcopy=False)
                    if "trial" in t.user_attrs
                    and "abandoned" not in t.user_attrs
                    and t.state.is_finished()
                )
                reply({"ok": True, "optuna": optuna.__version__, "told": told})
            elif op == "ask":
                space = distributions(optuna, request["space"])
                if hasattr(study.sampler, "space"):  # the GP models exactly what is asked
                    study.sampler.space = space
                trial = study.ask(space)
                trial.set_user_attr("proposed_for", str(request["for"]))
                pending[trial.number] = trial
                params = {k: plain(v) for k, v in trial.params.items()}
                reply({"ok": True, "number": trial.number, "params": params})
            elif op == "tell":
                trial = pending.pop(request["number"])
                if request.get("trial") is not None:
                    trial.set_user_attr("trial", str(request["trial"]))
                result = request["result"]
                if "failed" in result:
                    trial.set_user_attr("failed", result["failed"])
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                elif "unknown" in result:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, result["value"])
                reply({"ok": True})
            elif op == "add":
                add(optuna, study, request)
                reply({"ok": True})
            else:
                reply({"ok": False, "error": f"unknown op {op!r}"})
        except Exception as e:  # answered, so that the harness can record why
            reply({"ok": False, "error": f"{type(e).__name__}: {e}"})


def open_study(optuna, request):
    seed = request.get("seed")
    if request.get("sampler") == "cmaes":
        # Integer and categorical dimensions are sampled independently by TPE's fallback.
        # CMA-ES starts at the incumbent ("x0": its numeric values) and learns from its own
        # samples only; choices are left to TPE.
        sampler = optuna.samplers.CmaEsSampler(
            x0=request.get("x0") or None,
            seed=seed,
            independent_sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=1),
            warn_independent_sampling=False,
        )
    elif request.get("sampler") == "gp":
        from gp import GPSampler

        sampler = GPSampler(seed=seed)
    else:
        # The study is told the baseline before its first ask: TPE models from there at once
        # instead of spending its usual ten random samples, which around code that already
        # works are mostly worse (bench/README.md, research).
        sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=1
        )
    study = optuna.create_study(
        storage=request["storage"],
        study_name=request["study"],
        direction=request["direction"],
        sampler=sampler,
        load_if_exists=True,
    )
    # Proposals of an earlier session still open: left running, they would count as in
    # flight for ever. Closed and marked, so that a result the run records for them later
    # is still told (as an added trial).
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        optuna.trial.Trial(study, t._trial_id).set_user_attr("abandoned", True)
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    return study


def distributions(optuna, space):
    d = optuna.distributions
    out = {}
    for name, dim in space.items():
        if dim["type"] == "choice":
            out[name] = d.CategoricalDistribution(dim["choices"])
        elif dim["type"] == "int":
            out[name] = d.IntDistribution(dim["low"], dim["high"], log=dim["log"])
        else:
            out[name] = d.FloatDistribution(dim["low"], dim["high"], log=dim["log"])
    return out


def add(optuna, study, request):
    """A result the study did not ask for: warm start from the run's history."""
    space = distributions(optuna, request["space"])
    params = {k: v for k, v in request["params"].items() if k in space}
    kept = {k: v for k, v in params.items() if contains(space[k], v)}
    result = request["result"]
    failed = "failed" in result
    attrs = {"trial": str(request["trial"])}
    if failed:
        attrs["failed"] = result["failed"]
    trial = optuna.trial.create_trial(
        params=kept,
        distributions={k: space[k] for k in kept},
        value=None if failed else result["value"],
        state=optuna.trial.TrialState.PRUNED if failed else optuna.trial.TrialState.COMPLETE,
        user_attrs=attrs,
    )
    study.add_trial(trial)


def contains(distribution, value):
    try:
        return distribution._contains(distribution.to_internal_repr(value))
    except (ValueError, TypeError):
        return False


def plain(value):
    """A sampled value as JSON holds it: CMA-ES hands out numpy scalars."""
    return value.item() if hasattr(value, "item") else value


def reply(answer):
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
