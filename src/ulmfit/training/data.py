"""Data for language-model training: loading corpora with `datasets`, and AWD-LSTM's BPTT token stream.

`LanguageModelStream` is fastai's `LMDataLoader` / salesforce's `batchify` + `get_batch`, made deterministic and
multi-process aware:
- the documents (each starting with `xxbos`) are shuffled every epoch and laid end to end into one stream, which is
  cut into `batch_size * num_processes` contiguous rows; process `r` reads rows `r * batch_size ...`, so every token is
  seen once per epoch by exactly one process;
- windows walk along the rows; with `variable_length=True` each window's length is drawn as in AWD-LSTM §4.1:
  N(bptt, 5) with probability 0.95, else N(bptt / 2, 5), at least 5 tokens. Every process draws the same lengths
  (same seed), so all of them take the same number of steps;
- a window's targets are its inputs shifted by one token along the stream (`labels`), so the recurrent state carried
  from one window to the next continues the same text.
Everything random comes from `(seed, epoch)`, so a run resumed at step k of epoch e sees exactly the windows it would
have seen.
"""

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
import torch


_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}


def _builder_for(path: str) -> tuple[str, dict]:
    suffix = Path(path).suffix.lower()
    if suffix not in _BUILDERS:
        raise ValueError(f"Unsupported file type {suffix!r} for {path}: use one of {sorted(_BUILDERS)}.")
    return _BUILDERS[suffix], ({"delimiter": "\t"} if suffix == ".tsv" else {})


def load_text_datasets(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    train_file: str | None = None,
    validation_file: str | None = None,
    text_column: str = "text",
    validation_split_percentage: float = 5,
    streaming: bool = False,
    seed: int = 42,
    extra_columns: Sequence[str] = (),
) -> datasets.DatasetDict | datasets.IterableDatasetDict:
    """
    A `train` and a `validation` split with a `text` column, from a Hub dataset (`dataset_name`, e.g. `wikitext` /
    `wikitext-103-raw-v1`) or local files (csv, tsv, json/jsonl, parquet, txt). Without a validation split or file,
    `validation_split_percentage` percent of the training texts are held out (not in streaming mode).

    Raises clear errors for a missing, empty or unsupported file, an unknown column, and an empty split.
    """
    if (dataset_name is None) == (train_file is None):
        raise ValueError("Pass either `dataset_name` (a Hub dataset) or `train_file` (a local file), not both.")
    if dataset_name is not None:
        raw = datasets.load_dataset(dataset_name, dataset_config_name, streaming=streaming)
    else:
        data_files = {"train": train_file}
        if validation_file is not None:
            data_files["validation"] = validation_file
        builders = []
        for split, path in data_files.items():
            if not os.path.isfile(path):
                raise FileNotFoundError(f"--{split}_file {path} does not exist.")
            if os.path.getsize(path) == 0:
                raise ValueError(f"--{split}_file {path} is empty.")
            builders.append(_builder_for(path))
        if any(builder != builders[0] for builder in builders):
            raise ValueError("`train_file` and `validation_file` must have the same format.")
        builder, options = builders[0]
        raw = datasets.load_dataset(builder, data_files=data_files, streaming=streaming, **options)

    columns = raw["train"].column_names
    if columns is None:  # a streamed dataset may only know its columns once a row is read
        columns = list(next(iter(raw["train"])).keys())
    missing = [name for name in (text_column, *extra_columns) if name not in columns]
    if missing:
        raise ValueError(
            f"Column(s) {missing} not found in the training data; its columns are {columns}. "
            "Pick the text with --text_column."
        )
    if "validation" not in raw:
        if streaming:
            raise ValueError("In streaming mode, give a validation split or --validation_file.")
        if not 0 < validation_split_percentage < 100:
            raise ValueError(f"`validation_split_percentage` must be in (0, 100), got {validation_split_percentage}.")
        split = raw["train"].train_test_split(test_size=validation_split_percentage / 100, seed=seed)
        raw = datasets.DatasetDict({"train": split["train"], "validation": split["test"]})
    keep = [text_column, *extra_columns]
    raw = (
        datasets.DatasetDict({k: v for k, v in raw.items() if k in ("train", "validation")}) if not streaming else raw
    )
    for split_name in ("train", "validation"):
        raw[split_name] = raw[split_name].select_columns(keep)
        if text_column != "text":
            raw[split_name] = raw[split_name].rename_column(text_column, "text")
    if not streaming:
        for split_name in ("train", "validation"):
            if len(raw[split_name]) == 0:
                raise ValueError(f"The {split_name} split has no rows.")
    return raw


def draw_bptt_length(bptt: int, generator: torch.Generator, variable_length: bool = True) -> int:
    """One window length: N(bptt, 5) with p=0.95, else N(bptt/2, 5), at least 5 (AWD-LSTM §4.1); or `bptt`."""
    if not variable_length:
        return bptt
    base = bptt if torch.rand((), generator=generator).item() < 0.95 else bptt / 2
    return max(5, int(torch.normal(float(base), 5.0, (), generator=generator).item()))


def variable_bptt_lengths(
    num_tokens: int, bptt: int, generator: torch.Generator, variable_length: bool = True
) -> list[int]:
    """
    Window lengths covering `num_tokens` input positions (AWD-LSTM §4.1): N(bptt, 5) with p=0.95, N(bptt/2, 5)
    otherwise, at least 5 tokens; `variable_length=False` gives fixed `bptt` windows (fastai v2's default).
    """
    lengths, covered = [], 0
    while covered < num_tokens:
        length = min(draw_bptt_length(bptt, generator, variable_length), num_tokens - covered)
        lengths.append(length)
        covered += length
    return lengths


class LanguageModelStream:
    """
    AWD-LSTM's BPTT batches over tokenized documents (see the module docstring).

    Args:
        documents: token ids, one sequence per document (a list of lists, or a `datasets` column).
        batch_size: rows per process (fastai `bs`).
        bptt: mean window length (fastai `seq_len`, AWD-LSTM `bptt`).
        variable_length: draw window lengths as AWD-LSTM does.
        shuffle: reshuffle the documents every epoch.
        seed: the seed of the shuffles and the window lengths (same on every process).
        num_processes, process_index: this process's share of the rows.
    """

    def __init__(
        self,
        documents: Sequence[Sequence[int]],
        batch_size: int,
        bptt: int = 70,
        variable_length: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        num_processes: int = 1,
        process_index: int = 0,
    ):
        if batch_size < 1 or bptt < 1:
            raise ValueError(f"`batch_size` and `bptt` must be positive, got {batch_size} and {bptt}.")
        self.documents = [torch.as_tensor(doc, dtype=torch.long) for doc in documents]
        self.num_tokens = sum(len(doc) for doc in self.documents)
        self.batch_size, self.bptt = batch_size, bptt
        self.variable_length, self.shuffle, self.seed = variable_length, shuffle, seed
        self.num_processes, self.process_index = num_processes, process_index
        self.total_rows = batch_size * num_processes
        # every row needs at least one input and its target
        self.row_length = self.num_tokens // self.total_rows
        if self.row_length < 2:
            raise ValueError(
                f"{self.num_tokens} tokens cannot fill {self.total_rows} rows ({batch_size} per process x "
                f"{num_processes} processes): use a smaller batch size or more text."
            )
        self.epoch = 0

    def set_epoch(self, epoch: int):
        """Select the epoch whose shuffle and window lengths `__iter__` yields."""
        self.epoch = epoch

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def window_lengths(self) -> list[int]:
        """The lengths of this epoch's windows, identical on every process."""
        generator = self._generator()
        if self.shuffle:
            torch.randperm(len(self.documents), generator=generator)  # same draws as `_rows`, in the same order
        return variable_bptt_lengths(self.row_length - 1, self.bptt, generator, self.variable_length)

    def __len__(self) -> int:
        return len(self.window_lengths())

    def _rows(self, generator: torch.Generator) -> torch.Tensor:
        order = (
            torch.randperm(len(self.documents), generator=generator) if self.shuffle else range(len(self.documents))
        )
        stream = torch.cat([self.documents[i] for i in order])
        rows = stream[: self.row_length * self.total_rows].view(self.total_rows, self.row_length)
        start = self.process_index * self.batch_size
        return rows[start : start + self.batch_size]  # (batch_size, row_length)

    def __iter__(self) -> Iterator[dict]:
        return self.iter_from(0)

    def iter_from(self, step: int) -> Iterator[dict]:
        """The windows of the current epoch from window `step` on (to resume mid-epoch)."""
        generator = self._generator()
        rows = self._rows(generator)
        lengths = variable_bptt_lengths(self.row_length - 1, self.bptt, generator, self.variable_length)
        position = sum(lengths[:step])
        for length in lengths[step:]:
            yield {
                "input_ids": rows[:, position : position + length],
                "labels": rows[:, position + 1 : position + 1 + length],
            }
            position += length


class StreamingLanguageModelStream:
    """
    BPTT batches over a corpus read as a stream (a `datasets.IterableDataset` of token ids, or any re-iterable of
    id sequences), for corpora larger than memory. Each of the `batch_size` rows is its own contiguous stream of
    documents: the next document goes to the row with the fewest buffered tokens, and a window is cut from every row
    once each holds enough. The corpus is cycled, so every process yields windows for as long as it is asked
    (`--max_train_steps` bounds a streaming run), and every process draws the same window lengths.

    Shuffling is the `IterableDataset`'s own (`dataset.shuffle(buffer_size=...)`; `set_epoch` reseeds it), and
    splitting across processes is `datasets.distributed.split_dataset_by_node`, done by the caller.
    """

    def __init__(self, documents, batch_size: int, bptt: int = 70, variable_length: bool = True, seed: int = 0):
        if batch_size < 1 or bptt < 1:
            raise ValueError(f"`batch_size` and `bptt` must be positive, got {batch_size} and {bptt}.")
        self.documents, self.batch_size, self.bptt = documents, batch_size, bptt
        self.variable_length, self.seed, self.epoch = variable_length, seed, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict]:
        return self.iter_from(0)

    def _documents_forever(self):
        passes = 0
        while True:
            if hasattr(self.documents, "set_epoch"):
                self.documents.set_epoch(self.epoch * 1_000 + passes)
            empty = True
            for document in self.documents:
                ids = document["input_ids"] if isinstance(document, dict) else document
                if len(ids):
                    empty = False
                    yield ids
            if empty:
                raise ValueError("The streamed corpus has no tokens.")
            passes += 1

    def iter_from(self, step: int) -> Iterator[dict]:
        """Windows from window `step` on: the stream is deterministic, so earlier windows are read and dropped."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        rows = [[] for _ in range(self.batch_size)]
        documents = self._documents_forever()
        index = 0
        while True:
            length = draw_bptt_length(self.bptt, generator, self.variable_length)
            while min(len(row) for row in rows) < length + 1:
                min(rows, key=len).extend(next(documents))
            window = torch.tensor([row[: length + 1] for row in rows], dtype=torch.long)
            for row in rows:
                del row[:length]
            if index >= step:
                yield {"input_ids": window[:, :-1], "labels": window[:, 1:]}
            index += 1


__all__ = ["LanguageModelStream", "StreamingLanguageModelStream", "load_text_datasets", "variable_bptt_lengths"]
