import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

from vaelib import data


def test_digits_split_is_fixed_and_disjoint():
    tr, te = data.load_digits("train"), data.load_digits("test")
    assert (len(tr), len(te)) == (1438, 359)
    assert tr.shape == te.shape == (1, 8, 8)
    assert 0.0 <= float(tr.x.min()) and float(tr.x.max()) <= 1.0
    again = data.load_digits("test")
    assert torch.equal(again.x, te.x) and torch.equal(again.y, te.y)
    assert te.y[:10].tolist() == _FIRST_TEST_LABELS
    rows = {tuple(r) for r in (tr.x * 16).round().int().tolist()}
    assert sum(tuple(r) in rows for r in (te.x * 16).round().int().tolist()) < 5  # digits has few exact duplicates
    with pytest.raises(ValueError, match="split"):
        data.load_digits("validation")


# pinned when the split was made: a change to the split is a change to every chapter's numbers
_FIRST_TEST_LABELS = [0, 7, 4, 0, 2, 3, 7, 8, 0, 9]


def test_dynamic_binarisation_is_bernoulli():
    d = data.load_digits("train", binarize=True)
    g = torch.Generator().manual_seed(0)
    a, _ = d.batch(torch.arange(100), g)
    b, _ = d.batch(torch.arange(100), g)
    assert set(torch.unique(a).tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)  # a fresh sample every call
    fixed = d.binarized_once(3)
    assert not fixed.binarize and torch.equal(fixed.x, d.binarized_once(3).x)


def test_dsprites_grid_and_labels():
    assert data.DSPRITES_FACTORS == {"shape": 3, "scale": 6, "orientation": 40, "pos_x": 32, "pos_y": 32}
    grid = data.dsprites_factor_grid()
    assert [len(v) for v in grid.values()] == [3, 6, 40, 32, 32]
    assert grid["scale"][0] == 0.5 and grid["scale"][-1] == 1.0
    assert grid["orientation"][-1] < 2 * np.pi
    s = data.dsprites(500, resolution=32, seed=1)
    assert s.x.shape == (500, 32 * 32) and s.y.shape == (500, 5) and s.shape == (1, 32, 32)
    assert set(torch.unique(s.x).tolist()) == {0.0, 1.0}
    for k, n in enumerate(data.DSPRITES_FACTORS.values()):
        assert int(s.y[:, k].min()) >= 0 and int(s.y[:, k].max()) == n - 1 or n > 20
    # labels describe the image: re-rendering the labels gives the same pixels
    assert torch.equal(data.render_dsprites(s.y, 32), s.x)
    assert torch.equal(data.dsprites(500, resolution=32, seed=1).x, s.x)


def test_dsprites_factors_act_as_named():
    f = torch.tensor([[0, 5, 0, 0, 16], [0, 5, 0, 31, 16], [0, 5, 0, 16, 0], [0, 5, 0, 16, 31],
                      [0, 0, 0, 16, 16], [1, 5, 0, 16, 16], [1, 5, 10, 16, 16]])
    img = data.render_dsprites(f, 64).reshape(-1, 64, 64)
    idx = torch.arange(64.0)
    cx = (img.sum(1) * idx).sum(1) / img.sum((1, 2))
    cy = (img.sum(2) * idx).sum(1) / img.sum((1, 2))
    assert cx[1] - cx[0] > 30 and abs(float(cy[1] - cy[0])) < 1
    assert cy[3] - cy[2] > 30
    assert img[0].sum() > 3 * img[4].sum()  # scale 1 vs 0.5: four times the area
    # a quarter turn of an ellipse swaps its horizontal and vertical extent
    w = lambda im: int(im.any(0).sum())
    h = lambda im: int(im.any(1).sum())
    assert w(img[5]) > 1.5 * h(img[5]) and h(img[6]) > 1.5 * w(img[6])


def test_dsprites_rejects_bad_factors():
    with pytest.raises(ValueError, match="out of range"):
        data.render_dsprites([[3, 0, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        data.render_dsprites([[0, 0, 0]])
    with pytest.raises(ValueError):
        data.dsprites(0)


def _write_idx(path, array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.tobytes())


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_mnist(tmp_path):
    src = tmp_path / "server"
    src.mkdir()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    files = {"train-images-idx3-ubyte.gz": (images, 0x08), "train-labels-idx1-ubyte.gz": (labels, 0x08)}
    for name, (arr, code) in files.items():
        _write_idx(src / name, arr, code)
    return src, images, labels, {name: _md5(src / name) for name in files}


def test_read_idx_parses_a_fixture(fake_mnist, tmp_path):
    src, images, labels, _ = fake_mnist
    assert np.array_equal(data.read_idx(src / "train-images-idx3-ubyte.gz"), images)
    assert np.array_equal(data.read_idx(src / "train-labels-idx1-ubyte.gz"), labels)
    floats = np.arange(6, dtype=">f4").reshape(2, 3)
    raw = tmp_path / "f.idx"
    raw.write_bytes(struct.pack(">BBBB", 0, 0, 0x0D, 2) + struct.pack(">2I", 2, 3) + floats.tobytes())
    assert np.array_equal(data.read_idx(raw), floats)
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(struct.pack(">BBBB", 0, 0, 0x08, 1) + struct.pack(">I", 10) + b"\x00" * 3)
    with pytest.raises(ValueError, match="promises"):
        data.read_idx(short)


def test_mnist_downloads_verifies_and_caches(fake_mnist, tmp_path):
    src, images, labels, sums = fake_mnist
    root = tmp_path / "cache"
    d = data.mnist(root, "train", base_url=src.as_uri(), checksums=sums)
    assert d.x.shape == (7, 784) and d.shape == (1, 28, 28)
    assert torch.allclose(d.x, torch.as_tensor(images.reshape(7, -1) / 255.0, dtype=torch.float32))
    assert d.y.tolist() == labels.tolist() and d.y.dtype == torch.int64  # uint8 in the file
    # cached: a second call needs no server
    (src / "train-images-idx3-ubyte.gz").unlink()
    assert torch.equal(data.mnist(root, "train", base_url=src.as_uri(), checksums=sums).x, d.x)


def test_mnist_checksum_mismatch_and_offline_errors(fake_mnist, tmp_path):
    src, _, _, sums = fake_mnist
    wrong = dict(sums, **{"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        data.mnist(tmp_path / "c1", "train", base_url=src.as_uri(), checksums=wrong)
    assert not list((tmp_path / "c1").glob("*.part"))
    with pytest.raises(RuntimeError, match=r"load_digits\('train', binarize=False\)"):
        data.mnist(tmp_path / "c2", "train", base_url=(tmp_path / "nowhere").as_uri(), checksums=sums)
    test_sums = {k.replace("train", "t10k"): v for k, v in sums.items()}
    with pytest.raises(RuntimeError, match=r"load_digits\('test', binarize=True\)"):  # the split asked for
        data.mnist(tmp_path / "c4", "test", binarize=True, base_url=(tmp_path / "nowhere").as_uri(),
                   checksums=test_sums)
    # the real URL is refused by the test's network guard, and reported the same way
    with pytest.raises((RuntimeError, AssertionError)):
        data.mnist(tmp_path / "c3", "test", timeout=1)
    with pytest.raises(ValueError, match="split"):
        data.mnist(tmp_path, "valid")


def _fashion_fixture(tmp_path):
    """Four small IDX files in a stand-in for Debian's directory, with their content checksums."""
    src = tmp_path / "datasets"
    src.mkdir()
    rng = np.random.default_rng(1)
    sums = {}
    for prefix, n in (("train", 6), ("t10k", 4)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, arr in (("images-idx3-ubyte.gz", images), ("labels-idx1-ubyte.gz", labels)):
            _write_idx(src / f"{prefix}-{kind}", arr, 0x08)
            sums[f"{prefix}-{kind}"] = hashlib.md5(gzip.open(src / f"{prefix}-{kind}").read()).hexdigest()
    return src, sums


def test_fashion_mnist_reads_the_system_copy_and_checks_its_content(tmp_path):
    src, sums = _fashion_fixture(tmp_path)
    nowhere = (tmp_path / "nowhere").as_uri()
    d = data.fashion_mnist(tmp_path / "cache", "test", binarize=True, system_dir=src, base_url=nowhere,
                           checksums=sums)
    images = data.read_idx(src / "t10k-images-idx3-ubyte.gz")
    assert d.x.shape == (4, 784) and d.shape == (1, 28, 28) and d.binarize
    assert torch.allclose(d.x, torch.as_tensor(images.reshape(4, -1) / 255.0, dtype=torch.float32))
    assert not (tmp_path / "cache").exists()  # nothing downloaded, nothing cached
    # recompressed with another gzip level: other .gz bytes, the same content, still accepted
    raw = gzip.open(src / "t10k-labels-idx1-ubyte.gz").read()
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw, compresslevel=1))
    assert data.fashion_mnist(tmp_path, "test", system_dir=src, base_url=nowhere, checksums=sums).y.shape == (4,)
    wrong = dict(sums, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz is not the Fashion-MNIST file"):
        data.fashion_mnist(tmp_path, "test", system_dir=src, base_url=nowhere, checksums=wrong)
    with pytest.raises(ValueError, match="split"):
        data.fashion_mnist(tmp_path, "valid", system_dir=src)


def test_fashion_mnist_downloads_without_the_package_and_says_so_offline(tmp_path):
    server, sums = _fashion_fixture(tmp_path)
    absent = tmp_path / "no-package"
    d = data.fashion_mnist(tmp_path / "cache", "train", system_dir=absent, base_url=server.as_uri(),
                           checksums=sums)
    assert d.x.shape == (6, 784)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["train-images-idx3-ubyte.gz",
                                                                       "train-labels-idx1-ubyte.gz"]
    with pytest.raises(RuntimeError, match=r"Fashion-MNIST needs internet access.*dataset-fashion-mnist.*"
                                           r"load_digits\('test', binarize=False\)"):
        data.fashion_mnist(tmp_path / "c2", "test", system_dir=absent, base_url=(tmp_path / "nowhere").as_uri(),
                           checksums=sums)


@pytest.mark.skipif(not data.FASHION_MNIST_DIR.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package():
    train, test = data.fashion_mnist(split="train"), data.fashion_mnist(split="test")
    assert (len(train), len(test)) == (60_000, 10_000) and train.shape == (1, 28, 28)
    # the published data set: balanced classes, and its first training labels
    assert np.bincount(train.y.numpy()).tolist() == [6000] * 10
    assert np.bincount(test.y.numpy()).tolist() == [1000] * 10
    assert train.y[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0


def test_imagedata_validates_shapes():
    labels = torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="x has 3 rows but y has 4"):
        data.ImageData(torch.zeros(3, 64), torch.zeros(4, dtype=torch.long), (1, 8, 8))
    with pytest.raises(ValueError, match=r"image shape \(1, 8, 9\) does not hold D=64"):
        data.ImageData(torch.zeros(3, 64), labels, (1, 8, 9))
    with pytest.raises(ValueError, match=r"ImageData.y must be \(N,\) class labels or \(N, K\)"):
        data.ImageData(torch.zeros(3, 64), torch.zeros(3, 2, 2, dtype=torch.long), (1, 8, 8))


def test_blobs_grid_factors_and_strength():
    from vaelib.data import blobs

    d = blobs(x_range=(1.5, 10.5), y_range=(4.5, 7.5), repeat=2)
    assert d.x.shape == (288, 144) and d.shape == (1, 12, 12) and d.y.shape == (288, 2)
    assert set(map(tuple, d.y[:144].tolist())) == {(i, j) for i in range(12) for j in range(12)}
    img = d.images()[:144, 0]
    # the brightest pixel sits at the centre: factor 0 moves the column, factor 1 the row
    for k in (0, 17, 143):
        row, col = divmod(int(img[k].argmax()), 12)
        cx = 1.5 + 9.0 * int(d.y[k, 0]) / 11
        cy = 4.5 + 3.0 * int(d.y[k, 1]) / 11
        assert abs(col - cx) <= 0.5 and abs(row - cy) <= 0.5
    # one level of factor 0 moves the blob 3x as far as one level of factor 1 (9/11 vs 3/11 px), so it
    # changes the image about 3x as much (for small shifts the change is linear in the shift)
    move_x = (img[d.y[:144, 0] == 6] - img[d.y[:144, 0] == 5]).abs().sum()
    move_y = (img[d.y[:144, 1] == 6] - img[d.y[:144, 1] == 5]).abs().sum()
    assert 2.5 < move_x / move_y < 3.5
    with pytest.raises(ValueError, match="y_range"):
        blobs(y_range=(5.0, 20.0))


# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64])
def test_labels_of_any_integer_dtype_are_stored_as_int64(dtype):
    x = torch.rand(4, 64)
    for y in (torch.tensor([0, 3, 9, 7], dtype=dtype), torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7]], dtype=dtype)):
        d = data.ImageData(x, y, (1, 8, 8))
        assert d.y.dtype == torch.int64 and d.y.tolist() == y.tolist()
        # every way to a new ImageData keeps int64
        for derived in (d.to("cpu"), d.subset(2), d.binarized_once(0)):
            assert derived.y.dtype == torch.int64
        assert d.batch(torch.arange(2))[1].dtype == torch.int64


def test_labels_that_are_not_integers_are_refused():
    x = torch.rand(3, 64)
    for y in (torch.tensor([0.0, 1.0, 2.7]), torch.zeros(3, dtype=torch.float16), torch.zeros(3, dtype=torch.bool),
              torch.zeros(3, dtype=torch.complex64)):
        with pytest.raises(TypeError, match=f"ImageData.y must hold integer labels .*got dtype {y.dtype}"):
            data.ImageData(x, y, (1, 8, 8))


def test_no_rows_is_refused_where_data_is_made():
    with pytest.raises(ValueError, match=r"ImageData needs at least one row; got x of shape \(0, 64\)"):
        data.ImageData(torch.zeros(0, 64), torch.zeros(0, dtype=torch.long), (1, 8, 8))
    d = data.load_digits("test")
    for n in (0, -1, True, 2.0, "5"):
        with pytest.raises(ValueError, match=f"subset\\(n\\): n must be a positive int .*got {n!r}"):
            d.subset(n)
    assert len(d.subset(1)) == 1
    assert len(d.subset(10**6)) == len(d)  # a budget may ask for more than a small data set holds


@pytest.mark.parametrize("seed", [-1, 2**63, 2**64])
def test_seeds_outside_the_generators_range_are_named(seed):
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63-1\] .*got " + str(seed)):
        data.dsprites(4, resolution=16, seed=seed)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63-1\]"):
        data.load_digits("test").subset(3).binarized_once(seed)


def test_seeds_at_the_ends_of_the_range_and_numpy_ints_are_accepted():
    assert data.dsprites(2, resolution=16, seed=2**63 - 1).x.shape == (2, 256)
    assert torch.equal(data.dsprites(3, resolution=16, seed=np.int64(5)).x, data.dsprites(3, resolution=16, seed=5).x)
    assert data.load_digits("test").subset(2).binarized_once(0).x.shape == (2, 64)
    for bad in (1.5, "3", True, None):
        with pytest.raises(TypeError, match="seed must be an int"):
            data.dsprites(2, resolution=16, seed=bad)


def _idx_header(code, dims):
    return struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


_GOOD = _idx_header(0x08, (2, 3)) + bytes(range(6))


@pytest.mark.parametrize("name, content, match", [
    ("empty.idx", b"", r"short header: the file holds 0 bytes, an IDX header needs at least 4"),
    ("two.idx", b"\x00\x00", r"short header: the file holds 2 bytes"),
    ("dims.idx", _idx_header(0x08, (2, 3))[:9], r"short header: 2 dimensions need 12 header bytes, the file holds 9"),
    ("magic.idx", b"\x01\x02\x03\x04" + bytes(8), r"not an IDX file: wrong magic number 0x01020304"),
    ("zipped.idx", gzip.compress(_GOOD, mtime=0), r"wrong magic number 0x1f8b.*looks gzip-compressed: give it a .gz name"),
    ("code.idx", _idx_header(0x07, (2,)) + bytes(2), r"unknown IDX data type 0x07"),
    ("short.idx", _GOOD[:-1], r"size mismatch \(truncated\): the header promises 6 bytes .*the file has 5"),
    ("long.idx", _GOOD + b"\x00", r"size mismatch \(too long\): the header promises 6 bytes .*the file has 7"),
    ("plain.gz", _GOOD, r"is not gzip data, though its name ends in .gz \(it starts with 0x0000"),
    ("cut.gz", gzip.compress(_GOOD, mtime=0)[:-6], r"is a truncated gzip file: the compressed stream ends early"),
    ("crc.gz", gzip.compress(_GOOD, mtime=0)[:-8] + b"\xff" * 4 + gzip.compress(_GOOD, mtime=0)[-4:],
     r"is a corrupted gzip file: it does not decompress \(CRC check failed"),
    ("short.gz", gzip.compress(_GOOD[:-2], mtime=0), r"size mismatch \(truncated\)"),
])
def test_a_damaged_idx_file_is_named_with_what_is_wrong(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        data.read_idx(path)
    assert str(path) in str(err.value)
    path.write_bytes(gzip.compress(_GOOD) if name.endswith(".gz") else _GOOD)  # the same file, undamaged, reads
    assert data.read_idx(path).tolist() == [[0, 1, 2], [3, 4, 5]]


def _system_dir(tmp_path, images, labels, code=0x08):
    """A stand-in for Debian's Fashion-MNIST directory holding the t10k files, with their checksums."""
    src = tmp_path / "datasets"
    src.mkdir(exist_ok=True)
    sums = {}
    for kind, arr, c in (("images-idx3-ubyte.gz", images, 0x08), ("labels-idx1-ubyte.gz", labels, code)):
        _write_idx(src / f"t10k-{kind}", arr, c)
        sums[f"t10k-{kind}"] = hashlib.md5(gzip.open(src / f"t10k-{kind}").read()).hexdigest()
    return src, sums


def _fashion(tmp_path, src, sums):
    return data.fashion_mnist(tmp_path / "cache", "test", system_dir=src, base_url=(tmp_path / "nowhere").as_uri(),
                              checksums=sums)


def test_idx_labels_and_images_that_do_not_fit_name_their_file(tmp_path):
    images = np.zeros((3, 28, 28), dtype=np.uint8)
    src, sums = _system_dir(tmp_path, images, np.array([1.0, 2.0, 2.7], dtype=">f4"), code=0x0D)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz must hold \(N,\) integer class labels; got >f4"):
        _fashion(tmp_path, src, sums)  # used to become 1, 2, 2 without a word
    src, sums = _system_dir(tmp_path, images, np.array([1, 2], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"size mismatch: .*t10k-images-idx3-ubyte.gz holds 3 images, "
                                         r".*t10k-labels-idx1-ubyte.gz 2 labels"):
        _fashion(tmp_path, src, sums)
    src, sums = _system_dir(tmp_path, np.zeros((0, 28, 28), dtype=np.uint8), np.zeros(0, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz holds no images"):
        _fashion(tmp_path, src, sums)
    src, sums = _system_dir(tmp_path, images, np.array([1, 2, 3], dtype=np.uint8))
    assert _fashion(tmp_path, src, sums).y.tolist() == [1, 2, 3]


def test_a_corrupted_system_copy_or_cache_is_named_or_fetched_again(tmp_path):
    src, sums = _system_dir(tmp_path, np.zeros((3, 28, 28), dtype=np.uint8), np.array([1, 2, 3], dtype=np.uint8))
    good = (src / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(good[:-6])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz is a truncated gzip file"):
        _fashion(tmp_path, src, sums)
    # without the package: a damaged file in the download cache is not trusted but fetched again
    cache = tmp_path / "cache"
    cache.mkdir()
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(good)
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(good[:-6])
    d = data.fashion_mnist(cache, "test", system_dir=tmp_path / "no-package", base_url=src.as_uri(), checksums=sums)
    assert d.y.tolist() == [1, 2, 3] and (cache / "t10k-labels-idx1-ubyte.gz").read_bytes() == good
    # and a damaged download is a checksum mismatch, not a gzip traceback
    (src / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + bytes(30))
    with pytest.raises(RuntimeError, match="checksum mismatch .*got a file that does not decompress"):
        data.fashion_mnist(tmp_path / "c2", "test", system_dir=None, base_url=src.as_uri(), checksums=sums)
    assert not list((tmp_path / "c2").glob("*.part"))


def test_the_loaders_read_no_budget():
    import inspect

    src = inspect.getsource(data)
    assert "config.budget" not in src and "by_budget" not in src and "budget()" not in src
    assert not hasattr(data, "load_for_budget")
