"""The main job, for now: a short AWD-LSTM language-model run on the IMDb sample shipped in the package.

It trains the fastai-style tokenizer on 4,500 reviews, trains a small AWD-LSTM on them for a few minutes of CPU time
(one contiguous token stream cut into `batch_size` rows, BPTT windows with the recurrent state carried and detached,
Adam with betas (0.8, 0.99), one-cycle learning rate, gradient clipping, AR/TAR in the loss), reports validation
perplexity on the 500 held-out reviews before and after, generates text through `pipeline("text-generation")`, and
saves model + tokenizer (+ remote code) to a folder whose path is the last line printed.

    python scripts/demo.py                      # about 3 minutes on 2 CPU cores
    python scripts/demo.py --max_steps 50       # a quicker look
"""

import argparse
import math
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from transformers import AutoModelForCausalLM, pipeline

from ulmfit import AwdLstmConfig, AwdLstmForCausalLM, AwdLstmTokenizer
from ulmfit.samples import load_imdb_sample


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=Path("outputs/demo-awd-lstm"))
    parser.add_argument("--max_steps", type=int, default=400, help="optimizer steps (BPTT windows)")
    parser.add_argument("--batch_size", type=int, default=32, help="rows of the token stream")
    parser.add_argument("--bptt", type=int, default=70, help="tokens per window")
    parser.add_argument("--learning_rate", type=float, default=5e-3, help="peak of the one-cycle schedule")
    parser.add_argument("--max_vocab", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def token_stream(tokenizer, texts, batch_size):
    """Documents back to back (each starts with xxbos), cut into `batch_size` contiguous rows: (batch, length)."""
    ids = [i for row in tokenizer(texts).input_ids for i in row]
    length = len(ids) // batch_size
    return torch.tensor(ids[: length * batch_size]).view(batch_size, length)


@torch.no_grad()
def perplexity(model, stream, bptt):
    model.eval()
    state, total, count = None, 0.0, 0
    for start in range(0, stream.size(1) - 1, bptt):
        inputs, targets = stream[:, start : start + bptt], stream[:, start + 1 : start + 1 + bptt]
        inputs = inputs[:, : targets.size(1)]
        outputs = model(inputs, state=state, labels=targets, shift_labels=targets)
        state = outputs.state
        total, count = total + outputs.loss.item() * targets.numel(), count + targets.numel()
    model.train()
    return math.exp(total / count)


def main():
    args = parse_args()
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    set_seed(args.seed)

    # 1. Data: the shipped IMDb sample, 4,500 reviews to train on, 500 held out
    reviews = load_imdb_sample().train_test_split(test_size=500, seed=args.seed)
    train_texts, valid_texts = reviews["train"]["text"], reviews["test"]["text"]
    start = time.perf_counter()
    tokenizer = AwdLstmTokenizer.train(train_texts, max_vocab=args.max_vocab, min_freq=3)
    train_stream = token_stream(tokenizer, train_texts, args.batch_size)
    valid_stream = token_stream(tokenizer, valid_texts, args.batch_size)
    accelerator.print(
        f"tokenizer: {len(tokenizer)} tokens, trained on {len(train_texts)} reviews in "
        f"{time.perf_counter() - start:.1f}s; stream {train_stream.numel():,} train / {valid_stream.numel():,} valid"
    )

    # 2. A small AWD-LSTM with fastai's dropouts and AR/TAR
    config = AwdLstmConfig(vocab_size=len(tokenizer), embedding_size=200, hidden_size=400, num_hidden_layers=3)
    model = AwdLstmForCausalLM(config)
    model.generation_config.suppress_tokens = tokenizer.suppress_token_ids
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, betas=(0.8, 0.99), weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.learning_rate, total_steps=args.max_steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    accelerator.print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters")
    accelerator.print(f"validation perplexity before training: {perplexity(model, valid_stream, args.bptt):.1f}")

    # 3. Train: windows walk along the stream; the state is carried and detached between them
    model.train()
    state, position, start = None, 0, time.perf_counter()
    for step in range(1, args.max_steps + 1):
        if position + args.bptt + 1 > train_stream.size(1):
            state, position = None, 0  # a new pass over the stream
        window = train_stream[:, position : position + args.bptt + 1].to(accelerator.device)
        position += args.bptt
        inputs, targets = window[:, :-1], window[:, 1:]
        outputs = model(inputs, state=state, labels=targets, shift_labels=targets)
        state = tuple((h.detach(), c.detach()) for h, c in outputs.state)
        accelerator.backward(outputs.loss)
        accelerator.clip_grad_norm_(model.parameters(), 0.4)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step % 50 == 0 or step == args.max_steps:
            rate = step * inputs.numel() / (time.perf_counter() - start)
            accelerator.print(f"step {step}/{args.max_steps}  loss {outputs.loss.item():.3f}  {rate:,.0f} tokens/s")

    model = accelerator.unwrap_model(model)
    accelerator.print(f"validation perplexity after training: {perplexity(model, valid_stream, args.bptt):.1f}")

    # 4. Save, reload from the folder, and generate through the standard pipeline
    model.save_pretrained(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)
    reloaded = AutoModelForCausalLM.from_pretrained(args.output_dir)
    assert isinstance(reloaded, AwdLstmForCausalLM)
    generator = pipeline("text-generation", model=str(args.output_dir))
    set_seed(args.seed)
    for prompt in ("This movie was", "The acting in this film"):
        text = generator(prompt, max_new_tokens=25, do_sample=True, temperature=0.8, top_k=40)[0]["generated_text"]
        accelerator.print(f"> {text}")
    accelerator.print(str(args.output_dir.resolve()))


if __name__ == "__main__":
    main()
