"""Measures of colorization quality and temporal stability, on uint8 RGB frames.

* :func:`psnr`, :func:`ssim`: fidelity to ground truth; :func:`sequence_psnr`, PSNR of the
  mean squared error over all frames of a clip (a frame that the gray input matches exactly,
  such as a title card, does not weigh 100 dB in it).
* :func:`colourfulness`: Hasler & Suesstrunk (2003); 0 for gray, ~33 "moderately colourful".
* :func:`cdc`: colour distribution consistency as defined for TCVC (Liu et al. 2021): the
  Jensen-Shannon divergence of per-channel histograms between frames t and t+k, averaged over
  channels, frames and k in (1, 2, 4). Identical frames give 0; flicker raises it.
* :func:`warp_error`: the previous output frame warped onto the current one with optical flow
  (DIS, computed on the luminance), compared where the flow is trusted (Lai et al. 2018).

Example::

    print(colourfulness(frame), cdc(frames), warp_error(frames))
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PSNR_CAP = 100.0


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def _psnr_of_mse(mse: float) -> float:
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10.0 * np.log10(255.0**2 / mse))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images; identical images give ``PSNR_CAP`` (100 dB)."""
    return _psnr_of_mse(_mse(a, b))


def sequence_psnr(frames: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> float:
    """PSNR in dB of the mean squared error over all frames (capped at ``PSNR_CAP``).

    The mean of per-frame PSNRs lets a few exactly matched frames dominate (each scores the
    cap); pooling the error first weighs every pixel of the clip the same.
    """
    if len(frames) != len(truth) or len(frames) == 0:
        raise ValueError("sequence_psnr needs two equally long, non-empty sequences of frames")
    return _psnr_of_mse(float(np.mean([_mse(a, b) for a, b in zip(frames, truth, strict=True)])))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window sigma 1.5) over the channels of uint8 images."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for ch in range(x.shape[2]):
        p, q = x[..., ch], y[..., ch]

        def blur(img: np.ndarray) -> np.ndarray:
            return cv2.GaussianBlur(img, (11, 11), 1.5)

        mu_p, mu_q = blur(p), blur(q)
        var_p = blur(p * p) - mu_p**2
        var_q = blur(q * q) - mu_q**2
        cov = blur(p * q) - mu_p * mu_q
        num = (2 * mu_p * mu_q + c1) * (2 * cov + c2)
        den = (mu_p**2 + mu_q**2 + c1) * (var_p + var_q + c2)
        scores.append(float(np.mean(num / den)))
    return float(np.mean(scores))


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness of an RGB image (0 for gray)."""
    x = rgb.astype(np.float64)
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def chroma_planes(frame: np.ndarray) -> np.ndarray:
    """The Cr and Cb planes (uint8, H x W x 2) of an RGB frame: its colour without brightness."""
    return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YCrCb)[..., 1:])


def _histograms(frame: np.ndarray, bins: int) -> np.ndarray:
    values = frame.reshape(-1, frame.shape[-1]).astype(np.int64) * bins // 256
    hists = np.stack([np.bincount(values[:, c], minlength=bins) for c in range(frame.shape[-1])])
    return hists / hists.sum(axis=1, keepdims=True)


def _js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    m = 0.5 * (p + q)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        mask = a > 0
        return np.where(mask, a * np.log2(np.where(mask, a, 1) / np.where(mask, b, 1)), 0).sum(
            axis=-1
        )

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def cdc(
    frames: Sequence[np.ndarray],
    offsets: Sequence[int] = (1, 2, 4),
    bins: int = 256,
    chroma: bool = False,
    cuts: Sequence[int] = (),
) -> float:
    """Colour distribution consistency of a frame sequence (lower is steadier; 0 for a still).

    Args:
        frames: uint8 RGB frames.
        chroma: on the Cr/Cb histograms instead of R, G, B: what a colorizer changes, without
            the input's own brightness changes.
        cuts: frame numbers where a new shot starts: pairs of frames on both sides of a cut are
            left out (they compare two shots, not the steadiness of one; TCVC measures CDC on
            single-shot clips).
    """
    hists = [_histograms(chroma_planes(f) if chroma else f, bins) for f in frames]
    per_offset = []
    for k in offsets:
        pairs = [t for t in range(len(hists) - k) if not any(t < c <= t + k for c in cuts)]
        if pairs:
            per_offset.append(
                float(np.mean([_js_divergence(hists[t], hists[t + k]).mean() for t in pairs]))
            )
    return float(np.mean(per_offset)) if per_offset else 0.0


def _flow(a: np.ndarray, b: np.ndarray, dis: cv2.DISOpticalFlow) -> np.ndarray:
    return dis.calc(a, b, None)


def warp_error(
    frames: Sequence[np.ndarray], guide: Sequence[np.ndarray] | None = None, chroma: bool = False
) -> float:
    """Mean squared difference (RGB in [0, 1]) between each frame and its warped predecessor.

    Args:
        frames: the colorized frames, uint8 RGB.
        chroma: measure the Cr/Cb planes only (colour flicker without the input's own
            brightness changes, which restore passes through untouched).
        guide: frames to compute the flow on (e.g. the ground truth or the B&W input); default:
            ``frames`` themselves. Pixels whose forward-backward flow disagrees by more than
            1 px (occlusions, cuts) are left out.
    """
    guide = guide if guide is not None else frames
    if chroma:
        frames = [chroma_planes(f) for f in frames]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    errors = []
    for t in range(1, len(frames)):
        g0 = (
            cv2.cvtColor(guide[t - 1], cv2.COLOR_RGB2GRAY)
            if guide[t - 1].ndim == 3
            else guide[t - 1]
        )
        g1 = cv2.cvtColor(guide[t], cv2.COLOR_RGB2GRAY) if guide[t].ndim == 3 else guide[t]
        back = _flow(g1, g0, dis)  # where each pixel of t came from in t-1
        fwd = _flow(g0, g1, dis)
        h, w = g1.shape
        grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        map_x, map_y = grid_x + back[..., 0], grid_y + back[..., 1]
        warped = cv2.remap(
            frames[t - 1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        fwd_at = cv2.remap(fwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mismatch = np.hypot(back[..., 0] + fwd_at[..., 0], back[..., 1] + fwd_at[..., 1])
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        mask = (mismatch < 1.0) & inside
        if mask.any():
            diff = (frames[t].astype(np.float64) - warped.astype(np.float64)) / 255.0
            errors.append(float((diff**2).sum(axis=2)[mask].mean()))
    return float(np.mean(errors)) if errors else 0.0
