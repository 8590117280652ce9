"""ResNet-20 for CIFAR as a plain nn.Module (a model file of tools/torch_bridge.py): a 3×3 stem of 16
channels, three stages of three BasicBlocks (16, 32, 64 channels; the first block of stages 2 and 3
halves the resolution, with a 1×1 convolution and batch norm on the shortcut), global average pooling
and a linear head over 10 classes; about 0.27M parameters. Batch statistics (train mode), a batch of 2
images of 3×32×32."""
import torch

nn = torch.nn
F = torch.nn.functional


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.short(x))


class ResNet20(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        stages, cin = [], 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout), BasicBlock(cout, cout)))
            cin = cout
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.fc(torch.flatten(self.pool(out), 1))


torch.manual_seed(1)
model = ResNet20().train()
loss = nn.CrossEntropyLoss()
_g = torch.Generator().manual_seed(1001)
batch = (2 * torch.rand((2, 3, 32, 32), dtype=torch.float64, generator=_g) - 1, torch.randint(0, 10, (2,), generator=_g))

if __name__ == "__main__":
    print(sum(p.numel() for p in model.parameters()), "parameters")
