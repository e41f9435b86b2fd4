"""The configuration layer: stable_hash, stage configs composed by the run config, one precedence
rule (defaults < preset < TOML < flags), one-line validation messages, the run directory layout."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from culturellm.augment.config import AugmentConfig
from culturellm.config import RunConfig, load_config, save_config
from culturellm.dataset.config import DatasetConfig
from culturellm.errors import DataError
from culturellm.evaluate.config import AlignConfig, EvaluateConfig
from culturellm.finetune.config import FinetuneConfig
from culturellm.hashing import sha256_file, stable_hash
from culturellm.settings import flags, load_toml, resolve


def test_stable_hash_is_the_recorded_form():
    # pinned: run manifests, result rows and fine-tuning state keep these keys across versions
    assert stable_hash({"b": [1, 2], "a": "x"}) == "5125d018f84d57c4"
    assert stable_hash("3.0:0:None") == "6cfb37d0fa5b2302"
    value = {"path": Path("/d"), "n": 1.5}
    inline = hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert stable_hash(value) == inline
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1})
    assert len(stable_hash([1], length=8)) == 8


def test_sha256_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x" * (3 << 20))
    assert sha256_file(p) == hashlib.sha256(p.read_bytes()).hexdigest()


# --- stage configs composed by the run config, one precedence rule --------------------------------


STAGES = {
    "augment": AugmentConfig,
    "dataset": DatasetConfig,
    "finetune": FinetuneConfig,
    "evaluate": EvaluateConfig,
    "align": AlignConfig,
}


def test_run_config_composes_each_stage_config():
    cfg = RunConfig()
    for name, cls in STAGES.items():
        assert type(getattr(cfg, name)) is cls  # the stage's own class, no second copy


def test_run_toml_sets_any_stage_field(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        "[finetune]\nmax_length = 256\ngrad_accum = 4\nlora_dropout = 0.1\n"
        'target_modules = ["q_proj", "v_proj"]\ndtype = "bfloat16"\n'
        '[augment]\nt1 = 0.7\nsynonym_requests = "seed"\n'
        '[evaluate]\ncalibration = "none"\n[dataset]\ntarget = "distribution"\n[align]\nmin_heldout = 2\n'
    )
    cfg = load_config(path)
    assert (cfg.finetune.max_length, cfg.finetune.grad_accum, cfg.finetune.lora_dropout) == (256, 4, 0.1)
    assert cfg.finetune.target_modules == ["q_proj", "v_proj"] and cfg.finetune.dtype == "bfloat16"
    assert (cfg.augment.t1, cfg.augment.synonym_requests) == (0.7, "seed")
    assert cfg.evaluate.calibration == "none" and cfg.dataset.target == "distribution"
    assert cfg.align.min_heldout == 2


def test_config_toml_shows_every_field_and_round_trips(tmp_path):
    cfg = RunConfig(finetune={"max_steps": 3})
    save_config(cfg, tmp_path / "config.toml")
    text = (tmp_path / "config.toml").read_text()
    data = tomllib.loads(text)
    for name, cls in STAGES.items():
        for field in cls.model_fields:
            set_here = field in data[name]
            commented = f"# {field} = (unset)" in text.split(f"[{name}]")[1].split("\n[")[0]
            assert set_here or commented, f"{name}.{field} missing from config.toml"
    assert data["finetune"]["max_steps"] == 3
    assert load_config(tmp_path / "config.toml") == cfg


def test_demo_preset_is_the_default_and_full_is_each_stages_defaults():
    demo, full = RunConfig(), RunConfig(preset="full")
    assert (demo.augment.n, demo.augment.m, demo.augment.limit_seeds) == (1, 2, 16)
    assert demo.dataset.holdout_variants == 0.5 and demo.evaluate.limit == 10
    assert full.augment == AugmentConfig() and full.dataset == DatasetConfig()
    assert full.evaluate.limit is None and full.evaluate.baselines
    # a value in the file beats the preset
    assert RunConfig(augment={"n": 3}).augment.n == 3


def test_precedence_defaults_preset_toml_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('seed = 7\n[finetune]\npreset = "paper"\nlr = 1e-3\n[evaluate]\nlimit = 4\n')
    cfg = resolve(RunConfig, load_toml(path), flags({"evaluate": {"limit": 2, "mode": None}}))
    assert cfg.evaluate.limit == 2  # flag > TOML
    assert cfg.finetune.lr == 1e-3 and cfg.finetune.lora_r == 64  # TOML > preset > defaults
    assert cfg.evaluate.mode == "score"  # an unset flag is not a value
    assert cfg.augment.seed == cfg.finetune.seed == cfg.evaluate.seed == 7  # the run's seed
    cfg = resolve(RunConfig, load_toml(path), flags({"seed": 1, "augment": {"seed": 5}}))
    assert cfg.augment.seed == 5 and cfg.dataset.seed == 1
    # a stage CLI reads its table of the run TOML the same way
    ev = resolve(EvaluateConfig, load_toml(path, "evaluate"), flags({"calibration": "none"}))
    assert (ev.limit, ev.calibration) == (4, "none")


def test_earlier_run_toml_still_loads(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text(
        "[augment]\nn = 1\nm = 1\nlimit_seeds = 3\n[finetune]\nmax_steps = 4\nbatch_size = 4\n"
        "[evaluate]\nlimit = 6\nalign_min_heldout = 1\n"
    )
    cfg = load_config(path)
    assert cfg.align.min_heldout == 1 and cfg.augment.limit_seeds == 3 and cfg.finetune.batch_size == 4


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[augment]\nn = 'many'\n", "field 'augment.n': Input should be a valid integer"),
        ("[evaluate]\nlimt = 3\n", "field 'evaluate.limt': Extra inputs are not permitted"),
        ("[evaluate]\ncalibration = 'x'\n", "field 'evaluate.calibration': Input should be 'contextual'"),
        ("[finetune]\npreset = 'huge'\n", "field 'finetune.preset': Input should be 'cpu-small'"),
        ("preset = 'huge'\n", "field 'preset': Input should be 'demo' or 'full'"),
        ("[finetune]\nmax_length = 0\n", "field 'finetune.max_length'"),
        ("[augment\n", "not valid TOML"),
    ],
)
def test_bad_fields_are_one_line_naming_file_and_field(tmp_path, toml, needle):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(DataError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ") and needle in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_flag_is_named_as_the_flag(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[augment]\nlimit_seeds = 4\n")
    names = {"augment.limit_seeds": "--limit-seeds"}
    with pytest.raises(DataError, match=r"^invalid option --limit-seeds: Input should be greater"):
        resolve(RunConfig, load_toml(path), flags({"augment": {"limit_seeds": 0}}, names))
    with pytest.raises(DataError, match=r"^invalid option --t1: "):
        resolve(AugmentConfig, flags({"t1": 3.0}))
    with pytest.raises(DataError, match="config file not found"):
        load_toml(tmp_path / "missing.toml")


# --- run directory layout, split reader -----------------------------------------------------------


def test_run_layout_names_every_path(tmp_path):
    from culturellm.runlayout import ONE, RunLayout

    lay = RunLayout(tmp_path)
    assert lay.config == tmp_path / "config.toml" and lay.manifest == tmp_path / "manifest.json"
    assert lay.seeds("arabic") == tmp_path / "seeds/arabic.jsonl"
    assert lay.augmented == tmp_path / "augment/augmented.jsonl"
    assert lay.train(ONE) == tmp_path / "data/one/train.jsonl"
    assert lay.split("arabic") == tmp_path / "data/arabic/train.manifest.json"
    assert lay.adapter("arabic") == tmp_path / "models/arabic/adapter_model.safetensors"
    assert lay.results("arabic") == tmp_path / "eval/arabic/results.jsonl"
    assert lay.align("arabic") == tmp_path / "eval/arabic/align.jsonl"
    assert lay.report == tmp_path / "report.md" and lay.plots_dir == tmp_path / "plots"
    lay.results("korean").parent.mkdir(parents=True)
    lay.results("korean").write_text("")
    assert (
        lay.evaluated_cultures() == ["korean"]
        and lay.rel(lay.results("korean")) == "eval/korean/results.jsonl"
    )


def test_split_reader(tmp_path):
    from culturellm.dataset.build import read_split

    p = tmp_path / "train.manifest.json"
    p.write_text(
        json.dumps(
            {
                "split": {
                    "heldout_questions": ["Q1", "Q2"],
                    "heldout_variants": [{"question_id": "Q3", "text": "t"}],
                }
            }
        )
    )
    split = read_split(p)
    assert split.questions == {"Q1", "Q2"} and split.n_heldout == 3
    p.write_text('{"heldout_questions": "Q1"}')
    with pytest.raises(DataError, match="must be lists"):
        read_split(p)
    p.write_text("{")
    with pytest.raises(DataError, match=r"train\.manifest\.json: not valid JSON"):
        read_split(p)
    with pytest.raises(DataError, match="split file not found"):
        read_split(tmp_path / "nope.json")


# --- the config is the CLI ---------------------------------------------------------------------------


def test_a_config_field_is_a_flag_written_once(tmp_path):
    """config_command: a flag per field (name, type, description, default); Flag() for other names, a
    bool's off switch and parsed text; defaults < TOML < flags, and a flag left unset is not a value."""
    from typing import Annotated

    import typer
    from pydantic import Field
    from typer.testing import CliRunner

    from culturellm.config_cli import config_command
    from culturellm.settings import Flag, StageConfig, comma_list

    class Demo(StageConfig):
        width: int = Field(3, ge=1, description="how wide")
        names: Annotated[list[str] | None, Flag("--name", "-n")] = Field(None, description="names")
        fast: Annotated[bool, Flag(off="--slow")] = Field(False, description="go fast")
        parts: Annotated[list[str], Flag(parse=comma_list)] = Field(default_factory=list, description="parts")

    got: list[Demo] = []

    @config_command(Demo, "demo")
    def demo(config: Demo, out: str = typer.Option("x", "--out", help="own option")) -> None:
        got.append(config)

    app = typer.Typer()
    app.command("demo")(demo)
    app.command("other")(lambda: None)

    def run(*args: str) -> Demo:
        res = CliRunner().invoke(app, ["demo", *args])
        assert res.exit_code == 0, res.output
        return got[-1]

    out = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).output
    for text in ("--width", "how wide (default: 3)", "-n", "--name", "--fast", "--slow", "--parts", "--out"):
        assert text in out, text
    assert run() == Demo()
    assert run("--width", "5", "-n", "a", "-n", "b", "--fast", "--parts", "x, y") == Demo(
        width=5, names=["a", "b"], fast=True, parts=["x", "y"]
    )
    toml = tmp_path / "run.toml"
    toml.write_text("[demo]\nwidth = 7\nfast = true\n")
    assert run("--config", str(toml)) == Demo(width=7, fast=True)
    assert run("--config", str(toml), "--width", "2") == Demo(width=2, fast=True)  # flags win
    assert run("--config", str(toml), "--slow") == Demo(width=7, fast=False)
    bad = CliRunner().invoke(app, ["demo", "--width", "0"])
    assert isinstance(bad.exception, DataError) and "invalid option --width" in str(bad.exception)


# Every flag of the stage commands before their options were generated from the config fields.
KEPT_FLAGS = {
    "evaluate": "--baselines --base-url --batch-size --cache --calibration --config --context "
    "--culture --culture-prompt --data-dir --device --dtype --force --general --general-limit --label "
    "--limit --max-tokens --mode --model --no-baselines --no-cache --no-progress --out --progress --seed "
    "--task --temperature --timeout -c -m -o",
    "augment": "--base-url --batch-size --cache --checks --config --embedder --force --judge --k "
    "--limit-seeds --llm --m --max-words --n --no-cache --no-progress --out --progress --question "
    "--retries --seed --synonym-requests --t1 --t2 --temperature --timeout --translate -o -q",
    "dataset": "--augmented --config --culture --drop-rejected --holdout-fraction --holdout-questions "
    "--holdout-variants --keep-rejected --out --seed --target -a -c -o",
    "finetune": "--backend --base --base-url --batch-size --config --culture --data --device "
    "--dry-run --dtype --epochs --grad-accum --keep-checkpoints --lora-alpha --lora-r --lr "
    "--max-length --max-steps --merge --no-keep-checkpoints --no-merge --no-progress --no-resume "
    "--poll-interval --preset --price-per-mtok --progress --quantize --report-to --resume --save-steps "
    "--seed -b -c -d -o",
}


@pytest.mark.parametrize("command", sorted(KEPT_FLAGS))
def test_stage_commands_keep_every_flag(command):
    import typer

    from culturellm.cli import app

    click_app = typer.main.get_command(app)
    cmd = click_app.commands[command]  # type: ignore[attr-defined]
    have = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    assert set(KEPT_FLAGS[command].split()) <= have


@pytest.mark.parametrize(
    ("config", "command"),
    [
        (EvaluateConfig, "evaluate"),
        (AugmentConfig, "augment"),
        (DatasetConfig, "dataset"),
        (FinetuneConfig, "finetune"),
    ],
)
def test_every_stage_option_is_a_flag(config, command):
    """Adding a field to a stage config adds its flag: nothing else to edit."""
    import typer

    from culturellm.cli import app
    from culturellm.config_cli import field_flags

    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    params = {p.name: p for p in cmd.params}
    for flag in field_flags(config):
        assert flag.name in params and flag.names[0] in params[flag.name].opts, flag.name
        assert config.model_fields[flag.name].description, f"{config.__name__}.{flag.name}: no description"


def test_derived_augment_values_are_not_written_back(tmp_path):
    """`k` (rewrites per request) and the paraphrase token budget derive from `n` when unset; the
    stored config.toml keeps them unset, so a copied config with another `n` derives them again."""
    from culturellm.config import RunConfig, load_config

    cfg = RunConfig(augment={"n": 5})
    assert cfg.augment.k is None and cfg.augment.rewrites_per_request == 7
    text = cfg.to_toml()
    assert "# k = (unset)" in text and "# max_tokens_paraphrase = (unset)" in text
    path = tmp_path / "config.toml"
    path.write_text(text.replace("n = 5", "n = 2"), encoding="utf-8")
    again = load_config(path)
    assert again.augment.n == 2 and again.augment.rewrites_per_request == 4
    assert again.augment.paraphrase_tokens == 16 + 28 * 4
    assert again.augment.fingerprint()["k"] == 4  # the records' fingerprint holds the value used
