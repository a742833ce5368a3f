"""The naive embedding server most people write, for the serve benchmark's comparison: sentence-transformers behind
the same HTTP stack as engine serve (Starlette + uvicorn + orjson), one request at a time.

python -m benchmarks.serve_naive --model FOLDER --port PORT [--threads 2]; prints 'ready on http://...' when it listens.
"""
from __future__ import annotations

import argparse
import asyncio
import sys


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_naive")
    p.add_argument("--model", required=True, help="sentence-transformers folder")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import orjson
    import torch
    import uvicorn
    from sentence_transformers import SentenceTransformer
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu")
    model.encode(["warm-up"])
    lock = asyncio.Lock()

    async def embeddings(request):
        body = orjson.loads(await request.body())
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        async with lock:  # one request at a time, off the event loop
            emb = await asyncio.get_running_loop().run_in_executor(None, model.encode, texts)
        tokens = sum(len(x) for x in model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"])
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(emb)]
        return Response(orjson.dumps({"object": "list", "data": data, "model": "naive",
                                      "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                                     option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json")

    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", args.port))
    sock.listen(2048)
    print(f"ready on http://127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    app = Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


if __name__ == "__main__":
    main()
