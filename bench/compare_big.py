"""The large model of bench/compare_results.md for tools/torch_bridge.py: a 256-512-512-512-512-10 MLP,
LayerNorm after each hidden dense layer, then ReLU, cross-entropy on 64 samples.

  /usr/bin/python3 tools/torch_bridge.py export bench/compare_big.py --out big --precision double
"""
import torch

nn = torch.nn
torch.manual_seed(0)
_layers = []
for fan_in in (256, 512, 512, 512):
    _layers += [nn.Linear(fan_in, 512), nn.LayerNorm(512), nn.ReLU()]
model = nn.Sequential(*_layers, nn.Linear(512, 10))
loss = nn.CrossEntropyLoss()
_g = torch.Generator().manual_seed(1)
batch = (torch.rand((64, 256), dtype=torch.float64, generator=_g), torch.randint(0, 10, (64,), generator=_g))
