"""Mixed precision (trainer.precision): the setting, the models under autocast, and a
one-epoch bf16-mixed fit of every recipe on tiny data on the CPU."""

from __future__ import annotations

import csv
import math

import pytest
import torch
import torch.nn.functional as F

from bridging.models.aligned import _AlignedLinear, aligned_linear
from bridging.models.cogmen import COGMEN
from bridging.models.dropout import dropout
from bridging.models.gnn import GNN
from bridging.recipes import load_recipe
from bridging.runs import precision as prec
from bridging.runs.evaluate import evaluate
from bridging.runs.experiment import train
from conftest import TINY

BF16 = {"device_type": "cpu", "dtype": torch.bfloat16}


# -- the setting --------------------------------------------------------------------------
def test_explicit_precisions_and_aliases():
    assert prec.resolve_precision("32-true", "cpu") == "32-true"
    assert prec.resolve_precision("32", "cpu") == "32-true"
    assert prec.resolve_precision(32, "cpu") == "32-true"
    assert prec.resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"
    assert prec.resolve_precision("bf16", "auto") == "bf16-mixed"


@pytest.mark.parametrize("pays", [True, False])
def test_auto_follows_the_cpu(pays, monkeypatch):
    monkeypatch.setattr(prec, "cpu_bf16_pays", lambda: pays)
    want = "bf16-mixed" if pays else "32-true"
    assert prec.resolve_precision("auto", "cpu") == want
    assert prec.resolve_precision("auto", "auto") == want  # no CUDA in the tests


def test_auto_on_cuda_asks_cuda(monkeypatch):
    monkeypatch.setattr(prec, "cpu_bf16_pays", lambda: True)  # the CPU is not asked
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert prec.resolve_precision("auto", "gpu") == "bf16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert prec.resolve_precision("auto", "cuda") == "32-true"


#: what /proc/cpuinfo may list (None: unreadable) on the project's three CPU kinds and more
CPUINFO_FLAGS = {
    "unreadable": None,
    "avx2": "fpu sse4_2 avx avx2 fma",
    "avx512_bf16": "fpu avx2 avx512f avx512_bf16",
    "amx": "fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile",
    "amx_only": "fpu avx2 avx512f amx_bf16 amx_tile",
}
#: a probe's answer, or None where this torch would lack it
PROBE_ANSWERS = (True, False, None)


def _patch_cpu(monkeypatch, tmp_path, amx, bf16, cpuinfo, capability="AVX512"):
    """The host as the precision code sees it: torch's two probes (an answer, or absent),
    the kernel's flags (a file, or unreadable) and torch's kernel capability."""
    for probe, answer in (("_is_amx_tile_supported", amx), ("_is_avx512_bf16_supported", bf16)):
        if answer is None:
            monkeypatch.delattr(torch.cpu, probe, raising=False)
        else:
            monkeypatch.setattr(torch.cpu, probe, lambda v=answer: v, raising=False)
    flags = CPUINFO_FLAGS[cpuinfo]
    path = tmp_path / "cpuinfo"
    if flags is not None:
        path.write_text(f"processor\t: 0\nflags\t\t: {flags}\nbugs\t\t:\n")
    monkeypatch.setattr(prec, "CPUINFO", str(path))
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    prec.cpu_bf16_units.cache_clear()


def _slow_units(amx, bf16, cpuinfo) -> set[str]:
    """The rule written out: a probe's answer stands; the kernel's flag only for a probe
    torch lacks."""
    flags = set((CPUINFO_FLAGS[cpuinfo] or "").split())
    units = set()
    if amx or (amx is None and "amx_bf16" in flags):
        units.add("AMX")
    if bf16 or (bf16 is None and "avx512_bf16" in flags):
        units.add("BF16")
    return units


@pytest.fixture
def fresh_units():
    prec.cpu_bf16_units.cache_clear()
    yield
    prec.cpu_bf16_units.cache_clear()


@pytest.mark.parametrize("cpuinfo", sorted(CPUINFO_FLAGS))
@pytest.mark.parametrize("bf16", PROBE_ANSWERS)
@pytest.mark.parametrize("amx", PROBE_ANSWERS)
def test_every_probe_answer(monkeypatch, tmp_path, fresh_units, amx, bf16, cpuinfo):
    """Every CPU-dependent path with every answer patched, whatever the host: torch's probes
    decide where they exist (the host's flags never overrule a False: the suite failed on
    AVX512-BF16 and AMX CPUs when they did), /proc/cpuinfo only where torch lacks one."""
    _patch_cpu(monkeypatch, tmp_path, amx, bf16, cpuinfo)
    want = _slow_units(amx, bf16, cpuinfo)
    assert prec.cpu_bf16_units() == want
    assert prec.cpu_native_bf16() is bool(want)
    assert prec.cpu_bf16_pays() is ("AMX" in want)
    assert prec.cpu_isa() == "+".join(["AVX512", *(u for u in ("AMX", "BF16") if u in want)])
    auto = "bf16-mixed" if "AMX" in want else "32-true"
    assert prec.resolve_precision("auto", "cpu") == auto
    assert prec.resolve_precision("auto", "auto") == auto  # no CUDA in the tests
    # explicit settings never depend on the CPU
    assert prec.resolve_precision("32-true", "cpu") == "32-true"
    assert prec.resolve_precision("bf16-mixed", "cpu") == "bf16-mixed"


@pytest.mark.parametrize(
    "kind, amx, bf16, cpuinfo, isa, auto",
    [
        ("AMD EPYC, AVX2 only", False, False, "avx2", "AVX2", "32-true"),
        ("AMD EPYC, AVX-512 + AVX512_BF16", False, True, "avx512_bf16", "AVX512+BF16", "32-true"),
        ("Intel Xeon, AVX-512 + AMX", True, True, "amx", "AVX512+AMX+BF16", "bf16-mixed"),
        ("older torch on an AMX Xeon", None, None, "amx", "AVX512+AMX+BF16", "bf16-mixed"),
        ("older torch on a Zen 4 EPYC", None, None, "avx512_bf16", "AVX512+BF16", "32-true"),
        ("older torch, no /proc", None, None, "unreadable", "AVX2", "32-true"),
    ],
)
def test_the_projects_cpu_kinds(
    monkeypatch, tmp_path, fresh_units, kind, amx, bf16, cpuinfo, isa, auto
):
    """The three CPU kinds of the project's machines, as their probes answer: auto trains
    in bf16 on AMX only (the measurements in BENCHMARKS.md: AVX512-BF16 without AMX slowed
    the audio-only recipes, AVX2 emulates bfloat16)."""
    capability = isa.split("+")[0]
    _patch_cpu(monkeypatch, tmp_path, amx, bf16, cpuinfo, capability=capability)
    assert prec.cpu_isa() == isa, kind
    assert prec.resolve_precision("auto", "cpu") == auto, kind


def test_the_default_is_32_true_on_every_cpu(monkeypatch, tmp_path, fresh_units, compose_cfg):
    """The configs' default precision is 32-true whatever the CPU (the same seed gives
    comparable figures everywhere); only an explicit auto asks the CPU."""
    cfg = compose_cfg(TINY)
    for amx, bf16, cpuinfo in [(True, True, "amx"), (False, True, "avx512_bf16")]:
        _patch_cpu(monkeypatch, tmp_path, amx, bf16, cpuinfo)
        assert str(cfg.trainer.precision) == "32-true"
        assert prec.resolve_precision(cfg.trainer.precision, "cpu") == "32-true"


@pytest.mark.parametrize(
    "value, words",
    [
        ("16-mixed", ["16-mixed", "CUDA", "bf16-mixed"]),
        ("bf16-true", ["bf16-true", "expected one of", "32-true"]),
        ("64-true", ["64-true", "expected one of"]),
        ("fast", ["fast", "expected one of"]),
    ],
)
def test_bad_precisions_are_refused(value, words):
    with pytest.raises(prec.PrecisionError) as err:
        prec.resolve_precision(value, "cpu")
    assert all(w in str(err.value) for w in words), str(err.value)
    assert "\n" not in str(err.value)


def test_compute_dtype():
    assert prec.compute_dtype("bf16-mixed") == torch.bfloat16
    assert prec.compute_dtype("16-mixed") == torch.float16
    assert prec.compute_dtype("32-true") == torch.float32


# -- the models under autocast -------------------------------------------------------------
def test_aligned_linear_under_autocast():
    """Under bf16 autocast aligned_linear is autocast's F.linear (a bfloat16 product); the
    Function applied directly computes in float32, forward and backward, never mixing."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(37, 50, generator=gen, requires_grad=True)
    w = torch.randn(70, 50, generator=gen, requires_grad=True)
    b = torch.randn(70, generator=gen, requires_grad=True)
    with torch.autocast(**BF16):
        got = aligned_linear(x, w, b)
        want = F.linear(x, w, b)
        assert got.dtype == torch.bfloat16
        assert torch.equal(got, want)
        direct = _AlignedLinear.apply(x, w, b)
    assert direct.dtype == torch.float32
    torch.testing.assert_close(direct, F.linear(x, w, b), atol=1e-5, rtol=1e-5)
    gx, gw, gb = torch.autograd.grad(direct.square().sum(), [x, w, b])
    rx, rw, rb = torch.autograd.grad(F.linear(x, w, b).square().sum(), [x, w, b])
    for g, r in ((gx, rx), (gw, rw), (gb, rb)):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g, r, atol=1e-3, rtol=1e-5)


def test_aligned_linear_float32_equals_linear():
    """The float32 path (row-aligned outputs): F.linear's values and gradients."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(41, 612, generator=gen, requires_grad=True)
    w = torch.randn(1836, 612, generator=gen, requires_grad=True)
    b = torch.randn(1836, generator=gen, requires_grad=True)
    got = aligned_linear(x, w, b)
    assert got.stride(0) % 16 == 0 and got.shape == (41, 1836)
    want = F.linear(x, w, b)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)
    g = torch.randn(41, 1836, generator=gen)
    grads = torch.autograd.grad(got, [x, w, b], g)
    for a, r in zip(grads, torch.autograd.grad(want, [x, w, b], g)):
        torch.testing.assert_close(a, r, atol=1e-3, rtol=1e-5)


def test_lane_dropout_in_bfloat16_scales_each_product_once():
    """A kept bfloat16 value is x * scale computed in float32 and rounded once (the mask
    does not hold a rounded scale); a dropped one is 0."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 300, generator=gen).to(torch.bfloat16)
    torch.manual_seed(5)
    got = dropout(x, 0.1, True, "lanes")
    torch.manual_seed(5)
    ref32 = dropout(x.float(), 0.1, True, "lanes")  # the same mask, in float32
    kept = ref32 != 0
    assert got.dtype == torch.bfloat16
    assert torch.equal(got[~kept], torch.zeros_like(got[~kept]))
    scale = 65536 / round(0.9 * 65536)
    assert torch.equal(got[kept], (x.float()[kept] * scale).to(torch.bfloat16))


def _transformer_conv_reference(conv, x, edge_index):
    """TransformerConv (concat, root weight) written out: the projections in bfloat16 as
    autocast computes them, then scores, the per-target softmax and the sum over sources in
    float32."""
    with torch.autocast(**BF16):
        q, k, v, skip = (conv.lin_query(x), conv.lin_key(x), conv.lin_value(x), conv.lin_skip(x))
    h, c = conv.heads, conv.out_channels
    q, k, v = (t.float().view(-1, h, c) for t in (q, k, v))
    src, dst = edge_index
    out = torch.zeros(x.shape[0], h, c)
    for node in range(x.shape[0]):
        sources = src[dst == node]
        scores = (q[node][None] * k[sources]).sum(-1) / math.sqrt(c)  # [n_src, H]
        out[node] = (torch.softmax(scores, 0)[..., None] * v[sources]).sum(0)
    return out.view(-1, h * c) + skip.float()


def test_gnn_attention_and_aggregation_run_in_float32_under_autocast():
    from bridging.models.graph import build_graph_flat

    torch.manual_seed(0)
    gnn = GNN(40, 24, 8, heads=3).eval()
    lengths = torch.tensor([9, 5, 12])
    n = int(lengths.sum())
    speakers = torch.randint(0, 2, (n,))
    edge_index, edge_type = build_graph_flat(lengths, speakers, 5, 5, 2)
    x = torch.randn(n, 40).to(torch.bfloat16)  # as the sequence context gives it
    with torch.autocast(**BF16):
        h1 = gnn.conv1(x.float(), edge_index, edge_type)
        got = gnn.conv2(h1, edge_index)
        out = gnn(x, edge_index, edge_type)
    assert got.dtype == torch.float32 and out.dtype == torch.float32
    want = _transformer_conv_reference(gnn.conv2, h1, edge_index)
    # float32 softmax and sums of bfloat16 products: 1e-5; in bfloat16 they would be ~1e-2
    torch.testing.assert_close(got, want, atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("rnn", ["transformer", "lstm", "gru"])
@pytest.mark.parametrize("pad_mode", ["mask", "reference"])
@pytest.mark.parametrize("gnn", ["rgcn_transformer", "none"])
def test_cogmen_under_autocast(rnn, pad_mode, gnn):
    """float32 outputs (logits, log-probabilities, embeddings), float32 gradients of float32
    parameters, and the float32 model's predictions within bfloat16's rounding."""
    from test_cogmen import make_batch

    torch.manual_seed(0)
    model = COGMEN(30, 4, rnn=rnn, seqcontext_nlayer=2, gnn_nheads=3, gnn=gnn, pad_mode=pad_mode)
    x, lengths, speakers = make_batch([5, 3, 7, 11], 30, seed=1)
    labels = torch.randint(0, 4, (int(lengths.sum()),))
    model.train()
    with torch.autocast(**BF16):
        out = model(x, lengths, speakers)
        loss = model.loss(out, labels)
    assert {out.logits.dtype, out.log_probs.dtype, out.embeddings.dtype, loss.dtype} == {
        torch.float32
    }
    loss.backward()
    assert all(p.dtype == torch.float32 for p in model.parameters())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        full = model(x, lengths, speakers).log_probs
        with torch.autocast(**BF16):
            low = model(x, lengths, speakers).log_probs
    assert float((full - low).abs().max()) < 0.05


# -- one bf16-mixed epoch of every recipe ----------------------------------------------------
RECIPES = {
    "teacher": ["experiment=teacher"],
    "audio_only_lstm": ["experiment=audio_only", "model.rnn=lstm"],
    "teacher_gru": ["experiment=teacher", "model.rnn=gru"],
    "teacher_reference_pad": ["experiment=teacher", "model.pad_mode=reference"],
    "masked": ["experiment=masked"],
    "masked_nognn": ["experiment=masked_nognn"],
    "student_kd": ["experiment=student_kd", "recipe.kd.emb_weight=1.0"],
}


def _train_losses(run_dir) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    return [float(r["train/loss"]) for r in rows if r.get("train/loss")]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_one_bf16_epoch_of_every_recipe(compose_cfg, tmp_path, name):
    out = tmp_path / name
    overrides = [
        *RECIPES[name],
        *TINY,
        "logger=csv",
        "trainer.max_epochs=1",
        "trainer.precision=bf16-mixed",
    ]
    metrics = train(compose_cfg(overrides, output_dir=out))
    assert metrics["precision"] == "bf16-mixed"
    losses = _train_losses(out)
    assert losses and all(math.isfinite(v) for v in losses)
    ckpt = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    floats = [t for t in ckpt["state_dict"].values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float32 for t in floats)
    recipe = load_recipe(out / "checkpoints" / "best.ckpt")
    assert all(p.dtype == torch.float32 for p in recipe.parameters())
    # the run's test figures are float32 ones: bridging-eval of its best checkpoint agrees
    again = evaluate(out / "checkpoints" / "best.ckpt", split="test")["test"]
    assert again["wf1"] == pytest.approx(metrics["test"]["wf1"], abs=1e-6)
    assert again["confusion"] == metrics["test"]["confusion"]
    if name == "student_kd":
        teacher = json_load(out / "teacher" / "metrics.json")
        assert teacher["precision"] == "bf16-mixed"


def json_load(path):
    import json

    return json.loads(path.read_text())


def test_student_teacher_cache_is_float32_and_autocast_free(compose_cfg, tmp_path):
    """The teacher's cached outputs are float32 and those of the float32 teacher, whether or
    not the student runs under bf16 autocast."""
    from bridging.runs.experiment import train
    from bridging.runs.teacher import attach_teacher
    from bridging.runs.train import build_datamodule, build_recipe

    cfg = compose_cfg(
        ["experiment=student_kd", *TINY, "trainer.max_epochs=1"], output_dir=tmp_path / "s"
    )
    dm = build_datamodule(cfg)
    dm.setup()
    student = build_recipe(cfg, dm.facts)
    attach_teacher(student, cfg, dm, tmp_path / "s", train=train)
    batch = next(iter(dm.train_dataloader()))
    with torch.autocast(**BF16):
        logits, emb = student._run_teacher(batch)
    plain_logits, plain_emb = student._run_teacher(batch)
    assert logits.dtype == emb.dtype == torch.float32
    assert torch.equal(logits, plain_logits) and torch.equal(emb, plain_emb)
    cached = student.teacher_outputs(batch)[0]  # filled from batches of other dialogues
    assert cached.dtype == torch.float32
    torch.testing.assert_close(cached, plain_logits, atol=1e-5, rtol=1e-5)


def test_bad_precision_fails_before_any_work(tmp_path):
    import subprocess
    import sys

    run = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridging.cli.train",
            *TINY,
            "trainer.precision=16-mixed",
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("bridging-train: error: trainer.precision=16-mixed"), proc.stderr
    assert not (run / "checkpoints").exists()


def test_gpu_check_without_cuda_says_so():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "gpu-check: error: torch.cuda.is_available() is False: no CUDA device"
    )


def test_reproduce_flop_limit_uses_the_runs_precision():
    """The comparison's runs share the trainer settings of its overrides; the matmul rate is
    measured in the dtype of their products."""
    from bridging.runs.flops import matmul_gflops
    from bridging.runs.reproduce import runs_precision

    assert runs_precision([]) == "32-true"
    assert runs_precision(["trainer.precision=bf16-mixed"]) == "bf16-mixed"
    best, median = matmul_gflops(1, n=64, repeat=2, dtype=torch.bfloat16)
    assert best >= median > 0
