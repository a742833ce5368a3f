"""Hostile input against `engine serve`, round 3 (issue 23): long token-id inputs, empty or padded API keys, an input
the model fails on batched with innocent ones, deep nesting, a drain deadline, huge single texts, idle and stalled
connections, oversized headers, and the wording and strictness of refusals.

Two servers as a user starts them (subprocesses on free ports): `server` (the bundled all-MiniLM-L6-v2 export with
short connection timeouts and a small per-text character limit) and `drain_server` (a copy of the export whose
manifest records a smaller embedding table than its tokenizer has ids, a large character limit, a short drain
deadline; its last test stops it with SIGTERM). The batch-splitting test runs in-process uvicorn over the fake backend,
the only honest way to make one sequence of a batch fail in the model.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import pytest
from serve_helpers import ROOT, Server, cos_min

MIN_COS = 0.99999
MAX_TEXT_CHARS = 50_000  # server's --max-text-chars
IDLE_S, READ_S = 1, 2  # server's --idle-timeout-s, --read-timeout-s
DRAIN_S = 2  # drain_server's --drain-timeout-s
TABLE_ROWS = 29_000  # the embedding table drain_server's manifest records (its tokenizer has 30,522 ids)
BIG_TEXT_CHARS = 1_000_000


@pytest.fixture(scope="module")
def server(minilm_export, tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("hostile-serve") / "server.log", "--model", str(minilm_export),
               "--max-text-chars", str(MAX_TEXT_CHARS), "--idle-timeout-s", str(IDLE_S), "--read-timeout-s", str(READ_S))
    yield s
    assert s.stop() == 0, s.log


@pytest.fixture(scope="module")
def drain_server(minilm_export, tmp_path_factory):
    """A copy of the export whose manifest says the model's embedding table has TABLE_ROWS rows (what an export of a
    tokenizer grown with added tokens, without resizing the model, records); test_sigterm_... stops it."""
    folder = tmp_path_factory.mktemp("hostile-serve-drain") / "minilm-small-table"
    shutil.copytree(minilm_export, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["vocab_size"] = TABLE_ROWS
    (folder / "manifest.json").write_text(json.dumps(manifest))
    s = Server(folder.parent / "server.log", "--model", str(folder), "--max-text-chars", str(2 * BIG_TEXT_CHARS),
               "--drain-timeout-s", str(DRAIN_S), "--read-timeout-s", "600", "--idle-timeout-s", "600")
    yield s
    s.stop()


def post(server, route: str, body, **kw) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(server.url + route, content=content, headers={"content-type": "application/json"},
                      timeout=kw.pop("timeout", 120), **kw)


def message(r: httpx.Response) -> str:
    err = r.json()["error"]
    return err if isinstance(err, str) else err["message"]


def connect(server) -> socket.socket:
    parts = urlsplit(server.url)
    return socket.create_connection((parts.hostname, parts.port), timeout=30)


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes the connection or `seconds` pass: (closed, what was read)."""
    sock.settimeout(0.2)
    data, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, data
        if not chunk:
            return True, data
        data += chunk
    return False, data


def full_ids(embedder, text: str) -> list[int]:
    tok = embedder.rust_tokenizer
    tok.no_truncation()
    try:
        return tok.encode(text).ids
    finally:
        tok.enable_truncation(max_length=embedder.max_length)


def run_cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.pop("ENGINE_API_KEY", None)
    full_env.update(env or {})
    try:
        return subprocess.run([sys.executable, "-m", "engine", "serve", "--port", "0", "--device", "cpu", *args],
                              cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"engine serve {' '.join(args)} did not exit within {timeout} s: it started serving") from err


# -- token-id inputs over max length ---------------------------------------------------------------------------------
def test_long_token_id_input_keeps_its_final_special_token(server, embedder, real_texts):
    """(SW2) A token-id input over max length is cut as a text is (the final [SEP] kept): the same vector."""
    text = " ".join(real_texts[40:80])
    ids = full_ids(embedder, text)
    assert len(ids) > embedder.max_length
    for route, field in (("/v1/embeddings", "input"), ("/embed", "inputs")):
        by_text = post(server, route, {field: [text]})
        by_ids = post(server, route, {field: [ids]})
        assert by_text.status_code == by_ids.status_code == 200, by_ids.text
        got = [d["embedding"] for d in by_ids.json()["data"]] if route != "/embed" else by_ids.json()
        want = [d["embedding"] for d in by_text.json()["data"]] if route != "/embed" else by_text.json()
        assert cos_min(got, want) >= MIN_COS
    usage = post(server, "/v1/embeddings", {"input": [ids]}).json()["usage"]
    assert usage["prompt_tokens"] == embedder.max_length


def test_long_token_id_input_is_chunked_as_its_text_with_long_text_chunk():
    """(SW2) With --long-text chunk, a long token-id input is split into the same windows as its text: the same
    vector (in-process, over the fake backend, whose vectors are a function of each window's tokens)."""
    from fakes import fake_embedder, sentence

    emb = fake_embedder(long_text="chunk", max_length=8, chunk_stride=2)
    text = sentence(np.random.default_rng(0), 30)
    tok = emb.rust_tokenizer
    tok.no_truncation()
    ids = tok.encode(text).ids
    tok.enable_truncation(max_length=emb.max_length)
    srv = InProcessServer(emb)
    try:
        by_text = httpx.post(srv.url + "/embed", json={"inputs": [text]}, timeout=30)
        by_ids = httpx.post(srv.url + "/embed", json={"inputs": [ids]}, timeout=30)
        assert by_text.status_code == by_ids.status_code == 200, by_ids.text
        assert np.allclose(by_ids.json(), by_text.json()), (by_ids.json(), by_text.json())
    finally:
        srv.close()


# -- API keys --------------------------------------------------------------------------------------------------------
def test_empty_api_key_env_is_refused(minilm_export):
    """(SEC1) ENGINE_API_KEY set but empty is refused at startup (exit 2), as --api-key "" is, never served open."""
    for env, args in (({"ENGINE_API_KEY": ""}, ()), ({}, ("--api-key", ""))):
        proc = run_cli("--model", str(minilm_export), *args, env=env)
        assert proc.returncode == 2, proc.stderr
        assert "ready on" not in proc.stderr
    assert "ENGINE_API_KEY" in proc.stderr or "api" in proc.stderr.lower()
    proc = run_cli("--model", str(minilm_export), env={"ENGINE_API_KEY": ""})
    assert "ENGINE_API_KEY is set but empty" in proc.stderr


def test_api_key_with_surrounding_whitespace_is_refused(minilm_export):
    """(UE1) A key with leading or trailing whitespace (which HTTP strips from header values, so no client can send
    it) is refused at startup with the reason, from the option and from ENGINE_API_KEY alike."""
    from engine.errors import ConfigError
    from engine.serve.config import ServeConfig

    for env, args in (({}, ("--api-key", "abc ")), ({"ENGINE_API_KEY": " abc"}, ()), ({"ENGINE_API_KEY": "abc\n"}, ())):
        proc = run_cli("--model", str(minilm_export), *args, env=env)
        assert proc.returncode == 2, proc.stderr
        assert "whitespace" in proc.stderr and "ready on" not in proc.stderr
        assert "abc" not in proc.stderr  # the key itself is never shown
    for bad, why in (("a\tb", "printable ASCII"), ("clé", "printable ASCII"), ("  ", "whitespace")):
        with pytest.raises(ConfigError, match=why):
            ServeConfig(api_key=bad)
    assert ServeConfig(api_key="inner space ok").api_key == "inner space ok"


# -- an input the model fails on, batched with innocent ones ----------------------------------------------------------
class InProcessServer:
    """uvicorn in a thread over an app built on an Embedder (the fake backend), for what no real export can do."""

    def __init__(self, emb, max_wait_s: float = 0.0, **cfg) -> None:
        import uvicorn

        from engine.serve.app import build_app
        from engine.serve.batcher import Batcher
        from engine.serve.config import ServeConfig
        from engine.serve.metrics import Metrics
        from engine.serve.schemas import Limits
        from engine.serve.state import ServerState

        metrics = Metrics()
        self.batcher = Batcher(emb, metrics, 100_000, max_wait_s, 2 * emb.max_batch_tokens)
        self.batcher.start()
        state = ServerState(cfg=ServeConfig(heartbeat_s=0, **cfg), embedder=emb, batcher=self.batcher, metrics=metrics,
                            limits=Limits(max_inputs=64, vocab_size=200, dim=4, prefix=(2,), suffix=(3,)), ready=True)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="critical", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "in-process uvicorn did not start"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.batcher.stop()


def test_a_request_the_model_fails_on_does_not_fail_the_requests_batched_with_it():
    """(CR1) One request holds a token the model fails on; five innocent requests share its batch. The batch is split
    until the failing sequence runs alone: only that request fails, with a 4xx naming its input; the five get their
    own vectors."""
    from fakes import FakeBackend, expected_vector, fake_embedder

    backend = FakeBackend(fail_on_token=7)  # 7: "of"
    emb = fake_embedder(backend)
    srv = InProcessServer(emb, max_wait_s=0.5)  # the six requests gather into one round
    innocent = [["the an"], ["a the", "in is"], ["it that"], ["on with"], ["to in"]]  # two words each: one batch
    bodies = innocent[:2] + [["the a", "of two", "is it"]] + innocent[2:]
    answers: dict[int, httpx.Response] = {}

    def send(i: int) -> None:
        answers[i] = httpx.post(srv.url + ("/v1/embeddings" if i % 2 else "/embed"),
                                json={"input" if i % 2 else "inputs": bodies[i]}, timeout=30)

    try:
        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        bad = answers[2]
        assert bad.status_code == 422, bad.text  # TEI's /embed: a validation error
        assert "inputs[1]" in bad.json()["error"] and "refuses token 7" in bad.json()["error"]
        for i, texts in enumerate(bodies):
            if i == 2:
                continue
            r = answers[i]
            assert r.status_code == 200, r.text
            got = [d["embedding"] for d in r.json()["data"]] if i % 2 else r.json()
            want = np.array([expected_vector(emb.rust_tokenizer.encode(t).ids) for t in texts])
            if i % 2 == 0:  # TEI's /embed normalizes by default
                want /= np.linalg.norm(want, axis=1, keepdims=True)
            assert np.allclose(got, want), (i, got, want)
        failing = [b for b in backend.batches if (b.input_ids == 7).any()]
        assert len(failing[0].index) > 3  # the failing sequence was first batched with others
        assert len(failing[-1].index) == 1  # ... and last ran alone
        r = httpx.post(srv.url + "/v1/embeddings", json={"input": ["of two"]}, timeout=30)
        assert r.status_code == 400 and r.json()["error"]["param"] == "input[0]"
        assert httpx.post(srv.url + "/embed", json={"inputs": ["the a"]}, timeout=30).status_code == 200
    finally:
        srv.close()


def test_token_outside_the_embedding_table_is_refused_with_its_index(drain_server, embedder):
    """(CR1) A token id the tokenizer knows but the model's embedding table (the manifest's vocab_size) does not:
    refused with the input's index, as a token-id input and as a text that tokenizes to it."""
    vocab = embedder.rust_tokenizer.get_vocab()
    word, tid = next((w, i) for w, i in sorted(vocab.items(), key=lambda kv: kv[1])
                     if i >= TABLE_ROWS and w.isalpha() and embedder.rust_tokenizer.encode(w).ids[1:-1] == [i])
    r = post(drain_server, "/v1/embeddings", {"input": [[101, 2023, 102], [101, tid, 102]]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[1][1]", r.text
    assert str(TABLE_ROWS - 1) in message(r)
    r = post(drain_server, "/v1/embeddings", {"input": ["a fine text", f"a text with {word} in it"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[1]", r.text
    assert "embedding table" in message(r) and str(TABLE_ROWS) in message(r)
    r = post(drain_server, "/embed", {"inputs": ["a fine text", f"{word}"]})
    assert r.status_code == 422 and "inputs[1]" in message(r)
    assert post(drain_server, "/embed", {"inputs": ["a fine text"]}).status_code == 200


# -- nesting ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route,field", [("/v1/embeddings", "input"), ("/embed", "inputs"), ("/decode", "ids"),
                                         ("/similarity", "inputs")])
def test_deeply_nested_input_is_refused_before_parsing(server, route, field):
    """(CR2) A body nested 1,000 deep (under orjson's own limit) is refused with a 4xx naming the depth, not a 500."""
    body = b'{"%s": ' % field.encode() + b"[" * 1000 + b"101" + b"]" * 1000 + b"}"
    r = post(server, route, body)
    assert r.status_code in (400, 422), r.text
    assert "nested" in message(r) and "1001" in message(r)
    deep_object = b'{"%s": ' % field.encode() + b'{"a": ' * 300 + b"1" + b"}" * 300 + b"}"
    assert post(server, route, deep_object).status_code in (400, 422)
    assert post(server, "/v1/embeddings", {"input": [[101, 102]]}).status_code == 200


# -- the size of one text --------------------------------------------------------------------------------------------
def test_text_over_max_text_chars_is_413_naming_it(server):
    """(RE1) A single text over --max-text-chars is refused before tokenization, naming the input and the flag."""
    long = "word " * (MAX_TEXT_CHARS // 5) + "x"
    cases = [("/v1/embeddings", {"input": ["short", long]}, "input[1]"),
             ("/embed", {"inputs": ["short", long]}, "inputs[1]"),
             ("/tokenize", {"inputs": [long]}, "inputs[0]"),
             ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b", long]}}, "inputs.sentences[1]")]
    for route, body, where in cases:
        r = post(server, route, body)
        assert r.status_code == 413, r.text
        assert where in message(r) and f"{len(long)} characters" in message(r) and "--max-text-chars" in message(r)
    assert post(server, "/v1/embeddings", {"input": [long[:MAX_TEXT_CHARS]]}).status_code == 200


def test_one_word_request_is_not_queued_behind_huge_texts(drain_server, embedder):
    """(RE1) Two requests of one 1M-character text each are tokenizing; a 1-word request sent after them is answered
    before either of them."""
    words = "the quick brown fox jumps over the lazy dog while a small cat sleeps in the warm sun. "
    assert max(embedder.rust_tokenizer.encode(words).ids) < TABLE_ROWS  # drain_server's table holds them
    big = (words * (BIG_TEXT_CHARS // len(words) + 1))[:BIG_TEXT_CHARS]
    done: list[tuple[str, int]] = []

    def send(name: str, text: str) -> None:
        done.append((name, post(drain_server, "/v1/embeddings", {"input": [text]}, timeout=300).status_code))

    threads = [threading.Thread(target=send, args=(f"big{i}", big)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # both bodies are in and tokenizing (each takes seconds)
    send("small", "hello")
    for t in threads:
        t.join(300)
    assert sorted(done) == [("big0", 200), ("big1", 200), ("small", 200)], done
    assert done[0][0] == "small", done


# -- connections -----------------------------------------------------------------------------------------------------
def test_idle_and_stalled_connections_are_timed_out(server):
    """(RE2) A connection that sends nothing is closed after --idle-timeout-s; one that stops mid-headers or mid-body,
    or drips its headers a byte at a time, gets 408 and is closed after --read-timeout-s. The server keeps serving."""
    idle = connect(server)
    mid_headers = connect(server)
    mid_headers.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Ty")
    mid_body = connect(server)
    mid_body.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"input\": ")
    drip = connect(server)  # a header byte every 0.2 s: never idle, never done

    def dripping() -> None:
        try:
            for byte in b"POST /embed HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
                drip.send(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass  # closed by the server

    dripper = threading.Thread(target=dripping, daemon=True)
    dripper.start()
    closed, _ = closed_within(idle, IDLE_S + 10)
    assert closed, "an idle connection was not closed"
    for sock in (mid_headers, mid_body, drip):
        closed, data = closed_within(sock, READ_S + 10)
        assert closed, "a stalled request was not timed out"
        assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"--read-timeout-s" in data
    assert post(server, "/v1/embeddings", {"input": "still serving"}).status_code == 200


def test_oversized_headers_are_431(server):
    """(RE5) Request headers over --max-header-bytes (default 64 KiB) are refused with 431, not read and answered."""
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    closed, data = closed_within(sock, 20)
    assert data.startswith(b"HTTP/1.1 431"), data[:200]
    assert closed and b"--max-header-bytes" in data
    assert httpx.get(server.url + "/health", headers={"x-fine": "b" * 8000}).status_code == 200


# -- wording and strictness ------------------------------------------------------------------------------------------
PYTHON_NAMES = ("str", "NoneType", "list", "dict", "int", "float", "bool")

# (route, body, words the message must hold)
WORDING = [
    ("/v1/embeddings", b'"abc"', ["a string"]),
    ("/v1/embeddings", b"null", ["null"]),
    ("/v1/embeddings", b"[1, 2]", ["an array"]),
    ("/v1/embeddings", {"input": None}, ["null"]),
    ("/v1/embeddings", {"input": [1.5]}, ["number"]),
    ("/v1/embeddings", {"input": ["a", {"b": 1}]}, ["an object"]),
    ("/v1/embeddings", {"input": [[101, "x", 102]]}, ["a string"]),
    ("/v1/embeddings", {"input": [[101, True, 102]]}, ["a boolean"]),
    ("/v1/embeddings", {"input": "a", "encoding_format": 5}, ["a number", "a string"]),
    ("/v1/embeddings", {"input": "a", "dimensions": 2.5}, ["a number", "an integer"]),
    ("/embed", {"inputs": "a", "normalize": "yes"}, ["a string", "a boolean"]),
    ("/embed", {"inputs": "a", "truncate": 1}, ["a number", "a boolean"]),
    ("/similarity", {"inputs": {"source_sentence": None, "sentences": ["a"]}}, ["null", "a string"]),
    ("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["a"]}, "parameters": []}, ["an array", "an object"]),
    ("/decode", {"ids": [[1, None]]}, ["null"]),
]


@pytest.mark.parametrize("route,body,words", WORDING, ids=[f"{r}-{i}" for i, (r, *_rest) in enumerate(WORDING)])
def test_error_texts_use_json_type_names(server, route, body, words):
    """(UE8) Refusals name JSON's types (string, null, object, array, number, boolean), never Python's."""
    r = post(server, route, body)
    assert r.status_code in (400, 422), r.text
    text = message(r)
    for word in words:
        assert word in text, text
    for name in PYTHON_NAMES:
        assert not re.search(rf"\b{name}\b", text), text


def test_prompt_name_with_token_ids_is_refused(server, embedder):
    """(UE8) TEI's prompt_name applies to texts; with token-id inputs it is refused (not silently ignored)."""
    ids = embedder.rust_tokenizer.encode("a query").ids
    for route in ("/embed", "/embed_all"):
        for name in ("query", "nonexistent"):
            r = post(server, route, {"inputs": [ids], "prompt_name": name})
            assert r.status_code == 422, r.text
            assert "prompt_name" in message(r) and "token ids" in message(r)


@pytest.mark.parametrize("body", [{"input": "a", "encoding_format": ""}, {"input": "a", "encoding_format": "FLOAT"}])
def test_empty_encoding_format_is_refused(server, body):
    """(UE8) encoding_format must be "float" or "base64" (or absent); "" no longer means float."""
    r = post(server, "/v1/embeddings", body)
    assert r.status_code == 400 and r.json()["error"]["param"] == "encoding_format", r.text
    assert post(server, "/v1/embeddings", {"input": "a", "encoding_format": None}).status_code == 200


# -- the drain deadline (last: it stops drain_server) ------------------------------------------------------------------
def test_sigterm_closes_half_sent_requests_after_the_drain_deadline(drain_server):
    """(HG1) SIGTERM with a client holding a half-sent request and another holding an idle connection: the server
    drains for --drain-timeout-s, then closes them and exits 0, instead of waiting for the client forever."""
    half = connect(drain_server)
    half.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"input\": [\"a")
    idle = connect(drain_server)
    time.sleep(0.3)
    drain_server.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    try:
        code = drain_server.proc.wait(DRAIN_S + 30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"engine serve still running {DRAIN_S + 30} s after SIGTERM with a half-sent request open")
    assert code == 0, drain_server.log
    assert time.monotonic() - started >= DRAIN_S - 0.5  # the half-sent request had its drain time
    assert closed_within(half, 5)[0] and closed_within(idle, 5)[0]
    assert "drain deadline" in drain_server.log
