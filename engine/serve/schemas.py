"""Request bodies of the OpenAI (/v1/embeddings, /embeddings) and TEI (/embed, /embed_all, /similarity, /tokenize,
/decode) routes, parsed into one EmbedRequest (or TokenizeRequest, DecodeRequest, SimilarityRequest).

Every refusal names the field or index at fault: `input[3]`, `dimensions`, `encoding_format`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import DEFAULT_MAX_TEXT_CHARS
from .errors import DimensionsOutOfRange, InvalidRequest, PayloadTooLarge
from .jsonbody import json_object as _json_object
from .jsonbody import json_type as _type
from .jsonbody import optional as _optional

ENCODING_FORMATS = ("float", "base64")


@dataclass(frozen=True)
class Limits:
    """What a request is checked against: the server's input and text-size limits, the model's vocabulary (token ids
    below both the tokenizer's size and the rows of the model's embedding table) and dimension, and the special
    tokens its tokenizer puts around a text ([CLS] ... [SEP]), which token-id inputs must carry."""

    max_inputs: int
    vocab_size: int
    dim: int
    prefix: tuple[int, ...] = ()
    suffix: tuple[int, ...] = ()
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    table_rows: int | None = None  # the embedding table's rows (the manifest's vocab_size) when below the tokenizer's size


@dataclass(frozen=True)
class EmbedRequest:
    """One parsed request: texts or token-id lists (exactly one is set) and how to shape the answer."""

    texts: list[str] | None
    token_ids: list[list[int]] | None
    dimensions: int | None = None  # Matryoshka: keep the first d, then renormalize
    base64: bool = False  # OpenAI encoding_format
    normalize: bool = False  # L2-normalize the answer (TEI's normalize; the model's own normalization is kept anyway)
    truncate: bool = True  # False (TEI): a text over max length is refused with 413
    prompt_name: str | None = None

    @property
    def count(self) -> int:
        return len(self.texts) if self.texts is not None else len(self.token_ids)


def parse_infinity(body: bytes, limits: Limits) -> EmbedRequest:
    """POST /embeddings: parse_openai, except that dimensions 0 means none (infinity's client sends 0 by default)."""
    return parse_openai(body, limits, zero_means_none=True)


def parse_openai(body: bytes, limits: Limits, zero_means_none: bool = False) -> EmbedRequest:
    """POST /v1/embeddings and /embeddings: input, model, encoding_format, dimensions, user; infinity's modality
    ("text" only) and output_dimension (what litellm's infinity provider sends for dimensions)."""
    obj = _json_object(body)
    texts, ids = _inputs(obj, "input", limits)
    _optional(obj, "model", str)
    _optional(obj, "user", str)
    fmt = _optional(obj, "encoding_format", str)
    fmt = "float" if fmt is None else fmt
    if fmt not in ENCODING_FORMATS:
        raise InvalidRequest(f"encoding_format {_type(fmt)} is not one of {', '.join(map(repr, ENCODING_FORMATS))} "
                             f"(or absent: float)", "encoding_format")
    modality = _optional(obj, "modality", str)
    if modality not in (None, "text"):
        raise InvalidRequest(f"modality {modality!r} is not served: this model embeds text only", "modality")
    if obj.get("dimensions") is None and obj.get("output_dimension") is not None:
        obj = {**obj, "dimensions": obj["output_dimension"]}
    if zero_means_none and obj.get("dimensions") == 0 and type(obj["dimensions"]) is int:
        obj = {**obj, "dimensions": None}
    dims = _dimensions(obj, limits.dim)
    return EmbedRequest(texts, ids, dimensions=dims, base64=fmt == "base64", normalize=dims is not None)


def parse_tei(body: bytes, limits: Limits) -> EmbedRequest:
    """POST /embed: inputs, normalize (default true), truncate (default true), dimensions, prompt_name."""
    obj = _json_object(body)
    texts, ids = _inputs(obj, "inputs", limits)
    normalize = _optional(obj, "normalize", bool)
    truncate = _optional(obj, "truncate", bool)
    _direction(obj)
    prompt_name = _prompt_name(obj, ids)
    return EmbedRequest(texts, ids, dimensions=_dimensions(obj, limits.dim), normalize=normalize is not False,
                        truncate=truncate is not False, prompt_name=prompt_name)


def parse_embed_all(body: bytes, limits: Limits) -> EmbedRequest:
    """POST /embed_all: inputs, truncate, truncation_direction, prompt_name (no normalize, no dimensions)."""
    obj = _json_object(body)
    texts, ids = _inputs(obj, "inputs", limits)
    truncate = _optional(obj, "truncate", bool)
    _direction(obj)
    return EmbedRequest(texts, ids, truncate=truncate is not False, prompt_name=_prompt_name(obj, ids))


# POST /embed_sparse takes /embed_all's fields exactly (TEI's EmbedSparseRequest: inputs, truncate,
# truncation_direction, prompt_name)
parse_embed_sparse = parse_embed_all


def _prompt_name(obj: dict, ids) -> str | None:
    """TEI's prompt_name: a named prompt prepended to each text; token ids are the model's input as it is, so a
    prompt_name with them is refused rather than ignored."""
    name = _optional(obj, "prompt_name", str)
    if name is not None and ids is not None:
        raise InvalidRequest(f"prompt_name {name!r} applies to texts, and the inputs are token ids, which the model "
                             f"reads as they are: send the texts, or put the prompt's tokens into the ids yourself "
                             f"(POST /tokenize with prompt_name gives them)", "prompt_name")
    return name


@dataclass(frozen=True)
class SimilarityRequest:
    """POST /similarity (TEI's sentence-similarity task): the cosine of source_sentence with each of sentences."""

    embed: EmbedRequest  # source_sentence first, then sentences


def parse_similarity(body: bytes, limits: Limits) -> SimilarityRequest:
    """{"inputs": {"source_sentence", "sentences"}, "parameters": {"truncate", "truncation_direction", "prompt_name"}}."""
    obj = _json_object(body)
    inputs = obj.get("inputs")
    if not isinstance(inputs, dict):
        raise InvalidRequest(f"inputs is {_type(inputs)}; send an object {{\"source_sentence\": a string, "
                             f"\"sentences\": an array of strings}}", "inputs")
    source, sentences = inputs.get("source_sentence"), inputs.get("sentences")
    if not isinstance(source, str):
        raise InvalidRequest(f"inputs.source_sentence is {_type(source)}, expected a string", "inputs.source_sentence")
    _text_size(source, "inputs.source_sentence", limits)
    if not isinstance(sentences, list) or not sentences:
        raise InvalidRequest(f"inputs.sentences is {_type(sentences) if sentences != [] else 'an empty array'}; send a "
                             f"non-empty array of strings", "inputs.sentences")
    if len(sentences) > limits.max_inputs:
        raise PayloadTooLarge(f"inputs.sentences has {len(sentences)} items, more than this server's limit of "
                              f"{limits.max_inputs}", "inputs.sentences", "too_many_inputs")
    for i, item in enumerate(sentences):
        if not isinstance(item, str):
            raise InvalidRequest(f"inputs.sentences[{i}] is {_type(item)}, not a string", f"inputs.sentences[{i}]")
        _text_size(item, f"inputs.sentences[{i}]", limits)
    params = obj.get("parameters")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise InvalidRequest(f"parameters is {_type(params)}, expected an object", "parameters")
    truncate = _optional(params, "truncate", bool)
    _direction(params)
    return SimilarityRequest(EmbedRequest([source, *sentences], None, truncate=truncate is not False,
                                          prompt_name=_optional(params, "prompt_name", str)))


@dataclass(frozen=True)
class TokenizeRequest:
    texts: list[str]
    add_special_tokens: bool = True
    prompt_name: str | None = None


def parse_tokenize(body: bytes, limits: Limits) -> TokenizeRequest:
    """POST /tokenize: inputs (a string or a list of strings), add_special_tokens (default true), prompt_name."""
    obj = _json_object(body)
    texts, ids = _inputs(obj, "inputs", limits)
    if texts is None:
        raise InvalidRequest("inputs must be a string or an array of strings (token ids are what /tokenize returns)", "inputs")
    add = _optional(obj, "add_special_tokens", bool)
    return TokenizeRequest(texts, add is not False, _optional(obj, "prompt_name", str))


@dataclass(frozen=True)
class DecodeRequest:
    ids: list[list[int]]
    skip_special_tokens: bool = True


def parse_decode(body: bytes, limits: Limits) -> DecodeRequest:
    """POST /decode: ids (an array of token ids, or an array of such arrays), skip_special_tokens (default true)."""
    obj = _json_object(body)
    if "ids" not in obj:
        raise InvalidRequest("ids is required: an array of token ids, or an array of such arrays", "ids")
    value = obj["ids"]
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"ids is {_type(value) if value != [] else 'an empty array'}; send a non-empty array of "
                             f"token ids, or an array of such arrays", "ids")
    batch = value if isinstance(value[0], list) else [value]
    if len(batch) > limits.max_inputs:
        raise PayloadTooLarge(f"ids has {len(batch)} arrays, more than this server's limit of {limits.max_inputs}", "ids",
                              "too_many_inputs")
    for i, item in enumerate(batch):
        where = f"ids[{i}]" if batch is value else "ids"
        if not isinstance(item, list):
            raise InvalidRequest(f"{where} is {_type(item)}; every item must be an array of token ids", where)
        for j, t in enumerate(item):
            if type(t) is not int or not 0 <= t < limits.vocab_size:
                raise InvalidRequest(f"{where}[{j}] is {_type(t)}; token ids are integers in 0..{limits.vocab_size - 1}",
                                     f"{where}[{j}]")
    skip = _optional(obj, "skip_special_tokens", bool)
    return DecodeRequest(batch, skip is not False)


def _direction(obj: dict) -> None:
    direction = _optional(obj, "truncation_direction", str)
    if direction is not None and direction.lower() != "right":
        raise InvalidRequest(f"truncation_direction {direction!r} is not supported; texts are truncated on the right",
                             "truncation_direction")


def _dimensions(obj: dict, dim: int) -> int | None:
    value = _optional(obj, "dimensions", int)
    if value is not None and not 1 <= value <= dim:
        raise DimensionsOutOfRange(f"dimensions {value} is out of range: this model's embeddings have {dim}; send 1..{dim}",
                                   "dimensions")
    return value


def _inputs(obj: dict, field: str, limits: Limits) -> tuple[list[str] | None, list[list[int]] | None]:
    """A string, an array of strings, an array of token ids, or an array of token-id arrays -> (texts, None) or
    (None, ids). Each text is checked against the character limit before anything tokenizes it."""
    if field not in obj:
        raise InvalidRequest(f"{field} is required: a string, an array of strings, or an array of token-id arrays", field)
    value = obj[field]
    if isinstance(value, str):
        _text_size(value, f"{field}[0]", limits)
        return [value], None
    if not isinstance(value, list):
        raise InvalidRequest(f"{field} is {_type(value)}; send a string, an array of strings, or an array of token-id "
                             f"arrays", field)
    if not value:
        raise InvalidRequest(f"{field} is an empty array; send at least one string", field)
    if len(value) > limits.max_inputs:
        raise PayloadTooLarge(f"{field} has {len(value)} items, more than this server's limit of {limits.max_inputs}; "
                              f"split the request (or start the server with a larger --max-inputs)", field, "too_many_inputs")
    first = value[0]
    if isinstance(first, str):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidRequest(f"{field}[{i}] is {_type(item)}, not a string; every item must be a string", f"{field}[{i}]")
            _text_size(item, f"{field}[{i}]", limits)
        return value, None
    if type(first) is int:  # one token-id array
        return None, [_token_ids(value, field, limits)]
    if isinstance(first, list):
        return None, [_token_ids(item, f"{field}[{i}]", limits) for i, item in enumerate(value)]
    raise InvalidRequest(f"{field}[0] is {_type(first)}; items must be strings or arrays of token ids", f"{field}[0]")


def _text_size(text: str, where: str, limits: Limits) -> None:
    """A text over the character limit is refused before tokenization (which would take ~1.7 s per million)."""
    if len(text) > limits.max_text_chars:
        raise PayloadTooLarge(f"{where} has {len(text)} characters, more than this server's limit of "
                              f"{limits.max_text_chars} for one text; split it (or start the server with a larger "
                              f"--max-text-chars)", where, "text_too_long")


def _token_ids(item, where: str, limits: Limits) -> list[int]:
    """One token-id array: this model's ids, framed by its tokenizer's special tokens. An array without them is
    another tokenizer's (LangChain's OpenAIEmbeddings sends tiktoken's ids by default), whose vectors would be
    meaningless. An id past the model's embedding table (a tokenizer grown without resizing the model) is refused
    here, with its index, rather than failing in the model."""
    if not isinstance(item, list) or not item:
        raise InvalidRequest(f"{where} is {_type(item) if item != [] else 'an empty array'}; send a non-empty array of "
                             f"token ids (every item an array, or every item a string)", where)
    vocab = limits.vocab_size
    for j, t in enumerate(item):
        if type(t) is not int or not 0 <= t < vocab:
            table = (f" (the model's embedding table has {limits.table_rows} rows, fewer than its tokenizer's ids)"
                     if limits.table_rows is not None and type(t) is int and t >= vocab else "")
            raise InvalidRequest(f"{where}[{j}] is {_type(t)}; token ids are integers in 0..{vocab - 1} of this model's "
                                 f"vocabulary{table}{TIKTOKEN_HINT}", f"{where}[{j}]")
    head, tail = list(limits.prefix), list(limits.suffix)
    if len(item) < len(head) + len(tail) or item[:len(head)] != head or item[len(item) - len(tail):] != tail:
        raise InvalidRequest(f"{where} does not start with {head} and end with {tail}: token ids must be this model's "
                             f"own tokenizer output, special tokens included{TIKTOKEN_HINT}", where)
    return item


TIKTOKEN_HINT = ("; a client that tokenizes with tiktoken sends OpenAI's token ids, which this model cannot read: send "
                 "the texts instead (LangChain's OpenAIEmbeddings: check_embedding_ctx_length=False)")
