"""Embedder.tokenizer: the Hugging Face fast-tokenizer surface that sentence-transformers exposes as model.tokenizer.

A view over a private copy of the export's Rust tokenizer (tokenizer.json) with the special tokens of its
tokenizer_config.json. transformers' PreTrainedTokenizerFast is a thin layer over the same Rust tokenizer, and this
view follows its code (padding and truncation strategies, output keys and their order, decode and its clean-up), so
the same calls give the same ids, tokens and strings without importing transformers. Nothing done through the view
changes how encode() tokenizes (the runtime keeps its own tokenizers.Tokenizer, Embedder.rust_tokenizer), except
model_max_length, which is the Embedder's max_seq_length as in sentence-transformers. Like transformers' tokenizers,
one view is not meant to be called from several threads at once.
"""
from __future__ import annotations

from tokenizers import Tokenizer

from .st_encoding import BatchEncoding, as_tensors, clean_up_tokenization, py_ids, strategy, token_content

SPECIAL_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
# without a tokenizer_config.json (an Embedder over a backend built in code), the usual names stand for their roles
GUESSED_ROLES = {"[CLS]": ("cls_token",), "[SEP]": ("sep_token",), "[PAD]": ("pad_token",), "[UNK]": ("unk_token",),
                 "[MASK]": ("mask_token",), "<s>": ("bos_token", "cls_token"), "</s>": ("eos_token", "sep_token"),
                 "<pad>": ("pad_token",), "<unk>": ("unk_token",), "<mask>": ("mask_token",)}
PADDINGS = {"longest": "longest", "max_length": "max_length", "do_not_pad": None}
TRUNCATIONS = {"longest_first": "longest_first", "only_first": "only_first", "only_second": "only_second",
               "do_not_truncate": None}
INPUT_NAMES = ("input_ids", "token_type_ids", "attention_mask")


class FastTokenizerView:
    """model.tokenizer as sentence-transformers exposes it (a transformers fast tokenizer), over a Rust tokenizer."""

    is_fast = True

    def __init__(self, owner, rust: Tokenizer, config: dict, graph_inputs, padding_side: str, name_or_path: str) -> None:
        self._owner = owner  # the Embedder: model_max_length is its max_seq_length
        self._tokenizer = Tokenizer.from_str(rust.to_str())  # a private copy: per-call settings never reach encode()
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.name_or_path = name_or_path
        self.padding_side = padding_side or config.get("padding_side") or "right"
        self.truncation_side = config.get("truncation_side") or "right"
        self.clean_up_tokenization_spaces = bool(config.get("clean_up_tokenization_spaces", False))
        self.pad_token_type_id = int(config.get("pad_token_type_id", 0))
        self.model_input_names = list(config.get("model_input_names") or
                                      [n for n in INPUT_NAMES if n != "token_type_ids" or n in graph_inputs])
        self._specials = {a: token_content(config[a]) for a in SPECIAL_ATTRIBUTES if config.get(a) is not None}
        extra = config.get("additional_special_tokens") or config.get("extra_special_tokens") or []
        self.additional_special_tokens = [token_content(t) for t in (extra.values() if isinstance(extra, dict) else extra)]
        if not config:
            for name, roles in GUESSED_ROLES.items():
                if self._tokenizer.token_to_id(name) is not None:
                    for role in roles:
                        self._specials.setdefault(role, name)

    # -- the vocabulary and the special tokens -------------------------------------------------------------------
    @property
    def model_max_length(self) -> int:
        """The Embedder's max_seq_length (sentence-transformers keeps the two the same); setting it sets both."""
        return self._owner.max_seq_length

    @model_max_length.setter
    def model_max_length(self, value: int) -> None:
        self._owner.max_seq_length = value

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The Rust tokenizer behind this view (its own copy; the runtime's is Embedder.rust_tokenizer)."""
        return self._tokenizer

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> dict[str, int]:
        return self.get_vocab()

    @property
    def special_tokens_map(self) -> dict:
        out: dict = {a: self._specials[a] for a in SPECIAL_ATTRIBUTES if a in self._specials}
        if self.additional_special_tokens:
            out["additional_special_tokens"] = list(self.additional_special_tokens)
        return out

    @property
    def all_special_tokens(self) -> list[str]:
        tokens = [self._specials[a] for a in SPECIAL_ATTRIBUTES if a in self._specials] + self.additional_special_tokens
        return list(dict.fromkeys(tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tokenizer.num_special_tokens_to_add(pair)

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        ids = py_ids(ids)
        if isinstance(ids, int):
            return self._tokenizer.id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._tokenizer.id_to_token(int(i)) for i in ids if int(i) not in skip]

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            index = self._tokenizer.token_to_id(tokens)
            return self.unk_token_id if index is None else index
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        decoder = self._tokenizer.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    # -- text -> ids ----------------------------------------------------------------------------------------------
    def __call__(self, text=None, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
                 max_length: int | None = None, stride: int = 0, is_split_into_words: bool = False,
                 pad_to_multiple_of: int | None = None, padding_side: str | None = None, return_tensors=None,
                 return_token_type_ids: bool | None = None, return_attention_mask: bool | None = None,
                 return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                 return_offsets_mapping: bool = False, return_length: bool = False, verbose: bool = True) -> BatchEncoding:
        """Tokenize one text, a batch, or text pairs, with transformers' arguments and defaults (no truncation unless
        asked; truncation without max_length truncates at model_max_length)."""
        if text is None:
            raise ValueError("You need to specify `text`: a string, a list of strings, or pretokenized words")
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"  # transformers: max_length alone turns truncation on
        pad = strategy(padding, PADDINGS, "padding strategy")
        trunc = strategy(truncation, TRUNCATIONS, "truncation strategy")
        if max_length is None and (pad == "max_length" or trunc):
            max_length = self.model_max_length
        if pad and self.pad_token_id is None:
            raise ValueError("Asking to pad but the tokenizer does not have a padding token")
        if trunc and pad and pad_to_multiple_of and max_length % pad_to_multiple_of:
            raise ValueError(f"Truncation and padding are both activated but truncation length ({max_length}) is "
                             f"not a multiple of pad_to_multiple_of ({pad_to_multiple_of})")
        batched = isinstance(text, (list, tuple)) and (not is_split_into_words or bool(text) and isinstance(text[0], (list, tuple)))
        if batched:
            if isinstance(text_pair, str):
                raise TypeError("when tokenizing batches of text, `text_pair` must be a list or tuple with the same "
                                "length as `text`")
            if text_pair is not None and len(text) != len(text_pair):
                raise ValueError(f"batch length of `text`: {len(text)} does not match batch length of `text_pair`: "
                                 f"{len(text_pair)}")
            items = list(zip(text, text_pair)) if text_pair is not None else list(text)
        else:
            items = [(text, text_pair)] if text_pair else [text]
        tok = self._tokenizer
        if trunc:
            tok.enable_truncation(max_length, stride=stride, strategy=trunc, direction=self.truncation_side)
        else:
            tok.no_truncation()
        if pad:
            tok.enable_padding(direction=padding_side or self.padding_side, pad_id=self.pad_token_id,
                               pad_type_id=self.pad_token_type_id, pad_token=self.pad_token,
                               length=max_length if pad == "max_length" else None, pad_to_multiple_of=pad_to_multiple_of)
        else:
            tok.no_padding()
        encodings = tok.encode_batch(items, add_special_tokens=add_special_tokens, is_pretokenized=is_split_into_words)
        types = "token_type_ids" in self.model_input_names if return_token_type_ids is None else return_token_type_ids
        mask = "attention_mask" in self.model_input_names if return_attention_mask is None else return_attention_mask
        fields = [("input_ids", True, "ids"), ("token_type_ids", types, "type_ids"), ("attention_mask", mask, "attention_mask"),
                  ("special_tokens_mask", return_special_tokens_mask, "special_tokens_mask"),
                  ("offset_mapping", return_offsets_mapping, "offsets")]
        pieces, owner = [], []
        for i, e in enumerate(encodings):
            for piece in [e] + (list(e.overflowing) if return_overflowing_tokens else []):
                pieces.append(piece)
                owner.append(i)
        data = {key: [getattr(p, attr) for p in pieces] for key, wanted, attr in fields if wanted}
        if return_length:
            data["length"] = [len(p.ids) for p in pieces]
        if return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = owner
        if return_tensors is not None:
            return BatchEncoding(as_tensors(data, return_tensors), pieces)
        if not batched and not return_overflowing_tokens:
            data = {k: v[0] if v and isinstance(v[0], list) else v for k, v in data.items()}
        return BatchEncoding(data, pieces)

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
               max_length: int | None = None, stride: int = 0, padding_side: str | None = None, return_tensors=None):
        """The ids of one text (or pair): a list of ints, as transformers' encode."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, padding=padding, truncation=truncation,
                    max_length=max_length, stride=stride, padding_side=padding_side, return_tensors=return_tensors)["input_ids"]

    def tokenize(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> list[str]:
        """The tokens of a text (without [CLS] / [SEP] unless add_special_tokens=True), as transformers' tokenize."""
        return self(text, pair, add_special_tokens=add_special_tokens).encodings[0].tokens

    # -- ids -> text ----------------------------------------------------------------------------------------------
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool | None = None):
        """Ids back to text; special tokens ([CLS], [SEP]) are kept unless skip_special_tokens=True, as in
        transformers. A batch (list of id lists) gives a list of strings."""
        ids = py_ids(token_ids)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        if isinstance(ids, (list, tuple)) and ids and isinstance(ids[0], (list, tuple)):
            return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in ids]
        text = self._tokenizer.decode([ids] if isinstance(ids, int) else list(ids), skip_special_tokens=skip_special_tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        if clean and type(self._tokenizer.model).__name__ != "BPE":  # transformers skips it for BPE too
            text = clean_up_tokenization(text)
        return text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in py_ids(sequences)]

    def __repr__(self) -> str:
        return (f"FastTokenizerView(name_or_path={self.name_or_path!r}, vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, padding_side={self.padding_side!r}, "
                f"special_tokens={self.special_tokens_map})")


def _special_property(attr: str, as_id: bool) -> property:
    def get(self):
        token = self._specials.get(attr)
        return token if not as_id or token is None else self._tokenizer.token_to_id(token)
    return property(get, doc=f"The {attr.replace('_', ' ')}{' id' if as_id else ''} (None when the model has none).")


for _attr in SPECIAL_ATTRIBUTES:
    setattr(FastTokenizerView, _attr, _special_property(_attr, False))
    setattr(FastTokenizerView, f"{_attr}_id", _special_property(_attr, True))
