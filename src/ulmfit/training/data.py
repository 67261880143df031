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

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import datasets
import torch

from .script_steps import MissingInputError, UsageError


TEXT_FILE_FORMATS = (".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt")
_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".txt": "text"}


def _builder_for(path: str, flag: str) -> tuple[str, dict]:
    suffix = Path(path).suffix.lower()
    if suffix not in _BUILDERS:
        raise UsageError(
            f"Unsupported file type {suffix!r} for {flag} {path}: use one of {', '.join(TEXT_FILE_FORMATS)}."
        )
    return _BUILDERS[suffix], ({"delimiter": "\t"} if suffix == ".tsv" else {})


def load_dataset_or_explain(*args, flags: Mapping[str, str], **kwargs):
    """
    `datasets.load_dataset(*args, **kwargs)`, with the failures a user causes (a dataset that is neither a folder
    nor on the Hub or in the cache, an unknown configuration, a file holding only a header) raised as a
    `UsageError` naming the flag: `flags` maps `name` (the dataset) and each split to its flag.
    """
    try:
        return datasets.load_dataset(*args, **kwargs)
    except ValueError as error:
        empty = re.search(r'Instruction "(\w+)" corresponds to no data', str(error))
        if empty:  # the split's file has no row (a header, or an empty json list)
            split = empty.group(1)
            raise UsageError(f"{flags.get(split, flags['name'])} holds no rows (a header only?).") from error
        raise UsageError(f"{flags['name']}: {error}") from error
    except (FileNotFoundError, ConnectionError) as error:
        raise UsageError(f"{flags['name']}: {error}") from error


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
    column_flags: Mapping[str, str] | None = None,
    row_numbers: bool = False,
) -> datasets.DatasetDict | datasets.IterableDatasetDict:
    """
    A `train` and a `validation` split with a `text` column, from a Hub dataset (`dataset_name`, e.g. `wikitext` /
    `wikitext-103-raw-v1`) or local files (csv, tsv, json/jsonl, parquet, txt). Without a validation split or file,
    `validation_split_percentage` percent of the training texts are held out (not in streaming mode).

    `column_flags` maps each of `extra_columns` to the flag that named it (`--text_column` names `text_column`).
    With `row_numbers`, each split gets a `__row__` column: the row's position in the file or Hub split it came from
    (held-out validation rows keep their numbers in the training file), for messages that name a row.

    Raises a `UsageError` naming the flag for a missing, empty or unsupported file, a dataset that cannot be found,
    a column that is not in the data (listing the columns there are), an empty split, and missing values.
    """
    if (dataset_name is None) == (train_file is None):
        raise UsageError("Give either --dataset_name (a Hub dataset) or --train_file (a local file), not both.")
    if dataset_name is not None:
        if validation_file is not None:
            raise UsageError("--validation_file goes with --train_file; a --dataset_name brings its own splits.")
        flags = {"name": f"--dataset_name {dataset_name}"}
        raw = load_dataset_or_explain(dataset_name, dataset_config_name, streaming=streaming, flags=flags)
        if "train" not in raw:
            raise UsageError(f"--dataset_name {dataset_name} has no train split; its splits are {list(raw)}.")
    else:
        if dataset_config_name is not None:
            raise UsageError("--dataset_config_name goes with --dataset_name, not with --train_file.")
        data_files = {"train": train_file}
        if validation_file is not None:
            data_files["validation"] = validation_file
        builders = []
        for split, path in data_files.items():
            if not os.path.isfile(path):
                raise MissingInputError(f"--{split}_file {path} does not exist.")
            if os.path.getsize(path) == 0:
                raise UsageError(f"--{split}_file {path} is empty.")
            builders.append(_builder_for(path, f"--{split}_file"))
        if any(builder != builders[0] for builder in builders):
            raise UsageError("--train_file and --validation_file must have the same format.")
        builder, options = builders[0]
        flags = {"name": f"--train_file {train_file}"}
        flags.update({split: f"--{split}_file {path}" for split, path in data_files.items()})
        raw = load_dataset_or_explain(builder, data_files=data_files, streaming=streaming, flags=flags, **options)

    # every column asked for, in every split read, named by its flag when it is missing
    column_flags = {text_column: "--text_column", **(column_flags or {})}
    for split_name in [name for name in ("train", "validation") if name in raw]:
        columns = raw[split_name].column_names
        if columns is None:  # a streamed dataset may only know its columns once a row is read
            first = next(iter(raw[split_name]), None)
            if first is None:
                raise UsageError(f"{flags.get(split_name, flags['name'])} holds no rows.")
            columns = list(first.keys())
        missing = [name for name in (text_column, *extra_columns) if name not in columns]
        if missing:
            named_by = " / ".join(column_flags.get(name, repr(name)) for name in missing)
            raise UsageError(
                f"Column(s) {missing} not found in the {split_name} data ({flags.get(split_name, flags['name'])}); "
                f"its columns are {columns}. Pick {'it' if len(missing) == 1 else 'them'} with {named_by}."
            )
        if not streaming:  # a missing text or label cannot be tokenized or learned
            for name in (text_column, *extra_columns):
                nulls = raw[split_name].data.column(name)
                if nulls.null_count:
                    first = next(index for index, value in enumerate(nulls.is_null().to_pylist()) if value)
                    raise UsageError(
                        f"{nulls.null_count} rows of the {split_name} data ({flags.get(split_name, flags['name'])}) "
                        f"have no value in {column_flags.get(name, 'column')} {name!r} (the first: row {first}, "
                        "counting from 0): fill them in or remove those rows."
                    )
            feature = raw[split_name].features.get(text_column)
            if getattr(feature, "dtype", "string") not in ("string", "large_string"):
                raise UsageError(
                    f"--text_column {text_column!r} of the {split_name} data ({flags.get(split_name, flags['name'])}) "
                    f"holds {feature.dtype} values, not text: pick the column that holds the texts."
                )
    if row_numbers and not streaming:
        for split_name in [name for name in ("train", "validation") if name in raw]:
            raw[split_name] = raw[split_name].add_column("__row__", list(range(len(raw[split_name]))))
    if "validation" not in raw:
        if streaming:
            raise UsageError("In streaming mode, give a validation split or --validation_file.")
        if not 0 < validation_split_percentage < 100:
            raise UsageError(f"--validation_split_percentage must be in (0, 100), got {validation_split_percentage}.")
        rows = len(raw["train"])
        held_out = math.ceil(rows * validation_split_percentage / 100)  # as `train_test_split` rounds
        if rows == 0 or held_out >= rows:
            raise UsageError(
                f"{flags.get('train', flags['name'])} has {rows or 'no'} row(s): too few to hold "
                f"{validation_split_percentage:g}% out for validation; give more rows or a --validation_file."
            )
        split = raw["train"].train_test_split(test_size=validation_split_percentage / 100, seed=seed)
        raw = datasets.DatasetDict({"train": split["train"], "validation": split["test"]})
    keep = [text_column, *extra_columns, *(["__row__"] if row_numbers and not streaming else [])]
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
                raise UsageError(f"The {split_name} split ({flags.get(split_name, flags['name'])}) has no rows.")
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


__all__ = [
    "TEXT_FILE_FORMATS",
    "LanguageModelStream",
    "StreamingLanguageModelStream",
    "load_dataset_or_explain",
    "load_text_datasets",
    "variable_bptt_lengths",
]
