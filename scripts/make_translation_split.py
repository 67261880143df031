"""Carve the fixed French -> English train / validation / test split used by the translator, and the shipped samples.

Input: the Tatoeba sentence pairs of manythings.org's Anki `fra.txt` (2019-04-07 release, CC BY 2.0 FR; credit
www.manythings.org/anki and tatoeba.org) as a parquet file with columns `fr` and `en` (166,130 rows, in the original
short-to-long order). The split is fixed by `random.Random(--seed)` (2018) shuffling the row indices:

1. TEST: the first `--test_size` (1,000) shuffled rows.
2. VALIDATION: the next `--validation_size` (2,000) shuffled rows whose French and English sentences both differ from
   every test sentence (rows that share one are skipped).
3. TRAIN: every other row whose French and English sentences both differ from every test sentence. Tatoeba repeats
   sentences across pairs (one English sentence often has several French translations, and the reverse), so rows
   sharing either side with a test pair are dropped rather than kept, and their count is reported: no test sentence,
   French or English, occurs anywhere in train or validation (asserted before anything is written).

Outputs, in `--output_dir` (default `runs/data/tatoeba-fr-en`, outside the package): `train.parquet`,
`validation.parquet`, `test.parquet`, columns `fr`, `en` and `row` (the row in the input file), rows in input order.
In `--package_data_dir` (default `src/ulmfit/data`): `tatoeba_fr_en_sample.parquet` (`--sample_train` 4,000 train and
`--sample_validation` 500 validation pairs drawn with the same seed, column `split`) and `tatoeba_fr_en_test.parquet`
(the test pairs), both small enough to ship; `ulmfit.samples.translation_sample_path()` / `translation_test_path()`
return them.

    python scripts/make_translation_split.py --input ../shared/data/fr-en/tatoeba_fra_eng.parquet
"""

import argparse
import hashlib
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def carve(french: list[str], english: list[str], seed: int, test_size: int, validation_size: int) -> dict:
    """Row indices of the test, validation and train parts, and how many rows were dropped (see the docstring)."""
    order = list(range(len(french)))
    random.Random(seed).shuffle(order)
    test = order[:test_size]
    test_french, test_english = {french[i] for i in test}, {english[i] for i in test}

    def collides(row: int) -> bool:
        return french[row] in test_french or english[row] in test_english

    validation, skipped = [], 0
    position = test_size
    while len(validation) < validation_size:
        if position == len(order):
            raise ValueError(f"Only {len(validation)} validation pairs could be found, not {validation_size}.")
        row = order[position]
        position += 1
        if collides(row):
            skipped += 1
        else:
            validation.append(row)
    rest = order[position:]
    train = [row for row in rest if not collides(row)]
    return {
        "test": sorted(test),
        "validation": sorted(validation),
        "train": sorted(train),
        "train_dropped": len(rest) - len(train),
        "validation_skipped": skipped,
    }


def write(columns: dict[str, list], path: Path) -> str:
    """Write a zstd parquet file; returns its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), str(path), compression="zstd", compression_level=19)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--input", type=Path, default=Path("../shared/data/fr-en/tatoeba_fra_eng.parquet"), help="fr/en parquet file"
    )
    parser.add_argument("--output_dir", type=Path, default=Path("runs/data/tatoeba-fr-en"))
    parser.add_argument("--package_data_dir", type=Path, default=Path("src/ulmfit/data"))
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--test_size", type=int, default=1000)
    parser.add_argument("--validation_size", type=int, default=2000)
    parser.add_argument("--sample_train", type=int, default=4000)
    parser.add_argument("--sample_validation", type=int, default=500)
    args = parser.parse_args()

    table = pq.read_table(str(args.input), columns=["fr", "en"])
    french, english = table.column("fr").to_pylist(), table.column("en").to_pylist()
    parts = carve(french, english, args.seed, args.test_size, args.validation_size)

    # The guarantee, checked on the sentences themselves before anything is written
    test_french = {french[i] for i in parts["test"]}
    test_english = {english[i] for i in parts["test"]}
    for name in ("train", "validation"):
        assert not test_french & {french[i] for i in parts[name]}, f"a test French sentence is in {name}"
        assert not test_english & {english[i] for i in parts[name]}, f"a test English sentence is in {name}"
    assert not set(parts["train"]) & set(parts["validation"]), "train and validation share rows"

    def columns(rows: list[int]) -> dict[str, list]:
        return {"fr": [french[i] for i in rows], "en": [english[i] for i in rows], "row": rows}

    print(f"{len(french)} pairs in {args.input}; seed {args.seed}")
    for name in ("train", "validation", "test"):
        digest = write(columns(parts[name]), args.output_dir / f"{name}.parquet")
        print(f"  {name:<10} {len(parts[name]):>7} pairs -> {args.output_dir / f'{name}.parquet'} (sha256 {digest})")
    print(
        f"  {parts['train_dropped']} training pairs dropped because their French or English sentence is also in a "
        f"test pair; {parts['validation_skipped']} such pairs skipped when drawing the validation pairs"
    )

    # The shipped sample: pairs drawn from the train and validation parts only, and the test pairs
    rng = random.Random(args.seed)
    sampled = {
        "train": sorted(rng.sample(parts["train"], args.sample_train)),
        "validation": sorted(rng.sample(parts["validation"], args.sample_validation)),
    }
    sample = {"fr": [], "en": [], "split": [], "row": []}
    for name, rows in sampled.items():
        for key, values in columns(rows).items():
            sample[key].extend(values)
        sample["split"].extend([name] * len(rows))
    for name, data in (("tatoeba_fr_en_sample", sample), ("tatoeba_fr_en_test", columns(parts["test"]))):
        path = args.package_data_dir / f"{name}.parquet"
        digest = write(data, path)
        print(f"  {path}: {len(data['fr'])} pairs, {path.stat().st_size / 1e3:.0f} kB (sha256 {digest})")


if __name__ == "__main__":
    main()
