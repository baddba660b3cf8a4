"""The GPU path (issue "The GPU path, proven"): every network trains a step, the fast path equals the readable
modules, `predict` runs, and a checkpoint saved on CUDA loads on the CPU with the same predictions.

Each test runs on the CPU too (the same code, so it cannot rot where no GPU is lent) and on CUDA where there is
one; the CUDA cases are marked ``cuda`` (``python -m pytest -m cuda``: what bench/gpu_check.py runs)."""
import numpy as np
import pytest
import torch

from itespy.checkpoints import load_model, save_model
from itespy.config import make_config
from itespy.inference import predict
from itespy.models import build_student, build_teacher
from itespy.train import make_optimizer, student_loss, teacher_loss

from test_models import _forward_backward, _perturbed

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, CUDA])]
SMALL = dict(teacher_hidden=64, teacher_bottleneck=32, teacher_blocks=2, student_channels=16, student_blocks=2)
NETWORKS = {
    "dictionary-resfc": ("teacher", dict()),
    "dictionary-agcn": ("teacher", dict(teacher_trunk="agcn")),
    "c3dpo": ("teacher", dict(teacher="c3dpo")),
    "agcn-student": ("student", dict()),
    "resfc-student": ("student", dict(student="resfc")),
    "semgcn-student": ("student", dict(student="semgcn")),
}


def _inputs(n, device, seed=0, dtype=torch.float32):
    return 0.1 * torch.randn(n, 17, 2, generator=torch.Generator().manual_seed(seed), dtype=dtype).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_training_step_of_every_network(name, device):
    stage, overrides = NETWORKS[name]
    cfg = make_config("smoke", "paper", device=device, **SMALL, **overrides)
    torch.manual_seed(0)
    net = (build_teacher(cfg) if stage == "teacher" else build_student(cfg)).to(device).train()
    before = [p.detach().clone() for p in net.parameters()]
    opt, _ = make_optimizer(cfg, net, stage)
    x = _inputs(32, device)
    gen = torch.Generator(device=device).manual_seed(0)
    if stage == "teacher":
        loss = teacher_loss(cfg, net, x, gen, epoch=0)
    else:
        loss = student_loss(cfg, net, x, 0.1 * torch.randn(32, 17, device=device), gen)
    opt.zero_grad()
    loss["total"].backward()
    opt.step()
    assert torch.isfinite(loss["total"]) and all(p.device.type == device for p in net.parameters())
    assert any(not torch.equal(a, p.detach()) for a, p in zip(before, net.parameters())), "no weight moved"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("graph", ["both", "semgcn"])
def test_the_fast_path_equals_the_readable_modules(graph, device):
    """As tests/test_models.py on the CPU, on ``device``, in float64 (CUDA GPUs compute it; slower, exact)."""
    cfg = (make_config("smoke", "reference", student_channels=16, student_blocks=2) if graph == "semgcn"
           else make_config("smoke", "paper", student_channels=16, student_blocks=2))
    torch.manual_seed(0)
    model = _perturbed(build_student(cfg).double()).to(device).train()
    x = _inputs(6, device, seed=1, dtype=torch.float64)
    start = {n: b.clone() for n, b in model.named_buffers()}
    y_ref, g_ref, _ = _forward_backward(model, x, fused=False)
    with torch.no_grad():
        for n, b in model.named_buffers():
            b.copy_(start[n])
    y_new, g_new, _ = _forward_backward(model, x, fused=True)
    torch.testing.assert_close(y_new, y_ref, rtol=1e-9, atol=1e-11)
    scale = max(float(g.abs().max()) for g in g_ref.values())
    for n in g_ref:
        torch.testing.assert_close(g_new[n], g_ref[n], rtol=1e-8, atol=1e-11 * scale, msg=f"gradient of {n}")


@pytest.mark.parametrize("device", DEVICES)
def test_predict_and_a_checkpoint_that_loads_on_the_cpu(device, tmp_path):
    cfg = make_config("smoke", "paper", **SMALL)
    torch.manual_seed(0)
    student = _perturbed(build_student(cfg)).to(device).eval()
    kp = _inputs(300, "cpu", seed=2).numpy()
    on_device = predict(student, kp, device, batch_size=128)
    assert on_device["pose_3d"].shape == (300, 17, 3) and np.isfinite(on_device["pose_3d"]).all()
    save_model(tmp_path / "student.pt", student, cfg, "student")
    loaded, _ = load_model(tmp_path / "student.pt", "student", device="cpu")
    on_cpu = predict(loaded, kp, "cpu", batch_size=128)
    np.testing.assert_allclose(on_cpu["pose_3d"], on_device["pose_3d"], rtol=1e-4, atol=1e-5)
