"""Regenerate `src/ulmfit/data/imdb_sample.parquet`, the IMDb sample shipped with the package.

The sample comes from the Large Movie Review Dataset (Maas et al., ACL 2011, ai.stanford.edu/~amaas/data/sentiment/),
TRAIN and UNSUP splits only, so IMDb's test split stays untouched for evaluation:
- 4,000 labelled train reviews, 2,000 positive and 2,000 negative, drawn at random (seed 2018);
- 1,000 unlabelled reviews from the unsup split (label -1), drawn at random (seed 2018).
Columns: `text` (the review, unchanged, `<br />` tags kept), `label` (1 positive, 0 negative, -1 unlabelled),
`split` ("train" or "unsup"), `id` (the N of the original `N_R.txt` file).

Usage: python scripts/make_imdb_sample.py --imdb_dir ../shared/data/imdb
"""

import argparse
from pathlib import Path

import datasets
import pyarrow.parquet as pq


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imdb_dir", type=Path, required=True, help="folder with train.parquet and unsup.parquet")
    parser.add_argument("--output", type=Path, default=Path("src/ulmfit/data/imdb_sample.parquet"))
    parser.add_argument("--labelled_per_class", type=int, default=2000)
    parser.add_argument("--unlabelled", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2018)
    args = parser.parse_args()

    train = datasets.load_dataset("parquet", data_files=str(args.imdb_dir / "train.parquet"), split="train")
    unsup = datasets.load_dataset("parquet", data_files=str(args.imdb_dir / "unsup.parquet"), split="train")
    parts = []
    for label in (1, 0):
        part = train.filter(lambda row, label=label: row["label"] == label).shuffle(seed=args.seed)
        parts.append(part.select(range(args.labelled_per_class)).map(lambda _: {"split": "train"}))
    unlabelled = unsup.shuffle(seed=args.seed).select(range(args.unlabelled)).map(lambda _: {"split": "unsup"})
    sample = datasets.concatenate_datasets(parts + [unlabelled]).shuffle(seed=args.seed)
    sample = sample.select_columns(["text", "label", "split", "id"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # zstd at its highest level keeps the shipped file near 2 MB
    pq.write_table(sample.with_format("arrow")[:], str(args.output), compression="zstd", compression_level=19)
    print(f"{len(sample)} reviews -> {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
