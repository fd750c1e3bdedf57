"""Train ARPL on fixed data and save its trainable tensors (run by test_ddp under 1 or 2 processes)."""

import sys

import numpy as np
import torch
from accelerate import PartialState
from safetensors.torch import save_file

from openmer.data.tensors import FeatureDataset
from openmer.methods.arpl import ARPL, ARPLConfig
from openmer.training import TrainConfig, fit

rng = np.random.default_rng(0)
x = np.concatenate([rng.normal(c, 1, (32, 6)) for c in (-2, 0, 2)]).astype(np.float32)
y = np.repeat(np.arange(3), 32)
torch.manual_seed(0)
m = ARPL(ARPLConfig(input_dim=6, dropout=0.0), ["a", "b", "c"])
fit(m, FeatureDataset(x, y), None, TrainConfig(epochs=3, optimizer="sgd", lr=0.05, batch_size=16))
state = PartialState()
assert state.num_processes == int(sys.argv[2]), state
if state.is_main_process:
    save_file({k: v.contiguous() for k, v in m.trainable_state_dict().items()}, sys.argv[1])
