"""LeNet-5 as a plain nn.Module (a model file of tools/torch_bridge.py), the model of the report's speed
measurement: conv 5×5 (6) → ReLU → max-pool 2 → conv 5×5 (16) → tanh → avg-pool 2 → dense 120 → ReLU →
dense 84 → ReLU → dense 10 on 28×28 images, cross-entropy, a batch of 8 images blank outside a 12×12
patch (the blank regions make max-pool windows tie, so the report's kink handling runs too)."""
import torch

nn = torch.nn


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2))
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 4 * 4, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def forward(self, x):
        return self.head(self.features(x))


torch.manual_seed(5)
model = LeNet5().eval()
loss = nn.CrossEntropyLoss()
_g = torch.Generator().manual_seed(1005)
_images = torch.zeros(8, 1, 28, 28)
_images[:, :, 8:20, 8:20] = torch.rand(8, 1, 12, 12, generator=_g)
batch = (_images, torch.randint(0, 10, (8,), generator=_g))

if __name__ == "__main__":
    print(sum(p.numel() for p in model.parameters()), "parameters")
