# nearest-class-mean (cosine) accuracy on the unprompted cached features: raw / centred / standardised blocks
import numpy as np, torch
from openmer.benchmarks.media import emodb_config, benchmark_encoders
from openmer.datasets import load_emodb
from openmer.data.clips import ClipDataset, vision_preprocess
from openmer.data.feature_cache import encode_features
from openmer.paths import default_cache_dir
from openmer.protocol import load_protocol, open_set_subsets
torch.set_num_threads(1)
cfg = emodb_config(); man = load_emodb(); proto = load_protocol("emodb")
enc = benchmark_encoders(cfg)
clips = ClipDataset(man, np.full(len(man), -1), cfg.modalities, vision_preprocess=vision_preprocess(enc))
feats, present = encode_features(clips, enc, cache_dir=default_cache_dir())
names = list(man.labels); groups = [s.group or s.id for s in man]
def norm(x, mode, tr):
    if mode in ("center", "std"): x = x - x[tr].mean(0)
    if mode == "std": x = x / (x[tr].std(0) + 1e-6)
    return x / np.linalg.norm(x, axis=1, keepdims=True)
for blocks in (("text",), ("audio",), ("text", "audio")):
  for mode in ("raw", "center", "std"):
    accs = []
    for lv in proto.levels:
        for sp in proto.levels[lv][:4]:
            sub = open_set_subsets(names, groups, sp, proto.partition); y = sub["labels"]
            tr, te = sub["train"], sub["test"]; te = te[y[te] >= 0]
            score = 0
            for m in blocks:
                x = norm(feats[m].astype(np.float64), mode, tr)
                mu = np.stack([x[tr][y[tr] == k].mean(0) for k in range(sp.n_known)])
                score = score + x[te] @ mu.T
            accs.append((score.argmax(1) == y[te]).mean())
    print(blocks, mode, "NCM closed acc mean over 16 trials", round(float(np.mean(accs)), 3))
