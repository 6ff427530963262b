"""Throughput of vaelib.train.fit against a bare hand-written PyTorch loop (pytorch/examples style).

Both train the same MLP VAE with the same objective (BetaELBO(1), Adam, same batch size) on the
same data, already on the device. Runs alternate (fit, bare, fit, bare, ...) so that machine
load affects both alike; the median samples/second of each is reported with their ratio.

    python bench/train_throughput.py [--repeats 5] [--epochs 3] [--n 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from vaelib import config
from vaelib.data import dsprites
from vaelib.models import VAE
from vaelib.objectives import BetaELBO
from vaelib.train import fit


def bare_loop(model, x, epochs, batch_size, lr, seed):
    """What a reader would write by hand: shuffle, slice, loss, backward, step."""
    torch.manual_seed(seed)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, device=x.device, generator=gen)
        for b in range(n // batch_size):
            xb = x[perm[b * batch_size : (b + 1) * batch_size]]
            out = model(xb)
            rec = out.px.log_prob(xb).mean()
            kl = (0.5 * (out.mu**2 + out.logvar.exp() - out.logvar - 1).sum(-1)).mean()
            loss = -(rec - kl)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=128)
    args = p.parse_args()
    config.apply_threads()  # VAEBOOK_THREADS, else this process's share of the cores
    dev = config.device()
    data = dsprites(args.n, resolution=32, seed=0).to(dev)
    n_used = (args.n // args.batch_size) * args.batch_size * args.epochs

    def make():
        torch.manual_seed(0)
        return VAE(data.shape, 10, hidden=256).to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    rates = {"fit": [], "bare": []}
    for r in range(args.repeats + 1):  # the first round warms up and is discarded
        for name in ("fit", "bare"):
            model = make()
            sync()
            t0 = time.perf_counter()
            if name == "fit":
                fit(model, data, BetaELBO(1.0), epochs=args.epochs, batch_size=args.batch_size, progress=False)
            else:
                bare_loop(model, data.x, args.epochs, args.batch_size, 1e-3, 0)
            sync()
            if r:
                rates[name].append(n_used / (time.perf_counter() - t0))
    fit_rate, bare_rate = statistics.median(rates["fit"]), statistics.median(rates["bare"])
    print(config.describe(), f" load average {os.getloadavg()[0]:.2f}")
    print(f"data: {args.n} dSprites 32x32, MLP VAE (hidden 256, latent 10), batch {args.batch_size}, "
          f"{args.epochs} epochs x {args.repeats} repeats")
    print(f"vaelib.train.fit : {fit_rate:10.0f} samples/s (median)")
    print(f"bare loop        : {bare_rate:10.0f} samples/s (median)")
    print(f"ratio fit / bare : {fit_rate / bare_rate:.3f}")


if __name__ == "__main__":
    main()
