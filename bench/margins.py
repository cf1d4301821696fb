"""How well does each speaker loss survive label noise? Verification EER on synthetic speakers.

A small MLP learns embeddings from synthetic "utterances" of 200 training classes
whose labels are partly flipped (as pseudo-labels from clustering are), one run per
loss of :mod:`camsat_lobes.margins`; it is scored on verification trials between 50
held-out classes. Prints a markdown table: one row per loss, one column per noise
level, EER in % (mean +- standard deviation over seeds).

The data are made so that noise matters: each class is an anisotropic Gaussian in a
32-dimensional latent space, every sample also carries a strong nuisance shared by
all classes (a "channel" subspace), and a random two-layer network maps the latent
vectors non-linearly to 64 observed dimensions. Flipped labels go to a uniformly
drawn other class (``--flip uniform``) or, like clustering errors, to one of the 5
classes nearest in the latent space (``--flip nearest``).

Usage::

    python bench/margins.py                       # noise 0, 10, 30, 50 %, 3 seeds
    python bench/margins.py --noise 0.1 0.3 0.5 --seeds 5 --flip nearest
"""

import argparse
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from camsat_lobes.margins import AAMSoftmax, AdaFace, AMSoftmax, CosFace, OCSoftmax, Softmax
from camsat_lobes.verification import compute_eer

logger = logging.getLogger(__name__)

LOSSES = {
    "AAM (m=0.2, s=30)": AAMSoftmax,
    "AM (m=0.35, s=30)": AMSoftmax,
    "CosFace (m=0.35, s=64)": CosFace,
    "OC-softmax (20, 0.9, 0.2)": OCSoftmax,
    "AdaFace (m=0.4, s=64)": AdaFace,
    "softmax": Softmax,
}


@dataclass
class Corpus:
    """Training inputs with their true classes, and held-out inputs to verify."""

    train_x: torch.Tensor
    train_y: torch.Tensor  # true classes
    train_latent_centres: np.ndarray
    test_x: torch.Tensor
    test_y: np.ndarray


def make_corpus(seed, n_train=200, n_test=50, per_train=40, per_test=20, latent=32, observed=64):
    """Synthetic speakers: anisotropic classes, a shared nuisance, a non-linear map."""
    rng = np.random.default_rng(seed)
    n_classes = n_train + n_test
    centres = rng.normal(size=(n_classes, latent))
    # Each class spreads along its own random directions, some much more than others.
    shapes = rng.normal(size=(n_classes, latent, latent)) / np.sqrt(latent)
    shapes *= rng.lognormal(mean=-0.7, sigma=0.5, size=(n_classes, 1, latent))
    nuisance = np.linalg.qr(rng.normal(size=(latent, 6)))[0].T * 1.2  # shared "channels"
    hidden = rng.normal(size=(latent, 128)) / np.sqrt(latent)
    output = rng.normal(size=(128, observed)) / np.sqrt(128)

    def sample(classes, per_class):
        """Observations and labels of ``per_class`` draws from each class."""
        labels = np.repeat(classes, per_class)
        z = centres[labels] + np.einsum(
            "nij,nj->ni", shapes[labels], rng.normal(size=(len(labels), latent))
        )
        z += rng.normal(size=(len(labels), nuisance.shape[0])) @ nuisance
        h = np.tanh(z @ hidden + 0.5)
        x = h @ output + 0.05 * rng.normal(size=(len(labels), observed))
        return torch.tensor(x, dtype=torch.float32), labels

    train_x, train_y = sample(np.arange(n_train), per_train)
    test_x, test_y = sample(np.arange(n_train, n_classes), per_test)
    return Corpus(train_x, torch.tensor(train_y), centres[:n_train], test_x, test_y)


def flip_labels(labels, fraction, centres, kind, seed, neighbours=5):
    """Replace ``fraction`` of the labels by another class (uniform or a near one)."""
    rng = np.random.default_rng(seed + 1000)
    labels = labels.numpy().copy()
    n_classes = len(centres)
    flipped = rng.choice(len(labels), size=int(round(fraction * len(labels))), replace=False)
    if kind == "uniform":
        offsets = rng.integers(1, n_classes, size=len(flipped))
        labels[flipped] = (labels[flipped] + offsets) % n_classes
    else:
        distances = ((centres[:, None] - centres[None]) ** 2).sum(-1)
        nearest = np.argsort(distances, axis=1)[:, 1 : neighbours + 1]
        labels[flipped] = nearest[labels[flipped], rng.integers(0, neighbours, len(flipped))]
    return torch.tensor(labels)


def encoder(observed=64, width=256, embedding_dim=64):
    """Build the small MLP that embeds the synthetic observations."""
    return nn.Sequential(
        nn.Linear(observed, width),
        nn.BatchNorm1d(width),
        nn.ReLU(),
        nn.Linear(width, width),
        nn.BatchNorm1d(width),
        nn.ReLU(),
        nn.Linear(width, embedding_dim),
    )


def train_and_score(corpus, labels, loss_cls, seed, epochs, batch_size, lr):
    """Train encoder + loss on (noisy) labels; return the EER on held-out trials."""
    torch.manual_seed(seed)
    model = encoder(corpus.train_x.shape[1])
    loss_fn = loss_cls(64, int(labels.max()) + 1)
    optimizer = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * -(-len(labels) // batch_size)
    )
    for epoch in range(1, epochs + 1):
        model.train(), loss_fn.train()
        loss_fn.set_epoch(epoch)
        for index in torch.randperm(len(labels)).split(batch_size):
            loss = loss_fn(model(corpus.train_x[index]), labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        embeddings = F.normalize(model(corpus.test_x), dim=1).numpy()
    first, second = np.triu_indices(len(embeddings), k=1)
    scores = np.einsum("nd,nd->n", embeddings[first], embeddings[second])
    return compute_eer(scores, corpus.test_y[first] == corpus.test_y[second])


def main():
    """Train every loss at every flip rate and seed; print the EER table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.3, 0.5])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--flip", choices=["uniform", "nearest"], default="uniform")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--losses", nargs="+", choices=list(LOSSES), default=list(LOSSES))
    args = parser.parse_args()
    for level in args.noise:
        if not 0.0 <= level < 1.0:
            parser.error(f"--noise {level}: give fractions of flipped labels in [0, 1)")
    torch.set_num_threads(args.threads)

    start = time.time()
    eer = {(name, level): [] for name in args.losses for level in args.noise}
    with tqdm(total=args.seeds * len(args.noise) * len(args.losses), desc="training runs") as bar:
        for seed in range(args.seeds):
            corpus = make_corpus(seed)
            for level in args.noise:
                labels = flip_labels(
                    corpus.train_y, level, corpus.train_latent_centres, args.flip, seed
                )
                for name in args.losses:
                    eer[name, level].append(
                        train_and_score(
                            corpus,
                            labels,
                            LOSSES[name],
                            seed,
                            args.epochs,
                            args.batch_size,
                            args.lr,
                        )
                    )
                    bar.update()

    header = " | ".join(f"{level:.0%} flipped" for level in args.noise)
    print(f"\n| loss | {header} |")
    print("|---|" + "---|" * len(args.noise))
    for name in args.losses:
        cells = [100 * np.array(eer[name, level]) for level in args.noise]
        print(f"| {name} | " + " | ".join(f"{c.mean():.2f} ± {c.std():.2f}" for c in cells) + " |")
    print(
        f"\nEER % on held-out classes (mean ± std over {args.seeds} seeds), {args.flip} flips, "
        f"{args.epochs} epochs; {time.time() - start:.0f} s."
    )


if __name__ == "__main__":
    main()
