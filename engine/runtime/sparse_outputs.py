"""SparseEncoder's answers in sentence-transformers' types, and its inputs read back from them.

With torch importable, encode returns what sentence_transformers.SparseEncoder returns: a torch sparse COO tensor
(N, V) (uncoalesced as stacked there; a single text: its (V,) row), a dense (N, V) tensor with
convert_to_sparse_tensor=False, a list of per-text tensors with convert_to_tensor=False. Without torch (the core
install): numpy in place of dense tensors, and in place of sparse ones scipy.sparse.csr_array (N, V) float32 (a single
text: its (1, V) row) when scipy is importable; otherwise convert_to_sparse_tensor=True is refused, naming
convert_to_sparse_tensor=False and encode_sparse. decode and similarity read all of these forms, plus encode_sparse's
(indices, values) rows."""
from __future__ import annotations

import importlib

import numpy as np
from numpy.typing import NDArray

from ..errors import MissingExtraError
from .heads import SparseRow, sparse_row
from .st_outputs import optional_torch


def _scipy_sparse():
    try:
        return importlib.import_module("scipy.sparse")
    except ImportError:
        return None


def sparse_answer(rows: list[SparseRow], vocab: int, single: bool, convert_to_tensor: bool, convert_to_sparse_tensor: bool):
    """rows (N of (indices, values)) shaped as SparseEncoder.encode returns them (see the module doc)."""
    torch = optional_torch()
    if convert_to_sparse_tensor:
        if torch is not None:
            tensors = [_torch_row(torch, idx, val, vocab) for idx, val in rows]
            if not convert_to_tensor:
                return tensors[0] if single else tensors
            if not tensors:
                return torch.tensor([]).to_sparse()
            stacked = torch.stack(tensors)
            return stacked[0] if single else stacked
        sp = _scipy_sparse()
        if sp is None:
            raise MissingExtraError("sparse output without torch needs scipy (pip install scipy); or pass "
                                    "convert_to_sparse_tensor=False for dense numpy rows, or call encode_sparse() for "
                                    "(indices, values) per text")
        matrix = _csr(sp, rows, vocab)
        if single:
            return matrix
        return matrix if convert_to_tensor else [matrix[[i]] for i in range(len(rows))]
    dense = dense_rows(rows, vocab)  # (N, V) float32
    if torch is not None:
        out = torch.from_numpy(dense)
        if not convert_to_tensor:
            return out[0] if single else list(out)
        return out[0] if single else (out if len(rows) else torch.tensor([]))
    if not convert_to_tensor:
        return dense[0] if single else list(dense)
    return dense[0] if single else dense


def _torch_row(torch, idx: NDArray[np.int32], val: NDArray[np.float32], vocab: int):
    """One (V,) sparse COO tensor, as SparseEncoder's dense.to_sparse() gives it (int64 indices, sorted)."""
    return torch.sparse_coo_tensor(torch.from_numpy(idx.astype(np.int64))[None, :], torch.from_numpy(val), (vocab,),
                                   is_coalesced=True, check_invariants=False)


def _csr(sp, rows: list[SparseRow], vocab: int):
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(i) for i, _ in rows])
    indices = np.concatenate([i for i, _ in rows]) if rows else np.zeros(0, np.int32)
    values = np.concatenate([v for _, v in rows]) if rows else np.zeros(0, np.float32)
    return sp.csr_array((values, indices, indptr), shape=(len(rows), vocab), dtype=np.float32)


def dense_rows(rows: list[SparseRow], vocab: int) -> NDArray[np.float32]:
    """(N, V) float32 from (indices, values) rows."""
    out = np.zeros((len(rows), vocab), dtype=np.float32)
    for r, (idx, val) in enumerate(rows):
        out[r, idx] = val
    return out


def as_dense(x, vocab: int) -> tuple[NDArray[np.float32], bool]:
    """(the (N, V) float32 matrix, whether x was one vector) of any form encode returns, a numpy array, a scipy sparse
    matrix, or encode_sparse's rows (one (indices, values) tuple, or a list of them)."""
    if _is_row(x):
        return dense_rows([x], vocab), True
    if isinstance(x, list) and x and all(_is_row(r) for r in x):
        return dense_rows(x, vocab), False
    if isinstance(x, (list, tuple)) and x and all(_is_tensor_like(r) for r in x):
        mats = [as_dense(r, vocab)[0] for r in x]
        return np.concatenate(mats), False
    if hasattr(x, "layout") and hasattr(x, "to_dense"):  # a torch tensor, without importing torch
        if getattr(x, "is_sparse", False) or str(x.layout) != "torch.strided":
            x = x.to_dense()
        x = x.detach().cpu().numpy()
    elif hasattr(x, "toarray"):  # scipy.sparse
        x = x.toarray()
    a = np.asarray(x, dtype=np.float32)
    if a.ndim not in (1, 2):
        raise ValueError(f"expected a sparse embedding of shape (V,) or (N, V), got {a.ndim} dimensions {a.shape}")
    return (a[None, :], True) if a.ndim == 1 else (a, False)


def _is_row(x) -> bool:
    return (isinstance(x, tuple) and len(x) == 2 and all(isinstance(p, np.ndarray) and p.ndim == 1 for p in x)
            and x[0].dtype.kind in "iu")


def _is_tensor_like(x) -> bool:
    return hasattr(x, "to_dense") or hasattr(x, "toarray") or isinstance(x, np.ndarray)


def decode_rows(x, vocab: int, top_k: int | None, token_of) -> list[list[tuple[str, float]]] | list[tuple[str, float]]:
    """SparseEncoder.decode: per vector, (token, weight) of its non-zero entries by descending weight, the top_k
    first (None: all); one vector in: its list."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k <= 0):
        raise ValueError(f"top_k must be a positive integer, got {top_k}.")
    dense, single = as_dense(x, vocab)
    out = []
    for row in dense:
        idx, val = sparse_row(row)
        order = np.argsort(-val, kind="stable")[:top_k]
        out.append([(token_of(int(i)), float(v)) for i, v in zip(idx[order], val[order])])
    return out[0] if single else out
