"""Zero-shot DeViSE on Tiny-ImageNet-200 (CPU): 50 classes held out, GloVe 50-d targets, EfficientNet-Lite0 features.

What is measured, on the shared data (SOURCES.md sections 4-6):

1. The split: `sorted(random.Random(2018).sample(range(200), 50))` are the unseen classes (ids index `classes.txt`;
   the list and the names are printed and saved). A class none of whose names (synonyms from `class_synonyms.tsv`)
   has a GloVe vector among the 100,000 words is dropped from both sides and listed; `scripts/train_devise.py` first
   tries a compound split ("birdhouse" = bird + house) and the other synonyms ("jinrikisha" -> rickshaw).
2. DeViSE, trained by `scripts/train_devise.py` itself (in this process, `--precompute`): the frozen converted
   EfficientNet-Lite0 (`(x - 127) / 128`; the 64 px images upscaled bicubically to `--image_size`), the notebook's
   head and cosine loss, the 2019 notebook's recipe (one cycle, 15 epochs, peak 3e-2, batch 512), on the 100 train
   images of each seen class. Features are cached in `--cache_dir`, so a re-run skips the backbone.
   Reported on the 50 validation images per class (the official val set, `test.parquet`): zero-shot hit@1/hit@5 among
   the unseen classes, generalized hit@5 among all classes (all images, and unseen images only), seen-class top-1/5.
3. A plain linear softmax classifier on the same cached features (standardised; AdamW, the same one cycle and epochs;
   its learning rate picked from a small grid on 10 % of the training features): seen-class top-1/top-5.
4. Speed on this CPU (`--threads`): embedding throughput of the saved model (images/s, batched: decode + preprocess +
   backbone + head, and the network alone), and search latency (ms/query, one query at a time) in a `DeviseIndex` of
   the validation images' embeddings, against exact search, with recall@10; plus text queries through
   `pipeline("image-search")` end to end.

Image size: on 200 Tiny-ImageNet val images the converted classifier's ImageNet top-1 was 0.345 at 128 px, 0.405 at
160 px and 0.375 at 224 px, at 34, 21 and 7 images/s on one thread: 160 px (the default) is both better and 3x faster
than 224 here (64 px sources carry no more detail).

    PYTHONPATH=src python scripts/benchmarks/bench_devise_zero_shot.py --threads 2             # the full benchmark
    PYTHONPATH=src python scripts/benchmarks/bench_devise_zero_shot.py --max_per_class 3 \\
        --image_size 128 --throughput_images 64 --output_dir runs/bench-devise-smoke             # a smoke run
"""

import argparse
import importlib.util
import io
import json
import random
import shlex
import sys
import time
from pathlib import Path

import PIL.Image
import pyarrow.parquet as pq
import torch
from accelerate import PartialState
from torch.nn import functional as F
from transformers import HfArgumentParser, pipeline

from ulmfit import DeviseIndex, DeviseModel, DeviseProcessor, metrics
from ulmfit.models.devise.convert_efficientnet_lite import convert_checkpoint, lite_image_processor
from ulmfit.models.devise.index_devise import exact_search
from ulmfit.training import one_cycle_schedule


HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHARED = REPO.parent / "shared" / "data"
sys.path.insert(0, str(HERE))
from bench_devise_index import per_query_seconds, recall  # noqa: E402


def load_train_devise():
    """scripts/train_devise.py as a module: the benchmark trains with it and reuses its data and feature code."""
    spec = importlib.util.spec_from_file_location("train_devise", REPO / "scripts" / "train_devise.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_inputs(args, cache: Path) -> dict[str, Path]:
    """The files the training script reads: class names with synonyms, the unseen classes, (subsets of) the splits."""
    names = (args.data_dir / "classes.txt").read_text(encoding="utf-8").splitlines()
    synonyms = {}
    for line in (args.data_dir / "class_synonyms.tsv").read_text(encoding="utf-8").splitlines():
        index, _, words = line.split("\t")
        synonyms[int(index)] = [word.strip() for word in words.split(",")]
    lines = [
        ", ".join([name] + [word for word in synonyms.get(i, []) if word != name]) for i, name in enumerate(names)
    ]
    files = {"class_names": cache / "class_names.txt", "unseen_classes": cache / "unseen_classes.txt"}
    unseen = sorted(random.Random(args.split_seed).sample(range(len(names)), args.num_unseen))
    for name, text in (("class_names", lines), ("unseen_classes", [names[i] for i in unseen])):
        files[name].write_text("\n".join(text) + "\n", encoding="utf-8")
    for split in ("train", "test"):
        files[split] = args.data_dir / f"{split}.parquet"
        if args.max_per_class:
            subset = cache / f"{split}-{args.max_per_class}-per-class.parquet"
            if not subset.exists():  # written once: a new file time would change the feature cache key
                table = pq.read_table(files[split])
                counts, keep = {}, []
                for row, label in enumerate(table.column("label").to_pylist()):
                    counts[label] = counts.get(label, 0) + 1
                    if counts[label] <= args.max_per_class:
                        keep.append(row)
                pq.write_table(table.take(keep), subset)
            files[split] = subset
    files["unseen_ids"] = unseen
    return files


class Standardize(torch.nn.Module):
    """(features - mean) / std with the training features' statistics: still a linear model, better conditioned."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std


def per_query_ms(search, queries: list, repeats: int = 3) -> float:
    """Milliseconds per query of `search(query)` one query at a time, the best of `repeats` runs after a warm-up."""
    search(queries[0])
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for query in queries:
            search(query)
        runs.append((time.perf_counter() - start) / len(queries))
    return 1000 * min(runs)


def train_linear(features, labels, num_classes, epochs, learning_rate, batch_size, seed) -> torch.nn.Module:
    """A softmax classifier on standardised features: AdamW, one cycle, cross-entropy."""
    torch.manual_seed(seed)
    mean, std = features.mean(dim=0), features.std(dim=0).clamp_min(1e-6)
    linear = torch.nn.Linear(features.shape[1], num_classes)
    model = torch.nn.Sequential(Standardize(mean, std), linear)
    optimizer = torch.optim.AdamW(linear.parameters(), lr=learning_rate, betas=(0.9, 0.99), weight_decay=0.01)
    steps_per_epoch = max(1, features.shape[0] // batch_size)
    scheduler = one_cycle_schedule(optimizer, epochs * steps_per_epoch, moms=(0.95, 0.85, 0.95))
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(features.shape[0], generator=generator)
        for batch in order[: steps_per_epoch * batch_size].split(batch_size):  # the last, partial batch dropped
            loss = F.cross_entropy(model(features[batch]), labels[batch])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    return model.eval()


@torch.no_grad()
def top_k(model, features, labels) -> dict[str, float]:
    """Top-1 / top-5 accuracy through the shipped `hit_at_k` metric."""
    ranked = model(features).topk(min(5, model[-1].out_features), dim=-1).indices.tolist()
    result = metrics.load("hit_at_k", keep_in_memory=True).compute(
        predictions=ranked, references=labels.tolist(), k=[1, 5]
    )
    return {"top1": result["hit@1"], "top5": result["hit@5"]}


def linear_baseline(args, train_devise, argv, model_dir: Path) -> dict:
    """The linear classifier on the very features DeViSE trained on (read from the script's cache)."""
    (script_args,) = HfArgumentParser(train_devise.DeviseTrainingArguments).parse_args_into_dataclasses(args=argv)
    data = train_devise.prepare_data(script_args)
    image_processor = train_devise.image_processor_for(script_args.backbone_checkpoint, script_args.image_size)
    backbone = DeviseModel.from_pretrained(model_dir)  # its frozen backbone, only used on a cache miss
    features = train_devise.precompute_features(script_args, backbone, image_processor, data, PartialState())
    train_labels = torch.tensor(data.train.labels)  # positions among the seen classes
    seen_position = {class_id: position for position, class_id in enumerate(data.seen)}
    valid_seen = [i for i, class_id in enumerate(data.validation.labels) if class_id in seen_position]
    valid_labels = torch.tensor([seen_position[data.validation.labels[i]] for i in valid_seen])
    valid_features = features["validation"][valid_seen]

    # the learning rate: the best top-1 on 10 % of the training features, trained on the other 90 %
    order = torch.randperm(len(train_labels), generator=torch.Generator().manual_seed(0))
    held, rest = order[: len(order) // 10], order[len(order) // 10 :]
    grid = {}
    for rate in args.linear_learning_rates:
        probe = train_linear(
            features["train"][rest], train_labels[rest], len(data.seen), args.epochs, rate, args.batch_size, args.seed
        )
        grid[rate] = top_k(probe, features["train"][held], train_labels[held])["top1"]
    best_rate = max(grid, key=grid.get)
    start = time.perf_counter()
    linear = train_linear(
        features["train"], train_labels, len(data.seen), args.epochs, best_rate, args.batch_size, args.seed
    )
    seconds = time.perf_counter() - start
    scores = top_k(linear, valid_features, valid_labels)
    return {"learning_rate_grid_top1": grid, "learning_rate": best_rate, "train_seconds": seconds, **scores}


@torch.no_grad()
def speed(args, model_dir: Path, test_file: Path) -> dict:
    """Embedding throughput (images/s) and search latency (ms/query) of the saved model and a validation index."""
    model = DeviseModel.from_pretrained(model_dir).eval()
    processor = DeviseProcessor.from_pretrained(model_dir)
    images = pq.read_table(test_file, columns=["image"]).column("image").to_pylist()[: args.throughput_images]
    size = args.throughput_batch_size
    batches = [images[start : start + size] for start in range(0, len(images), size)]
    model.get_image_features(pixel_values=processor(images=images[:2])["pixel_values"])  # warm-up
    start = time.perf_counter()
    pixel_batches = []
    for batch in batches:  # decode + preprocess + network, as a user embeds a gallery
        pixel_values = processor(images=[PIL.Image.open(io.BytesIO(image)) for image in batch])["pixel_values"]
        model.get_image_features(pixel_values=pixel_values)
        pixel_batches.append(pixel_values)
    end_to_end = len(images) / (time.perf_counter() - start)
    start = time.perf_counter()
    for pixel_values in pixel_batches:
        model.get_image_features(pixel_values=pixel_values)
    network = len(images) / (time.perf_counter() - start)

    # the gallery: every validation image's embedding (from the saved index, whose rows are those embeddings)
    gallery = DeviseIndex.load(model_dir / "validation_index.safetensors").vectors
    start = time.perf_counter()
    index = DeviseIndex.build(gallery, backend="ivf")  # ids = rows, as exact search returns them; IVF settings below
    build_seconds = time.perf_counter() - start
    generator = torch.Generator().manual_seed(args.seed)
    queries = gallery[torch.randperm(gallery.shape[0], generator=generator)[: args.queries]]
    _, expected = exact_search(gallery, queries, k=10)
    exact_ms = 1000 * per_query_seconds(lambda q: exact_search(gallery, q, k=10), queries)
    sweep = []  # recall@10 and latency at each nprobe (the index's default among them)
    for nprobe in sorted({*args.nprobe, index.nprobe}):
        if nprobe <= index.num_lists:
            _, found = index.search(queries, k=10, nprobe=nprobe)
            ms = 1000 * per_query_seconds(lambda q, n=nprobe: index.search(q, k=10, nprobe=n), queries)
            sweep.append({"nprobe": nprobe, "recall@10": recall(found, expected), "ms_per_query": ms})
    names = list(model.config.id2label.values())
    text_ms = per_query_ms(lambda name: index.search(processor.embed_text(model, name), k=10), names)
    search = pipeline("image-search", model=str(model_dir), index=index)
    pipeline_ms = per_query_ms(lambda name: search(name, top_k=10), names[:50])
    return {
        "threads": torch.get_num_threads(),
        "throughput_images": len(images),
        "batch_size": args.throughput_batch_size,
        "images_per_second_end_to_end": end_to_end,
        "images_per_second_network": network,
        "gallery_size": gallery.shape[0],
        "index_lists": index.num_lists,
        "index_nprobe": index.nprobe,
        "index_build_seconds": build_seconds,
        "exact_ms_per_query": exact_ms,
        "index_sweep": sweep,
        "text_query_ms_per_query": text_ms,
        "pipeline_text_query_ms_per_query": pipeline_ms,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_dir", type=Path, default=SHARED / "images" / "tiny-imagenet-200")
    parser.add_argument("--word_vectors", type=Path, default=SHARED / "vectors" / "glove.6B.50d.100k.txt")
    parser.add_argument("--checkpoint", type=Path, default=SHARED / "weights" / "efficientnet-lite0-57934424.pth")
    parser.add_argument("--cache_dir", type=Path, default=REPO / "runs" / "bench-devise-zero-shot" / "cache")
    parser.add_argument("--output_dir", type=Path, default=REPO / "runs" / "bench-devise-zero-shot")
    parser.add_argument("--image_size", type=int, default=160, help="64 px images are upscaled to this")
    parser.add_argument("--num_unseen", type=int, default=50)
    parser.add_argument("--split_seed", type=int, default=2018)
    parser.add_argument("--max_per_class", type=int, default=None, help="a smoke run: this many images per class")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--learning_rate", type=float, default=3e-2)
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--loss", default="cosine", choices=["cosine", "hinge"])
    parser.add_argument("--linear_learning_rates", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    parser.add_argument("--throughput_images", type=int, default=512)
    parser.add_argument("--throughput_batch_size", type=int, default=64)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64], help="index cells scanned")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    command = " ".join(shlex.quote(part) for part in ["python", *sys.argv])
    if args.threads:
        torch.set_num_threads(args.threads)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    args.output_dir.mkdir(parents=True, exist_ok=True)

    # 1. The converted backbone and the inputs of the training script
    backbone = args.cache_dir / "efficientnet-lite0"
    if not (backbone / "model.safetensors").exists():
        convert_checkpoint(str(args.checkpoint)).save_pretrained(backbone)
        lite_image_processor().save_pretrained(backbone)
    files = write_inputs(args, args.cache_dir)
    model_dir = args.output_dir / "devise"
    argv = [
        *("--train_file", files["train"], "--validation_file", files["test"]),
        *("--class_names", files["class_names"], "--unseen_classes", files["unseen_classes"]),
        *("--word_vectors", args.word_vectors, "--drop_classes_without_vectors"),
        *("--backbone_checkpoint", backbone, "--image_size", args.image_size),
        *("--precompute", "--cache_dir", args.cache_dir / "features"),
        *("--num_train_epochs", args.epochs, "--learning_rate", args.learning_rate, "--loss", args.loss),
        *("--per_device_train_batch_size", args.batch_size, "--per_device_eval_batch_size", 256),
        *("--seed", args.seed, "--output_dir", model_dir, "--overwrite_output_dir"),
    ]
    argv = [str(value) for value in argv]

    # 2. DeViSE, trained by scripts/train_devise.py
    train_devise = load_train_devise()
    sys.argv = ["train_devise.py", *argv]
    start = time.perf_counter()
    train_devise.main()
    devise_seconds = time.perf_counter() - start
    devise = json.loads((model_dir / "all_results.json").read_text())

    # 3. The linear classifier on the same features; 4. speed
    linear = linear_baseline(args, train_devise, argv, model_dir)
    timing = speed(args, model_dir, files["test"])
    sweep = timing["index_sweep"]

    unseen_names = devise["unseen_classes"]
    report = {
        "setup": {
            "image_size": args.image_size,
            "unseen_class_ids": files["unseen_ids"],
            "unseen_classes": unseen_names,
            "classes_without_vectors": devise["classes_without_vectors"],
            "borrowed_word_vectors": devise["borrowed_word_vectors"],
            "seen_classes": devise["seen_classes"],
            "train_images": devise["train_images"],
            "validation_images": devise["validation_images"],
            "max_per_class": args.max_per_class,
            "command": command,
        },
        "devise": {key.removeprefix("eval_"): value for key, value in devise.items() if key.startswith("eval_")},
        "devise_seconds": devise_seconds,
        "chance": {
            "zero_shot_hit@1": 1 / len(unseen_names),
            "zero_shot_hit@5": 5 / len(unseen_names),
            "generalized_hit@5": 5 / (devise["seen_classes"] + len(unseen_names)),
        },
        "linear": linear,
        "speed": timing,
    }
    (args.output_dir / "bench_results.json").write_text(json.dumps(report, indent=2))

    d = report["devise"]
    print(f"\nunseen classes (ids {files['unseen_ids']}): {unseen_names}")
    print(
        f"dropped for want of a vector: {devise['classes_without_vectors']}; "
        f"borrowed: {devise['borrowed_word_vectors']}"
    )
    print(
        f"zero-shot over {len(unseen_names)} unseen classes: hit@1 {d['zero_shot_hit@1']:.4f}, "
        f"hit@5 {d['zero_shot_hit@5']:.4f}"
    )
    print(
        f"generalized over {devise['seen_classes'] + len(unseen_names)} classes: hit@5 {d['generalized_hit@5']:.4f} "
        f"(all images), {d['generalized_unseen_hit@5']:.4f} (unseen images)"
    )
    print(
        f"seen-class top-1 / top-5: DeViSE {d['seen_top1']:.4f} / {d['seen_top5']:.4f}, linear softmax "
        f"{linear['top1']:.4f} / {linear['top5']:.4f} (lr {linear['learning_rate']:g})"
    )
    print(
        f"speed ({timing['threads']} thread(s)): {timing['images_per_second_end_to_end']:.1f} images/s end to end, "
        f"{timing['images_per_second_network']:.1f} images/s network only (batch {args.throughput_batch_size}); "
        f"text query (embed + index search) {timing['text_query_ms_per_query']:.3f} ms, through the pipeline "
        f"{timing['pipeline_text_query_ms_per_query']:.2f} ms"
    )
    print(
        f"search among {timing['gallery_size']} images ({timing['index_lists']} cells, default nprobe "
        f"{timing['index_nprobe']}): exact {timing['exact_ms_per_query']:.3f} ms/query; index "
        + ", ".join(f"nprobe {r['nprobe']}: {r['ms_per_query']:.3f} ms, recall@10 {r['recall@10']:.3f}" for r in sweep)
    )
    print(f"results: {args.output_dir / 'bench_results.json'}")


if __name__ == "__main__":
    main()
