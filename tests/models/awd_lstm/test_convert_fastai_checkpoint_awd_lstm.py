import ast
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmForSequenceClassification, AwdLstmModel
from ulmfit.models.awd_lstm import convert_fastai_checkpoint as converter_module
from ulmfit.models.awd_lstm.convert_fastai_checkpoint import (
    FASTAI_V1_SPECIAL_TOKENS,
    FastaiCheckpointError,
    FastaiConversion,
    convert_fastai_checkpoint,
    file_sha256,
    load_fastai_state_dict,
    load_fastai_vocab,
)


FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fastai"
TOLERANCE = 1e-5
# the classifier fixture was trained with text_classifier_learner(seq_len=8, max_len=24)
SMALL_BPT3C = {"bpt3c_chunk_size": 8, "bpt3c_max_length": 24}


@pytest.fixture(scope="module")
def fastai_outputs():
    return load_file(FIXTURES / "outputs.safetensors")


@pytest.fixture(scope="module")
def fastai_vocab():
    with open(FIXTURES / "vocab.pkl", "rb") as file:
        return pickle.load(file)  # our own fixture, written by make_fastai_fixtures.py


def max_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    assert ours.shape == theirs.shape
    return (ours - theirs).abs().max().item()


# --- equivalence with fastai, eval mode ------------------------------------------------------------------------------


@pytest.mark.parametrize("checkpoint, reference", [("lm.pth", "lm_logits"), ("lm_no_opt.pth", "lm_no_opt_logits")])
def test_language_model_gives_fastais_logits(checkpoint, reference, fastai_outputs):
    model, _ = convert_fastai_checkpoint(FIXTURES / checkpoint, FIXTURES / "vocab.pkl")
    assert isinstance(model, AwdLstmForCausalLM) and not model.training
    with torch.no_grad():
        logits = model(fastai_outputs["lm_input_ids"]).logits
    assert max_difference(logits, fastai_outputs[reference]) <= TOLERANCE


def test_optimizer_state_is_dropped_without_fastai():
    with_optimizer, had_optimizer = load_fastai_state_dict(FIXTURES / "lm.pth")  # holds fastcore's L in "opt"
    bare, had_none = load_fastai_state_dict(FIXTURES / "lm_no_opt.pth")
    _, classifier_had_optimizer = load_fastai_state_dict(FIXTURES / "clas.pth")  # numpy scalars in its hypers
    assert had_optimizer and classifier_had_optimizer and not had_none
    assert with_optimizer.keys() == bare.keys()
    assert "fastcore" not in sys.modules and "fastai" not in sys.modules


def test_wikitext_style_pair_gives_fastais_logits(fastai_outputs, fastai_vocab):
    # weights in the pre-1.6 torch format with fastai v1's duplicate `module.weight_hh_l0` keys + itos pickle
    model, tokenizer = convert_fastai_checkpoint(
        FIXTURES / "wt103_style" / "lstm_fwd.pth", FIXTURES / "wt103_style" / "itos_wt103.pkl"
    )
    with torch.no_grad():
        logits = model(fastai_outputs["wt103_input_ids"]).logits
    # fastai's load_pretrained gives the repeated xxfake rows one shared weight: compare the real words
    real = [index for index, token in enumerate(fastai_vocab) if token != "xxfake"]
    assert max_difference(logits[..., real], fastai_outputs["wt103_logits"][..., real]) <= TOLERANCE
    same_weights, _ = convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl")
    for name, tensor in same_weights.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    assert len(tokenizer) == len(fastai_vocab)


def test_encoder_gives_fastais_outputs(fastai_outputs):
    encoder, _ = convert_fastai_checkpoint(FIXTURES / "enc.pth", FIXTURES / "vocab.txt")
    assert isinstance(encoder, AwdLstmModel)
    from_language_model, _ = convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl", task="encoder")
    with torch.no_grad():
        for model in (encoder, from_language_model):
            hidden_states = model(fastai_outputs["lm_input_ids"]).last_hidden_state
            assert max_difference(hidden_states, fastai_outputs["encoder_output"]) <= TOLERANCE


@pytest.mark.parametrize("length", ["short", "long"])
def test_classifier_gives_fastais_logits(length, fastai_outputs):
    # short: 6 tokens, one BPT3C chunk; long: 30 tokens, chunks of 8, the first outside max_len=24
    model, _ = convert_fastai_checkpoint(
        FIXTURES / "clas.pth", FIXTURES / "vocab.pkl", labels=["neg", "pos"], config_overrides=SMALL_BPT3C
    )
    assert isinstance(model, AwdLstmForSequenceClassification) and not model.training
    with torch.no_grad():
        logits = model(fastai_outputs[f"clas_input_ids_{length}"]).logits
    assert max_difference(logits, fastai_outputs[f"clas_logits_{length}"]) <= TOLERANCE


def test_long_classifier_input_depends_on_the_bpt3c_settings(fastai_outputs):
    # with fastai's defaults (72/1440) all 30 tokens are pooled, not the last 24: the long fixture notices
    model, _ = convert_fastai_checkpoint(FIXTURES / "clas.pth", FIXTURES / "vocab.pkl")
    assert (model.config.bpt3c_chunk_size, model.config.bpt3c_max_length) == (72, 1440)
    with torch.no_grad():
        logits = model(fastai_outputs["clas_input_ids_long"]).logits
    assert max_difference(logits, fastai_outputs["clas_logits_long"]) > 1e-3


def test_config_is_read_from_the_shapes():
    lm, _ = convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl")
    config = lm.config
    assert (config.vocab_size, config.embedding_size, config.hidden_size, config.num_hidden_layers) == (40, 12, 20, 2)
    assert config.tie_word_embeddings and config.lm_head_bias
    assert lm.lm_head.weight.data_ptr() == lm.awd_lstm.embed_tokens.weight.data_ptr()
    assert config.embedding_dropout == 0.02 and config.weight_dropout == 0.2  # fastai's awd_lstm_lm_config
    classifier, _ = convert_fastai_checkpoint(FIXTURES / "clas.pth", FIXTURES / "vocab.pkl", labels=["neg", "pos"])
    config = classifier.config
    assert (config.classifier_hidden_size, config.num_labels, config.id2label) == (12, 2, {0: "neg", 1: "pos"})
    assert config.weight_dropout == 0.25 and config.output_dropout == 0.2  # awd_lstm_clas_config x drop_mult 0.5
    assert classifier.classifier.norm_in.num_batches_tracked > 0  # fastai's BatchNorm statistics came along


def test_classifier_dropouts_are_text_classifier_learners():
    # awd_lstm_clas_config x drop_mult 0.5, from the config's preset; classifier_dropout is fastai's ps=[0.1]
    expected = {
        "output_dropout": 0.2,
        "hidden_dropout": 0.15,
        "input_dropout": 0.2,
        "embedding_dropout": 0.025,
        "weight_dropout": 0.25,
    }
    assert AwdLstmConfig.fastai_dropouts("classifier", drop_mult=0.5) == expected
    classifier, _ = convert_fastai_checkpoint(FIXTURES / "clas.pth", FIXTURES / "vocab.pkl")
    assert {name: getattr(classifier.config, name) for name in expected} == expected
    assert classifier.config.classifier_dropout == 0.1


# --- tokenizer -------------------------------------------------------------------------------------------------------


def test_tokenizer_keeps_fastais_ids(fastai_vocab, fastai_outputs, tmp_path):
    _, tokenizer = convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl", output_dir=tmp_path / "lm")
    for loaded in (tokenizer, AutoTokenizer.from_pretrained(tmp_path / "lm")):
        tokens = loaded.convert_ids_to_tokens(list(range(len(fastai_vocab))))
        # fastai pads its vocabulary with repeated "xxfake"; the repeats get numbered names at the same ids
        assert [token if not token.startswith("xxfake") else "xxfake" for token in tokens] == fastai_vocab
        assert tokens[-5:] == ["xxfake", "xxfake1", "xxfake2", "xxfake3", "xxfake4"]
        text = safe_open(FIXTURES / "outputs.safetensors", "pt").metadata()["text"]
        assert loaded(text).input_ids == fastai_outputs["text_input_ids"].tolist()  # fastai's own numericalization
    assert load_fastai_vocab(FIXTURES / "vocab.txt") == load_fastai_vocab(FIXTURES / "vocab.pkl") == fastai_vocab


def test_fastai_v1_special_token_order_is_moved_to_v2_ids(tmp_path, fastai_vocab, fastai_outputs):
    # a v1-era vocabulary (the WikiText-103 files): the same nine special tokens, another order, rows to match
    v1_order = [fastai_vocab.index(token) for token in FASTAI_V1_SPECIAL_TOKENS] + list(range(9, len(fastai_vocab)))
    state, _ = load_fastai_state_dict(FIXTURES / "lm_no_opt.pth")
    for name in ("0.encoder.weight", "0.encoder_dp.emb.weight", "1.decoder.weight", "1.decoder.bias"):
        state[name] = state[name][v1_order]
    torch.save(state, tmp_path / "v1.pth")
    conversion = convert_fastai_checkpoint(tmp_path / "v1.pth", [fastai_vocab[i] for i in v1_order])
    model, tokenizer = conversion
    assert tokenizer.convert_ids_to_tokens(list(range(9))) == fastai_vocab[:9]
    with torch.no_grad():
        logits = model(fastai_outputs["lm_input_ids"]).logits
    assert max_difference(logits, fastai_outputs["lm_no_opt_logits"]) <= TOLERANCE
    assert conversion.special_tokens_reordered and conversion.vocab is None and conversion.vocab_sha256 is None


# --- provenance ------------------------------------------------------------------------------------------------------


def test_conversion_records_its_sources_and_unpacks_as_model_and_tokenizer():
    conversion = convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl")
    assert isinstance(conversion, FastaiConversion) and conversion.task == "lm"
    assert conversion.checkpoint == FIXTURES / "lm.pth" and conversion.vocab == FIXTURES / "vocab.pkl"
    assert conversion.checkpoint_sha256 == file_sha256(FIXTURES / "lm.pth")
    assert conversion.vocab_sha256 == file_sha256(FIXTURES / "vocab.pkl")
    assert conversion.optimizer_state_dropped and not conversion.special_tokens_reordered
    model, tokenizer = conversion
    assert model is conversion.model and tokenizer is conversion.tokenizer
    bare = convert_fastai_checkpoint(FIXTURES / "lm_no_opt.pth", FIXTURES / "vocab.pkl")
    assert not bare.optimizer_state_dropped


def test_importing_ulmfit_does_not_import_the_converter():
    code = "import sys, ulmfit; print('ulmfit.models.awd_lstm.convert_fastai_checkpoint' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_converter_imports_only_torch_transformers_and_its_siblings():
    # a checkpoint converter in a model folder, as in transformers: no card, pipeline or package-level imports
    tree = ast.parse(Path(converter_module.__file__).read_text(encoding="utf-8"))
    siblings = {path.stem for path in Path(converter_module.__file__).parent.glob("*.py")}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
            assert all(root in sys.stdlib_module_names | {"torch", "transformers"} for root in roots), roots
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert node.module.split(".")[0] in sys.stdlib_module_names | {"torch", "transformers"}, node.module
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 1 and node.module in siblings, (node.level, node.module)


# --- saved folders ---------------------------------------------------------------------------------------------------


def test_saved_language_model_folder(tmp_path, fastai_outputs):
    folder = tmp_path / "awd-lstm-from-fastai"
    convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl", output_dir=folder)
    assert (folder / "model.safetensors").is_file() and (folder / "vocab.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(fastai_outputs["lm_input_ids"]).logits
    assert max_difference(logits, fastai_outputs["lm_logits"]) <= TOLERANCE
    assert set(model.generation_config.suppress_tokens) == {0, 1, 35, 36, 37, 38, 39}  # xxunk, xxpad, xxfake*
    assert not (folder / "README.md").exists()  # the card is scripts/convert_fastai_checkpoint.py's
    generated = model.generate(fastai_outputs["lm_input_ids"][:1, :3], max_new_tokens=4, do_sample=False)
    assert generated.shape == (1, 7)


def test_saved_classifier_folder_runs_in_the_pipeline(tmp_path):
    folder = tmp_path / "classifier"
    convert_fastai_checkpoint(
        FIXTURES / "clas.pth",
        FIXTURES / "vocab.pkl",
        output_dir=folder,
        labels=["neg", "pos"],
        config_overrides=SMALL_BPT3C,
    )
    results = pipeline("text-classification", model=str(folder))(["A great film, I loved it.", "Bad and boring."])
    assert {result["label"] for result in results} <= {"neg", "pos"}


def test_encoder_folder_starts_a_ulmfit_classifier(tmp_path):
    folder = tmp_path / "encoder"
    encoder, _ = convert_fastai_checkpoint(FIXTURES / "enc.pth", FIXTURES / "vocab.txt", output_dir=folder)
    assert isinstance(AutoModel.from_pretrained(folder), AwdLstmModel)
    classifier = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3)  # fastai's load_encoder
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(classifier.awd_lstm.state_dict()[name], tensor)


# --- files that are not what they claim ------------------------------------------------------------------------------


class RunsCode:
    """Pickles as a call to os.system: loading it the unsafe way would create `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_vocabulary_pickle_with_code_is_refused_without_running_it(tmp_path):
    marker, vocab = tmp_path / "pwned", tmp_path / "vocab.pkl"
    vocab.write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(FastaiCheckpointError, match=r"Refusing to load the vocabulary vocab\.pkl: .*system"):
        convert_fastai_checkpoint(FIXTURES / "lm.pth", vocab)
    assert not marker.exists()


def test_checkpoint_with_code_is_refused_by_weights_only(tmp_path):
    marker, checkpoint = tmp_path / "pwned", tmp_path / "evil.pth"
    torch.save({"0.encoder.weight": torch.zeros(40, 12), "payload": RunsCode(marker)}, checkpoint)
    with pytest.raises(FastaiCheckpointError, match=r"Refusing to load evil\.pth: .*system.*weights_only=True"):
        convert_fastai_checkpoint(checkpoint, FIXTURES / "vocab.pkl")
    assert not marker.exists()


def test_exported_learner_gets_a_hint(tmp_path, monkeypatch):
    # a stand-in `fastai.learner.Learner`, so that torch.save writes the global a real export.pkl holds
    learner_class = type("Learner", (), {"__module__": "fastai.learner"})
    package, module = types.ModuleType("fastai"), types.ModuleType("fastai.learner")
    package.learner, module.Learner = module, learner_class
    monkeypatch.setitem(sys.modules, "fastai", package)
    monkeypatch.setitem(sys.modules, "fastai.learner", module)
    torch.save(learner_class(), tmp_path / "export.pkl")
    with pytest.raises(FastaiCheckpointError, match=r"fastai\.learner\.Learner.*learn\.save"):
        convert_fastai_checkpoint(tmp_path / "export.pkl", FIXTURES / "vocab.pkl")


def test_text_file_is_not_a_checkpoint():
    with pytest.raises(FastaiCheckpointError, match=r"vocab\.txt is not a PyTorch checkpoint"):
        convert_fastai_checkpoint(FIXTURES / "vocab.txt", FIXTURES / "vocab.pkl")


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(FastaiCheckpointError, match="not a model state dict"):
        convert_fastai_checkpoint(tmp_path / "list.pth", FIXTURES / "vocab.pkl")
    torch.save({"0.encoder.weight": torch.zeros(3), "step": 3}, tmp_path / "mixed.pth")
    with pytest.raises(FastaiCheckpointError, match=r"\['step'\] are not tensors"):
        convert_fastai_checkpoint(tmp_path / "mixed.pth", FIXTURES / "vocab.pkl")


def test_vocabulary_length_must_match_the_embedding(fastai_vocab):
    with pytest.raises(FastaiCheckpointError, match="has 32 tokens but the checkpoint's embedding has 40 rows"):
        convert_fastai_checkpoint(FIXTURES / "lm.pth", fastai_vocab[:32])


def test_vocabulary_must_start_with_fastais_special_tokens(fastai_vocab, tmp_path):
    shuffled = fastai_vocab[9:18] + fastai_vocab[:9] + fastai_vocab[18:]
    (tmp_path / "vocab.txt").write_text("\n".join(shuffled) + "\n")
    with pytest.raises(FastaiCheckpointError, match=r"vocab\.txt does not start with fastai's special tokens"):
        convert_fastai_checkpoint(FIXTURES / "lm.pth", tmp_path / "vocab.txt")


def test_vocabulary_pickle_of_another_kind(tmp_path):
    (tmp_path / "dict.pkl").write_bytes(pickle.dumps({"the": 9}))
    with pytest.raises(FastaiCheckpointError, match="does not hold a list of tokens"):
        load_fastai_vocab(tmp_path / "dict.pkl")
    (tmp_path / "garbage.pkl").write_bytes(b"not a pickle at all")
    with pytest.raises(FastaiCheckpointError, match=r"garbage\.pkl is not a pickled vocabulary"):
        load_fastai_vocab(tmp_path / "garbage.pkl")


def test_unknown_keys_and_inconsistent_shapes_are_refused(tmp_path):
    state, _ = load_fastai_state_dict(FIXTURES / "lm_no_opt.pth")
    torch.save({**state, "0.rnns.0.module.weight_ih_l0_reverse": torch.zeros(80, 12)}, tmp_path / "bidir.pth")
    with pytest.raises(FastaiCheckpointError, match=r"keys that a fastai AWD-LSTM .* does not: .*_reverse"):
        convert_fastai_checkpoint(tmp_path / "bidir.pth", FIXTURES / "vocab.pkl")
    torch.save({**state, "0.rnns.1.module.weight_ih_l0": torch.zeros(48, 7)}, tmp_path / "shapes.pth")
    with pytest.raises(FastaiCheckpointError, match=r"LSTM layer 1 `weight_ih_l0` has shape \(48, 7\), expected"):
        convert_fastai_checkpoint(tmp_path / "shapes.pth", FIXTURES / "vocab.pkl")
    torch.save({"weight": torch.zeros(3, 3)}, tmp_path / "other.pth")
    with pytest.raises(FastaiCheckpointError, match="Not a fastai AWD-LSTM state dict"):
        convert_fastai_checkpoint(tmp_path / "other.pth", FIXTURES / "vocab.pkl")


def test_task_labels_and_overrides_are_checked():
    with pytest.raises(FastaiCheckpointError, match="not a text classifier.*AutoModelForSequenceClassification"):
        convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl", task="classifier")
    with pytest.raises(FastaiCheckpointError, match="`labels` are for a classifier"):
        convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl", labels=["a", "b"])
    with pytest.raises(FastaiCheckpointError, match="3 label names"):
        convert_fastai_checkpoint(FIXTURES / "clas.pth", FIXTURES / "vocab.pkl", labels=["a", "b", "c"])
    with pytest.raises(FastaiCheckpointError, match="`hidden_size` is read from the checkpoint"):
        convert_fastai_checkpoint(FIXTURES / "lm.pth", FIXTURES / "vocab.pkl", config_overrides={"hidden_size": 8})
    with pytest.raises(FastaiCheckpointError, match="`seq_len` is not an AwdLstmConfig field"):
        convert_fastai_checkpoint(FIXTURES / "clas.pth", FIXTURES / "vocab.pkl", config_overrides={"seq_len": 8})
