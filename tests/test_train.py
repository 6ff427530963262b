import os
import subprocess
import sys

import pytest
import torch

from vaelib import config
from vaelib.data import ImageData, load_digits
from vaelib.models import AE, CVAE, VAE
from vaelib.objectives import BetaELBO, Reconstruction
from vaelib.train import evaluate, fit


def _run(seed):
    torch.manual_seed(seed)
    model = VAE((1, 8, 8), 4, hidden=32)
    d = load_digits("train", binarize=True).subset(300)
    return fit(model, d, BetaELBO(1.0), epochs=3, batch_size=50, seed=seed, device="cpu", progress=False), model


def test_same_seed_same_history():
    h1, m1 = _run(0)
    h2, m2 = _run(0)
    h3, _ = _run(1)
    for k in ("loss", "elbo", "rec", "kl"):
        assert h1[k] == h2[k], k
    assert h1["loss"] != h3["loss"]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=False))
    assert len(h1["seconds"]) == 3


def test_fit_learns_and_reports_eval_metrics():
    torch.manual_seed(0)
    model = VAE((1, 8, 8), 4, hidden=64)
    tr = load_digits("train", binarize=True)
    te = load_digits("test", binarize=True).binarized_once(0)
    h = fit(model, tr, BetaELBO(1.0), epochs=15, batch_size=64, device="cpu", eval_data=te, progress=False)
    # an untrained Bernoulli decoder scores about 64*log 2 = 44 nats; training must beat it clearly
    assert h["test_elbo"][-1] > -35.0 and h["test_elbo"][-1] > h["test_elbo"][0] + 5
    assert evaluate(model, te, BetaELBO(1.0))["elbo"] == pytest.approx(evaluate(model, te, BetaELBO(1.0))["elbo"])


def test_fit_works_for_every_model():
    d = load_digits("train", binarize=True).subset(64)
    for model in (AE((1, 8, 8), 2, hidden=8), AE((1, 8, 8), 2, hidden=8, input_noise=0.5)):
        assert "rec" in fit(model, d, Reconstruction(), epochs=1, device="cpu", progress=False)
    cvae = CVAE((1, 8, 8), 2, n_classes=10, hidden=8)
    assert "kl" in fit(cvae, d, BetaELBO(), epochs=1, device="cpu", progress=False)


def test_fit_rejects_bad_input():
    m = VAE((1, 8, 8), 2, hidden=8)
    d = load_digits("train").subset(10)
    with pytest.raises(TypeError):
        fit(m, torch.zeros(10, 64), BetaELBO(), epochs=1)
    with pytest.raises(ValueError):
        fit(m, d, BetaELBO(), epochs=0)
    with pytest.raises(ValueError, match=r"\(B, 64\)"):
        fit(m, ImageData(torch.zeros(10, 16), torch.zeros(10, dtype=torch.long), (1, 4, 4)), BetaELBO(), epochs=1,
            device="cpu")


def test_budget_is_read_in_one_place(monkeypatch):
    monkeypatch.delenv("VAEBOOK_BUDGET", raising=False)
    monkeypatch.setenv("CI", "true")
    assert config.budget() == "smoke"
    monkeypatch.delenv("CI")
    assert config.budget() == "default"
    monkeypatch.setenv("VAEBOOK_BUDGET", "FULL")
    assert config.budget() == "full" and config.by_budget(1, 2, 3) == 3
    monkeypatch.setenv("VAEBOOK_BUDGET", "huge")
    with pytest.raises(ValueError, match="smoke, default, full"):
        config.budget()


def test_model_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="likelihood"):
        VAE((1, 8, 8), 2, likelihood="poisson")
    with pytest.raises(ValueError, match="arch"):
        VAE((1, 8, 8), 2, arch="resnet")
    with pytest.raises(ValueError, match="latent_dim"):
        VAE((1, 8, 8), 0)
    with pytest.raises(ValueError, match="conv"):
        VAE((1, 8, 8), 2, arch="conv")
    conv = VAE((1, 32, 32), 3, arch="conv", hidden=32)
    out = conv(torch.rand(2, 1024))
    assert out.mu.shape == (2, 3) and out.px.log_prob(torch.rand(2, 1024).round()).shape == (2,)
    g = VAE((1, 8, 8), 2, likelihood="gaussian")
    assert g(torch.rand(3, 64)).px.log_prob(torch.rand(3, 64)).shape == (3,)


def test_thread_count_is_decided_in_config(monkeypatch):
    monkeypatch.setenv("VAEBOOK_THREADS", "3")
    assert config.threads() == 3
    monkeypatch.setenv("VAEBOOK_THREADS", "0")
    with pytest.raises(ValueError, match="VAEBOOK_THREADS"):
        config.threads()
    monkeypatch.delenv("VAEBOOK_THREADS")
    monkeypatch.setattr(config, "_TORCH_DEFAULT_THREADS", 64)
    monkeypatch.setattr(config.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    assert config.threads() == 4  # 8 cores shared by 2 workers
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "16")
    assert config.threads() == 1
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    assert config.threads() == 8


def test_thread_count_reaches_blas():
    # a fresh process: config.apply_threads (a chapter's book.header) applies VAEBOOK_THREADS to torch and to
    # numpy's and scipy's BLAS
    code = ("import torch, threadpoolctl; from vaelib import config; config.apply_threads(); "
            "print(torch.get_num_threads(), sorted({p['num_threads'] for p in threadpoolctl.threadpool_info() "
            "if p['user_api'] == 'blas'}))")
    env = {**os.environ, "VAEBOOK_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1 [1]", out


def test_apply_threads_flushes_subnormals_on_every_thread():
    # fresh processes with two threads: apply_threads first, so the worker threads inherit the
    # flush; started before it, the workers keep subnormals and apply_threads warns
    def run(code):
        env = {**os.environ, "VAEBOOK_THREADS": "2"}
        return subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, capture_output=True,
                              text=True, check=True)

    first = run("from vaelib import config; config.apply_threads(); print(config.denormals_flushed())")
    assert first.stdout.split() == ["True"] and "RuntimeWarning" not in first.stderr, first
    late = run("import torch; from vaelib import config; torch.ones(1 << 17).mul(2); config.apply_threads(); "
               "print(config.denormals_flushed())")
    assert late.stdout.split() == ["False"], late
    assert "worker threads were started before config.apply_threads()" in late.stderr, late.stderr


def test_a_bad_budget_is_one_line_before_any_build(monkeypatch, capsys):
    monkeypatch.setenv("VAEBOOK_BUDGET", "fast")
    assert config.check_settings() == "error: VAEBOOK_BUDGET must be one of smoke, default, full; got 'fast'"
    monkeypatch.setenv("VAEBOOK_BUDGET", "smoke")
    assert config.check_settings() is None
    assert capsys.readouterr().out.startswith("budget=smoke  device=")


def test_fit_is_a_plain_loop_a_reader_can_read_on_the_page():
    # chapter 04 shows fit's source (inspect.getsource): a plain loop of at most 40 lines of body with
    # a backward pass and an optimiser step, no vmap or stacking, and no line wider than the page's
    # code column (75 characters; the browser check fails wider ones)
    import ast
    import inspect

    src = inspect.getsource(fit)
    body = ast.parse(src).body[0].body
    assert isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)  # the docstring
    assert body[-1].end_lineno - body[1].lineno + 1 <= 40
    assert "loss.backward()" in src and "opt.step()" in src
    assert "vmap" not in src and "functional_call" not in src and "fit_many" not in src
    assert max(len(line) for line in src.splitlines()) <= 75
