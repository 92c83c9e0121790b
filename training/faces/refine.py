"""Fine-tune an exported face detector further (an experiment tool; the shipped model is ``train.py``'s).

A full ``train.py`` run takes ~46 minutes on the 2-core CPU; a change aimed at the last few points of AP
is cheaper to judge as a short second stage from the shipped model. This loads ``faces.onnx`` back into the
network (``fused.load``, checked against onnxruntime), keeps the BatchNorms in eval mode (the export folded
their statistics away), and trains with ``train.py``'s samples and multibox loss plus a DIoU loss on the
decoded boxes of the matched priors (aimed at box placement: at IoU 0.3 the APs are ~0.10 higher than at
0.5, see docs/model-card-faces.md); ``--iou-weight 0 --swa-start F`` instead holds the rate and exports the mean
of the weights (stochastic weight averaging). The samples come from a seed other than ``train.py``'s, so the stage
sees pictures the first did not. Judge a candidate on ``dev`` first, then ``val`` once:
    nice .venv-train/bin/python training/faces/refine.py --out /tmp/candidate.onnx      # 11-17 min, 400 steps
    nice .venv/bin/python training/faces/evaluate.py --split dev --systems rfb,rfb-flip --model /tmp/candidate.onnx
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import fused  # noqa: E402
import train  # noqa: E402  (puts src/ on the path too)
from net import FaceNet  # noqa: E402
from samples import SEED, Generator  # noqa: E402

from civicam.analytics.anchors import CENTER_VARIANCE, SIZE_VARIANCE, priors  # noqa: E402


def decode(offsets: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``civicam.analytics.anchors.decode`` in torch, so that the box loss has gradients."""
    centre = prior[:, :2] + offsets[:, :2] * CENTER_VARIANCE * prior[:, 2:]
    size = prior[:, 2:] * torch.exp((offsets[:, 2:] * SIZE_VARIANCE).clamp(-10.0, 10.0))
    return torch.cat([centre - size / 2, centre + size / 2], 1)


def diou_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - IoU + (centre distance / enclosing diagonal)^2 per pair of corner boxes (Zheng et al., 2020)."""
    inter = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0).prod(1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(1)
    iou = inter / (area_a + area_b - inter + 1e-9)
    diagonal = ((torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])) ** 2).sum(1) + 1e-9
    distance = ((((a[:, :2] + a[:, 2:]) - (b[:, :2] + b[:, 2:])) / 2) ** 2).sum(1)
    return 1 - iou + distance / diagonal


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", type=Path, default=train.OUT, help="the export to start from")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--iou-weight", type=float, default=2.0, help="weight of the DIoU loss (0: off)")
    ap.add_argument("--match-iou", type=float, default=train.MATCH_IOU, help="prior-to-face IoU that makes a positive")
    ap.add_argument("--composed-share", type=float, default=0.3, help="share of composed CCTV scenes in the samples")
    ap.add_argument("--swa-start", type=float, default=0.0,
                    help="from this share of the steps on, hold the learning rate and export the mean of the weights "
                         "seen at every step (stochastic weight averaging; 0: off, one-cycle schedule)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if a.out.resolve() == a.init.resolve():
        raise SystemExit("--out must differ from --init (the shipped model is train.py's output)")
    if not 0.0 <= a.swa_start < 1.0:
        raise SystemExit("--swa-start must be in [0, 1)")
    torch.manual_seed(SEED + 1)
    torch.set_num_threads(a.threads)
    model = FaceNet()
    fused.load(model, a.init)
    print(f"loaded {a.init}: largest difference from onnxruntime {fused.check(model, a.init):.1e}", flush=True)
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()  # the folded statistics are gone: batch statistics would replace them
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=5e-4)
    average: torch.optim.swa_utils.AveragedModel | None = None
    if a.swa_start > 0:
        # Warm up over the first 10 %, then hold: averaging needs weights that still move between steps.
        warm = max(1, a.steps // 10)
        sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: min(1.0, (i + 1) / warm))
        average = torch.optim.swa_utils.AveragedModel(model)
    else:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=a.steps, pct_start=0.1)
    prior = priors(*train.SIZE)
    prior_xyxy = train.corner(prior)
    prior_t = torch.from_numpy(prior.copy())
    gen = Generator(train.SIZE, seed=SEED + 1, composed_share=a.composed_share)
    t0 = time.time()
    sums = np.zeros(3)
    for step in range(1, a.steps + 1):
        batch = [next(gen) for _ in range(16)]
        cls, loc = train.stacked_targets(batch, prior, prior_xyxy, a.match_iou)
        logits, offsets = model(train.to_tensor([s.image for s in batch]))
        c_loss, l_loss = train.multibox_loss(logits, offsets, cls, loc)
        pos = cls > 0
        matched = prior_t.unsqueeze(0).expand(len(batch), -1, -1)[pos]
        i_loss = diou_loss(decode(offsets[pos], matched), decode(loc[pos], matched)).sum() / max(1, int(pos.sum()))
        loss = c_loss + l_loss + a.iou_weight * i_loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        sched.step()
        if average is not None and step > a.swa_start * a.steps:
            average.update_parameters(model)
        sums += (c_loss.item(), l_loss.item(), i_loss.item())
        if step % 25 == 0 or step == a.steps:
            n = 25 if step % 25 == 0 else step % 25
            c, lo, i = sums / n
            print(json.dumps({"step": step, "cls_loss": c, "loc_loss": lo, "diou_loss": i,
                              "minutes": (time.time() - t0) / 60}), flush=True)
            sums[:] = 0
    # The BatchNorms stayed in eval mode with fixed statistics, so the mean weights need no BN update.
    train.export(model if average is None else average.module, a.out)
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB, {(time.time() - t0) / 60:.1f} min)")


if __name__ == "__main__":
    main()
