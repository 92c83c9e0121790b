"""The face detector's network: "version-RFB" of the Ultra-Light-Fast-Generic-Face-Detector (SSD-style).

A MobileNet-like trunk of depthwise-separable convolutions with one RFB block (three dilated branches),
four detection heads at strides 8, 16, 32 and 64. Three classes: background, face (no mask), masked face.
Written here from the architecture's description; the module names follow the published state dicts so
that the MIT-licensed pretrained weights in ``../shared/models/rfb-masked-face`` load unchanged.
The heads output raw logits and prior offsets; priors, decoding and NMS live in
``civicam.analytics.anchors`` (numpy), shared by training and the product.
"""

from __future__ import annotations

import torch
from torch import nn

BASE = 16  # base channel count of the "slim" trunk
NUM_CLASSES = 3  # background, face, masked_face
ANCHORS_PER_CELL = (3, 2, 2, 3)  # len(min_sizes) per head, see civicam.analytics.anchors.MIN_SIZES


def conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True))


def conv_dw(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp), nn.ReLU(inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True),
    )


class BasicConv(nn.Module):
    def __init__(self, inp: int, oup: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inp, oup, kernel, stride, padding, dilation, bias=False)
        self.bn = nn.BatchNorm2d(oup, eps=1e-5, momentum=0.01)
        self.relu = nn.ReLU(inplace=True) if relu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.relu(x) if self.relu is not None else x


class BasicRFB(nn.Module):
    """Receptive-field block: 1x1 reduce, then 3x3 convs dilated 2, 3 and 5, concatenated, plus shortcut."""

    def __init__(self, inp: int, oup: int, scale: float = 1.0, map_reduce: int = 8) -> None:
        super().__init__()
        self.scale = scale
        inter = inp // map_reduce
        self.branch0 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False), BasicConv(inter, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=2, dilation=2, relu=False))
        self.branch1 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False), BasicConv(inter, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=3, dilation=3, relu=False))
        self.branch2 = nn.Sequential(
            BasicConv(inp, inter, 1, relu=False), BasicConv(inter, (inter // 2) * 3, 3, padding=1),
            BasicConv((inter // 2) * 3, 2 * inter, 3, padding=1),
            BasicConv(2 * inter, 2 * inter, 3, padding=5, dilation=5, relu=False))
        self.ConvLinear = BasicConv(6 * inter, oup, 1, relu=False)
        self.shortcut = BasicConv(inp, oup, 1, relu=False)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)
        return self.relu(self.ConvLinear(out) * self.scale + self.shortcut(x))


def separable(inp: int, oup: int, kernel: int = 1, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, inp, kernel, stride, padding, groups=inp), nn.ReLU(),
                         nn.Conv2d(inp, oup, 1))


class FaceNet(nn.Module):
    """Outputs ``(logits (N, P, 3), offsets (N, P, 4))`` over all priors P, head by head, row-major."""

    SOURCES = (8, 11, 13)  # trunk layer indexes after which the first three heads read

    def __init__(self) -> None:
        super().__init__()
        b = BASE
        self.base_net = nn.Sequential(
            conv_bn(3, b, 2), conv_dw(b, b * 2, 1), conv_dw(b * 2, b * 2, 2), conv_dw(b * 2, b * 2, 1),
            conv_dw(b * 2, b * 4, 2), conv_dw(b * 4, b * 4, 1), conv_dw(b * 4, b * 4, 1), BasicRFB(b * 4, b * 4),
            conv_dw(b * 4, b * 8, 2), conv_dw(b * 8, b * 8, 1), conv_dw(b * 8, b * 8, 1),
            conv_dw(b * 8, b * 16, 2), conv_dw(b * 16, b * 16, 1))
        self.extras = nn.ModuleList([nn.Sequential(
            nn.Conv2d(b * 16, b * 4, 1), nn.ReLU(), separable(b * 4, b * 16, 3, 2, 1), nn.ReLU())])
        chans = (b * 4, b * 8, b * 16)
        a = ANCHORS_PER_CELL
        self.classification_headers = nn.ModuleList(
            [separable(c, n * NUM_CLASSES, 3, padding=1) for c, n in zip(chans, a, strict=False)]
            + [nn.Conv2d(b * 16, a[3] * NUM_CLASSES, 3, padding=1)])
        self.regression_headers = nn.ModuleList(
            [separable(c, n * 4, 3, padding=1) for c, n in zip(chans, a, strict=False)]
            + [nn.Conv2d(b * 16, a[3] * 4, 3, padding=1)])

    def _head(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        conf = self.classification_headers[i](x).permute(0, 2, 3, 1).reshape(n, -1, NUM_CLASSES)
        loc = self.regression_headers[i](x).permute(0, 2, 3, 1).reshape(n, -1, 4)
        return conf, loc

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        confs, locs = [], []
        start = 0
        for i, end in enumerate(self.SOURCES):
            for layer in self.base_net[start:end]:
                x = layer(x)
            start = end
            c, lo = self._head(i, x)
            confs.append(c)
            locs.append(lo)
        for layer in self.base_net[start:]:
            x = layer(x)
        x = self.extras[0](x)
        c, lo = self._head(3, x)
        confs.append(c)
        locs.append(lo)
        return torch.cat(confs, 1), torch.cat(locs, 1)
