"""text-embeddings-inference's routes: POST / (the served model's task), /embed, /embed_all, /similarity,
/embed_sparse (a SPLADE model's), /tokenize, /decode, /invocations (SageMaker's name for /), GET /info, and GET / and
/ping (health)."""
from __future__ import annotations

import asyncio
import time

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .embedding import embedding_endpoint, pooled_vectors
from .rerank_routes import tei_rerank
from .errors import InvalidRequest, error_response
from .responses import similarity_body, sparse_body, tei_body, tei_tokens_body, tokens_body
from .schemas import parse_decode, parse_embed_all, parse_embed_sparse, parse_similarity, parse_tei, parse_tokenize
from .sparse_model import SPARSE
from .sequences import parse_in_lane
from .state import ServerState, engine_version
from .transport import ClientGone, authorize, count, read_body

TEI_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8", "int8-fast": "int8"}


def tei_routes(state: ServerState, health) -> list[Route]:
    embed = embedding_endpoint(state, "tei", parse_tei,
                               lambda state, req, seqs, results, _tokens: tei_body(pooled_vectors(state, seqs, results), req))
    embed_all = embedding_endpoint(state, "tei", parse_embed_all,
                                   lambda _state, _req, _seqs, results, _tokens: tei_tokens_body(results), head="tokens")
    similarity = embedding_endpoint(state, "tei", parse_similarity,
                                    lambda state, _req, seqs, results, _tokens: similarity_body(pooled_vectors(state, seqs, results)),
                                    embed_request=lambda parsed: parsed.embed,
                                    name=lambda i: f"inputs.sentences[{i - 1}]" if i else "inputs.source_sentence")
    sparse = embedding_endpoint(state, "tei", parse_embed_sparse,
                                lambda _state, _req, _seqs, results, _tokens: sparse_body(results), head=SPARSE, task="sparse")
    # TEI routes POST / to the model's task: /embed for an embedding model, /rerank for a reranker, /embed_sparse for
    # a SPLADE model
    if state.task in ("rerank", "sparse"):
        task = tei_rerank(state) if state.task == "rerank" else sparse
    else:
        task = {"text": embed}.get(state.embedder.input_kind)

    async def info(request: Request) -> Response:
        try:
            authorize(request, state.cfg.api_key)
        except Exception as err:  # noqa: BLE001
            return count(state, "/info", error_response(err, "tei"))
        return count(state, "/info", Response(orjson.dumps(info_body(state)), media_type="application/json"))

    async def tokenize(request: Request) -> Response:
        return await _tokenizer_route(request, state, "/tokenize", parse_tokenize, _tokenize)

    async def decode(request: Request) -> Response:
        return await _tokenizer_route(request, state, "/decode", parse_decode, _decode)

    routes = [Route("/", task, methods=["POST"]), Route("/invocations", task, methods=["POST"])] if task else []
    return routes + [
            Route("/", health, methods=["GET"]), Route("/ping", health, methods=["GET"]), Route("/embed", embed, methods=["POST"]),
            Route("/embed_all", embed_all, methods=["POST"]), Route("/similarity", similarity, methods=["POST"]),
            Route("/embed_sparse", sparse, methods=["POST"]),
            Route("/tokenize", tokenize, methods=["POST"]), Route("/decode", decode, methods=["POST"]),
            Route("/info", info, methods=["GET"])]


def info_body(state: ServerState) -> dict:
    """TEI's GET /info, plus the served task (and for a reranker num_labels, activation, max_length; for a sparse
    encoder vocab_size, splade pooling and activation, the query side, max_active_dims).
    max_concurrent_requests: the queue is bounded by tokens, not requests; this is how many requests of one
    max-length text it holds at once."""
    emb, cfg, manifest = state.embedder, state.cfg, state.embedder.manifest
    if state.task == "rerank":
        labels = {str(i): f"LABEL_{i}" for i in range(emb.num_labels)}
        model_type = {"reranker": {"id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}}}
        task = {"task": "rerank", "num_labels": emb.num_labels, "activation": emb.activation, "max_length": emb.max_length}
    elif state.task == "sparse":
        model_type = {"embedding": {"pooling": "splade"}}  # TEI's name for a SPLADE model's pooling
        task = {"task": "sparse", "vocab_size": emb.vocab_size, "splade": manifest.get("splade"),
                "query": emb.query_kind, "max_active_dims": emb.max_active_dims}
    else:
        pooling = manifest.get("pooling")
        model_type = {"embedding": {"pooling": "+".join(pooling) if isinstance(pooling, list) else str(pooling)}}
        task = {"task": "embed", "embedding_dim": emb.dim, "normalize": bool(manifest.get("normalize"))}
    return {"model_id": cfg.model_name, "model_sha": (manifest.get("source") or {}).get("revision"),
            "model_dtype": TEI_DTYPES.get(manifest.get("precision"), str(manifest.get("precision"))),
            "served_model_name": cfg.model_name, "model_type": model_type,
            "max_concurrent_requests": max(cfg.max_queued_tokens // emb.max_length, 1),
            "max_input_length": emb.max_length, "max_batch_tokens": emb.max_batch_tokens, "max_batch_requests": None,
            "max_client_batch_size": cfg.max_inputs, "auto_truncate": True, "tokenization_workers": 2,
            "version": engine_version(), "sha": None, "docker_label": None, **task,
            "backend": emb.backend_choice.name, "backend_precision": emb.backend_choice.precision,
            "backend_reason": emb.backend_choice.reason, "device": str(emb.device)}


def _tokenize(state: ServerState, req) -> bytes:
    prompts = state.embedder.manifest.get("prompts") or {}
    if req.prompt_name is not None and req.prompt_name not in prompts:
        raise InvalidRequest(f"prompt_name {req.prompt_name!r} is not one of this model's prompts "
                             f"({', '.join(sorted(prompts)) or 'it has none'})", "prompt_name")
    texts = [prompts[req.prompt_name] + t for t in req.texts] if req.prompt_name else req.texts
    encodings = state.rust_tokenizer.encode_batch(texts, add_special_tokens=req.add_special_tokens)
    return tokens_body(encodings, texts)


def _decode(state: ServerState, req) -> bytes:
    return orjson.dumps(state.rust_tokenizer.decode_batch(req.ids, skip_special_tokens=req.skip_special_tokens))


async def _tokenizer_route(request: Request, state: ServerState, route: str, parse, work) -> Response:
    """/tokenize and /decode: parsed (in the large lane for a large body), then run in the tokenizer lane its size
    picks (in turn with the embedding routes')."""
    started = time.perf_counter()
    try:
        authorize(request, state.cfg.api_key)
        body = await read_body(request, state.cfg.max_request_bytes)
        req = await parse_in_lane(parse, body, state.limits, state.lanes)
        out = await asyncio.get_running_loop().run_in_executor(state.lanes.for_chars(len(body)), work, state, req)
        response = Response(out, media_type="application/json")
    except ClientGone:
        response = Response(status_code=499)
    except Exception as err:  # noqa: BLE001
        response = error_response(err, "tei")
    return count(state, route, response, started)

