"""The i-vector extractor behind the stage-1 encoder interface.

:class:`IVectorEncoder` holds the front end, the UBM and the total-variability
model, trains them on the training manifest (UBM first, then each EM iteration of
the matrix, every step checkpointed so a stopped training resumes) and extracts
i-vectors batch-independently.

Authors
 * camsat contributors 2026
"""

import json
import logging
import math
import pathlib
import random

import torch
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.epoch_loop import EpochCounter
from tqdm import tqdm

from camsat_lobes.checkpoints import CompleteCheckpointer
from camsat_lobes.encoders.base import Encoder, embed_unpadded
from camsat_lobes.encoders.data import read_audio_columns, waveform_batches
from camsat_lobes.encoders.ivector.frontend import MFCCFrontEnd
from camsat_lobes.encoders.ivector.gmm import DiagonalGMM
from camsat_lobes.encoders.ivector.total_variability import TotalVariability

logger = logging.getLogger(__name__)


class IVectorEncoder(Encoder):
    """Unsupervised i-vector extractor behind the stage-1 encoder interface.

    Arguments
    ---------
    n_components : int
        UBM Gaussians.
    rank : int
        i-vector size.
    n_mfcc, n_mels, deltas, vad_threshold_db
        Front-end settings (see :class:`MFCCFrontEnd`).
    ubm_iterations_per_split : int
        EM iterations after each UBM split.
    ubm_final_iterations : int
        Extra EM iterations of the full UBM.
    tv_iterations : int
        EM iterations of the total-variability matrix (one checkpoint each).
    max_ubm_frames : int
        Frames drawn at random from the training audio for the UBM.
    max_utterances : int
        Utterances (drawn at random) whose statistics train the matrix.
    batch_size : int
        Utterances per batch when reading audio.
    num_workers : int
        Audio-loading processes.
    seed : int
        Seed of all random draws.
    sample_rate : int
        Sampling rate (Hz).

    Example
    -------
    >>> encoder = IVectorEncoder(n_components=4, rank=3)
    >>> encoder.embedding_dim
    3
    >>> encoder.embed(torch.randn(2, 16000)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_components=64,
        rank=100,
        n_mfcc=20,
        n_mels=40,
        deltas=True,
        vad_threshold_db=30.0,
        ubm_iterations_per_split=4,
        ubm_final_iterations=10,
        tv_iterations=10,
        max_ubm_frames=300_000,
        max_utterances=20_000,
        batch_size=32,
        num_workers=0,
        seed=1234,
        sample_rate=16000,
    ):
        super().__init__(sample_rate)
        self.front_end = MFCCFrontEnd(sample_rate, n_mfcc, n_mels, deltas, vad_threshold_db)
        feature_dim = self.front_end.feature_dim
        self.ubm = DiagonalGMM(n_components, feature_dim)
        self.tv = TotalVariability(n_components, feature_dim, rank)
        self.tv.initialize(self.ubm.variances, seed)
        self.ubm_iterations_per_split = ubm_iterations_per_split
        self.ubm_final_iterations = ubm_final_iterations
        self.tv_iterations = tv_iterations
        self.max_ubm_frames = max_ubm_frames
        self.max_utterances = max_utterances
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.history = {"ubm": [], "tv": []}

    @property
    def embedding_dim(self):
        """i-vector size."""
        return self.tv.rank

    def statistics(self, wavs, wav_lens=None):
        """Zeroth- and centred first-order Baum-Welch statistics of a batch.

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``.
        wav_lens : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        zeroth : torch.Tensor
            ``(batch, n_components)``.
        first : torch.Tensor
            ``(batch, n_components, feature_dim)``, centred on the UBM means.
        """
        feats, mask = self.front_end(wavs.to(self.device).float(), wav_lens)
        gamma = self.ubm.posteriors(feats) * mask.unsqueeze(2)
        zeroth = gamma.sum(dim=1)
        first = gamma.transpose(1, 2) @ feats - zeroth.unsqueeze(2) * self.ubm.means
        return zeroth, first

    @torch.no_grad()
    def embed(self, wavs, wav_lens=None):
        """Extract i-vectors, shape ``(batch, rank)``.

        Padding never reaches the front end (see
        :func:`~camsat_lobes.encoders.base.embed_unpadded`), so an utterance gets the
        same i-vector alone as in any batch.

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``, zero-padded.
        wav_lens : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        torch.Tensor
            i-vectors.

        Example
        -------
        >>> encoder = IVectorEncoder(n_components=4, rank=3)
        >>> wavs = torch.randn(2, 16000)
        >>> wavs[1, 9000:] = 0.0
        >>> batched = encoder.embed(wavs, torch.tensor([1.0, 9000 / 16000]))
        >>> torch.allclose(batched[1:], encoder.embed(wavs[1:, :9000]), atol=1e-5)
        True
        """
        return embed_unpadded(self._embed_batch, wavs.to(self.device).float(), wav_lens)

    def _embed_batch(self, wavs, wav_lens):
        """Compute statistics and i-vectors of a batch taken as it is."""
        zeroth, first = self.statistics(wavs, wav_lens)
        return self.tv.extract(zeroth, first, self.ubm.variances)

    def fit(self, train_manifest, save_folder, augmentation_sets=None, run_opts=None, seed=None):
        """Train UBM and total-variability matrix, resuming from ``<save_folder>/save``.

        The UBM and each EM iteration of the matrix are checkpointed. Labels and
        augmentation sets are not used. In distributed runs the main process trains
        and the others load its result.

        Arguments
        ---------
        train_manifest : str or pathlib.Path
            Training manifest; only the audio columns are read.
        save_folder : str or pathlib.Path
            Where checkpoints and ``ivector_log.json`` (EM log-likelihoods) go.
        augmentation_sets : dict, optional
            Ignored (i-vectors are trained on clean audio).
        run_opts : dict, optional
            ``device`` is used (e.g. ``"cuda:0"``).
        seed : int, optional
            Ignored (the i-vector training is seeded by its own settings).

        Returns
        -------
        IVectorEncoder
            ``self``, trained.
        """
        device = (run_opts or {}).get("device")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.to(device)
        save_folder = pathlib.Path(save_folder)
        run_on_main(self._train, args=[train_manifest, save_folder])
        self._checkpointer(save_folder, EpochCounter(self.tv_iterations)).recover_if_possible()
        if not bool(self.ubm.trained):
            raise RuntimeError(f"No trained UBM found in {save_folder / 'save'}.")
        return self

    def _checkpointer(self, save_folder, counter):
        return CompleteCheckpointer(
            save_folder / "save", recoverables={"ubm": self.ubm, "tv": self.tv, "counter": counter}
        )

    def _train(self, train_manifest, save_folder):
        counter = EpochCounter(self.tv_iterations)
        checkpointer = self._checkpointer(save_folder, counter)
        checkpointer.recover_if_possible()
        log_path = save_folder / "ivector_log.json"
        if log_path.is_file():
            self.history = json.loads(log_path.read_text())
        if bool(self.ubm.trained) and counter.current >= counter.limit:
            logger.info("i-vector extractor already trained in %s", save_folder)
            return
        data = read_audio_columns(train_manifest)
        rng = random.Random(self.seed)
        order = list(range(len(data)))
        rng.shuffle(order)
        order = sorted(order[: self.max_utterances])
        if not bool(self.ubm.trained):
            frames = self._ubm_frames(data, order)
            logger.info("UBM: %d components, %d frames", self.ubm.n_components, len(frames))
            self.history["ubm"] = self.ubm.fit(
                frames, self.ubm_iterations_per_split, self.ubm_final_iterations
            )
            self.tv.initialize(self.ubm.variances, self.seed)
            checkpointer.save_and_keep_only(meta={"stage": "ubm"})
            log_path.write_text(json.dumps(self.history))
        zeroth, first = self._training_statistics(data, order)
        for iteration in tqdm(counter, desc="T-matrix EM", initial=counter.current):
            log_likelihood = self.tv.em_step(zeroth, first, self.ubm.variances)
            self.history["tv"].append(log_likelihood)
            logger.info("T-matrix EM iteration %d: log-likelihood %.3f", iteration, log_likelihood)
            checkpointer.save_and_keep_only(meta={"stage": "tv", "iteration": iteration})
            log_path.write_text(json.dumps(self.history))

    @torch.no_grad()
    def _ubm_frames(self, data, order):
        generator = torch.Generator().manual_seed(self.seed)
        per_utterance = max(1, math.ceil(self.max_ubm_frames / max(len(order), 1)))
        frames = []
        for batch in tqdm(self._batches(data, order), desc="UBM frames"):
            feats, mask = self.front_end(
                batch.sig.data.to(self.device), batch.sig.lengths.to(self.device)
            )
            for utt_feats, utt_mask in zip(feats, mask):
                voiced = utt_feats[utt_mask]
                keep = torch.randperm(voiced.shape[0], generator=generator)[:per_utterance]
                frames.append(voiced[keep.to(voiced.device)])
        return torch.cat(frames)[: self.max_ubm_frames]

    @torch.no_grad()
    def _training_statistics(self, data, order):
        zeroth, first = [], []
        for batch in tqdm(self._batches(data, order), desc="Baum-Welch statistics"):
            n_b, f_b = self.statistics(batch.sig.data, batch.sig.lengths)
            zeroth.append(n_b.cpu())
            first.append(f_b.cpu())
        return torch.cat(zeroth), torch.cat(first)

    def _batches(self, data, order):
        durations = [row["duration"] for row in data.values()]
        by_length = sorted(order, key=lambda i: -durations[i])
        return waveform_batches(data, by_length, self.batch_size, self.num_workers)
