#!/usr/bin/env bash
# The full IMDb ULMFiT recipe, forward and backward (Howard & Ruder 2018; fastbook chapter 10), for a GPU machine.
#
#   bash scripts/imdb_full_recipe.sh                  # data, WikiText-103 weights, 2 LMs, 2 classifiers, the ensemble
#   WT103=none bash scripts/imdb_full_recipe.sh       # no WikiText-103: the LMs learn from scratch on IMDb's texts
#   SMOKE=1 IMDB_DIR=... bash scripts/imdb_full_recipe.sh   # a few hundred documents and steps: checks the commands
#
# Each step leaves a folder under $OUT and is skipped once complete, so running the script again goes on where it
# stopped; the LM fine-tuning (the long step) resumes from its last epoch checkpoint. Each command is printed.
#
# 1. Data: IMDb's train (25,000 labelled), test (25,000 labelled) and unsup (50,000) splits, from $IMDB_DIR (parquet
#    files with `text` and `label`, as written by `datasets`) or else from the Hub (`stanfordnlp/imdb`); labels are
#    written as `negative`/`positive`, and lm.parquet holds all 100,000 texts (fastbook fine-tunes the LM on them all;
#    no label is read).
# 2. Pretrained LMs: fastai's WikiText-103 AWD-LSTMs (wt103-fwd, wt103-bwd: 400/1152/3, 60,000 words), downloaded
#    (WT103=download) or from a folder holding wt103-fwd/ and wt103-bwd/ (WT103=<folder>), converted by
#    scripts/convert_fastai_checkpoint.py.
# 3. LM fine-tuning on the 100,000 texts (10 % held out), fastbook's: drop_mult 0.3, batches of 128 x 80 tokens, a new
#    60,000-word vocabulary (new words start from the mean embedding), one frozen epoch at 2e-2, then 10 epochs at 2e-3
#    with every layer training; bf16 autocast.
# 4. The classifier on the 25,000 train reviews, scored on the 25,000 test reviews (as fastbook, which validates on
#    them): drop_mult 0.5, batches of 128, gradual unfreezing 1,2,3,all, one one-cycle per stage, 1,1,1,2 epochs at
#    2e-2, 1e-2, 5e-3, 1e-3, each spread as slice(lr / 2.6**4, lr).
# 5. Forward, backward and their average on the 25,000 test reviews (scripts/benchmarks/bench_forward_backward.py).
#
# Anchors: the 2018 notebook 94.79 % (forward), fastbook 94.3 % / 95.1 % (forward / forward + backward), the paper's
# 95.4 %. Without WikiText-103 (WT103=none) the LMs train from scratch on the 100,000 texts (every layer from the
# start, one-cycle to 1e-2, fastai's dropouts, LM_EPOCHS epochs): expect less, since they then know only IMDb.
#
# Settings (environment): OUT (runs/imdb-full), IMDB_DIR (the Hub when unset), WT103 (download | none | folder),
# DIRECTIONS ("fwd bwd"), LM_EPOCHS (10), LAUNCH ("accelerate launch --mixed_precision bf16"; add --num_processes N
# for several GPUs), PYTHON (python), SMOKE (unset; 1 shrinks every step to a few hundred documents and a few steps).
set -euo pipefail

cd "$(dirname "$0")/.."
OUT=${OUT:-runs/imdb-full}
IMDB_DIR=${IMDB_DIR:-}
WT103=${WT103:-$([[ -n "${SMOKE:-}" ]] && echo none || echo download)}
DIRECTIONS=${DIRECTIONS:-fwd bwd}
LM_EPOCHS=${LM_EPOCHS:-10}
PYTHON=${PYTHON:-python}
LAUNCH=${LAUNCH:-accelerate launch --mixed_precision bf16}
WT103_URL=https://s3.amazonaws.com/fast-ai-modelzoo

LM_SIZES=(--per_device_train_batch_size 128 --bptt 80 --max_vocab 60000)
CLASSIFIER_SIZES=(--per_device_train_batch_size 128)
if [[ -n "${SMOKE:-}" ]]; then
    LM_EPOCHS=1
    LM_SIZES=(--per_device_train_batch_size 8 --bptt 20 --max_vocab 2000 --max_train_samples 400
        --max_eval_samples 40 --max_train_steps 3)
    CLASSIFIER_SIZES=(--per_device_train_batch_size 16 --max_train_samples 64 --max_eval_samples 64)
    [[ "$WT103" == none ]] && LM_SIZES+=(--config_overrides embedding_size=32,hidden_size=48,num_hidden_layers=3)
fi

run() {
    echo "+ $*" >&2
    "$@"
}

# 1. data -------------------------------------------------------------------------------------------------------------
DATA=$OUT/data
if [[ ! -f $DATA/.complete ]]; then
    mkdir -p "$DATA"
    run "$PYTHON" - "$DATA" "$IMDB_DIR" "${SMOKE:-}" <<'EOF'
import sys
from pathlib import Path

import datasets

out, imdb_dir, smoke = Path(sys.argv[1]), sys.argv[2], bool(sys.argv[3])
if imdb_dir:
    files = {split: str(Path(imdb_dir) / f"{split}.parquet") for split in ("train", "test", "unsup")}
    missing = [path for path in files.values() if not Path(path).is_file()]
    if missing:
        sys.exit(f"error: IMDB_DIR={imdb_dir} lacks {', '.join(missing)} (IMDb's train, test and unsup splits)")
    imdb = datasets.load_dataset("parquet", data_files=files)
else:
    imdb = datasets.load_dataset("stanfordnlp/imdb")
    imdb["unsup"] = imdb.pop("unsupervised")
names = {0: "negative", 1: "positive"}
for split in ("train", "test"):
    part = imdb[split].shuffle(seed=42).select(range(200)) if smoke else imdb[split]
    if sorted(set(part["label"])) != [0, 1]:
        raise ValueError(f"IMDb's {split} split should have labels 0 and 1, got {sorted(set(part['label']))}.")
    part = part.select_columns(["text", "label"]).rename_column("label", "label_id")
    part = part.map(lambda row: {"label": names[row["label_id"]]}, remove_columns=["label_id"])
    part.to_parquet(str(out / f"{split}.parquet"))
texts = datasets.concatenate_datasets([imdb[split].select_columns(["text"]) for split in ("train", "test", "unsup")])
texts = texts.shuffle(seed=42).select(range(600)) if smoke else texts
texts.to_parquet(str(out / "lm.parquet"))
print(f"{out}: train.parquet, test.parquet, lm.parquet ({len(texts)} texts)")
EOF
    touch "$DATA/.complete"
fi

for direction in $DIRECTIONS; do
    backwards=()
    [[ $direction == bwd ]] && backwards=(--backwards)

    # 2. the pretrained WikiText-103 LM -------------------------------------------------------------------------------
    # (WT103=none: from scratch, every layer from the start, at the shipped small model's pretraining rate)
    lm_recipe=(--frozen_epochs 0 --learning_rate 1e-2)
    if [[ "$WT103" != none ]]; then
        converted=$OUT/wt103-$direction
        if [[ ! -f $converted/model.safetensors ]]; then
            files=$WT103/wt103-$direction
            if [[ "$WT103" == download ]]; then
                files=$OUT/downloads/wt103-$direction
                mkdir -p "$files"
                run curl -fL "$WT103_URL/wt103-$direction.tgz" -o "$files.tgz"
                run tar -xzf "$files.tgz" -C "$files"
            fi
            weights=$(find "$files" -name "lstm_$direction.pth" | head -n 1)
            vocab=$(find "$files" -name itos_wt103.pkl | head -n 1)
            if [[ -z $weights || -z $vocab ]]; then
                echo "error: $files holds no lstm_$direction.pth and itos_wt103.pkl (fastai's wt103-$direction files)" >&2
                exit 1
            fi
            run "$PYTHON" scripts/convert_fastai_checkpoint.py --checkpoint "$weights" --vocab "$vocab" \
                "${backwards[@]}" --output_dir "$converted"
        fi
        lm_recipe=(--model_name_or_path "$converted" --train_tokenizer --drop_mult 0.3 --frozen_epochs 1
            --frozen_learning_rate 2e-2 --learning_rate 2e-3)
    fi

    # 3. the LM fine-tuned on IMDb's 100,000 texts ---------------------------------------------------------------------
    lm=$OUT/lm-$direction
    if [[ ! -f $lm/all_results.json ]]; then
        run $LAUNCH scripts/train_language_model.py "${lm_recipe[@]}" --train_file "$DATA/lm.parquet" \
            --validation_split_percentage 10 "${LM_SIZES[@]}" --num_train_epochs "$LM_EPOCHS" "${backwards[@]}" \
            --checkpointing_steps epoch --resume_from_checkpoint latest --output_dir "$lm"
    fi

    # 4. the classifier on the 25,000 train reviews, scored on the 25,000 test reviews --------------------------------
    classifier=$OUT/classifier-$direction
    if [[ ! -f $classifier/all_results.json ]]; then
        run $LAUNCH scripts/train_classifier.py --model_name_or_path "$lm" --train_file "$DATA/train.parquet" \
            --validation_file "$DATA/test.parquet" "${CLASSIFIER_SIZES[@]}" --unfreeze 1,2,3,all \
            --learning_rates 2e-2,1e-2,5e-3,1e-3 --epochs 1,1,1,2 --output_dir "$classifier"
    fi
done

# 5. forward, backward and forward + backward on the test reviews -----------------------------------------------------
if [[ " $DIRECTIONS " == *" fwd "* && " $DIRECTIONS " == *" bwd "* ]]; then
    run "$PYTHON" scripts/benchmarks/bench_forward_backward.py --forward "$OUT/classifier-fwd" \
        --backward "$OUT/classifier-bwd" --num_docs 0 --eval_file "$DATA/test.parquet"
fi
