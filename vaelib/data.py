"""Data sets for the book, as tensors that can live on the training device.

* :func:`load_digits` -- scikit-learn's 8x8 handwritten digits (ship with scikit-learn, no download).
* :func:`dsprites` -- procedurally rendered dSprites on the canonical factor grid.
* :func:`mnist` -- the real MNIST, downloaded and checksum-verified (needs internet).

Every loader returns an :class:`ImageData`. Images are flattened to ``(N, D)`` for the MLP
models; ``ImageData.shape`` keeps the image shape ``(C, H, W)`` for the convolutional ones and
for plots. Pixel values are in ``[0, 1]``; labels are int64, whatever integer type they came in.

The loaders read no budget: which data set a chapter trains on at which budget is the book's
choice (:func:`vaelib.book.load_for_budget`).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .config import check_seed

__all__ = [
    "ImageData",
    "load_digits",
    "DSPRITES_FACTORS",
    "dsprites_factor_grid",
    "render_dsprites",
    "dsprites",
    "dsprites_image_counts",
    "blobs",
    "read_idx",
    "mnist",
    "fashion_mnist",
]


@dataclass(frozen=True)
class ImageData:
    """Images ``x`` of shape ``(N, D)`` with values in [0, 1] and labels ``y``, at least one row.

    ``y`` is ``(N,)`` class labels or ``(N, K)`` factor labels, of any integer dtype (IDX files store
    uint8); they are stored as int64, so every user of ``y`` sees int64. A floating-point ``y`` is
    refused (4.7 would become 4 without a word), and so is data with no rows. With ``binarize`` set,
    :meth:`batch` returns a fresh Bernoulli sample of the pixels each time it is called
    (dynamic binarisation), so that a Bernoulli likelihood is the likelihood of binary data.
    """

    x: torch.Tensor
    y: torch.Tensor
    shape: tuple[int, int, int]
    binarize: bool = False

    def __post_init__(self):
        if not isinstance(self.x, torch.Tensor) or not isinstance(self.y, torch.Tensor):
            raise TypeError(f"ImageData.x and .y must be torch tensors; got {type(self.x).__name__} and "
                            f"{type(self.y).__name__}")
        if not self.x.dtype.is_floating_point:
            raise TypeError(f"ImageData.x must hold floating-point pixels in [0, 1]; got dtype {self.x.dtype}")
        if not isinstance(self.binarize, bool):
            raise TypeError(f"binarize must be True or False; got {self.binarize!r} ({type(self.binarize).__name__})")
        if self.x.ndim != 2:
            raise ValueError(f"ImageData.x must be (N, D); got shape {tuple(self.x.shape)}")
        if self.x.shape[0] == 0:
            raise ValueError(f"ImageData needs at least one row; got x of shape {tuple(self.x.shape)} (no images)")
        if self.y.dtype.is_floating_point or self.y.dtype.is_complex or self.y.dtype == torch.bool:
            raise TypeError(f"ImageData.y must hold integer labels (any integer dtype); got dtype {self.y.dtype}")
        if self.y.ndim not in (1, 2):
            raise ValueError(f"ImageData.y must be (N,) class labels or (N, K) factor labels; "
                             f"got shape {tuple(self.y.shape)}")
        if self.y.shape[0] != self.x.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} rows but y has {self.y.shape[0]}")
        if int(np.prod(self.shape)) != self.x.shape[1]:
            raise ValueError(f"image shape {self.shape} does not hold D={self.x.shape[1]} values")
        if self.y.dtype != torch.int64:
            object.__setattr__(self, "y", self.y.to(torch.int64))  # frozen: set once, here

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device) -> ImageData:
        """The same data on ``device`` (a no-op when already there)."""
        return replace(self, x=self.x.to(device), y=self.y.to(device))

    def batch(self, idx: torch.Tensor, generator: torch.Generator | None = None):
        """Rows ``idx`` as ``(x, y)``; binarised afresh with ``generator`` if ``binarize``."""
        x = self.x[idx]
        if self.binarize:
            x = torch.bernoulli(x, generator=generator)
        return x, self.y[idx]

    def binarized_once(self, seed: int = 0) -> ImageData:
        """A fixed binary sample of the pixels (the usual way to binarise a test set); ``seed`` in ``[0, 2**63-1]``."""
        gen = torch.Generator(device=self.x.device).manual_seed(check_seed(seed))
        return replace(self, x=torch.bernoulli(self.x, generator=gen), binarize=False)

    def subset(self, n: int) -> ImageData:
        """The first ``n`` rows (all of them when there are fewer: a budget may ask for more than a
        small data set holds). ``n`` must be a positive int: ``subset(0)`` would hold no rows, and a
        negative ``n`` would drop rows from the end."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"subset(n): n must be a positive int (ImageData needs at least one row); got {n!r}")
        return replace(self, x=self.x[:n], y=self.y[:n])

    def images(self) -> torch.Tensor:
        """``x`` reshaped to ``(N, C, H, W)``."""
        return self.x.reshape(-1, *self.shape)


# --------------------------------------------------------------------------- digits

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0


def load_digits(split: str, binarize: bool = False, dtype=torch.float32) -> ImageData:
    """scikit-learn's 8x8 digits (1797 images, 16 grey levels) scaled to [0, 1].

    The train/test split is fixed: a stratified 80/20 split with seed 0, so every chapter and
    every machine sees the same 1438 training and 359 test images (20% of each class, rounded).
    ``binarize=True`` gives dynamic binarisation (see :class:`ImageData`).
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all'; got {split!r}")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch dtype (pixels lie in [0, 1]); got {dtype!r}")
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = bunch.data.astype(np.float64) / 16.0
    y = bunch.target.astype(np.int64)
    if split != "all":
        rng = np.random.default_rng(DIGITS_SPLIT_SEED)
        test_idx = []
        for c in range(10):
            members = np.flatnonzero(y == c)
            n_test = int(round(DIGITS_TEST_FRACTION * len(members)))
            test_idx.extend(rng.choice(members, size=n_test, replace=False).tolist())
        is_test = np.zeros(len(y), dtype=bool)
        is_test[test_idx] = True
        keep = is_test if split == "test" else ~is_test
        x, y = x[keep], y[keep]
    return ImageData(torch.as_tensor(x, dtype=dtype), torch.as_tensor(y), (1, 8, 8), binarize)


# --------------------------------------------------------------------------- dSprites

#: The canonical dSprites factor grid (Matthey et al. 2017): name -> number of values.
DSPRITES_FACTORS = {"shape": 3, "scale": 6, "orientation": 40, "pos_x": 32, "pos_y": 32}


def dsprites_factor_grid() -> dict[str, np.ndarray]:
    """The values of each factor: shapes 0=square, 1=ellipse, 2=heart; scale 0.5..1;
    orientation 0..2pi (40 values, endpoint excluded); positions 0..1 (32 values)."""
    return {
        "shape": np.arange(3),
        "scale": np.linspace(0.5, 1.0, 6),
        "orientation": np.linspace(0.0, 2 * np.pi, 40, endpoint=False),
        "pos_x": np.linspace(0.0, 1.0, 32),
        "pos_y": np.linspace(0.0, 1.0, 32),
    }


def render_dsprites(factors, resolution: int = 64, chunk: int = 4096) -> torch.Tensor:
    """Render binary sprites for integer factor labels ``factors`` of shape ``(N, 5)``.

    Columns follow :data:`DSPRITES_FACTORS`. Returns ``(N, resolution**2)`` float32 in {0, 1}.
    Rendering is vectorised: each pixel centre is mapped into the sprite's own frame
    (translate, rotate, scale) and tested against the shape's implicit equation.
    """
    arr = np.asarray(factors)
    if not np.issubdtype(arr.dtype, np.integer):  # 4.7 would be truncated to 4 without a word
        raise TypeError(f"factors must be integer labels; got dtype {arr.dtype}")
    f = torch.as_tensor(arr, dtype=torch.long)
    if f.ndim != 2 or f.shape[1] != 5:
        raise ValueError(f"factors must be (N, 5) integer labels; got shape {tuple(f.shape)}")
    sizes = torch.tensor(list(DSPRITES_FACTORS.values()))
    if (f < 0).any() or (f >= sizes).any():
        raise ValueError(f"factor labels out of range; sizes are {DSPRITES_FACTORS}")
    if resolution < 16:
        raise ValueError(f"resolution must be at least 16 pixels; got {resolution}")
    grid = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in dsprites_factor_grid().items()}
    coords = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    px, py = px.reshape(1, -1), py.reshape(1, -1)
    out = torch.empty(f.shape[0], resolution * resolution)
    for start in range(0, f.shape[0], chunk):
        fc = f[start : start + chunk]
        shape = fc[:, 0:1]
        half = 0.13 * grid["scale"][fc[:, 1]].unsqueeze(1)  # half-size, as a fraction of the image
        theta = grid["orientation"][fc[:, 2]].unsqueeze(1)
        cx = 0.2 + 0.6 * grid["pos_x"][fc[:, 3]].unsqueeze(1)
        cy = 0.2 + 0.6 * grid["pos_y"][fc[:, 4]].unsqueeze(1)
        dx, dy = px - cx, py - cy
        cos, sin = torch.cos(theta), torch.sin(theta)
        u = (cos * dx + sin * dy) / half
        v = (-sin * dx + cos * dy) / half
        square = (u.abs() <= 0.8) & (v.abs() <= 0.8)
        ellipse = (u / 1.0) ** 2 + (v / 0.5) ** 2 <= 1.0
        hu, hv = u * 1.1, -v * 1.1 + 0.15  # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, point up
        heart = (hu**2 + hv**2 - 1) ** 3 - hu**2 * hv**3 <= 0
        img = torch.where(shape == 0, square, torch.where(shape == 1, ellipse, heart))
        out[start : start + chunk] = img.float()
    return out


def dsprites(n: int, resolution: int = 64, seed: int = 0) -> ImageData:
    """``n`` dSprites drawn uniformly from the factor grid, rendered once into a pool.

    ``y`` holds the integer factor labels ``(n, 5)`` in the order of :data:`DSPRITES_FACTORS`.
    With ``n`` equal to the grid size (737,280) and ``resolution=64`` this is the full data set.
    ``seed`` is an int in ``[0, 2**63-1]``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int; got {n!r}")
    rng = np.random.default_rng(check_seed(seed))
    factors = np.stack([rng.integers(0, s, size=n) for s in DSPRITES_FACTORS.values()], axis=1)
    x = render_dsprites(factors, resolution)
    return ImageData(x, torch.as_tensor(factors), (1, resolution, resolution))


def dsprites_image_counts(resolution: int, factors=None, chunk: int = 65536) -> np.ndarray:
    """How many rows of ``factors`` render to each distinct image: the distribution of the images
    :func:`dsprites` draws, as counts (``(n_distinct,)`` ints summing to ``len(factors)``).

    ``factors`` defaults to the whole factor grid (737,280 rows), which :func:`dsprites` samples
    uniformly. Different factors can render to the same image (a square turned by a quarter
    turn, positions closer than a pixel), so there are fewer images than rows. The rows are
    rendered in chunks and identical images pooled (a count per distinct image, in the order
    first met): exact, no sampling. The entropy of the images is ``scipy.stats.entropy(counts)``
    nats.
    """
    if factors is None:
        sizes = list(DSPRITES_FACTORS.values())
        factors = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    factors = np.asarray(factors)
    if factors.ndim != 2 or len(factors) == 0:
        raise ValueError(f"factors must be (N, 5) integer labels with N >= 1; got shape {factors.shape}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int; got {chunk!r}")
    # a hash table of the packed rows: 2.5x faster on the whole grid than sorting them (np.unique)
    counts = Counter()
    for s in range(0, len(factors), chunk):
        packed = np.packbits(render_dsprites(factors[s : s + chunk], resolution).numpy().astype(np.uint8), axis=1)
        counts.update(map(bytes, packed))
    return np.fromiter(counts.values(), dtype=np.int64, count=len(counts))


# --------------------------------------------------------------------------- blobs


def blobs(x_range=(1.5, 10.5), y_range=(1.5, 10.5), size: int = 12, levels: int = 12, width: float = 1.5,
          repeat: int = 1) -> ImageData:
    """A Gaussian blob on a ``size`` x ``size`` canvas at every point of a ``levels`` x ``levels`` grid.

    Two independent, uniform factors: ``y[:, 0]`` moves the blob's centre over ``x_range`` (pixels,
    along a row) and ``y[:, 1]`` over ``y_range`` (down a column), in ``levels`` equal steps.
    Pixel values are exp(-d^2 / (2 width^2)) in [0, 1], d the distance to the centre. A factor
    whose range is wider changes the image more: the two ranges set how strongly each factor
    acts, which is what the chapter on disentanglement varies. Every combination appears
    ``repeat`` times (``levels**2 * repeat`` rows), so an epoch is ``repeat`` passes over the grid.
    """
    for name, r in (("x_range", x_range), ("y_range", y_range)):
        if len(tuple(r)) != 2 or not 0 <= r[0] <= r[1] <= size - 1:
            raise ValueError(f"{name} must be (lo, hi) with 0 <= lo <= hi <= {size - 1}; got {r!r}")
    if levels < 2 or size < 2 or width <= 0 or repeat < 1:
        raise ValueError(f"need levels >= 2, size >= 2, width > 0, repeat >= 1; got {levels}, {size}, {width}, {repeat}")
    v1, v2 = torch.meshgrid(torch.arange(levels), torch.arange(levels), indexing="ij")
    v1, v2 = v1.reshape(-1), v2.reshape(-1)
    cx = x_range[0] + (x_range[1] - x_range[0]) * v1 / (levels - 1)
    cy = y_range[0] + (y_range[1] - y_range[0]) * v2 / (levels - 1)
    g = torch.arange(size, dtype=torch.float64)
    d2 = (g[None, None, :] - cx[:, None, None]) ** 2 + (g[None, :, None] - cy[:, None, None]) ** 2
    x = torch.exp(-d2 / (2 * width**2)).reshape(-1, size * size).float()
    y = torch.stack([v1, v2], 1)
    return ImageData(x.repeat(repeat, 1), y.repeat(repeat, 1), (1, size, size))


# --------------------------------------------------------------------------- MNIST

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _gzip_error(path: Path, err: Exception) -> ValueError:
    """What is wrong with a ``.gz`` file that would not decompress, naming it."""
    with open(path, "rb") as fh:
        head = fh.read(2)
    if head != b"\x1f\x8b":
        return ValueError(f"{path} is not gzip data, though its name ends in .gz (it starts with 0x{head.hex()}, "
                          f"not the gzip magic 0x1f8b)")
    if isinstance(err, EOFError):
        return ValueError(f"{path} is a truncated gzip file: the compressed stream ends early ({err})")
    return ValueError(f"{path} is a corrupted gzip file: it does not decompress ({err})")


def read_idx(path) -> np.ndarray:
    """Parse an IDX file (the MNIST format), gzipped (a ``.gz`` name) or not, into a NumPy array.

    A damaged file raises ``ValueError`` naming the file and what is wrong with it: not gzip data
    or a truncated gzip stream, a header shorter than it says, a wrong magic number, an unknown data
    type, or a body of the wrong size. A missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        except _GZIP_ERRORS as err:
            raise _gzip_error(path, err) from err
    else:
        raw = path.read_bytes()
    if len(raw) < 4:
        raise ValueError(f"{path}: short header: the file holds {len(raw)} bytes, an IDX header needs at least 4")
    if raw[0] != 0 or raw[1] != 0:
        hint = "; it looks gzip-compressed: give it a .gz name" if raw[:2] == b"\x1f\x8b" else ""
        raise ValueError(f"{path} is not an IDX file: wrong magic number 0x{raw[:4].hex()} (an IDX file starts "
                         f"with two zero bytes){hint}")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{code:02x} in the magic number 0x{raw[:4].hex()}")
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: short header: {ndim} dimensions need {4 + 4 * ndim} header bytes, the file "
                         f"holds {len(raw)}")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[code])
    body = raw[4 + 4 * ndim :]
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(body) != expected:
        what = "truncated" if len(body) < expected else "too long"
        raise ValueError(f"{path}: size mismatch ({what}): the header promises {expected} bytes of data "
                         f"(shape {dims}, {dtype.itemsize}-byte {dtype.name}), the file has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _content_md5(path: Path) -> str:
    """MD5 of a gzipped file's *content*: the same whoever compressed it (Debian's package
    recompresses Fashion-MNIST, so its .gz bytes differ from the original server's). A file that
    does not decompress raises ``ValueError`` naming it."""
    h = hashlib.md5()
    try:
        with gzip.open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except _GZIP_ERRORS as err:
        raise _gzip_error(path, err) from err
    return h.hexdigest()


def _digest_or_none(digest, path: Path) -> str | None:
    """``digest(path)``, or None for a file that does not decompress (a damaged download or cache)."""
    try:
        return digest(path)
    except ValueError:
        return None


def _fetch(url: str, dest: Path, md5: str, timeout: float, offline_hint: str = "", digest=_md5,
           what: str = "MNIST") -> None:
    if dest.exists() and _digest_or_none(digest, dest) == md5:  # a damaged cached file is fetched again
        return
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
            while block := resp.read(1 << 20):
                out.write(block)
    except (urllib.error.URLError, TimeoutError, OSError) as err:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(
            f"could not download {url} ({err}). {what} needs internet access; offline, use the "
            f"embedded digits instead{offline_hint}"
        ) from err
    got = _digest_or_none(digest, tmp)
    if got != md5:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"checksum mismatch for {url}: expected md5 {md5}, got "
                           f"{got or 'a file that does not decompress'}")
    os.replace(tmp, dest)


def _idx_file_names(split: str, checksums: dict[str, str]) -> list[str]:
    """The images and labels files of ``split`` in the MNIST layout, each with a checksum."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    names = [f"{prefix}-{kind}" for kind in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz")]
    for name in names:
        if name not in checksums:
            raise ValueError(f"no checksum given for {name}")
    return names


def mnist(
    root,
    split: str = "train",
    binarize: bool = False,
    base_url: str = MNIST_URL,
    checksums: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> ImageData:
    """The real MNIST (60,000 train / 10,000 test 28x28 images), values in [0, 1].

    Files are downloaded once into ``root``, verified against their MD5 checksums and
    cached. Without internet this raises ``RuntimeError`` naming :func:`load_digits`.
    """
    checksums = MNIST_FILES if checksums is None else checksums
    names = _idx_file_names(split, checksums)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    arrays = []
    for name in names:
        _fetch(base_url.rstrip("/") + "/" + name, root / name, checksums[name], timeout,
               offline_hint=f": vaelib.data.load_digits({split!r}, binarize={binarize})")
        arrays.append(read_idx(root / name))
    return _idx_images(*arrays, binarize, [root / name for name in names])


FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# MD5 of each file's decompressed IDX content (see _content_md5), measured on Debian's package
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
}


def _idx_images(images: np.ndarray, labels: np.ndarray, binarize: bool, paths) -> ImageData:
    """An :class:`ImageData` from an images and a labels IDX array; errors name the file (``paths``)."""
    images_path, labels_path = paths
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"{images_path} must hold (N, H, W) uint8 images; got {images.dtype} of shape {images.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
        raise ValueError(f"{labels_path} must hold (N,) integer class labels; got {labels.dtype} of shape "
                         f"{labels.shape}")
    if len(images) == 0:
        raise ValueError(f"{images_path} holds no images")
    if labels.shape[0] != images.shape[0]:
        raise ValueError(f"size mismatch: {images_path} holds {images.shape[0]} images, {labels_path} "
                         f"{labels.shape[0]} labels")
    x = torch.as_tensor(images.reshape(images.shape[0], -1).astype(np.float32) / 255.0)
    h, w = images.shape[1:]
    return ImageData(x, torch.as_tensor(labels.astype(np.int64)), (1, h, w), binarize)


def fashion_mnist(
    root="data/fashion-mnist",
    split: str = "train",
    binarize: bool = False,
    system_dir=FASHION_MNIST_DIR,
    base_url: str = FASHION_MNIST_URL,
    checksums: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> ImageData:
    """Fashion-MNIST (Xiao et al. 2017; 60,000 train / 10,000 test 28x28 images of clothing in
    10 classes), values in [0, 1].

    Read from ``system_dir`` where Debian's package ``dataset-fashion-mnist`` put the files
    (``apt-get install dataset-fashion-mnist``: no download); otherwise downloaded once into
    ``root`` from ``base_url``. Either way every file's decompressed content is checked against
    its MD5 (``checksums``, default :data:`FASHION_MNIST_FILES`); a mismatch raises ``ValueError``
    naming the file. Offline and without the package this raises ``RuntimeError`` naming
    :func:`load_digits`.
    """
    checksums = FASHION_MNIST_FILES if checksums is None else checksums
    arrays, paths = [], []
    for name in _idx_file_names(split, checksums):
        path = Path(system_dir) / name if system_dir is not None else None
        if path is not None and path.is_file():
            got = _content_md5(path)
            if got != checksums[name]:
                raise ValueError(f"{path} is not the Fashion-MNIST file it should be: the MD5 of its content is "
                                 f"{got}, expected {checksums[name]}")
        else:
            path = Path(root) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            _fetch(base_url.rstrip("/") + "/" + name, path, checksums[name], timeout,
                   offline_hint=f" (or install Debian's dataset-fashion-mnist): "
                                f"vaelib.data.load_digits({split!r}, binarize={binarize})",
                   digest=_content_md5, what="Fashion-MNIST")
        arrays.append(read_idx(path))
        paths.append(path)
    return _idx_images(*arrays, binarize, paths)

