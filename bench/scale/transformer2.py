"""A 2-layer pre-LN transformer encoder as a plain nn.Module (a model file of tools/torch_bridge.py):
token ids (a vocabulary of 100) embedded in d = 64, plus a learned position embedding over 32 tokens,
two nn.TransformerEncoderLayer (4 heads, feed-forward 256, GELU, norm_first, no dropout), a final
layer norm, the mean over tokens and a linear head over 10 classes. A batch of 2 sequences."""
import torch

nn = torch.nn


class Encoder(nn.Module):
    def __init__(self, vocab=100, tokens=32, d=64, heads=4, feedforward=256, layers=2, classes=10):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.3 * torch.randn(1, tokens, d))
        layer = nn.TransformerEncoderLayer(d, heads, feedforward, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, tokens):
        x = self.embed(tokens) + self.pos
        x = self.encoder(x)
        return self.head(self.norm(x).mean(dim=1))


torch.manual_seed(1)
model = Encoder().eval()
loss = nn.CrossEntropyLoss()
_g = torch.Generator().manual_seed(1001)
batch = (torch.randint(0, 100, (2, 32), generator=_g), torch.randint(0, 10, (2,), generator=_g))

if __name__ == "__main__":
    print(sum(p.numel() for p in model.parameters()), "parameters")
