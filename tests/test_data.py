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
    assert d.y.tolist() == labels.tolist()
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
    with pytest.raises(ValueError):
        data.ImageData(torch.zeros(3, 64), torch.zeros(4), (1, 8, 8))
    with pytest.raises(ValueError):
        data.ImageData(torch.zeros(3, 64), torch.zeros(3), (1, 8, 9))


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
