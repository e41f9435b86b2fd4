"""An offline general-ability task set for the forgetting check: MMLU's dev questions as a local
lm-eval task directory (issue 23, step 4).

    python benchmarks/general_tasks.py --out runs/general-tasks
    culturellm evaluate --general runs/general-tasks --general-limit 300 \
        --model bundled --model RUN/models/arabic -o OUT

No download: the questions are the five MMLU dev examples per subject (57 subjects, 4 choices each)
that lm-evaluation-harness ships with its `mmlu/flan_cot_fewshot` task as few-shot prompts
(`_cot_prompts.json`). This script parses them (question, choices (A)-(D), "The answer is (X)") and
writes `mmlu_dev.jsonl` and `mmlu_dev.yaml` (a zero-shot multiple_choice task scored on the choice
text, metric acc). It is a small, fixed, general set that any offline machine with `culturellm[general]`
has; it is not MMLU's test split, and 4-choice accuracy near 0.25 is chance.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from importlib import resources
from pathlib import Path

CHOICES = re.compile(r"^\(A\) (.*) \(B\) (.*) \(C\) (.*) \(D\) (.*)$", re.M)
ANSWER = re.compile(r"The answer is \(([ABCD])\)")

YAML = """task: mmlu_dev
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def parse_subject(subject: str, prompt: str) -> list[dict]:
    """The questions of one subject's few-shot prompt; a block that does not parse is skipped."""
    rows = []
    for block in prompt.split("\n\nQ: ")[1:]:
        choices, answer = CHOICES.search(block), ANSWER.search(block)
        if not choices or not answer:
            continue
        question = block[: choices.start()].strip()
        rows.append(
            {
                "subject": subject,
                "question": question,
                "choices": [c.strip() for c in choices.groups()],
                "answer": "ABCD".index(answer.group(1)),
            }
        )
    return rows


def mmlu_dev_rows() -> list[dict]:
    """Every parsed question of lm-eval's MMLU few-shot prompts, in subject order."""
    path = resources.files("lm_eval") / "tasks/mmlu/flan_cot_fewshot/_cot_prompts.json"
    prompts = json.loads(path.read_text(encoding="utf-8"))
    return [row for subject in sorted(prompts) for row in parse_subject(subject, prompts[subject])]


def write_task_dir(out: Path) -> int:
    """Write mmlu_dev.jsonl and mmlu_dev.yaml into a new directory OUT; the number of questions."""
    out.mkdir(parents=True, exist_ok=False)
    rows = mmlu_dev_rows()
    data = out / "mmlu_dev.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    (out / "mmlu_dev.yaml").write_text(YAML.format(data=data.resolve()), encoding="utf-8")
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="new directory for the task (must not exist)")
    args = ap.parse_args()
    if args.out.exists():
        sys.exit(f"error: {args.out} exists; give a new directory")
    n = write_task_dir(args.out)
    print(f"{args.out}: mmlu_dev, {n} questions (4 choices each)")


if __name__ == "__main__":
    main()
