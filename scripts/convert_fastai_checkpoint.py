"""Convert a fastai v2 AWD-LSTM checkpoint (language model, encoder or ULMFiT classifier) into an `ulmfit` folder.

The folder holds safetensors weights, the config, the tokenizer (fastai's vocabulary, same ids) and a model card that
names the source files and their SHA-256; it loads with `from_pretrained`, `pipeline(...)`, or remote code where
`ulmfit` is not installed. Nothing in the input files is executed (see `ulmfit.convert_fastai`).

    # a language model saved with learn.save("lm") (with or without the optimizer state) and its vocabulary
    python scripts/convert_fastai_checkpoint.py --checkpoint models/lm.pth --vocab models/vocab.pkl \\
        --output_dir awd-lstm-lm
    # fastai's pretrained WikiText-103 files
    python scripts/convert_fastai_checkpoint.py --checkpoint wt103-fwd/lstm_fwd.pth \\
        --vocab wt103-fwd/itos_wt103.pkl --output_dir awd-lstm-wt103
    # a text classifier saved with learn.save("clas"), its label names in fastai's order (dls.vocab[1]), and upload
    python scripts/convert_fastai_checkpoint.py --checkpoint models/clas.pth --vocab vocab.txt --labels neg,pos \\
        --output_dir imdb-classifier --push_to_hub --hub_model_id you/imdb-classifier

The vocabulary is `pickle.dump(list(dls.vocab), f)` or a text file with one token per line. The task (`lm`,
`classifier`, `encoder`) is detected from the checkpoint's keys; `--task encoder` extracts the encoder of a language
model or classifier.
"""

import argparse
from pathlib import Path

from huggingface_hub import ModelCard

from ulmfit import AwdLstmForSequenceClassification
from ulmfit.convert_fastai import TASKS, convert_fastai_checkpoint
from ulmfit.model_card import push_folder_then_card


def parse_overrides(text: str | None) -> dict:
    """`name=value,name=value` -> a dict, each value read as an int, a float, a bool, or left a string."""
    overrides = {}
    for item in filter(None, (text or "").split(",")):
        name, separator, value = item.partition("=")
        if not separator:
            raise ValueError(f"--config_overrides takes name=value pairs separated by commas, got {item!r}.")
        for cast in (int, float):
            try:
                overrides[name.strip()] = cast(value)
                break
            except ValueError:
                continue
        else:
            overrides[name.strip()] = {"true": True, "false": False}.get(value.strip().lower(), value.strip())
    return overrides


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # --- input ------------------------------------------------------------------------------------------------------
    parser.add_argument("--checkpoint", required=True, help="fastai .pth: learn.save, save_encoder, lstm_fwd.pth")
    parser.add_argument("--vocab", required=True, help="fastai's vocabulary: a pickled list (.pkl) or a .txt file")
    parser.add_argument("--task", choices=TASKS, default=None, help="What to convert (default: from the keys).")
    parser.add_argument("--labels", default=None, help="Classifier label names in fastai's order, e.g. neg,pos.")
    parser.add_argument("--backwards", action="store_true", help="A backward model (fastai's backwards=True).")
    parser.add_argument(
        "--config_overrides",
        default=None,
        help="AwdLstmConfig fields the checkpoint does not record, e.g. bpt3c_chunk_size=72,bpt3c_max_length=1440 "
        "(fastai's seq_len, max_len of text_classifier_learner) or dropouts.",
    )
    # --- output and hub ---------------------------------------------------------------------------------------------
    parser.add_argument("--output_dir", required=True, help="The folder to write.")
    parser.add_argument("--push_to_hub", action="store_true", help="Upload the folder, model card last.")
    parser.add_argument("--hub_model_id", default=None, help="Repo id (default: the output folder's name).")
    parser.add_argument("--hub_token", default=None, help="Hub token (default: the logged-in one).")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    repo_id = args.hub_model_id or output_dir.name
    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None

    # 1. Convert and write the folder (weights, config, tokenizer, card)
    model, tokenizer = convert_fastai_checkpoint(
        args.checkpoint,
        args.vocab,
        output_dir=output_dir,
        task=args.task,
        labels=labels,
        config_overrides=parse_overrides(args.config_overrides),
        backwards=args.backwards,
        model_id=repo_id,
    )
    config = model.config
    print(
        f"{type(model).__name__}: embedding {config.embedding_size}, hidden {config.hidden_size}, "
        f"{config.num_hidden_layers} layers, vocabulary {len(tokenizer)}"
        + (f", labels {list(config.id2label.values())}" if isinstance(model, AwdLstmForSequenceClassification) else "")
    )

    # 2. Upload: the folder, then the card (push_to_hub of the weights would replace a card uploaded first)
    if args.push_to_hub:
        push_folder_then_card(output_dir, ModelCard.load(output_dir / "README.md"), repo_id, args.hub_token, ())
        print(f"pushed to {repo_id}")
    print(output_dir.resolve())


if __name__ == "__main__":
    main()
