"""Recorders of a phase's time and memory: a clusterer's ``fit``, the GPU memory faiss uses.

:class:`RecordedClusterer` wraps the clusterer that the recipe's cluster stage fits and
records the seconds and peak memory of its ``fit`` (nothing else of the stage changes).
:class:`DeviceMemoryPoller` samples the GPU memory in use while a block runs, for
libraries (faiss-gpu) that allocate outside torch's caching allocator.
"""

import threading
import time

from asnorm import peak_rss_mib


class DeviceMemoryPoller:
    """Peak GPU memory in use while a ``with`` block runs, polled with ``cudaMemGetInfo``.

    faiss-gpu allocates outside torch's caching allocator, so
    ``torch.cuda.max_memory_allocated`` does not see it; the device's used memory
    (total - free) is sampled from a thread (faiss releases the GIL while it works) and
    reported above its value when the block started.

    Arguments
    ---------
    interval : float
        Seconds between two samples.

    Example
    -------
    >>> poller = DeviceMemoryPoller()
    >>> poller.peak_mib is None
    True
    """

    def __init__(self, interval=0.02):
        self.interval = interval
        self.baseline = None
        self.peak = None
        self._stop = threading.Event()
        self._thread = None

    @staticmethod
    def used_bytes():
        """Return the bytes in use on the current device (every process's)."""
        import torch

        free, total = torch.cuda.mem_get_info()
        return total - free

    def _poll(self):
        """Sample until stopped."""
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.used_bytes())

    def __enter__(self):
        self.baseline = self.peak = self.used_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.used_bytes())

    @property
    def peak_mib(self):
        """Peak MiB in use above the start of the block (None before the block ran)."""
        if self.peak is None:
            return None
        return (self.peak - self.baseline) / 2**20


class RecordedClusterer:
    """A clusterer whose ``fit`` records its wall time and peak memory; it changes nothing else.

    Arguments
    ---------
    clusterer : object
        Any clusterer with ``n_clusters`` and ``fit(embeddings, views, true_labels)``.
    device : str
        ``"cuda"`` also records ``torch.cuda.max_memory_allocated`` during ``fit``.

    Example
    -------
    >>> import numpy as np
    >>> from camsat_lobes.clustering import KMeansClusterer
    >>> recorded = RecordedClusterer(KMeansClusterer(2))
    >>> x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    >>> recorded.fit(x).labels.shape, recorded.n_clusters, sorted(recorded.record)[:2]
    ((20,), 2, ['cpu_s', 'cuda_max_mib'])
    """

    def __init__(self, clusterer, device="cpu"):
        self.clusterer = clusterer
        self.device = device
        self.record = {}
        self.result = None

    @property
    def n_clusters(self):
        """K of the wrapped clusterer (the stage records it as ``k_initial``)."""
        return self.clusterer.n_clusters

    def fit(self, embeddings, views=None, true_labels=None):
        """Fit the wrapped clusterer and record the seconds and peak memory of the call.

        Arguments
        ---------
        embeddings : array_like
            N×D embeddings.
        views : array_like, optional
            N×V×D views.
        true_labels : array_like, optional
            True labels (the recipe passes them for the per-epoch history).

        Returns
        -------
        ClusteringResult
            The wrapped clusterer's result.
        """
        cuda = self.device == "cuda"
        if cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        rss_before = peak_rss_mib()
        start, cpu = time.perf_counter(), time.process_time()
        self.result = self.clusterer.fit(embeddings, views=views, true_labels=true_labels)
        if cuda:
            torch.cuda.synchronize()
        self.record = {
            "fit_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu,
            "rss_before_mib": rss_before,
            "peak_rss_mib": peak_rss_mib(),
            "cuda_max_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        }
        return self.result
