"""End to end: raw IMDb reviews -> tokenized -> one epoch of language-model training, ulmfit vs fastai.

Both sides start from the same 10,000 raw reviews (IMDb train + unsup, seed 0; the last 10% held out for validation)
and train the same AWD-LSTM from scratch for one epoch with the same vocabulary cap, batch size, BPTT length, one-cycle
learning rate and dropouts (fastai has no pretrained weights offline, so "fine-tuning" starts from random weights on
both sides). Wall time covers everything a user waits for: imports, tokenization, numericalization, batching,
training and validation, each side in its own process. ulmfit runs `scripts/train_language_model.py`; fastai runs
`TextBlock.from_df(is_lm=True)` + `language_model_learner(pretrained=False)` + `fit_one_cycle(1)`.

    /tmp/fastai-env/bin/python scripts/benchmarks/bench_lm_end_to_end.py --imdb_dir ../shared/data/imdb
    /tmp/fastai-env/bin/python scripts/benchmarks/bench_lm_end_to_end.py --imdb_dir ../shared/data/imdb --bf16
"""

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def prepare(args, folder: Path):
    import pandas as pd

    frames = [pd.read_parquet(args.imdb_dir / f"{split}.parquet", columns=["text"]) for split in ("train", "unsup")]
    texts = pd.concat(frames).sample(n=args.num_reviews, random_state=0)["text"].tolist()
    cut = int(len(texts) * 0.9)
    pd.DataFrame({"text": texts[:cut]}).to_parquet(folder / "train.parquet")
    pd.DataFrame({"text": texts[cut:]}).to_parquet(folder / "valid.parquet")
    pd.DataFrame({"text": texts, "is_valid": [i >= cut for i in range(len(texts))]}).to_parquet(folder / "all.parquet")


def run_fastai(args, folder: Path):
    """The child process of the fastai side: fastai's own data pipeline and Learner."""
    import pandas as pd
    from fastai.text.all import (
        AWD_LSTM,
        ColReader,
        ColSplitter,
        DataBlock,
        Perplexity,
        TextBlock,
        accuracy,
        awd_lstm_lm_config,
        language_model_learner,
    )

    df = pd.read_parquet(folder / "all.parquet")
    block = DataBlock(
        blocks=TextBlock.from_df("text", is_lm=True, seq_len=args.bptt, max_vocab=args.max_vocab),
        get_x=ColReader("text"),
        splitter=ColSplitter("is_valid"),
    )
    dls = block.dataloaders(df, bs=args.batch_size)
    config = dict(awd_lstm_lm_config, emb_sz=args.embedding_size, n_hid=args.hidden_size, n_layers=args.num_layers)
    learn = language_model_learner(dls, AWD_LSTM, config=config, pretrained=False, metrics=[accuracy, Perplexity()])
    learn.fit_one_cycle(1, args.learning_rate)
    valid_loss, valid_accuracy, valid_perplexity = learn.recorder.values[-1][1:4]
    return {
        "valid_loss": valid_loss,
        "perplexity": valid_perplexity,
        "accuracy": valid_accuracy,
        "vocab_size": len(dls.vocab),
    }


def ulmfit_command(args, folder: Path) -> list[str]:
    overrides = (
        f"embedding_size={args.embedding_size},hidden_size={args.hidden_size},num_hidden_layers={args.num_layers}"
    )
    command = [
        sys.executable,
        str(REPO / "scripts" / "train_language_model.py"),
        "--train_file",
        str(folder / "train.parquet"),
        "--validation_file",
        str(folder / "valid.parquet"),
        "--output_dir",
        str(folder / "ulmfit"),
        "--config_overrides",
        overrides,
        "--max_vocab",
        str(args.max_vocab),
        "--per_device_train_batch_size",
        str(args.batch_size),
        "--per_device_eval_batch_size",
        str(args.batch_size),
        "--bptt",
        str(args.bptt),
        "--num_train_epochs",
        "1",
        "--learning_rate",
        str(args.learning_rate),
        "--preprocessing_num_workers",
        "2",
        "--logging_steps",
        "100",
    ]
    if args.bf16:
        command += ["--mixed_precision", "bf16"]
    return command


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb_dir", type=Path, default=REPO.parent / "shared" / "data" / "imdb")
    parser.add_argument("--num_reviews", type=int, default=10000)
    parser.add_argument("--max_vocab", type=int, default=15000)
    parser.add_argument("--embedding_size", type=int, default=200)
    parser.add_argument("--hidden_size", type=int, default=400)
    parser.add_argument("--num_layers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--bptt", type=int, default=70)
    parser.add_argument("--learning_rate", type=float, default=1e-2)
    parser.add_argument("--bf16", action="store_true", help="ulmfit with --mixed_precision bf16 (fastai: fp32 on CPU)")
    parser.add_argument("--only", choices=["fastai", "ulmfit"], help="run one side only")
    parser.add_argument("--fastai_child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fastai_child:
        print(json.dumps(run_fastai(args, args.fastai_child)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        prepare(args, folder)
        env = {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO / "src"), "HF_DATASETS_CACHE": str(folder / "cache")}
        env = {**__import__("os").environ, **env}
        results = {}
        if args.only in (None, "ulmfit"):
            start = time.perf_counter()
            subprocess.run(ulmfit_command(args, folder), check=True, env=env, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - start
            ours = json.loads((folder / "ulmfit" / "all_results.json").read_text())
            results["ulmfit"] = {
                "seconds": seconds,
                "perplexity": ours["perplexity"],
                "accuracy": ours["eval_accuracy"],
            }
        if args.only in (None, "fastai"):
            start = time.perf_counter()
            command = [sys.executable, __file__, *sys.argv[1:], "--fastai_child", str(folder)]
            output = subprocess.run(command, check=True, env=env, capture_output=True, text=True).stdout
            seconds = time.perf_counter() - start
            theirs = json.loads(output.strip().splitlines()[-1])
            results["fastai"] = {
                "seconds": seconds,
                "perplexity": theirs["perplexity"],
                "accuracy": theirs["accuracy"],
            }
    print(
        f"{args.num_reviews} reviews, emb {args.embedding_size}/hidden {args.hidden_size}/{args.num_layers} layers, "
        f"max_vocab {args.max_vocab}, batch {args.batch_size} x bptt {args.bptt}, lr {args.learning_rate}, 1 epoch"
        f"{', ulmfit in bf16' if args.bf16 else ''}"
    )
    for name, row in results.items():
        print(
            f"{name:7s} wall {row['seconds']:7.1f} s   validation perplexity {row['perplexity']:8.2f}   "
            f"accuracy {row['accuracy']:.4f}"
        )
    if len(results) == 2:
        speedup = results["fastai"]["seconds"] / results["ulmfit"]["seconds"]
        better = results["ulmfit"]["perplexity"] <= results["fastai"]["perplexity"] * 1.0 + 1e-9
        print(
            f"speed-up ulmfit vs fastai = {speedup:.2f}x; perplexity equal or better: {better} "
            f"({math.log(results['ulmfit']['perplexity']):.4f} vs "
            f"{math.log(results['fastai']['perplexity']):.4f} nats)"
        )


if __name__ == "__main__":
    main()
