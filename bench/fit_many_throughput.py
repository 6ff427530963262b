"""Throughput of vaelib.batched.fit_many (K models as one batched computation) against K fit calls.

For each of the book's MLP VAEs (digits 8x8; dSprites 32x32) it trains the same K = 12 models,
from the same initialisations and seeds, once one after another with ``fit`` and once together
with ``fit_many``, in alternating rounds so that machine load affects both alike, and prints the
median samples/second (K x samples seen) of each and their ratio.

    python bench/fit_many_throughput.py [--k 12] [--repeats 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from vaelib import config
from vaelib.batched import fit_many
from vaelib.data import dsprites, load_digits
from vaelib.models import VAE
from vaelib.objectives import BetaELBO
from vaelib.train import fit

# name -> (data, latent, hidden, batch): the chapters' models (06-08 on digits, 09 on dSprites 32x32)
CASES = {
    "digits 8x8, MLP 64-256-256-16": (lambda: load_digits("train", binarize=True), 16, 256, 64),
    "digits 8x8, MLP 64-128-128-16": (lambda: load_digits("train", binarize=True), 16, 128, 64),
    "dSprites 32x32, MLP 1024-128-128-10": (lambda: dsprites(4096, 32, seed=0), 10, 128, 64),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    config.apply_threads()  # VAEBOOK_THREADS, else this process's share of the cores
    dev = config.device()
    print(config.describe(), f" load average {os.getloadavg()[0]:.2f}")
    seeds = list(range(args.k))
    for name, (load, latent, hidden, batch) in CASES.items():
        data = load().to(dev)

        def make():
            out = []
            for s in seeds:
                torch.manual_seed(s)
                out.append(VAE(data.shape, latent, hidden=hidden).to(dev))
            return out

        objs = [BetaELBO(1.0 + s % 4) for s in seeds]  # a beta sweep: different objectives per model
        n_used = args.k * (len(data) // batch) * batch * args.epochs
        rates = {"one after another (fit)": [], "batched (fit_many)": []}
        for r in range(args.repeats + 1):  # the first round warms up and is discarded
            for how in rates:
                models = make()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                if how.startswith("batched"):
                    fit_many(models, data, objs, seeds=seeds, epochs=args.epochs, batch_size=batch, progress=False)
                else:
                    for m, o, s in zip(models, objs, seeds):
                        fit(m, data, o, seed=s, epochs=args.epochs, batch_size=batch, progress=False)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                if r:
                    rates[how].append(n_used / (time.perf_counter() - t0))
        med = {how: statistics.median(v) for how, v in rates.items()}
        seq, bat = med.values()
        print(f"\n{name}: K = {args.k}, batch {batch}, {args.epochs} epoch(s) x {args.repeats} repeats")
        for how, v in med.items():
            print(f"  {how:26s}: {v:10.0f} samples/s (median)")
        print(f"  ratio fit_many / fit (batched / one after another): {bat / seq:.2f}")


if __name__ == "__main__":
    main()
