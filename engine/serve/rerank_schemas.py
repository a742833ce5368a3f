"""Request bodies of the rerank routes: TEI's POST /rerank (query, texts, raw_scores, return_text, truncate,
truncation_direction) and Cohere's / Jina's POST /v1/rerank and /v2/rerank (model, query, documents, top_n,
return_documents), parsed into one RerankRequest.

Every refusal names the field or index at fault: `texts[3]`, `documents[2].text`, `top_n`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidRequest, PayloadTooLarge
from .jsonbody import json_object, json_type, optional
from .schemas import Limits, _direction, _text_size


@dataclass(frozen=True)
class RerankRequest:
    """One parsed rerank request: a query, its documents, and how to shape the answer."""

    query: str
    documents: list[str]
    field: str  # how refusals name the documents: "texts" (TEI) or "documents" (Cohere, Jina)
    top_n: int | None = None  # None: every document
    return_documents: bool = False  # TEI's return_text, Cohere's and Jina's return_documents
    raw_scores: bool = False  # TEI's raw_scores: the logits, without the model's activation
    truncate: bool = True  # False (TEI): a pair over max length is refused with 413
    model: str | None = None


def parse_tei_rerank(body: bytes, limits: Limits) -> RerankRequest:
    """POST /rerank: query, texts (strings), raw_scores, return_text, truncate (default true), truncation_direction
    (Right only)."""
    obj = json_object(body)
    query = _query(obj, limits)
    texts = _documents(obj, "texts", limits, objects=False)
    raw = optional(obj, "raw_scores", bool)
    text = optional(obj, "return_text", bool)
    truncate = optional(obj, "truncate", bool)
    _direction(obj)
    return RerankRequest(query, texts, "texts", return_documents=bool(text), raw_scores=bool(raw),
                         truncate=truncate is not False)


def parse_cohere_rerank(body: bytes, limits: Limits) -> RerankRequest:
    """POST /v1/rerank, /v2/rerank: model (any string; one model is served), query, documents (strings, or objects
    with a string text), top_n (1..len(documents)), return_documents (default false); Cohere's priority is accepted.
    The options this server cannot honour (rank_fields other than ["text"], max_chunks_per_doc, max_tokens_per_doc,
    relevant_spans) are refused rather than ignored."""
    obj = json_object(body)
    model = optional(obj, "model", str)
    query = _query(obj, limits)
    documents = _documents(obj, "documents", limits, objects=True)
    top_n = optional(obj, "top_n", int)
    if top_n is not None and not 1 <= top_n <= len(documents):
        raise InvalidRequest(f"top_n {top_n} is out of range: send 1..{len(documents)} (the number of documents), or "
                             f"leave it out for all of them", "top_n")
    returned = optional(obj, "return_documents", bool)
    optional(obj, "priority", int)
    fields = obj.get("rank_fields")
    if fields is not None and fields != ["text"]:
        raise InvalidRequest(f"rank_fields {json_type(fields)} is not served: documents are ranked on their text field "
                             f"only; send [\"text\"] or leave it out", "rank_fields")
    for name in ("max_chunks_per_doc", "max_tokens_per_doc", "relevant_spans"):
        if obj.get(name) is not None:
            raise InvalidRequest(f"{name} is not supported by this server: each (query, document) pair is truncated "
                                 f"at the model's max length; leave {name} out", name)
    return RerankRequest(query, documents, "documents", top_n=top_n, return_documents=bool(returned), model=model)


def _query(obj: dict, limits: Limits) -> str:
    if "query" not in obj:
        raise InvalidRequest("query is required: the string the documents are ranked against", "query")
    query = obj["query"]
    if not isinstance(query, str):
        raise InvalidRequest(f"query is {json_type(query)}, expected a string", "query")
    _text_size(query, "query", limits)
    return query


def _documents(obj: dict, field: str, limits: Limits, objects: bool) -> list[str]:
    """A non-empty array of strings (or, with objects, of {"text": a string} objects), within the server's limits."""
    kinds = "strings, or objects with a string \"text\"" if objects else "strings"
    if field not in obj:
        raise InvalidRequest(f"{field} is required: an array of {kinds} to rank against the query", field)
    value = obj[field]
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"{field} is {json_type(value) if value != [] else 'an empty array'}; send a non-empty "
                             f"array of {kinds}", field)
    if len(value) > limits.max_inputs:
        raise PayloadTooLarge(f"{field} has {len(value)} items, more than this server's limit of {limits.max_inputs}; "
                              f"split the request (or start the server with a larger --max-inputs)", field,
                              "too_many_inputs")
    out = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if objects and isinstance(item, dict):
            item, where = item.get("text"), f"{where}.text"
            if not isinstance(item, str):
                raise InvalidRequest(f"{where} is {json_type(item) if item is not None else 'missing'}; a document "
                                     f"object needs a string text", where)
        elif not isinstance(item, str):
            raise InvalidRequest(f"{where} is {json_type(item)}; every item must be one of: {kinds}", where)
        _text_size(item, where, limits)
        out.append(item)
    return out
