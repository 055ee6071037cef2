"""Runs the template's train.py (in the current folder) with compile knobs from PROBE, and
prints at exit where torch.compile spent its time. PROBE is a comma list of:
  pool      start Inductor's compile workers first thing, before the data and the model
  nopw      triton.autotune_pointwise off (one config per pointwise kernel)
  threads=N compile_threads N
The wrapper imports prepare (compile cache folders, bytecode) before torch, as train.py does."""
import atexit, os, runpy, sys, time

t0 = time.time()
sys.path.insert(0, os.getcwd())
import prepare  # noqa: E402,F401  (sets the cache folders before torch is imported)
import torch  # noqa: E402
import torch._inductor.config as inductor_config  # noqa: E402

knobs = [k for k in os.environ.get("PROBE", "").split(",") if k]
for knob in knobs:
    if knob == "nopw":
        inductor_config.triton.autotune_pointwise = False
    elif knob.startswith("threads="):
        inductor_config.compile_threads = int(knob.split("=")[1])
for knob in knobs:
    if knob == "pool":
        try:
            from torch._inductor.async_compile import AsyncCompile
            AsyncCompile.warm_pool()
            print(f"probe: warm_pool started at {time.time() - t0:.1f}s")
        except Exception as error:  # the API differs between versions
            print(f"probe: warm_pool failed: {type(error).__name__}: {error}")
print(f"probe: knobs {knobs}, compile_threads {inductor_config.compile_threads}, "
      f"worker_start_method {getattr(inductor_config, 'worker_start_method', '?')}, "
      f"wrapper imports {time.time() - t0:.1f}s")


def report():
    from torch._dynamo.utils import compile_times, counters
    print(f"probe: wall in process {time.time() - t0:.1f}s")
    print("probe: compile_times\n" + compile_times(repr="str", aggregate=True))
    print("probe: counters " + repr({k: dict(v) for k, v in counters.items() if k in ("inductor", "aot_autograd")}))


atexit.register(report)
sys.argv = ["train.py"]
runpy.run_path("train.py", run_name="__main__")
