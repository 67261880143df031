"""Classifier inference from raw text: ulmfit's length-sorting classification pipeline against fastai, same weights.

A trained ulmfit classifier folder (e.g. the one `make demo` prints) is copied into fastai's `text_classifier_learner`
with the same vocabulary and architecture, so both sides compute the same function and the benchmark also reports how
often their predictions agree. Timed, from raw review text to a predicted label, on IMDb test reviews:

- fastai `learn.predict(text)` in a loop (a user's one-review-at-a-time path), on `--predict_docs` reviews;
- fastai `learn.get_preds(dl=learn.dls.test_dl(texts))` (tokenization in fastai's worker processes included);
- ulmfit `pipeline("text-classification", model=folder, pipeline_class=AwdLstmTextClassificationPipeline)(texts,
  batch_size=64)`, and the same pipeline one review at a time, for the like-for-like comparison with `learn.predict`;
- the same batched pipeline with `dtype=torch.bfloat16` (bf16 weights on a CPU with AVX512-BF16; fastai's mixed
  precision is CUDA-only), with its agreement with fp32.

Both run on the same CPU threads, in one process, one after the other; the ratios are docs/s against fastai.

    /tmp/fastai-env/bin/python scripts/benchmarks/bench_classifier_inference.py \\
        --classifier outputs/demo-ulmfit/classifier
"""

import argparse
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

# ulmfit's state-dict names -> fastai's `get_text_classifier` (SequentialRNN(SentenceEncoder, PoolingLinearClassifier))
HEAD_NAMES = {
    "classifier.norm_in": "1.layers.0.0",
    "classifier.dense": "1.layers.0.2",
    "classifier.norm_hidden": "1.layers.1.0",
    "classifier.out_proj": "1.layers.1.2",
}


def to_fastai_state_dict(state_dict: dict, encoder: str = "0.module.") -> dict:
    """
    An `AwdLstmForSequenceClassification` state dict in the layout of fastai's AWD-LSTM text classifier, or with
    `encoder="0."` an `AwdLstmForCausalLM` one in the layout of fastai's `get_language_model(AWD_LSTM, ...)`.
    """
    converted = {}
    for name, tensor in state_dict.items():
        if name == "awd_lstm.embed_tokens.weight":
            converted[f"{encoder}encoder.weight"] = converted[f"{encoder}encoder_dp.emb.weight"] = tensor
        elif name.startswith("awd_lstm.layers."):
            layer, parameter = name.split(".")[2], name.split(".")[-1]
            if parameter == "weight_hh_l0":  # fastai's WeightDropout keeps the raw weight outside the LSTM
                converted[f"{encoder}rnns.{layer}.weight_hh_l0_raw"] = tensor
            else:
                converted[f"{encoder}rnns.{layer}.module.{parameter}"] = tensor
        elif name.startswith("lm_head."):
            converted[f"1.decoder.{name.split('.')[-1]}"] = tensor
        else:
            prefix, parameter = name.rsplit(".", 1)
            converted[f"{HEAD_NAMES[prefix]}.{parameter}"] = tensor
    return converted


def fastai_learner(folder: Path, tokenizer, config):
    """fastai's text classifier with ulmfit's vocabulary, architecture and weights (eval mode)."""
    import pandas as pd
    import torch
    from fastai.text.all import (
        AWD_LSTM,
        CategoryBlock,
        ColReader,
        DataBlock,
        RandomSplitter,
        TextBlock,
        awd_lstm_clas_config,
        text_classifier_learner,
    )
    from safetensors.torch import load_file

    vocab = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    labels = [config.id2label[index] for index in range(config.num_labels)]
    # a few rows only: fastai needs DataLoaders to build a Learner; the benchmark's reviews come later, untimed here
    frame = pd.DataFrame({"text": ["a fine film", "a bad film"] * 8, "label": labels * 8})
    block = DataBlock(
        blocks=(TextBlock.from_df("text", vocab=vocab, seq_len=config.bpt3c_chunk_size), CategoryBlock(vocab=labels)),
        get_x=ColReader("text"),
        get_y=ColReader("label"),
        splitter=RandomSplitter(0.25, seed=0),
    )
    dls = block.dataloaders(frame, bs=64)
    architecture = dict(
        awd_lstm_clas_config,
        emb_sz=config.embedding_size,
        n_hid=config.hidden_size,
        n_layers=config.num_hidden_layers,
    )
    learn = text_classifier_learner(
        dls, AWD_LSTM, config=architecture, pretrained=False, max_len=config.bpt3c_max_length, lin_ftrs=[50]
    )
    state = to_fastai_state_dict(load_file(folder / "model.safetensors"))
    learn.model.load_state_dict({name: tensor.to(torch.float32) for name, tensor in state.items()}, strict=True)
    learn.model.eval()
    return learn


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classifier", type=Path, required=True, help="an ulmfit classifier folder")
    parser.add_argument("--imdb_dir", type=Path, default=REPO.parent / "shared" / "data" / "imdb")
    parser.add_argument("--num_docs", type=int, default=2000)
    parser.add_argument("--predict_docs", type=int, default=300, help="reviews for the one-at-a-time loops")
    parser.add_argument("--batch_size", type=int, default=64)
    args = parser.parse_args()

    import pandas as pd
    import torch
    from transformers import pipeline

    from ulmfit.pipelines import AwdLstmTextClassificationPipeline  # batches documents sorted by length

    reviews = pd.read_parquet(args.imdb_dir / "test.parquet").sample(n=args.num_docs, random_state=0)
    texts = reviews["text"].tolist()
    classify = pipeline(
        "text-classification", model=str(args.classifier), pipeline_class=AwdLstmTextClassificationPipeline
    )
    config = classify.model.config
    learn = fastai_learner(args.classifier, classify.tokenizer, config)
    print(
        f"{len(texts)} IMDb test reviews; AWD-LSTM {config.embedding_size}/{config.hidden_size}/"
        f"{config.num_hidden_layers}, vocab {config.vocab_size}; torch threads {torch.get_num_threads()}"
    )

    results = {}

    def timed(name, function, count):
        start = time.perf_counter()
        output = function()
        seconds = time.perf_counter() - start
        results[name] = count / seconds
        print(f"{name:<44} {count / seconds:8.1f} docs/s  ({seconds:.1f} s for {count})", flush=True)
        return output

    few = texts[: args.predict_docs]
    with learn.no_bar(), learn.no_logging():
        timed("fastai learn.predict loop", lambda: [learn.predict(text) for text in few], len(few))
        fastai_probs = timed(
            "fastai get_preds(test_dl)",
            lambda: learn.get_preds(dl=learn.dls.test_dl(texts, bs=args.batch_size))[0],
            len(texts),
        )
    timed("ulmfit pipeline, one review at a time", lambda: [classify(text) for text in few], len(few))
    ours = timed(
        f"ulmfit pipeline, batch_size={args.batch_size}",
        lambda: classify(texts, batch_size=args.batch_size, top_k=None),
        len(texts),
    )
    # bf16 weights on the CPU (AVX512-BF16/AMX): a user's one-argument choice; fastai has no CPU mixed precision
    classify_bf16 = pipeline(
        "text-classification",
        model=str(args.classifier),
        dtype=torch.bfloat16,
        pipeline_class=AwdLstmTextClassificationPipeline,
    )
    ours_bf16 = timed(
        f"ulmfit pipeline bf16, batch_size={args.batch_size}",
        lambda: classify_bf16(texts, batch_size=args.batch_size, top_k=None),
        len(texts),
    )

    label_ids = {name: index for index, name in config.id2label.items()}

    def probabilities(results):
        probs = torch.zeros(len(texts), config.num_labels)
        for row, scores in enumerate(results):
            for score in scores:
                probs[row, label_ids[score["label"]]] = score["score"]
        return probs

    our_probs, bf16_probs = probabilities(ours), probabilities(ours_bf16)
    agreement = (our_probs.argmax(-1) == fastai_probs.argmax(-1)).float().mean().item()
    max_difference = (our_probs - fastai_probs).abs().max().item()
    imdb_names = ("negative", "positive")  # IMDb: 0 negative, 1 positive (the demo classifier's names)
    truth = torch.tensor([label_ids.get(imdb_names[label], label) for label in reviews["label"]])
    print(f"\nsame predictions: {agreement:.2%}; largest probability difference {max_difference:.2e}")
    print(f"accuracy: ulmfit {(our_probs.argmax(-1) == truth).float().mean():.2%}, ", end="")
    print(f"fastai {(fastai_probs.argmax(-1) == truth).float().mean():.2%}, ", end="")
    print(f"ulmfit bf16 {(bf16_probs.argmax(-1) == truth).float().mean():.2%}", end="")
    print(f" (same predictions as fp32: {(bf16_probs.argmax(-1) == our_probs.argmax(-1)).float().mean():.2%})")
    batched = results[f"ulmfit pipeline, batch_size={args.batch_size}"]
    batched_bf16 = results[f"ulmfit pipeline bf16, batch_size={args.batch_size}"]
    print(f"ulmfit batched vs fastai learn.predict loop: {batched / results['fastai learn.predict loop']:.1f}x")
    print(f"ulmfit batched vs fastai get_preds:          {batched / results['fastai get_preds(test_dl)']:.2f}x")
    print(f"ulmfit bf16 batched vs fastai get_preds:     {batched_bf16 / results['fastai get_preds(test_dl)']:.2f}x")
    single = results["ulmfit pipeline, one review at a time"]
    print(f"ulmfit one at a time vs learn.predict loop:  {single / results['fastai learn.predict loop']:.1f}x")


if __name__ == "__main__":
    main()
