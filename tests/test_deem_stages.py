"""DEEM's training stages: the checked-in configs, the optimiser's groups, the answer loss, MMFSNet at step 0,
a stage-2 run that learns, resume, and the command line."""

from __future__ import annotations

import json

import pytest
import torch

from tests.deem_tiny import one_thread  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- configs ---------------------------------------------------------------------------------------------

def test_checked_in_stages_hold_the_official_values():
    from deem_eval.model_adapters.deem.training.stages import load_stage

    s1, s2 = load_stage("pretrain"), load_stage("sft")
    assert (s1.loss, s1.csr_weight, s1.steps, s1.image_size, s1.diffusion_size) == ("caption", 5.0, 10000, 256, 512)
    assert set(s1.train) == {"encoder_trunk", "encoder_adapters", "tokenizer", "xattn", "mmfs"}   # LLM frozen
    o = s1.optim
    assert (o.lr, o.trunk_lr, o.offsets_lr, o.betas, o.eps, o.weight_decay, o.warmup, o.schedule) == (
        1e-4, 2e-5, 1e-5, (0.9, 0.995), 1e-6, 0.05, 1000, "cosine")
    assert (s1.t_min, s1.t_max) == (200, 799)
    assert (s2.loss, s2.csr_weight, s2.image_size) == ("answer", 5.0, 448)
    assert "llm" in s2.train and "encoder_trunk" not in s2.train and "mmfs" not in s2.train
    assert (s2.optim.lr, s2.optim.betas, s2.optim.eps, s2.optim.warmup) == (1e-5, (0.9, 0.999), 1e-8, 500)


def test_overrides_are_typed_and_unknown_keys_name_the_valid_ones(tmp_path):
    from deem_eval.core.errors import DeemEvalError
    from deem_eval.model_adapters.deem.training.stages import load_stage

    s = load_stage("sft", ["optim.lr=3e-4", "steps=20", "train=['llm']", "mmfs=false"])
    assert (s.optim.lr, s.steps, s.train, s.mmfs) == (3e-4, 20, ("llm",), False)
    with pytest.raises(DeemEvalError, match=r"unknown key\(s\) \['lrr'\].*valid keys: lr, trunk_lr"):
        load_stage("sft", ["optim.lrr=1"])
    with pytest.raises(DeemEvalError, match="steps: expected int"):
        load_stage("sft", ["steps=many"])
    with pytest.raises(DeemEvalError, match="unknown parameter groups"):
        load_stage("sft", ["train=['vision']"])
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\nloss = \n", encoding="utf-8")
    with pytest.raises(DeemEvalError, match="bad.toml"):
        load_stage(bad)
    with pytest.raises(DeemEvalError, match="unknown stage"):
        load_stage("pretrian")


# ---- the optimiser -------------------------------------------------------------------------------------------

def _tiny_named():
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, TINY_UNET, build_model
    from deem_eval.model_adapters.deem.training.mmfs import MMFSNet
    from deem_eval.model_adapters.deem.training.train import named_trainables

    model = build_model(DEEM_TINY, seed=0)
    v = DEEM_TINY.visual
    mmfs = MMFSNet.from_unet(TINY_UNET, feature_dim=v.feature_dim,
                             level_strides=tuple(v.convnext.strides[i] for i in v.mmfs_levels), heads=2, points=2)
    return named_trainables(model, mmfs), _exempt_from_decay(model, mmfs)


def _exempt_from_decay(model, mmfs) -> set[str]:
    """DEEM's rule, found from the module types: biases, norms, gates, embeddings (incl. learned queries, the
    image-start vector and ConvNeXt's layer scale) get no weight decay."""
    from torch import nn

    exempt = set()
    for prefix, root in (("", model), ("mmfs.", mmfs)):
        for mod_name, mod in root.named_modules():
            for leaf, _ in mod.named_parameters(recurse=False):
                full = f"{prefix}{mod_name + '.' if mod_name else ''}{leaf}"
                norm = isinstance(mod, (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm)) or "RMSNorm" in type(mod).__name__
                if norm or isinstance(mod, nn.Embedding) or leaf in ("bias", "gate", "gamma", "queries", "image_start"):
                    exempt.add(full)
    return exempt


@pytest.mark.parametrize("stage_name", ["pretrain", "sft"])
def test_every_trainable_parameter_follows_deems_rules(stage_name):
    from deem_eval.model_adapters.deem.training.optim import build_optimizer, parameter_table
    from deem_eval.model_adapters.deem.training.stages import load_stage

    stage = load_stage(stage_name)
    named, exempt = _tiny_named()
    rows = parameter_table(named, stage)
    assert {r.group for r in rows} == set(stage.train)
    assert len(rows) == sum(1 for n, _ in named if _group(n) in stage.train)
    for r in rows:
        if "sampling_offsets" in r.name and stage.optim.offsets_lr is not None:
            assert r.lr == stage.optim.offsets_lr, r
        elif r.group == "encoder_trunk" and stage.optim.trunk_lr is not None:
            assert r.lr == stage.optim.trunk_lr, r
        else:
            assert r.lr == stage.optim.lr, r
        assert r.weight_decay == (0.0 if r.name in exempt else stage.optim.weight_decay), r
    # the rules touch what they should
    assert any("sampling_offsets" in r.name for r in rows)
    assert any(r.weight_decay == 0 and r.name.endswith(".gate") for r in rows if r.group == "xattn")
    if stage_name == "sft":
        assert any(r.name == "llm.model.embed_tokens.weight" and r.weight_decay == 0 for r in rows)
    optimizer, scheduler = build_optimizer([(n, p) for n, p in named if any(r.name == n for r in rows)], stage)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(rows)
    assert optimizer.defaults["betas"] == stage.optim.betas and optimizer.defaults["eps"] == stage.optim.eps
    assert scheduler.lr_lambdas[0](0) == pytest.approx(1 / stage.optim.warmup)


def _group(name: str) -> str:
    from deem_eval.model_adapters.deem.training.optim import group_of

    return group_of(name)


# ---- losses ----------------------------------------------------------------------------------------------

def test_answer_batch_labels_only_the_answer_and_eos(tiny_deem_micro_free):
    from deem_eval.model_adapters.deem.model.model import answer_batch

    model = tiny_deem_micro_free
    ids, labels, mask = answer_batch(model, [[("Is there a cat in the image?", "yes")],
                                             [("Is there a dog in the image?", "no"), ("And a cat?", "yes")]])
    tok = model.tokenizer
    yes = tok(" yes", add_special_tokens=False).input_ids
    first = [int(t) for t in labels[0] if t != -100]
    assert first == yes + [tok.eos_token_id]
    second = [int(t) for t in labels[1] if t != -100]
    no = tok(" no", add_special_tokens=False).input_ids
    assert second == no + [tok.eos_token_id] + yes + [tok.eos_token_id]
    prompt = tok(model.prompts(["Is there a cat in the image?"])[0]).input_ids
    assert ids[0, : len(prompt)].tolist() == prompt                         # what inference feeds the model
    assert int(mask[0].sum()) == len(prompt) + len(yes) + 1


@pytest.fixture(scope="module")
def tiny_deem_micro_free():
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model

    return build_model(DEEM_TINY.replace(max_text_tokens=256), seed=0)   # room for two turns


def test_mmfs_at_step_zero_gives_todays_csr_loss(tiny_teacher):
    from deem_eval.core.rng import derive_torch_generator
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
    from deem_eval.model_adapters.deem.training.mmfs import MMFSNet
    from deem_eval.model_adapters.deem.training.stages import load_stage
    from deem_eval.model_adapters.deem.training.train import stage_losses
    from tests.hf_tiny import make_images

    model = build_model(DEEM_TINY, seed=0)
    v = DEEM_TINY.visual
    mmfs = MMFSNet.from_unet(tiny_teacher.unet, feature_dim=v.feature_dim,
                             level_strides=tuple(v.convnext.strides[i] for i in v.mmfs_levels), heads=2, points=2)
    stage = load_stage("pretrain", ["image_size=32", "diffusion_size=32"])

    class Ex:
        def __init__(self, image, caption):
            self.image, self.caption = image, caption

    batch = [Ex(im, f"a photo of a thing {i}.") for i, im in enumerate(make_images(3, size=40, seed=1))]
    without, _, _ = stage_losses(model, stage, batch, derive_torch_generator(0, "t"), teacher=tiny_teacher)
    handles = mmfs.attach(tiny_teacher.unet)
    try:
        with_mmfs, logged, _ = stage_losses(model, stage, batch, derive_torch_generator(0, "t"), teacher=tiny_teacher,
                                            mmfs=mmfs)
    finally:
        for h in handles:
            h.remove()
    assert float(with_mmfs.detach()) == float(without.detach())
    assert logged["diffusion"] > 0


# ---- a stage-2 run learns, resumes exactly, and answers through the adapter -------------------------------------

def _yes_no_data(n: int):
    from PIL import Image

    from deem_eval.model_adapters.deem.training.instruct_data import InstructExample, Turn

    out = []
    for i in range(n):
        colour = (220, 30, 30) if i % 2 else (30, 30, 220)
        name = "red" if i % 2 else "blue"
        asked = name if (i // 2) % 2 else ("blue" if name == "red" else "red")
        answer = "yes" if asked == name else "no"
        out.append(InstructExample(f"x{i}", Image.new("RGB", (32, 32), colour),
                                   (Turn(f"Is the image {asked}?", answer),)))
    return out


def test_sft_on_yes_no_questions_lowers_the_answer_loss_and_resumes_exactly(tmp_path):
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
    from deem_eval.model_adapters.deem.training.stages import load_stage
    from deem_eval.model_adapters.deem.training.train import train_stage

    data = _yes_no_data(200)
    stage = load_stage("sft", ["steps=30", "batch_size=8", "optim.lr=3e-3", "optim.warmup=3", "csr_weight=0.0",
                               "image_size=32"])
    full = train_stage(build_model(DEEM_TINY, seed=0), stage, data, tmp_path / "a", seed=0, progress=False)
    first = sum(r["text"] for r in full.history[:5]) / 5
    last = sum(r["text"] for r in full.history[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    part = train_stage(build_model(DEEM_TINY, seed=0), stage, data, tmp_path / "b", seed=0, stop_at=12,
                       progress=False)
    assert part.steps == 12 and not part.final.exists()
    done = train_stage(build_model(DEEM_TINY, seed=0), stage, data, tmp_path / "b", seed=0, resume=True,
                       progress=False)
    assert done.resumed_from == 12
    assert [r["loss"] for r in done.history] == [r["loss"] for r in full.history]
    saved = json.loads((full.final / "stage.json").read_text())
    assert saved["stage"]["steps"] == 30 and saved["stage"]["loss"] == "answer"


def test_sft_refuses_another_runs_directory_and_a_changed_stage(tmp_path):
    from deem_eval.core.errors import DeemEvalError
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
    from deem_eval.model_adapters.deem.training.stages import load_stage
    from deem_eval.model_adapters.deem.training.train import train_stage

    data = _yes_no_data(16)
    stage = load_stage("sft", ["steps=2", "batch_size=4", "csr_weight=0.0", "image_size=32"])
    train_stage(build_model(DEEM_TINY, seed=0), stage, data, tmp_path, seed=0, stop_at=1, progress=False)
    with pytest.raises(DeemEvalError, match="--resume"):
        train_stage(build_model(DEEM_TINY, seed=0), stage, data, tmp_path, seed=0, progress=False)
    other = load_stage("sft", ["steps=2", "batch_size=4", "csr_weight=0.0", "image_size=32", "optim.lr=1"])
    with pytest.raises(DeemEvalError, match="cannot resume"):
        train_stage(build_model(DEEM_TINY, seed=0), other, data, tmp_path, seed=0, resume=True, progress=False)


def test_both_stages_from_the_command_line_then_the_checkpoint_answers(tmp_path, monkeypatch):
    from deem_eval.cli import main
    from tests.hf_tiny import make_images

    monkeypatch.setenv("DEEM_EVAL_HOME", str(tmp_path / "home"))
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, im in enumerate(make_images(6, size=40, seed=2)):
        im.save(photos / f"{i}.png")
        (photos / f"{i}.txt").write_text(f"a photo number {i}.", encoding="utf-8")
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"image": f"photos/{i}.png", "question": "Is there a dog in the image?",
                                             "answer": "yes" if i % 2 else "no"}) + "\n" for i in range(6)))
    common = ["--set", "image_size=32", "--set", "diffusion_size=32", "--set", "batch_size=2", "--no-progress"]
    assert main(["align", "--stage", "pretrain", "--preset", "deem-tiny", "--images", str(photos), "--set", "steps=2",
                 "--out", str(tmp_path / "s1"), *common]) == 0
    s1 = tmp_path / "s1" / "final"
    assert (s1 / "mmfs.safetensors").is_file() and (s1 / "deem_config.json").is_file()
    assert main(["align", "--stage", "sft", "--checkpoint", str(s1), "--questions", str(questions),
                 "--set", "steps=2", "--out", str(tmp_path / "s2"), *common]) == 0
    s2 = tmp_path / "s2" / "final"
    assert main(["--model", "deem", "-M", f"checkpoint={s2}", "-M", "scoring=logits", "--bench", "synthscenes-yesno",
                 "--limit", "4", "--out", str(tmp_path / "runs")]) == 0
    samples = next((tmp_path / "runs").glob("*/samples.jsonl")).read_text().splitlines()
    assert len(samples) == 4


def test_print_groups_lists_every_parameter(capsys):
    from deem_eval.cli import main

    assert main(["align", "--stage", "pretrain", "--preset", "deem-tiny", "--print-groups", "--out", "unused"]) == 0
    out = capsys.readouterr().out.splitlines()
    summary = json.loads(out[-1])
    assert summary["stage"] == "pretrain" and summary["tensors"] == len(out) - 1
    assert any(line.startswith("encoder_trunk") and "lr 2e-05" in line for line in out)
    assert any("sampling_offsets" in line and "lr 1e-05" in line for line in out)


_DDP_SCRIPT = '''
import sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
from deem_eval.model_adapters.deem.training.stages import load_stage
from deem_eval.model_adapters.deem.training.train import train_stage
from tests.test_deem_stages import _yes_no_data

stage = load_stage("sft", ["steps=3", "global_batch=8", "csr_weight=0.0", "image_size=32", "optim.lr=1e-3",
                           "optim.warmup=1"])
train_stage(build_model(DEEM_TINY, seed=0), stage, _yes_no_data(40), Path(sys.argv[1]), seed=0, progress=False)
'''


@pytest.mark.skipif(not (__import__("shutil").which("torchrun", path=str(__import__("pathlib").Path(
    __import__("sys").executable).parent))), reason="torchrun not installed")
def test_two_processes_train_the_same_weights_as_one(tmp_path):
    """gloo on CPU: 2 processes x 4 examples per step == 1 process x 8 (the same global batch)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    root = Path(__file__).resolve().parent.parent
    script = tmp_path / "ddp_train.py"
    script.write_text(_DDP_SCRIPT, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")
    one = subprocess.run([sys.executable, str(script), str(tmp_path / "one")], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path / "two")],
                         cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert two.returncode == 0, two.stderr[-2000:]
    a = load_file(str(tmp_path / "one" / "checkpoint-000003" / "state.safetensors"))
    b = load_file(str(tmp_path / "two" / "checkpoint-000003" / "state.safetensors"))
    assert set(a) == set(b) and len(a) > 10
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5, rtol=1e-4), name
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model

    untrained = build_model(DEEM_TINY, seed=0).llm.model.embed_tokens.weight
    assert not torch.allclose(a["llm.model.embed_tokens.weight"], untrained)      # the runs did train
    saved = json.loads((tmp_path / "two" / "final" / "stage.json").read_text())
    assert saved["processes"] == 2


def test_a_global_batch_the_processes_cannot_share_is_refused():
    from deem_eval.core.errors import DeemEvalError
    from deem_eval.model_adapters.deem.training.stages import load_stage

    stage = load_stage("sft", ["global_batch=12", "grad_accum=2"])
    assert stage.per_process_batch(1) == 6 and stage.per_process_batch(2) == 3 and stage.per_process_batch(3) == 2
    with pytest.raises(DeemEvalError, match="not divisible by processes \\(4\\) x grad_accum \\(2\\)"):
        stage.per_process_batch(4)
    assert load_stage("sft", ["batch_size=5"]).per_process_batch(8) == 5      # no global batch: per process


def test_resuming_a_checkpoint_of_another_preset_is_refused(tmp_path):
    from deem_eval.core.errors import DeemEvalError
    from deem_eval.model_adapters.deem.model.presets import DEEM_TINY, build_model
    from deem_eval.model_adapters.deem.training.stages import load_stage
    from deem_eval.model_adapters.deem.training.train import train_stage

    data = _yes_no_data(8)
    stage = load_stage("sft", ["steps=2", "batch_size=4", "csr_weight=0.0", "image_size=32"])
    train_stage(build_model(DEEM_TINY, seed=0), stage, data, tmp_path, seed=0, stop_at=1, progress=False)
    other = build_model(DEEM_TINY.replace(name="deem-tiny-b"), seed=0)
    with pytest.raises(DeemEvalError, match="another stage config, model, data or seed"):
        train_stage(other, stage, data, tmp_path, seed=0, resume=True, progress=False)
