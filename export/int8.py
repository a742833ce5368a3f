"""int8 for CPU: two recipes over onnxruntime's dynamic quantization (int8 weights per output channel, activations
quantized per tensor at run time).

int8-fast  every MatMul and fused Attention quantized as is. Fastest; on all-MiniLM-L6-v2 one in ten nearest neighbours
           changes (docs/benchmarks.md, precision table).
int8       the same, except that each feed-forward block's int8 path never sees the first token. Encoders give the first
           token ([CLS], <s>) a 'massive activation' (one channel near 28 when the other tokens stay under 5), which
           sets the per-tensor scale and flattens every other token onto a few levels. Here the FFN input has the first
           token's row (and padding rows) zeroed before the int8 MatMuls, the first token's FFN runs in fp32 on its own
           (B, H) row (with fp32 copies of the FFN weights), and a Where puts it back. On x86 CPUs without VNNI,
           weights use 7 bits (reduce_range): their
           u8 x s8 multiply-adds saturate 16-bit sums once activations spread over the full 8-bit range.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

RECIPES = ("int8", "int8-fast")
_ACTIVATIONS = ("BiasGelu", "FastGelu", "Gelu")  # fused FFN activations: (h, bias) or (h,) -> same shape
_P = "int8_first_"  # prefix of every name this module adds


def to_int8(src: Path, dst: Path, large: bool, recipe: str = "int8", reduce_range: bool | None = None) -> dict:
    """Quantize the fused fp32 graph src into dst; return what was done (for the manifest)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if recipe not in RECIPES:
        raise ValueError(f"int8 recipe {recipe!r} is not one of {', '.join(RECIPES)}")
    keep_fp32: list[str] = []
    blocks = 0
    source = src
    if recipe == "int8":
        reduce_range = (not vnni_cpu()) if reduce_range is None else reduce_range
        model = onnx.load(str(src))
        blocks, keep_fp32 = first_token_ffn_fp32(model)
        source = dst.with_name(dst.name + ".first-token.onnx")
        onnx.save(model, str(source), save_as_external_data=large, location=source.name + ".data")
    root = logging.getLogger()
    quiet = _DropMessage("Please consider to run pre-processing")  # static-quantization advice, not for dynamic
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(source), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=bool(reduce_range),
            nodes_to_exclude=keep_fp32, use_external_data_format=large,
            # The fused contrib ops carry no type info the quantizer can read; tell it activations are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.removeFilter(quiet)
        if source != src:
            for leftover in (source, source.with_name(source.name + ".data")):
                leftover.unlink(missing_ok=True)
    return {"recipe": recipe, "reduce_range": bool(reduce_range), "first_token_fp32_ffn_blocks": blocks}


def first_token_ffn_fp32(model: onnx.ModelProto) -> tuple[int, list[str]]:
    """Rewrite every MatMul -> fused activation -> MatMul block in place; return (blocks, fp32 node names).

    x (B, T, H) float32 -> int8 path on x * keep (first token and padding rows zeroed), fp32 path on x[:, 0] (B, H);
    out = Where(is_first (B, T, 1), fp32 row, int8 rows). Graphs without such blocks are left as they are.
    """
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    blocks = []
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in weights:
            continue
        act = _only_consumer(consumers, node.output[0])
        if act is None or act.op_type not in _ACTIVATIONS:
            continue
        down = _only_consumer(consumers, act.output[0])
        if down is not None and down.op_type == "MatMul" and down.input[1] in weights:
            blocks.append((node, act, down))
    if not blocks or "attention_mask" not in {i.name for i in graph.input}:
        return 0, []
    replaced = {id(n) for block in blocks for n in block}
    first_of = {id(up): (up, act, down) for up, act, down in blocks}
    nodes, keep_fp32 = list(_masks()), []
    for node in graph.node:
        if id(node) in first_of:
            up, act, down = first_of[id(node)]
            copies = {w: _P + w.replace("/", "_").replace(":", "_") + "_fp32" for w in (up.input[1], down.input[1])}
            for w, copy in copies.items():  # the quantizer leaves these alone: the first token's weights stay fp32
                if copy not in weights:
                    weights[copy] = numpy_helper.from_array(numpy_helper.to_array(weights[w]), copy)
                    graph.initializer.append(weights[copy])
            added, fp32 = _rewrite(up, act, down, copies)
            nodes += added
            keep_fp32 += fp32
        elif id(node) not in replaced:
            nodes.append(node)
    graph.initializer.extend([
        numpy_helper.from_array(np.array(1, np.int64), _P + "axis1"),
        numpy_helper.from_array(np.array([1], np.int64), _P + "axes1"),
        numpy_helper.from_array(np.array([2], np.int64), _P + "axes2"),
        numpy_helper.from_array(np.array(0, np.int64), _P + "index0"),
        numpy_helper.from_array(np.array(1.0, np.float32), _P + "one"),
    ])
    del graph.node[:]
    graph.node.extend(nodes)
    return len(blocks), keep_fp32


def _masks() -> list:
    """keep (B, T, 1) float32: 1 on real tokens after the first; first (B, T, 1) bool: the first real token."""
    p = _P
    return [
        helper.make_node("Cast", ["attention_mask"], [p + "mask"], to=onnx.TensorProto.FLOAT, name=p + "mask"),
        helper.make_node("CumSum", [p + "mask", p + "axis1"], [p + "count"], name=p + "count"),
        helper.make_node("Equal", [p + "count", p + "one"], [p + "count_is_1"], name=p + "count_is_1"),
        helper.make_node("Cast", [p + "count_is_1"], [p + "count_is_1f"], to=onnx.TensorProto.FLOAT, name=p + "count_is_1f"),
        helper.make_node("Mul", [p + "count_is_1f", p + "mask"], [p + "first2"], name=p + "first2"),  # pads of 1-token rows
        helper.make_node("Sub", [p + "mask", p + "first2"], [p + "keep2"], name=p + "keep2"),
        helper.make_node("Unsqueeze", [p + "keep2", p + "axes2"], [p + "keep"], name=p + "keep"),
        helper.make_node("Cast", [p + "first2"], [p + "first2b"], to=onnx.TensorProto.BOOL, name=p + "first2b"),
        helper.make_node("Unsqueeze", [p + "first2b", p + "axes2"], [p + "first"], name=p + "first"),
    ]


def _rewrite(up, act, down, copies: dict[str, str]) -> tuple[list, list[str]]:
    """One FFN block as an int8 path without the first token plus that token's fp32 path (on fp32 weight copies)."""
    p = _P + up.name.replace("/", "_") + "_"
    x, out = up.input[0], down.output[0]
    act_rest = list(act.input[1:])
    domain = act.domain or None
    nodes = [
        helper.make_node("Mul", [x, _P + "keep"], [p + "x"], name=p + "x"),  # (B, T, H)
        helper.make_node("MatMul", [p + "x", up.input[1]], [p + "h"], name=up.name),
        helper.make_node(act.op_type, [p + "h", *act_rest], [p + "a"], name=act.name, domain=domain),
        helper.make_node("MatMul", [p + "a", down.input[1]], [p + "y"], name=down.name),
        helper.make_node("Gather", [x, _P + "index0"], [p + "x0"], axis=1, name=p + "x0"),  # (B, H)
        helper.make_node("MatMul", [p + "x0", copies[up.input[1]]], [p + "h0"], name=p + "up0"),
        helper.make_node(act.op_type, [p + "h0", *act_rest], [p + "a0"], name=p + "act0", domain=domain),
        helper.make_node("MatMul", [p + "a0", copies[down.input[1]]], [p + "y0"], name=p + "down0"),
        helper.make_node("Unsqueeze", [p + "y0", _P + "axes1"], [p + "y0_"], name=p + "y0_"),  # (B, 1, H)
        helper.make_node("Where", [_P + "first", p + "y0_", p + "y"], [out], name=p + "where"),
    ]
    for node, src in ((nodes[2], act), (nodes[6], act)):
        node.attribute.extend(src.attribute)
    return nodes, [p + "up0", p + "down0"]


def _only_consumer(consumers: dict, name: str):
    users = consumers.get(name, [])
    return users[0] if len(users) == 1 else None


def vnni_cpu() -> bool:
    """True on x86 CPUs with VNNI (or AMX), or on non-x86 CPUs: int8 dot products that do not saturate."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False  # unknown x86 CPU: 7-bit weights are the safe choice
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool(flags & {"avx512_vnni", "avx_vnni", "amx_int8"})


class _DropMessage(logging.Filter):
    """Drop log records whose message starts with a prefix."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)
