"""Fine-tuning benchmark for the bundled SmolLM2-135M-Instruct on this CPU.

    python benchmarks/finetune.py                 # speed: trainer vs raw loop (examples/s, tokens/s, memory)
    python benchmarks/finetune.py --sweep 1e-3,3e-3 --epochs 3   # quality: does LoRA learn survey answers?
    python benchmarks/finetune.py --precision     # --dtype auto (bf16 here) vs fp32: s/step and loss

Speed: the same LoRA model, batch and examples are trained (a) by culturellm's TRL SFTTrainer
path and (b) by a raw PyTorch loop (forward + backward + AdamW step on the same collated batches).
The ratio (a)/(b) shows the trainer's overhead (goal >= 0.8). Peak memory is the process's peak RSS.

Precision: the same LoRA run (same batches, steps and seed) trained in fp32 and with `--dtype auto`
(bf16 mixed precision, torch autocast with fp32 master weights, on a CPU with native bf16: AVX512-BF16
or AMX), alternating for --rounds rounds so that both see the same machine load; prints side by
side seconds per step, examples/s and the training loss of each, the speed ratio and the per-step
loss difference. Scoring's side (labels and alignment in bf16 vs fp32): benchmarks/precision.py.

Quality: real WVS wave-7 majority answers of one country (from ../shared or --wvs-dir), each
question asked in four wordings; three wordings are trained, the fourth is held out. Reports the
answer loss and the majority agreement on trained and held-out wordings, per learning rate.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
WORDINGS = (
    "{text}",
    "Do you agree with the following statement? {text}",
    "Here is a statement: {text}. How do you feel about it?",
    "Please give your opinion on this: {text}",
)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def survey_records(country: str, wvs_dir: Path, wordings: tuple[str, ...], display: str) -> list[dict]:
    """Chat records (one per question x wording) whose answer is the country's majority answer."""
    import pandas as pd

    from culturellm.prompts import culture_system_prompt, survey_messages

    questions = [json.loads(line) for line in (REPO / "src/culturellm/data/wvs_questions.jsonl").open()]
    df = pd.read_csv(wvs_dir / f"{country}.csv")
    rows = []
    for q in questions:
        if q["id"] not in df:
            continue
        valid = df[q["id"]][df[q["id"]].astype(str).isin(q["options"])]
        if valid.empty:
            continue
        majority = str(valid.astype(str).value_counts().idxmax())
        for w_i, w in enumerate(wordings):
            text = w.format(text=q["text"].rstrip("."))
            msgs = survey_messages(text, q["options"], culture_system_prompt(display))
            rows.append(
                {
                    "messages": [*msgs, {"role": "assistant", "content": majority}],
                    "qid": q["id"],
                    "wording": w_i,
                    "options": list(q["options"]),
                }
            )
    return rows


def write_records(rows: list[dict], path: Path) -> Path:
    from culturellm.jsonio import write_jsonl

    write_jsonl(path, [{"messages": r["messages"]} for r in rows])
    return path


def answer_agreement(model, tokenizer, rows: list[dict], batch: int = 16) -> tuple[float, float]:
    """Share of rows whose most likely option code is the target, and mean target log-prob
    (restricted to the option codes' first tokens, left-padded batches)."""
    import torch

    model.eval()
    tokenizer.padding_side = "left"
    hits, lps = 0, []
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            chunk = rows[i : i + batch]
            prompts = [
                tokenizer.apply_chat_template(r["messages"][:-1], add_generation_prompt=True, tokenize=False)
                for r in chunk
            ]
            enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            logits = model(**enc).logits[:, -1, :].float().log_softmax(-1)
            for j, r in enumerate(chunk):
                ids = [tokenizer.convert_tokens_to_ids(c) for c in r["options"]]
                target = r["options"].index(r["messages"][-1]["content"])
                opt = logits[j, ids]
                hits += int(opt.argmax().item() == target)
                lps.append(float(logits[j, ids[target]]))
    tokenizer.padding_side = "right"
    return hits / len(rows), sum(lps) / len(lps)


def speed(args: argparse.Namespace) -> None:
    import torch

    from culturellm.finetune import FinetuneConfig
    from culturellm.finetune.data import load_records
    from culturellm.finetune.local import build_trainer, load_base

    torch.manual_seed(0)
    rows = survey_records(args.country, args.wvs_dir, WORDINGS[:2], args.display)[: args.examples]
    tmp = Path(tempfile.mkdtemp(prefix="ft-bench-"))
    records = load_records(write_records(rows, tmp / "train.jsonl"))
    t = time.perf_counter()
    base, tok = load_base(args.base)
    print(f"loaded {args.base} in {time.perf_counter() - t:.1f} s; torch threads {torch.get_num_threads()}")
    cfg = FinetuneConfig.from_preset(
        "cpu-small", batch_size=args.batch_size, max_steps=args.steps, save_steps=10_000, lr=3e-3
    )
    raw_model = copy.deepcopy(base)

    # (a) culturellm / TRL SFTTrainer
    trainer = build_trainer(base, tok, records, tmp / "out", cfg)
    n_tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    tokens_per_example = n_tokens / len(trainer.train_dataset)
    t = time.perf_counter()
    trainer.train()
    trainer_s = time.perf_counter() - t
    steps = trainer.state.global_step
    ex = steps * args.batch_size
    trainer_eps = ex / trainer_s
    rss_trainer = peak_rss_mb()

    # (b) raw loop: same LoRA config, same collated batches, forward + backward + AdamW step
    from peft import get_peft_model

    batches = [
        trainer.data_collator(
            [trainer.train_dataset[j % len(trainer.train_dataset)] for j in range(i, i + args.batch_size)]
        )
        for i in range(0, ex, args.batch_size)
    ]
    peft_cfg = trainer.model.peft_config["default"]
    del trainer
    gc.collect()
    model = get_peft_model(raw_model, copy.deepcopy(peft_cfg))
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    t = time.perf_counter()
    for b in batches:
        loss = model(**b).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    raw_s = time.perf_counter() - t
    raw_eps = ex / raw_s

    print(
        f"bundled model {args.base}, batch {args.batch_size}, {steps} steps, {ex} examples, "
        f"~{tokens_per_example:.0f} tokens/example"
    )
    print(
        f"trainer : {trainer_eps:6.2f} examples/s  {trainer_eps * tokens_per_example:7.1f} tokens/s  "
        f"({trainer_s:.1f} s)"
    )
    print(
        f"raw loop: {raw_eps:6.2f} examples/s  {raw_eps * tokens_per_example:7.1f} tokens/s  ({raw_s:.1f} s)"
    )
    print(f"ratio trainer / raw loop: {trainer_eps / raw_eps:.2f}  (goal >= 0.8)")
    print(f"peak RSS: {rss_trainer:.0f} MiB after the trainer run, {peak_rss_mb():.0f} MiB overall")


def precision(args: argparse.Namespace) -> None:
    """fp32 vs `--dtype auto` (bf16 mixed precision on a CPU with native bf16) side by side."""
    import statistics

    import torch

    from culturellm.finetune import FinetuneConfig
    from culturellm.finetune.data import load_records
    from culturellm.finetune.local import _precision, build_trainer, load_base
    from culturellm.llm.loading import cpu_has_native_bf16

    rows = survey_records(args.country, args.wvs_dir, WORDINGS[:2], args.display)[: args.examples]
    tmp = Path(tempfile.mkdtemp(prefix="ft-prec-"))
    records = load_records(write_records(rows, tmp / "train.jsonl"))
    base, tok = load_base(args.base)
    threads = torch.get_num_threads()
    auto = "bfloat16" if _precision(FinetuneConfig(dtype="auto"))["bf16"] else "float32"
    print(f"{args.base}: batch {args.batch_size}, {args.steps} steps per run, torch threads {threads}")
    print(f"CPU native bf16: {cpu_has_native_bf16()}; --dtype auto trains in {auto}")
    print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    runs: dict[str, list[tuple[float, list[float]]]] = {"float32": [], "auto": []}
    for r in range(args.rounds):
        for dtype in runs:
            torch.manual_seed(0)
            cfg = FinetuneConfig.from_preset(
                "cpu-small", dtype=dtype, batch_size=args.batch_size, max_steps=args.steps, save_steps=10_000
            )
            trainer = build_trainer(copy.deepcopy(base), tok, records, tmp / f"{dtype}-{r}", cfg)
            t = time.perf_counter()
            trainer.train()
            per_step = (time.perf_counter() - t) / trainer.state.global_step
            loss = [h["loss"] for h in trainer.state.log_history if "loss" in h]
            runs[dtype].append((per_step, loss))
            print(f"round {r + 1} {dtype:8s}: {per_step:5.2f} s/step, loss {loss[0]:.3f} -> {loss[-1]:.3f}")
            del trainer
            gc.collect()
    step = {k: statistics.median(x[0] for x in v) for k, v in runs.items()}
    loss = {k: v[0][1] for k, v in runs.items()}  # every round trains the same batches from one seed
    diff = [abs(a - b) for a, b in zip(loss["float32"], loss["auto"], strict=True)]
    mean = {k: statistics.fmean(v) for k, v in loss.items()}
    print(f"\n{'':<26} {'float32':>10} {'auto (' + auto + ')':>18}")
    print(f"{'seconds per step (median)':<26} {step['float32']:10.2f} {step['auto']:18.2f}")
    print(
        f"{'examples/s':<26} {args.batch_size / step['float32']:10.2f} {args.batch_size / step['auto']:18.2f}"
    )
    print(f"{'first step loss':<26} {loss['float32'][0]:10.3f} {loss['auto'][0]:18.3f}")
    print(f"{'last step loss':<26} {loss['float32'][-1]:10.3f} {loss['auto'][-1]:18.3f}")
    print(f"{'mean loss over the steps':<26} {mean['float32']:10.3f} {mean['auto']:18.3f}")
    print(f"speed auto / fp32: {step['float32'] / step['auto']:.2f}x; per-step loss difference: max "
          f"{max(diff):.3f}, mean {statistics.fmean(diff):.3f}")  # fmt: skip
    print(f"load average after: {os.getloadavg()[0]:.1f}; peak RSS: {peak_rss_mb():.0f} MiB")


def sweep(args: argparse.Namespace) -> None:
    import torch

    from culturellm.finetune import FinetuneConfig
    from culturellm.finetune.data import load_records
    from culturellm.finetune.local import load_base, train_local

    rows = survey_records(args.country, args.wvs_dir, WORDINGS, args.display)
    train = [r for r in rows if r["wording"] != 3]
    held = [r for r in rows if r["wording"] == 3]
    tmp = Path(tempfile.mkdtemp(prefix="ft-sweep-"))
    records = load_records(write_records(train, tmp / "train.jsonl"))
    base, tok = load_base(args.base)
    acc_t, lp_t = answer_agreement(base, tok, train)
    acc_h, lp_h = answer_agreement(base, tok, held)
    print(
        f"{args.country}: {len(train)} training rows ({len(train) // 3} questions x 3 wordings), "
        f"{len(held)} held-out wordings; chance ~ 1/{len(rows[0]['options'])}"
    )
    print(f"base: train agree {acc_t:.2f} (lp {lp_t:.2f})  held-out agree {acc_h:.2f} (lp {lp_h:.2f})")
    for lr in [float(x) for x in args.sweep.split(",")]:
        torch.manual_seed(0)
        model = copy.deepcopy(base)
        cfg = FinetuneConfig.from_preset(
            "cpu-small", lr=lr, epochs=args.epochs, batch_size=args.batch_size, save_steps=10_000
        )
        out = tmp / f"lr{lr:g}"
        t = time.perf_counter()
        summary = train_local(records, args.base, out, cfg, progress=False, model_and_tokenizer=(model, tok))
        el = time.perf_counter() - t
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(copy.deepcopy(base), out)
        acc_t, lp_t = answer_agreement(tuned, tok, train)
        acc_h, lp_h = answer_agreement(tuned, tok, held)
        losses = [json.loads(x) for x in (out / "loss.jsonl").open()]
        tail = [x["loss"] for x in losses if "loss" in x][-5:]
        print(
            f"lr {lr:<8g} ep {args.epochs:g}: {summary['steps']} steps {el:5.0f} s  "
            f"last-5 loss {sum(tail) / len(tail):.3f}  train agree {acc_t:.2f} (lp {lp_t:.2f})  "
            f"held-out agree {acc_h:.2f} (lp {lp_h:.2f})",
            flush=True,
        )
        del tuned, model
        gc.collect()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", default="bundled")
    p.add_argument("--country", default="JOR")
    p.add_argument("--display", default="Arabic", help="culture name in the system prompt")
    p.add_argument("--wvs-dir", type=Path, default=REPO.parent / "shared" / "data" / "wvs" / "wave7")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=12, help="speed: optimiser steps per run")
    p.add_argument("--examples", type=int, default=96, help="speed: distinct examples")
    p.add_argument("--sweep", default=None, help="quality: comma-separated learning rates")
    p.add_argument("--epochs", type=float, default=3.0, help="quality: epochs per learning rate")
    p.add_argument("--precision", action="store_true", help="--dtype auto vs fp32: speed and loss")
    p.add_argument("--rounds", type=int, default=2, help="precision: alternating fp32/bf16 rounds")
    args = p.parse_args()
    if not (args.wvs_dir / f"{args.country}.csv").is_file():
        sys.exit(f"WVS microdata not found: {args.wvs_dir / (args.country + '.csv')} (use --wvs-dir)")
    if args.precision:
        precision(args)
    elif args.sweep:
        sweep(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
