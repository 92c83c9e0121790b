"""Fine-tune the face detector (masked and unmasked faces, small CCTV faces) and export it to ONNX.

Starts from the MIT-licensed masked-face RFB weights in ``../shared/models/rfb-masked-face`` (trained at
640x480 on WIDER FACE + MAFA) and fine-tunes on ``../shared/datasets/mask-scenes`` (the train split less
a 10 % dev split; ``val.txt`` is never read here) and on scenes composed from the mask-crops train split
over the shared CCTV clips, with faces scaled so that 7-24 px at the input (16-48 px in a 1280x720 frame
seen at half size) are 40 % of all faces, plus low light, grey, blur, noise, JPEG and squash (from above).

Loss: SSD multibox (priors matched at IoU >= 0.35 plus each face's best prior, hard negatives 3:1, smooth
L1 on offsets); a mask worn incorrectly counts as "a face" (either class), so it is found for blurring
without teaching the classes anything. Output: ``src/civicam/analytics/models/faces.onnx`` (input
N x 3 x H x W, RGB (x - 127) / 128, H and W any multiple of 64; outputs ``scores`` (N, P, 3) softmax
over background / face / masked face and ``offsets`` (N, P, 4)) and ``faces.json`` (settings, losses).

Run (CPU, 2 cores, about 50-60 minutes; ``make train-faces``):
    nice .venv-train/bin/python training/faces/train.py          # --steps 1500 --threads 2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))
from net import FaceNet  # noqa: E402
from samples import SEED, Generator, Sample  # noqa: E402

from civicam.analytics.anchors import encode, iou_matrix, priors  # noqa: E402

INIT = REPO / ".." / "shared" / "models" / "rfb-masked-face" / "RFB-640-masked_face-v2.pth"
OUT = REPO / "src" / "civicam" / "analytics" / "models" / "faces.onnx"
SIZE = (640, 384)  # a 1280x720 frame at half size, padded to a multiple of 64
MATCH_IOU = 0.35
NEG_POS = 3


def corner(p: np.ndarray) -> np.ndarray:
    return np.concatenate([p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2], 1)


def targets(s: Sample, prior: np.ndarray, prior_xyxy: np.ndarray,
            match_iou: float = MATCH_IOU) -> tuple[np.ndarray, np.ndarray]:
    """Per prior: class target (0 bg, 1 face, 2 masked, 3 either, -1 ignore) and offsets."""
    w, h = SIZE
    cls = np.zeros(len(prior), np.int64)
    loc = np.zeros((len(prior), 4), np.float32)
    if not len(s.boxes):
        return cls, loc
    gt = s.boxes / np.array([w, h, w, h], np.float32)
    ious = iou_matrix(prior_xyxy, gt)  # (P, G)
    best_gt = ious.argmax(1)
    best_iou = ious[np.arange(len(prior)), best_gt]
    for g in range(len(gt)):  # every face gets at least its best prior
        if s.labels[g] >= 0:
            p = int(ious[:, g].argmax())
            best_gt[p], best_iou[p] = g, 2.0
    pos = best_iou >= match_iou
    cls[pos] = s.labels[best_gt[pos]]
    # Near an ignored face a prior is neither a face nor background.
    cls[(best_iou >= match_iou * 0.6) & (s.labels[best_gt] < 0)] = -1
    cls[~pos & (best_iou >= match_iou * 0.6) & (s.labels[best_gt] > 0)] = -1
    loc[pos] = encode(gt[best_gt[pos]], prior[pos])
    return cls, loc


def stacked_targets(batch: list[Sample], prior: np.ndarray, prior_xyxy: np.ndarray,
                    match_iou: float = MATCH_IOU) -> tuple[torch.Tensor, torch.Tensor]:
    """``targets`` of every sample, stacked: class targets (N, P) and offsets (N, P, 4)."""
    tg = [targets(s, prior, prior_xyxy, match_iou) for s in batch]
    return torch.from_numpy(np.stack([c for c, _ in tg])), torch.from_numpy(np.stack([lo for _, lo in tg]))


def multibox_loss(logits: torch.Tensor, offsets: torch.Tensor, cls: torch.Tensor,
                  loc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logp = F.log_softmax(logits, -1)
    pos = cls > 0
    n_pos = max(1, int(pos.sum()))
    with torch.no_grad():  # hard negative mining: the most confident background mistakes, 3 per face
        bg_loss = -logp[..., 0].clone()
        bg_loss[cls != 0] = -math.inf
        k = (pos.sum(1, keepdim=True) * NEG_POS).clamp(min=8)
        rank = bg_loss.argsort(1, descending=True).argsort(1)
        neg = (rank < k) & (cls == 0)
    either = torch.logsumexp(logp[..., 1:], -1)
    picked = torch.gather(logp, -1, cls.clamp(0, 2).unsqueeze(-1)).squeeze(-1)
    pos_loss = torch.where(cls == 3, -either, -picked)
    cls_loss = (pos_loss[pos].sum() - logp[..., 0][neg].sum()) / n_pos
    loc_loss = F.smooth_l1_loss(offsets[pos], loc[pos], reduction="sum") / n_pos
    return cls_loss, loc_loss


def to_tensor(images: list[np.ndarray], layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    x = np.stack([im[:, :, ::-1] for im in images]).astype(np.float32)  # BGR -> RGB
    return torch.from_numpy((x - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous(memory_format=layout)


def export(model: FaceNet, path: Path) -> None:
    class WithSoftmax(torch.nn.Module):
        def __init__(self, net: FaceNet) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            logits, offsets = self.net(x)
            return torch.softmax(logits, -1), offsets

    model.eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(1, 3, SIZE[1], SIZE[0])
    torch.onnx.export(WithSoftmax(model), (dummy,), str(path), input_names=["input"],
                      output_names=["scores", "offsets"], opset_version=17, dynamo=False,
                      dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "scores": {0: "n", 1: "p"},
                                    "offsets": {0: "n", 1: "p"}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--channels-last", action="store_true",
                    help="channels-last tensors: ~1.4x faster steps on CPU (forward+backward 2.0 s against 2.9 s "
                    "for 16 samples here) but other rounding, so not the shipped weights; for experiments")
    a = ap.parse_args()
    layout = torch.channels_last if a.channels_last else torch.contiguous_format
    torch.manual_seed(SEED)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    model = FaceNet()
    model.load_state_dict(torch.load(INIT, map_location="cpu"))
    model.to(dev, memory_format=layout).train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=max(0.05, 2 / a.steps))
    prior = priors(*SIZE)
    prior_xyxy = corner(prior)
    gen = Generator(SIZE)
    log: list[dict[str, float]] = []
    t0 = time.time()
    run_c = run_l = 0.0
    for step in range(1, a.steps + 1):
        batch = [next(gen) for _ in range(a.batch)]
        x = to_tensor([s.image for s in batch], layout).to(dev)
        cls, loc = (t.to(dev) for t in stacked_targets(batch, prior, prior_xyxy))
        logits, offsets = model(x)
        c_loss, l_loss = multibox_loss(logits, offsets, cls, loc)
        loss = c_loss + l_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        run_c, run_l = run_c + c_loss.item(), run_l + l_loss.item()
        if step % 50 == 0 or step == a.steps:
            entry = {"step": step, "cls_loss": run_c / 50, "loc_loss": run_l / 50, "minutes": (time.time() - t0) / 60}
            log.append(entry)
            print(json.dumps(entry), flush=True)
            run_c = run_l = 0.0
        if step % 250 == 0 or step == a.steps:
            model.cpu()
            export(model, a.out)
            model.to(dev, memory_format=layout).train()
    meta = {"init": "RFB-640-masked_face-v2.pth (MIT)", "input_size": SIZE, "steps": a.steps, "batch": a.batch,
            "lr": a.lr, "seed": SEED, "device": a.device, "minutes": (time.time() - t0) / 60, "log": log[-5:]}
    a.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
