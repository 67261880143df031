"""Training-step throughput of the AWD-LSTM language model: ulmfit vs fastai, same configuration, batch and length.

One step = forward + cross-entropy + AR/TAR + backward + optimizer step, with the recurrent state carried (and
detached) from one window to the next, as in training. Each framework uses its own model and its natural optimizer:
fastai's `get_language_model(AWD_LSTM, ...)` + fastai's `Adam` (what `language_model_learner` builds), ulmfit's
`AwdLstmForCausalLM` + `torch.optim.AdamW`. Each measurement runs in a fresh subprocess, so its peak memory (resident
set, above the process's size before the model is built) is its own; implementations alternate and the median is
reported. Runs in the fastai anchor venv with transformers installed (see `scripts/benchmarks/README.md`):

    /tmp/fastai-env/bin/python scripts/benchmarks/bench_lm_training_step.py              # fastai defaults, CPU
    /tmp/fastai-env/bin/python scripts/benchmarks/bench_lm_training_step.py --device cuda --bf16
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build_fastai(vocab_size, args):
    from fastai.optimizer import Adam
    from fastai.text.all import AWD_LSTM, awd_lstm_lm_config, get_language_model

    config = dict(awd_lstm_lm_config, emb_sz=args.embedding_size, n_hid=args.hidden_size, n_layers=args.num_layers)
    model = get_language_model(AWD_LSTM, vocab_size, config=config).to(args.device)
    optimizer = Adam(list(model.parameters()), lr=1e-3, mom=0.8, sqr_mom=0.99, wd=0.01)
    cross_entropy = __import__("torch").nn.functional.cross_entropy

    def step(inputs, targets):
        decoded, raw, dropped = model(inputs)  # fastai's encoder keeps (and detaches) its own hidden state
        loss = cross_entropy(decoded.flatten(0, 1).float(), targets.flatten())
        loss = loss + 2.0 * dropped.float().pow(2).mean() + 1.0 * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    return step


def build_ulmfit(vocab_size, args):
    import torch

    sys.path.insert(0, str(REPO / "src"))
    from ulmfit import AwdLstmConfig, AwdLstmForCausalLM

    config = AwdLstmConfig(
        vocab_size=vocab_size,
        embedding_size=args.embedding_size,
        hidden_size=args.hidden_size,
        num_hidden_layers=args.num_layers,
    )
    model = AwdLstmForCausalLM(config).to(args.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.8, 0.99), weight_decay=0.01)
    carried = {"state": None}

    def step(inputs, targets):
        outputs = model(input_ids=inputs, state=carried["state"], labels=targets, shift_labels=targets)
        carried["state"] = tuple((h.detach(), c.detach()) for h, c in outputs.state)
        outputs.loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return step


def measure(args) -> dict:
    """One framework, one process: warm-up steps, then timed steps; tokens/s and peak memory."""
    import torch

    torch.manual_seed(0)
    before = rss_mb()
    step = (build_fastai if args.impl == "fastai" else build_ulmfit)(args.vocab_size, args)
    data = torch.randint(9, args.vocab_size, (args.warmup + args.steps, args.batch_size, args.bptt + 1))
    data = data.to(args.device)
    autocast = torch.autocast(args.device, dtype=torch.bfloat16, enabled=args.bf16)
    synchronize = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with autocast:
        for i in range(args.warmup):
            step(data[i, :, :-1], data[i, :, 1:])
        synchronize()
        start = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.steps):
            step(data[i, :, :-1], data[i, :, 1:])
        synchronize()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    return {"tokens_per_s": args.steps * args.batch_size * args.bptt / elapsed, "peak_mb": peak}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab_size", type=int, default=60000, help="fastai's max_vocab")
    parser.add_argument("--embedding_size", type=int, default=400)
    parser.add_argument("--hidden_size", type=int, default=1152)
    parser.add_argument("--num_layers", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--bptt", type=int, default=70)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per implementation")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast for both (fastai's to_fp16 is CUDA-only)")
    parser.add_argument("--impl", choices=["fastai", "ulmfit"], help=argparse.SUPPRESS)  # child processes
    args = parser.parse_args()
    if args.impl:
        print(json.dumps(measure(args)))
        return

    results = {"fastai": [], "ulmfit": []}
    for _ in range(args.repeats):
        for impl in ("ulmfit", "fastai"):
            command = [sys.executable, __file__, *sys.argv[1:], "--impl", impl]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results[impl].append(json.loads(output.strip().splitlines()[-1]))
    precision = ", bf16" if args.bf16 else ""
    print(
        f"config: emb {args.embedding_size}, hidden {args.hidden_size}, {args.num_layers} layers, vocab "
        f"{args.vocab_size}, batch {args.batch_size} x bptt {args.bptt}, {args.device}{precision}"
    )
    summary = {}
    for impl, runs in results.items():
        speed = statistics.median(run["tokens_per_s"] for run in runs)
        peak = statistics.median(run["peak_mb"] for run in runs)
        summary[impl] = speed
        print(
            f"{impl:7s} {speed:10,.0f} tokens/s   peak memory {peak:8,.0f} MB   runs: "
            + ", ".join(f"{run['tokens_per_s']:,.0f}" for run in runs)
        )
    print(f"ratio ulmfit/fastai = {summary['ulmfit'] / summary['fastai']:.2f}x")


if __name__ == "__main__":
    main()
