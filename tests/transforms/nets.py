"""Small models shared by the transform tests."""
import torch
import torch.nn.functional as F
from torch import nn


class Chain(nn.Module):
    """conv1 → BN → ReLU → conv2 → global pool → fc: one coupled group per conv (3→8→16→10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.conv2(F.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
