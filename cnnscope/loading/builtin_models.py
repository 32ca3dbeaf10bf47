"""The classic networks the source documents discuss that torchvision does not ship.

- ``lenet5``: LeNet-5 on 1×28×28 MNIST digits (the first conv pads by 2, so 28×28 behaves like the
  original 32×32): conv5×5/6 → pool2 → conv5×5/16 → pool2 → fc120 → fc84 → fc10. 61,706 params.
- ``zfnet``: Zeiler & Fergus 2013, 3×224×224: conv7×7/96 s2 → pool3 s2 → conv5×5/256 s2 → pool3 s2 →
  3× conv3×3 (384, 384, 256) → pool3 s2 → fc4096 → fc4096 → fc1000.
- ``mnist_cnn``: the documents' small MNIST CNN, 1×28×28: conv5×5/32 ("same") → maxpool2 →
  conv5×5/64 ("same") → maxpool2 → fc1024 → dropout 0.5 → fc10. 3,274,634 params.
"""
from __future__ import annotations

from torch import nn


def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(inplace=True),
        nn.Linear(120, 84), nn.ReLU(inplace=True),
        nn.Linear(84, num_classes),
    )


class ZFNet(nn.Module):
    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 7, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(96, 256, 5, stride=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def zfnet(num_classes: int = 1000) -> nn.Module:
    return ZFNet(num_classes=num_classes)


class MnistCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 1024), nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def mnist_cnn(num_classes: int = 10, in_channels: int = 1) -> nn.Module:
    return MnistCNN(num_classes=num_classes, in_channels=in_channels)


#: name -> (builder, natural input size (C, H, W), one-line description)
BUILTINS = {
    "lenet5": (lenet5, (1, 28, 28), "LeNet-5 for 28×28 MNIST digits"),
    "zfnet": (zfnet, (3, 224, 224), "ZFNet (Zeiler & Fergus 2013)"),
    "mnist_cnn": (mnist_cnn, (1, 28, 28), "the documents' small MNIST CNN (conv5×5/32, conv5×5/64, fc1024, fc10)"),
}
