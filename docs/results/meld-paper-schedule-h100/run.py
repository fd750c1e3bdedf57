# HCEP on MELD with the paper's schedule (an experiment script; the CLI equivalent of
# `python3 run.py 150 "O(5:2)"` is `openmer benchmark meld --schedule paper --levels "O(5:2)" --splits 1`).
# Usage: python3 run.py EPOCHS LEVELS [METHODS]
import sys, time, torch
from openmer.benchmarks import media
epochs, levels = int(sys.argv[1]), tuple(sys.argv[2].split(","))
methods = tuple(sys.argv[3].split(",")) if len(sys.argv) > 3 else ("hcep", "arpl", "msp")
cfg = media.with_paper_schedule(media.meld_config()).model_copy(
    update={"levels": levels, "n_splits": 1, "methods": methods})
cfg = cfg.model_copy(update={"hcep_train": cfg.hcep_train.model_copy(update={"epochs": epochs})})
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0), torch.__version__, flush=True)
print("hcep_train", cfg.hcep_train.model_dump(), "max_train", cfg.max_train_per_trial, flush=True)
t = time.time()
r = media.run_meld(cfg, progress=lambda d, n, m: print(f"[{time.time() - t:.0f}s] {d}/{n} {m}", flush=True))
print("seconds", round(time.time() - t, 1), "epochs", epochs, "timings", r.meta.get("timings_s"))
for rec in r.records:
    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()
           if k in ("method", "level", "split", "auroc", "oscr", "closed_acc", "macro_f1")})
