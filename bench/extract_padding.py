"""What batch-independent embeddings cost: padded batches against unpadded groups.

``extract_embeddings`` embeds every utterance at its true length (rows of one length
share a pass, see ``camsat_lobes.encoders.base.embed_unpadded``), so an utterance's
embedding does not depend on its batch. This bench times that path against the
previous one, a forward pass on each zero-padded batch, in the same run on the same
synthetic utterances (harmonic signals of 1.5-3.5 s), with the recipe's stage-1
ECAPA-TDNN (channels 128 x 4, 384), 2 augmented views and batches of 16, with and
without cutting utterances to a fixed ``max_duration``. It prints the best of
``--repeats`` wall times and the largest difference between the two paths' clean
embeddings (L2-normalised).

Usage::

    python bench/extract_padding.py
    python bench/extract_padding.py --threads 2 --repeats 3
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from camsat_lobes.encoders import DINOEncoder, Encoder
from camsat_lobes.encoders.dino import DINOHead
from camsat_lobes.extract import extract_embeddings, load_embeddings

SAMPLE_RATE = 16000


class PaddedBatches(Encoder):
    """The previous embedding path: one forward pass on the zero-padded batch."""

    def __init__(self, inner):
        super().__init__(inner.sample_rate)
        self.inner = inner

    @property
    def embedding_dim(self):
        """Size of the wrapped encoder's embeddings."""
        return self.inner.embedding_dim

    @torch.no_grad()
    def embed(self, wavs, wav_lens=None):
        """Embed the padded batch as it is."""
        self.inner.eval()
        return self.inner._embed_batch(wavs.float(), wav_lens)


def write_corpus(folder, n_utterances, seed=0):
    """Write synthetic utterances and their manifest; return the manifest path."""
    rng = np.random.default_rng(seed)
    rows = ["ID,duration,wav,start,stop"]
    for i in range(n_utterances):
        t = np.arange(int(rng.uniform(1.5, 3.5) * SAMPLE_RATE)) / SAMPLE_RATE
        phase = 2 * np.pi * np.cumsum(rng.uniform(90, 220) * np.ones_like(t)) / SAMPLE_RATE
        x = sum(np.sin(k * phase) / k for k in range(1, 8)) + 0.01 * rng.standard_normal(t.size)
        path = folder / f"u{i}.wav"
        soundfile.write(str(path), (0.1 * x / np.abs(x).max()).astype(np.float32), SAMPLE_RATE)
        rows.append(f"u{i},{t.size / SAMPLE_RATE},{path},0,{t.size}")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def main():
    """Time both paths with and without a fixed max_duration; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--utterances", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    network = ECAPA_TDNN(
        80, channels=[128, 128, 128, 128, 384], attention_channels=64, lin_neurons=192
    )
    unpadded = DINOEncoder(network, DINOHead(192, 64, 64, 32)).eval()
    paths = {"padded batches": PaddedBatches(unpadded), "unpadded groups": unpadded}
    folder = Path(tempfile.mkdtemp())
    manifest = write_corpus(folder, args.utterances)
    print(f"{args.utterances} utterances, 2 views, batch 16, {args.threads} torch thread(s)\n")
    print("| max_duration | padded batches (s) | unpadded groups (s) | ratio | max diff |")
    print("|---|---:|---:|---:|---:|")
    for max_duration in (None, 2.0):
        best, clean = {}, {}
        for repeat in range(args.repeats):
            for name, encoder in paths.items():
                out = folder / f"{name}-{max_duration}-{repeat}".replace(" ", "_")
                start = time.perf_counter()
                extract_embeddings(
                    encoder, manifest, out, n_views=2, batch_size=16,
                    max_duration=max_duration, progressbar=False,
                )  # fmt: skip
                best[name] = min(best.get(name, np.inf), time.perf_counter() - start)
                x = np.asarray(load_embeddings(out)[0])
                clean[name] = x / np.linalg.norm(x, axis=1, keepdims=True)
        before, after = best["padded batches"], best["unpadded groups"]
        difference = np.abs(clean["padded batches"] - clean["unpadded groups"]).max()
        print(
            f"| {max_duration or 'none'} | {before:.2f} | {after:.2f} | "
            f"{after / before:.2f}x | {difference:.3f} |"
        )


if __name__ == "__main__":
    main()
