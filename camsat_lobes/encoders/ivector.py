"""i-vector extractor: MFCC front end, diagonal GMM-UBM, total-variability model.

Everything is unsupervised and batched in torch (it runs on a GPU when given one):

1. :class:`MFCCFrontEnd`: MFCCs with deltas, an energy voice-activity detector and
   per-utterance mean/variance normalisation.
2. :class:`DiagonalGMM`: the universal background model, grown by splitting
   components and trained by EM on frames pooled from all training utterances.
3. :class:`TotalVariability`: the low-rank model ``M(u) = m + T w(u)``, ``w ~ N(0, I)``,
   trained by EM on the utterances' Baum-Welch statistics; the i-vector of an
   utterance is the posterior mean of ``w``.

:class:`IVectorEncoder` ties them together behind the stage-1 encoder interface.

Authors
 * camsat contributors 2026
"""

import json
import logging
import math
import pathlib
import random

import torch
from speechbrain.lobes.features import MFCC
from speechbrain.processing.features import spectral_magnitude
from speechbrain.utils.distributed import run_on_main
from speechbrain.utils.epoch_loop import EpochCounter
from tqdm import tqdm

from camsat_lobes.checkpoints import CompleteCheckpointer
from camsat_lobes.encoders.base import Encoder, embed_unpadded, relative_lengths
from camsat_lobes.encoders.data import read_audio_columns, waveform_batches

logger = logging.getLogger(__name__)


class MFCCFrontEnd(torch.nn.Module):
    """MFCCs (+ deltas) with energy voice-activity detection and per-utterance CMVN.

    Arguments
    ---------
    sample_rate : int
        Sampling rate (Hz).
    n_mfcc : int
        Cepstral coefficients per frame.
    n_mels : int
        Mel bands before the DCT.
    deltas : bool
        Whether to append first and second derivatives (triples the size).
    vad_threshold_db : float or None
        Frames more than this many dB below the loudest frame of the utterance
        are dropped; ``None`` keeps every frame.

    Example
    -------
    >>> front_end = MFCCFrontEnd()
    >>> feats, mask = front_end(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> feats.shape, mask.shape, front_end.feature_dim
    (torch.Size([2, 101, 60]), torch.Size([2, 101]), 60)
    >>> int(mask[1].sum()) <= 51
    True
    """

    def __init__(self, sample_rate=16000, n_mfcc=20, n_mels=40, deltas=True, vad_threshold_db=30.0):
        super().__init__()
        self.mfcc = MFCC(
            sample_rate=sample_rate, n_mfcc=n_mfcc, n_mels=n_mels, deltas=deltas, context=False
        )
        self.deltas = deltas
        self.vad_threshold_db = vad_threshold_db
        self.feature_dim = n_mfcc * (3 if deltas else 1)

    def forward(self, wavs, wav_lens=None):
        """Compute normalised features and the mask of kept frames.

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``.
        wav_lens : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        feats : torch.Tensor
            Shape ``(batch, frames, feature_dim)``; frames outside the mask are 0.
        mask : torch.Tensor
            Boolean, shape ``(batch, frames)``: real, voiced frames.
        """
        lengths = relative_lengths(wavs, wav_lens)
        stft = self.mfcc.compute_STFT(wavs)
        power = spectral_magnitude(stft, power=1)
        feats = self.mfcc.compute_dct(self.mfcc.compute_fbanks(power))
        if self.deltas:
            delta = self.mfcc.compute_deltas(feats)
            feats = torch.cat([feats, delta, self.mfcc.compute_deltas(delta)], dim=2)
        n_frames = feats.shape[1]
        valid = torch.arange(n_frames, device=wavs.device) < (lengths * n_frames).round().clamp(
            min=1
        ).unsqueeze(1)
        mask = valid
        if self.vad_threshold_db is not None:
            energy = 10 * torch.log10(power.sum(dim=2) + 1e-10)
            loudest = energy.masked_fill(~valid, -math.inf).amax(dim=1, keepdim=True)
            mask = valid & (energy > loudest - self.vad_threshold_db)
        feats = masked_standardize(feats, mask)
        return feats, mask


def masked_standardize(feats, mask, eps=1e-5):
    """Mean/variance-normalise each utterance over its masked frames (others set to 0).

    Arguments
    ---------
    feats : torch.Tensor
        Shape ``(batch, frames, dim)``.
    mask : torch.Tensor
        Boolean, shape ``(batch, frames)``.
    eps : float
        Variance floor.

    Returns
    -------
    torch.Tensor
        Normalised features, same shape.

    Example
    -------
    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> mask = torch.tensor([[True, True, False]])
    >>> masked_standardize(x, mask).flatten().round(decimals=3).tolist()
    [-1.0, 1.0, 0.0]
    """
    weight = mask.unsqueeze(2).to(feats.dtype)
    count = weight.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (feats * weight).sum(dim=1, keepdim=True) / count
    var = ((feats - mean).pow(2) * weight).sum(dim=1, keepdim=True) / count
    return (feats - mean) / torch.sqrt(var + eps) * weight


class DiagonalGMM(torch.nn.Module):
    """Gaussian mixture with diagonal covariances, trained by EM.

    Training starts from one Gaussian and repeatedly splits the heaviest components
    along their principal axis, running EM after each split.

    Arguments
    ---------
    n_components : int
        Number of Gaussians.
    feature_dim : int
        Size of the frames.
    variance_floor : float
        Variances are floored at this fraction of the global variance.

    Example
    -------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> frames = torch.cat([torch.randn(500, 2) - 3, torch.randn(500, 2) + 3])
    >>> gmm = DiagonalGMM(2, 2)
    >>> history = gmm.fit(frames, iterations_per_split=5)
    >>> history[-1] > history[0]
    True
    >>> sorted(gmm.means[:, 0].round().tolist())
    [-3.0, 3.0]
    """

    def __init__(self, n_components, feature_dim, variance_floor=1e-3):
        super().__init__()
        self.n_components = int(n_components)
        self.variance_floor = variance_floor
        self.register_buffer("weights", torch.full((n_components,), 1.0 / n_components))
        self.register_buffer("means", torch.zeros(n_components, feature_dim))
        self.register_buffer("variances", torch.ones(n_components, feature_dim))
        self.register_buffer("trained", torch.tensor(False))

    def component_log_likelihoods(self, frames):
        """``log w_c + log N(x | mu_c, Sigma_c)`` for every frame and component.

        Arguments
        ---------
        frames : torch.Tensor
            Shape ``(..., feature_dim)``.

        Returns
        -------
        torch.Tensor
            Shape ``(..., n_components)``.
        """
        precisions = 1.0 / self.variances
        constant = (
            torch.log(self.weights)
            - 0.5 * torch.log(2 * math.pi * self.variances).sum(dim=1)
            - 0.5 * (self.means.pow(2) * precisions).sum(dim=1)
        )
        quadratic = frames.pow(2) @ precisions.t() - 2 * frames @ (self.means * precisions).t()
        return constant - 0.5 * quadratic

    def posteriors(self, frames):
        """Component responsibilities of each frame (shape of the frames, components last)."""
        return torch.softmax(self.component_log_likelihoods(frames), dim=-1)

    def em_step(self, frames, chunk_size=65536):
        """One EM iteration; returns the mean frame log-likelihood before the update.

        Arguments
        ---------
        frames : torch.Tensor
            Shape ``(n_frames, feature_dim)``.
        chunk_size : int
            Frames per chunk of the E-step (bounds memory).

        Returns
        -------
        float
            Average log-likelihood of the frames under the parameters before the step.
        """
        zeroth = torch.zeros_like(self.weights, dtype=torch.float64)
        first = torch.zeros_like(self.means, dtype=torch.float64)
        second = torch.zeros_like(self.means, dtype=torch.float64)
        total = 0.0
        for chunk in frames.split(chunk_size):
            log_joint = self.component_log_likelihoods(chunk)
            log_marginal = torch.logsumexp(log_joint, dim=1, keepdim=True)
            total += float(log_marginal.double().sum())
            gamma = torch.exp(log_joint - log_marginal).double()
            chunk = chunk.double()
            zeroth += gamma.sum(dim=0)
            first += gamma.t() @ chunk
            second += gamma.t() @ chunk.pow(2)
        global_var = frames.double().var(dim=0)
        occupancy = zeroth.clamp(min=1e-10).unsqueeze(1)
        means = first / occupancy
        variances = torch.maximum(
            second / occupancy - means.pow(2), self.variance_floor * global_var
        )
        self.weights.copy_((zeroth / zeroth.sum()).clamp(min=1e-10))
        self.means.copy_(means)
        self.variances.copy_(variances)
        return total / frames.shape[0]

    def fit(self, frames, iterations_per_split=4, final_iterations=10):
        """Grow the mixture from one Gaussian by splitting, with EM after each split.

        Arguments
        ---------
        frames : torch.Tensor
            Shape ``(n_frames, feature_dim)``.
        iterations_per_split : int
            EM iterations after each split.
        final_iterations : int
            Extra EM iterations once all components exist.

        Returns
        -------
        list of float
            Mean frame log-likelihood before each EM iteration, in order; it does
            not decrease between the splits.
        """
        if frames.shape[0] < 2 * self.n_components:
            raise ValueError(
                f"A {self.n_components}-component UBM needs at least {2 * self.n_components} "
                f"frames, got {frames.shape[0]}; use more audio or fewer components."
            )
        weights = torch.ones(1, device=frames.device, dtype=frames.dtype)
        means = frames.mean(dim=0, keepdim=True)
        variances = frames.var(dim=0, keepdim=True)
        self.history, self.split_points = [], []
        while True:
            self._set(weights, means, variances)
            iterations = iterations_per_split
            if weights.numel() == self.n_components:
                iterations += final_iterations
            self.split_points.append(len(self.history))
            for _ in range(iterations):
                self.history.append(self.em_step(frames))
            if weights.numel() == self.n_components:
                break
            weights, means, variances = self._split(frames)
        self.trained.fill_(True)
        return self.history

    def _set(self, weights, means, variances):
        self.weights, self.means, self.variances = weights.clone(), means.clone(), variances.clone()

    @torch.no_grad()
    def _split(self, frames, chunk_size=4096):
        """Split the heaviest components in two along their main axis of variation."""
        n_split = min(self.weights.numel(), self.n_components - self.weights.numel())
        order = torch.argsort(self.weights, descending=True)[:n_split]
        dim = self.means.shape[1]
        second = torch.zeros(n_split, dim, dim, dtype=torch.float64, device=frames.device)
        first = torch.zeros(n_split, dim, dtype=torch.float64, device=frames.device)
        occupancy = torch.zeros(n_split, dtype=torch.float64, device=frames.device)
        for chunk in frames.split(chunk_size):
            gamma = self.posteriors(chunk)[:, order].double()
            chunk = chunk.double()
            second += torch.einsum("nc,nf,ng->cfg", gamma, chunk, chunk)
            first += gamma.t() @ chunk
            occupancy += gamma.sum(dim=0)
        occupancy = occupancy.clamp(min=1e-10)
        mean = first / occupancy[:, None]
        covariance = second / occupancy[:, None, None] - mean.unsqueeze(2) * mean.unsqueeze(1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        offset = 0.5 * eigenvectors[:, :, -1] * eigenvalues[:, -1:].clamp(min=0).sqrt()
        offset = offset.to(self.means)
        means = torch.cat([self.means, self.means[order] + offset])
        means[order] -= offset
        weights = torch.cat([self.weights, self.weights[order] / 2])
        weights[order] /= 2
        variances = torch.cat([self.variances, self.variances[order]])
        return weights, means, variances


class TotalVariability(torch.nn.Module):
    """Total-variability (i-vector) model over a fixed UBM, trained by EM.

    For an utterance with zeroth-order statistics ``N_c`` and centred first-order
    statistics ``F_c`` the posterior of ``w`` is Gaussian with precision
    ``L = I + sum_c N_c T_c' S_c^-1 T_c`` and mean ``L^-1 T' S^-1 F`` (the i-vector).

    Arguments
    ---------
    n_components : int
        UBM components.
    feature_dim : int
        Frame size.
    rank : int
        i-vector size.

    Example
    -------
    >>> tv = TotalVariability(n_components=4, feature_dim=3, rank=2)
    >>> tv.initialize(torch.ones(4, 3), seed=0)
    >>> zeroth, first = torch.rand(10, 4) * 20, torch.randn(10, 4, 3)
    >>> likelihoods = [tv.em_step(zeroth, first, torch.ones(4, 3)) for _ in range(3)]
    >>> likelihoods[0] < likelihoods[1] < likelihoods[2]
    True
    >>> tv.extract(zeroth, first, torch.ones(4, 3)).shape
    torch.Size([10, 2])
    """

    def __init__(self, n_components, feature_dim, rank):
        super().__init__()
        self.rank = int(rank)
        self.register_buffer("matrix", torch.zeros(n_components, feature_dim, rank))

    def initialize(self, variances, seed=0):
        """Random start scaled by the UBM standard deviations.

        Arguments
        ---------
        variances : torch.Tensor
            UBM variances, shape ``(n_components, feature_dim)``.
        seed : int
            Seed of the random start.
        """
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(self.matrix.shape, generator=generator, dtype=torch.float64)
        scale = variances.double().sqrt().unsqueeze(2).cpu()
        self.matrix.copy_((noise * scale * 0.1).to(self.matrix))

    def posterior(self, zeroth, first, variances):
        """Posterior of the latent factors.

        Arguments
        ---------
        zeroth : torch.Tensor
            ``N``, shape ``(batch, n_components)``.
        first : torch.Tensor
            Centred ``F``, shape ``(batch, n_components, feature_dim)``.
        variances : torch.Tensor
            UBM variances, shape ``(n_components, feature_dim)``.

        Returns
        -------
        mean : torch.Tensor
            ``(batch, rank)``.
        covariance : torch.Tensor
            ``(batch, rank, rank)``: ``L^-1``.
        log_likelihood : torch.Tensor
            ``(batch,)``: ``0.5 b' L^-1 b - 0.5 log|L|`` (the log-likelihood of the
            statistics up to terms that do not depend on ``T``).
        """
        matrix = self.matrix.double()
        scaled = matrix / variances.double().unsqueeze(2)
        gram = torch.einsum("cfr,cfs->crs", matrix, scaled)
        eye = torch.eye(self.rank, dtype=torch.float64, device=matrix.device)
        precision = eye + torch.einsum("bc,crs->brs", zeroth.double(), gram)
        linear = torch.einsum("bcf,cfr->br", first.double(), scaled)
        cholesky = torch.linalg.cholesky(precision)
        covariance = torch.cholesky_inverse(cholesky)
        mean = (covariance @ linear.unsqueeze(2)).squeeze(2)
        log_det = 2 * torch.log(torch.diagonal(cholesky, dim1=1, dim2=2)).sum(dim=1)
        log_likelihood = 0.5 * (linear * mean).sum(dim=1) - 0.5 * log_det
        return mean, covariance, log_likelihood

    def em_step(self, zeroth, first, variances, batch_size=256):
        """One EM iteration over all utterances' statistics.

        Arguments
        ---------
        zeroth : torch.Tensor
            ``(n_utts, n_components)``.
        first : torch.Tensor
            Centred first-order statistics, ``(n_utts, n_components, feature_dim)``.
        variances : torch.Tensor
            UBM variances.
        batch_size : int
            Utterances per batch of the E-step.

        Returns
        -------
        float
            Mean log-likelihood per utterance before the update (up to a constant).
        """
        n_components, feature_dim, rank = self.matrix.shape
        device = self.matrix.device
        acc_a = torch.zeros(n_components, rank, rank, dtype=torch.float64, device=device)
        acc_c = torch.zeros(n_components, feature_dim, rank, dtype=torch.float64, device=device)
        total = 0.0
        for start in range(0, zeroth.shape[0], batch_size):
            n_b = zeroth[start : start + batch_size].to(device).double()
            f_b = first[start : start + batch_size].to(device).double()
            mean, covariance, log_likelihood = self.posterior(n_b, f_b, variances.to(device))
            second = covariance + mean.unsqueeze(2) * mean.unsqueeze(1)
            acc_a += torch.einsum("bc,brs->crs", n_b, second)
            acc_c += torch.einsum("bcf,br->cfr", f_b, mean)
            total += float(log_likelihood.sum())
        solution = torch.linalg.solve(acc_a, acc_c.transpose(1, 2)).transpose(1, 2)
        self.matrix.copy_(solution.to(self.matrix))
        return total / zeroth.shape[0]

    def extract(self, zeroth, first, variances):
        """i-vectors (posterior means), shape ``(batch, rank)``, in float32."""
        return self.posterior(zeroth, first, variances)[0].float()


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

    def fit(self, train_manifest, save_folder, augmentation_sets=None, run_opts=None):
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
