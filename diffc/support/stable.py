"""NumPy helpers for the ops that need more than one NumPy call: stable forms and first-extreme masks.

Generated NumPy code calls these (``Printer.require("stable", name)``);
``diffc emit`` copies their source, so every helper uses NumPy only.

The max shift: ``logsumexp(x) = m + log(sum(exp(x - m)))`` with ``m = max(x)``
never overflows, since ``x - m <= 0``. A non-finite ``m`` is replaced by 0:
when some ``x`` is ``+inf`` the answer is ``+inf`` (``x - m`` would be
``inf - inf = NaN``), when every ``x`` is ``-inf`` it is ``-inf``, and a NaN
stays NaN; with the shift 0, plain arithmetic gives exactly those.
"""

from __future__ import annotations

import numpy as np

REQUIRES = {"stable_log_softmax": ("stable_logsumexp",), "first_max_mask": ("_first_mask",),
            "first_min_mask": ("_first_mask",)}


def stable_logsumexp(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """log(sum(exp(x), axis)), shifted by the maximum so that no exponential overflows (empty: -inf)."""
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    if keepdims:
        return out
    out = np.squeeze(out, axis=axis)
    return out[()] if out.ndim == 0 else out


def stable_softmax(x: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """exp(x) / sum(exp(x), axis), shifted by the maximum (softmax does not change under a shift)."""
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    e = np.exp(x - np.where(np.isfinite(m), m, 0.0))
    return e / np.sum(e, axis=axis, keepdims=True)


def stable_log_softmax(x: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """log(softmax(x)) = x - logsumexp(x): no exponential of a large number, no log of 0."""
    return x - stable_logsumexp(x, axis, True)


def _first_mask(x: np.ndarray, axis: tuple[int, ...], pick) -> np.ndarray:  # type: ignore[no-untyped-def]
    """True where ``pick`` (``np.argmax`` or ``np.argmin``) lands in each slice along ``axis``.

    The reduced axes are moved last and flattened to their explicit size
    (``-1`` cannot be worked out when a kept axis is empty).
    """
    kept = tuple(a for a in range(np.ndim(x)) if a not in axis)
    moved = np.transpose(x, kept + axis)  # the reduced axes last, then flattened into one
    flat = moved.reshape(moved.shape[:len(kept)] + (int(np.prod(moved.shape[len(kept):])),))
    hot = np.expand_dims(np.asarray(pick(flat, axis=-1)), -1) == np.arange(flat.shape[-1])
    return np.transpose(hot.reshape(moved.shape), np.argsort(kept + axis))


def first_max_mask(x: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """True at the FIRST maximum of each slice along ``axis`` (row-major order), False elsewhere.

    It is the element ``argmax`` picks (the first NaN, if the slice has one),
    so the gradient of ``max`` is one-hot even when the maximum is tied.
    """
    return _first_mask(x, axis, np.argmax)


def first_min_mask(x: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """True at the FIRST minimum of each slice along ``axis``: where the gradient of ``min`` goes."""
    return _first_mask(x, axis, np.argmin)
