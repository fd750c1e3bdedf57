"""The option grid of docs/interpretation.md ("Making HCEP learn"): the real HCEP through the media
benchmark on a few trials, with one option changed from the CPU preset.

    python docs/results/hcep-effects/run.py '{"levels":["O(5:2)","O(2:5)"],"splits":2,"hcep":{"cuep_init":"noise"}}'
    python docs/results/hcep-effects/run.py '{"data":"meld","levels":["O(5:2)"],"splits":1,"hcep":{"cuep_text":"fixed"},"train":{"lr_scales":{}}}'

    python docs/results/hcep-effects/run.py '{"trials":[["O(2:5)",3],["O(5:2)",0]],"train":{"epochs":15},"hcep":{"standardize_blocks":true}}'

JSON keys: data (emodb|meld), levels, splits, trials (explicit [level, split index] pairs instead
of levels x the first ``splits``), hcep (HCEPConfig fields), train (TrainConfig fields;
EmoDB defaults to 10 epochs), enc (encoder options), cap, methods, mods (HCEP's modalities);
THREADS (env) torch threads. Prints one row per trial and the mean (AUROC, OSCR, closed-set
accuracy, macro-F1, fractions), for HCEP's own confidence (Algorithm 1's max probability) and for
its max-logit and energy rows (``hcep[max_logit]``, ``hcep[energy]``, from the benchmark's
``clip_posthoc``); stderr has the per-epoch validation/training accuracy and, with learned block
weights, the last epoch's weights. (Before the benchmark had those rows, this script patched
HCEP's scoring to print the max-logit AUROC/OSCR per trial on stderr: the "ALT" lines of
output.txt.) output.txt beside it holds what the runs of this
session. They were printed while the MELD preset still had fixed sentences, 2000 utterances and
no lr scale, and before cuep_text was an HCEPConfig field: its "build":"tokens" row is the option
cuep_text="learnable_tokens", run through the ablation builder that the option replaced. Today's
MELD preset has that option, so the fixed-sentence row needs "hcep":{"cuep_text":"fixed"}.
"""
import dataclasses, json, sys, time
import numpy as np
from openmer.benchmarks.media import emodb_config, meld_config, run_media_benchmark
from openmer.datasets import load_emodb
from openmer.protocol import load_protocol
from openmer.training import TrainConfig
import torch
import os; torch.set_num_threads(int(os.environ.get("THREADS", "2")))
spec = json.loads(sys.argv[1])
DATA = spec.pop("data", "emodb")
cfg = emodb_config() if DATA == "emodb" else meld_config()
if DATA == "emodb":
    spec.setdefault("train", {}).setdefault("epochs", 10)  # the effects grid is measured at 10 epochs
train = cfg.hcep_train.model_copy(update=spec.pop("train", {}))
upd = dict(modalities=tuple(spec.pop("mods", cfg.modalities)), methods=tuple(spec.pop("methods", ["hcep"])), levels=tuple(spec.pop("levels", ["O(5:2)"])), n_splits=spec.pop("splits", 1),
           hcep_train=train, hcep_options={**cfg.hcep_options, **spec.pop("hcep", {})},
           encoder_options=spec.pop("enc", cfg.encoder_options), max_train_per_trial=spec.pop("cap", None))
trials = spec.pop("trials", None)
protocol = load_protocol(DATA)
if trials:  # only these (level, split) pairs
    chosen = {}
    for level, index in trials:
        chosen.setdefault(level, []).append(protocol.levels[level][index])
    protocol = dataclasses.replace(protocol, levels=chosen)
    upd.update(levels=tuple(chosen), n_splits=max(len(v) for v in chosen.values()))
cfg = cfg.model_copy(update=upd)
import openmer.benchmarks.media as media
import openmer.training.trial as trial
_fit = trial.fit
def logged_fit(*a, **k):
    r = _fit(*a, **k)
    h = r.history
    print("   best", r.best_epoch, "val_acc", [round(x.get("val_acc", float("nan")), 2) for x in h], "train_acc", [round(x.get("train_acc", float("nan")), 2) for x in h],
          {k: round(v, 3) for k, v in h[-1].items() if k.startswith("block_weight")}, file=sys.stderr, flush=True)
    return r
trial.fit = logged_fit
t = time.time()
def prog(i, n, msg): print(f"  [{time.time()-t:6.0f}s] {msg}", file=sys.stderr, flush=True)
if DATA == "emodb":
    res = run_media_benchmark(cfg, load_emodb(), protocol, progress=prog)
else:
    from openmer.datasets import load_meld
    res = run_media_benchmark(cfg, load_meld(split="all"), protocol, progress=prog)
rows = [(r["method"], r["level"], r["split"], round(r["auroc"],3), round(r["oscr"],3), round(r["closed_acc"],3), round(r.get("macro_f1", float("nan")),3)) for r in res.records]
for r in rows: print(sys.argv[1][:60], r)
for m in sorted({r[0] for r in rows}):
    a = np.array([r[3:] for r in rows if r[0]==m]); print("MEAN", m, sys.argv[1], a.mean(0).round(3).tolist(), f"{time.time()-t:.0f}s")
