"""Train the mask / no-mask face classifier and export it to ONNX.

Data: /work/shared/datasets/mask-crops (see its PROVENANCE.md, MIT licence), split by file, stratified,
fixed seed (``data.split``): train 75 %, val 10 % (model selection), test 15 % (never seen here; reported
by ``validate.py``). Augmentation makes tight frontal crops look like CCTV faces: crop jitter, flips,
rotations, vertical squash (seen from above), down-scale to 24-64 px and back, blur, noise, JPEG,
brightness/contrast, grey. Model: a small CNN on 64x64 BGR input scaled to 0..1, softmax over
(mask, no_mask). Output: src/civicam/analytics/models/mask_classifier.onnx (+ .json with metrics).

Run (CPU, a few minutes, in the separate training venv):
    python3 -m venv .venv-train
    .venv-train/bin/pip install torch==2.13.0 onnx numpy pillow opencv-python-headless
    nice .venv-train/bin/python training/mask/train.py            # --epochs 24 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import LABELS, REPO, SEED, Image, cctv_degrade, read_bgr, split  # noqa: E402

SIZE = 64
OUT = REPO / "src" / "civicam" / "analytics" / "models" / "mask_classifier.onnx"


def augment(img: Image, rng: np.random.Generator) -> Image:
    h, w = img.shape[:2]
    # crop jitter: scale 0.75-1.15 of the crop, shifted by up to 10 %
    s = float(rng.uniform(0.75, 1.15))
    cw, ch = w * s, h * s * (float(rng.uniform(0.8, 1.0)) if rng.random() < 0.3 else 1.0)
    cx = w / 2 + float(rng.uniform(-0.1, 0.1)) * w
    cy = h / 2 + float(rng.uniform(-0.1, 0.1)) * h
    angle = float(rng.uniform(-15, 15))
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    src = np.array([[cx - cw / 2, cy - ch / 2], [cx + cw / 2, cy - ch / 2], [cx - cw / 2, cy + ch / 2]],
                   np.float32)
    ones = np.ones((3, 1), np.float32)
    src = (np.hstack([src, ones]) @ m.T).astype(np.float32)
    dst = np.array([[0, 0], [SIZE, 0], [0, SIZE]], np.float32)
    out = cv2.warpAffine(img, cv2.getAffineTransform(src, dst), (SIZE, SIZE), flags=cv2.INTER_AREA,
                         borderMode=cv2.BORDER_REPLICATE)
    if rng.random() < 0.5:
        out = np.ascontiguousarray(out[:, ::-1])
    return cctv_degrade(np.asarray(out, np.uint8), rng, 1.0)


def plain(img: Image) -> Image:
    return np.asarray(cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA), np.uint8)


def to_tensor(batch: list[Image]) -> torch.Tensor:
    a = np.stack(batch).astype(np.float32) / 255.0
    return torch.from_numpy(a.transpose(0, 3, 1, 2).copy())


def block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.MaxPool2d(2))


class MaskNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 96))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(96, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class WithSoftmax(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def evaluate(net: nn.Module, images: list[Image], labels: np.ndarray) -> float:
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), 256):
            p = net(to_tensor(images[i:i + 256])).argmax(1).numpy()
            correct += int((p == labels[i:i + 256]).sum())
    return correct / len(images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(SEED)
    parts = split()
    train = [(read_bgr(p), lab) for p, lab in parts["train"]]
    val = [(read_bgr(p), lab) for p, lab in parts["val"]]
    val_y = np.array([lab for _, lab in val])
    val_clean = [plain(im) for im, _ in val]
    vrng = np.random.default_rng(SEED + 7)
    val_cctv = [plain(cctv_degrade(im, vrng, 1.0)) for im, _ in val]
    print(f"train {len(train)}  val {len(val)}  test {len(parts['test'])} (held out)")

    net = MaskNet()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    steps = a.epochs * ((len(train) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    best, best_state, history = -1.0, None, []
    for epoch in range(a.epochs):
        t0 = time.time()
        net.train()
        order = rng.permutation(len(train))
        total = 0.0
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            x = to_tensor([augment(train[j][0], rng) for j in idx])
            y = torch.tensor([train[j][1] for j in idx])
            opt.zero_grad()
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(idx)
        acc_c, acc_d = evaluate(net, val_clean, val_y), evaluate(net, val_cctv, val_y)
        history.append({"epoch": epoch, "loss": total / len(train), "val_clean": acc_c, "val_cctv": acc_d})
        print(f"epoch {epoch:2d} loss {total / len(train):.4f} val clean {acc_c:.4f} cctv {acc_d:.4f} "
              f"({time.time() - t0:.0f}s)", flush=True)
        if acc_c + acc_d > best:
            best = acc_c + acc_d
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(WithSoftmax(net), torch.zeros(1, 3, SIZE, SIZE), str(a.out), input_names=["input"],
                      output_names=["probs"], dynamic_axes={"input": {0: "n"}, "probs": {0: "n"}},
                      opset_version=17, dynamo=False)
    meta = {"input": [3, SIZE, SIZE], "channels": "BGR", "scale": "0..1", "labels": list(LABELS),
            "seed": SEED, "epochs": a.epochs, "history": history,
            "params": sum(p.numel() for p in net.parameters())}
    a.out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
