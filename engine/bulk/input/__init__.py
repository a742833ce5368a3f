"""The input of `engine embed`: a corpus (parquet, jsonl[.gz], csv[.gz], txt[.gz]; a file, folder or glob) streamed as
row chunks.

Rows are numbered across the whole input in sorted-file order, so a row number is stable across runs and is the
default id. Readers never hold more than one chunk; every error names the file (and the row where there is one).

  files    InputFile, format_of, list_inputs
  chunk    Chunk: consecutive rows of one file
  columns  the shared column checks and text decoding
  parquet, jsonl, csv, txt   one reader per format
  read     read_file: the reader of a file's format, from a start row on
"""
from .chunk import Chunk
from .files import InputFile, format_of, list_inputs
from .read import read_file
from .txt import TXT_COLUMN

__all__ = ["Chunk", "InputFile", "TXT_COLUMN", "format_of", "list_inputs", "read_file"]
