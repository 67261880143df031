import pytest
import torch

from ulmfit.training.data import LanguageModelStream, load_text_datasets, variable_bptt_lengths


def documents(n=40, length=30):
    generator = torch.Generator().manual_seed(0)
    return [
        [2]
        + torch.randint(
            9, 100, (int(torch.randint(5, length, (), generator=generator)),), generator=generator
        ).tolist()
        for _ in range(n)
    ]


def test_variable_lengths_follow_awd_lstm():
    lengths = variable_bptt_lengths(100_000, 70, torch.Generator().manual_seed(0))
    assert sum(lengths) == 100_000 and min(lengths[:-1]) >= 5
    assert 60 < sum(lengths) / len(lengths) < 70  # mostly ~70, 5% of the time ~35
    assert any(length < 50 for length in lengths)
    assert variable_bptt_lengths(700, 70, torch.Generator(), variable_length=False) == [70] * 10


def test_windows_continue_the_stream_and_targets_are_next_tokens():
    stream = LanguageModelStream(documents(), batch_size=4, bptt=10, shuffle=False)
    windows = list(stream)
    inputs = torch.cat([w["input_ids"] for w in windows], 1)
    labels = torch.cat([w["labels"] for w in windows], 1)
    assert inputs.shape == (4, stream.row_length - 1)
    assert torch.equal(inputs[:, 1:], labels[:, :-1])  # contiguous: each window continues the previous one
    flat = torch.cat([torch.tensor(d) for d in documents()])
    assert torch.equal(inputs[0], flat[: stream.row_length - 1])  # row 0 is the start of the stream


def test_epochs_reshuffle_documents_reproducibly():
    stream = LanguageModelStream(documents(), batch_size=2, bptt=8, seed=3)
    first = [w["input_ids"] for w in stream]
    stream.set_epoch(1)
    second = [w["input_ids"] for w in stream]
    stream.set_epoch(0)
    again = [w["input_ids"] for w in stream]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], second[0])
    assert len(stream) == len(first)


def test_resuming_mid_epoch_yields_the_remaining_windows():
    stream = LanguageModelStream(documents(), batch_size=2, bptt=8, seed=1)
    full = list(stream)
    resumed = list(stream.iter_from(5))
    assert len(resumed) == len(full) - 5
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(full[5:], resumed))


def test_processes_split_the_rows_and_take_the_same_number_of_steps():
    docs = documents()
    ranks = [LanguageModelStream(docs, batch_size=2, bptt=8, seed=5, num_processes=2, process_index=r) for r in (0, 1)]
    whole = LanguageModelStream(docs, batch_size=4, bptt=8, seed=5)
    parts = [list(rank) for rank in ranks]
    assert len(parts[0]) == len(parts[1]) == len(list(whole))
    for a, b, w in zip(parts[0], parts[1], whole):
        assert torch.equal(torch.cat([a["input_ids"], b["input_ids"]]), w["input_ids"])


def test_too_little_text_for_the_batch_fails_clearly():
    with pytest.raises(ValueError, match="cannot fill 64 rows"):
        LanguageModelStream([[2, 10, 11]], batch_size=64)


def test_local_files_of_every_format(tmp_path):
    texts = [f"review number {i}" for i in range(40)]
    (tmp_path / "a.txt").write_text("\n".join(texts))
    (tmp_path / "a.csv").write_text("review,label\n" + "\n".join(f"{t},1" for t in texts))
    (tmp_path / "a.jsonl").write_text("\n".join(f'{{"text": "{t}"}}' for t in texts))
    for name, column in (("a.txt", "text"), ("a.csv", "review"), ("a.jsonl", "text")):
        data = load_text_datasets(train_file=str(tmp_path / name), text_column=column, validation_split_percentage=10)
        assert len(data["train"]) == 36 and len(data["validation"]) == 4
        assert data["train"].column_names == ["text"]


def test_bad_train_files_fail_fast(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text_datasets(train_file=str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="is empty"):
        load_text_datasets(train_file=str(tmp_path / "empty.txt"))
    (tmp_path / "a.csv").write_text("review\nsome text\nmore text\n")
    with pytest.raises(ValueError, match=r"\['text'\] not found.*\['review'\]"):
        load_text_datasets(train_file=str(tmp_path / "a.csv"))
    (tmp_path / "a.xml").write_text("<a/>")
    with pytest.raises(ValueError, match="Unsupported file type"):
        load_text_datasets(train_file=str(tmp_path / "a.xml"))


def test_streaming_rows_are_contiguous_document_streams_and_resume_exactly():
    from ulmfit.training.data import StreamingLanguageModelStream

    docs = documents(n=30)
    stream = StreamingLanguageModelStream(docs, batch_size=3, bptt=10, seed=2)
    windows = [w for _, w in zip(range(40), stream)]  # more than one pass: the corpus is cycled
    assert all(
        w["input_ids"].shape[0] == 3 and torch.equal(w["input_ids"][:, 1:], w["labels"][:, :-1]) for w in windows
    )
    rows = torch.cat([w["input_ids"] for w in windows], 1)
    labels = torch.cat([w["labels"] for w in windows], 1)
    assert torch.equal(rows[:, 1:], labels[:, :-1])  # windows continue each row
    resumed = [w for _, w in zip(range(10), stream.iter_from(30))]
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(windows[30:], resumed))
    with pytest.raises(ValueError, match="no tokens"):
        next(iter(StreamingLanguageModelStream([[]], batch_size=2)))
