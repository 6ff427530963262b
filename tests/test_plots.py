"""vaelib.plots: the common crop of a traversal grid keeps every image's ink and cuts only empty canvas."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from vaelib import plots  # noqa: E402


def sprites():
    imgs = np.zeros((3, 16, 16))
    imgs[0, 4:6, 3:5] = 1.0  # one blob top left
    imgs[1, 9:12, 10:13] = 0.8  # one lower right
    imgs[2, 7, 7] = 0.05  # below the threshold: not ink
    return imgs


def test_ink_box_is_the_union_of_every_image_ink_plus_the_margin():
    assert plots.ink_box(sprites(), margin=0) == (4, 12, 3, 13)
    assert plots.ink_box(sprites(), margin=1) == (3, 13, 2, 14)
    assert plots.ink_box(sprites(), margin=5) == (0, 16, 0, 16)  # clipped at the edges


def test_ink_box_of_blank_images_is_the_whole_image():
    assert plots.ink_box(np.zeros((2, 5, 7))) == (0, 5, 0, 7)


def test_ink_box_names_a_wrong_shape():
    with pytest.raises(ValueError, match=r"imgs: expected an array \(N, H, W\)"):
        plots.ink_box(np.zeros((4, 16)))


def test_cropped_grid_keeps_all_ink():
    imgs = torch.tensor(sprites(), dtype=torch.float32).reshape(3, -1)
    full = plots.image_grid(imgs, (1, 16, 16), nrow=3)
    cropped = plots.image_grid(imgs, (1, 16, 16), nrow=3, crop=True)
    a_full = full.axes[0].images[0].get_array()
    a_crop = cropped.axes[0].images[0].get_array()
    assert a_full.shape == (16, 3 * 17 - 1)
    assert a_crop.shape == (10, 3 * (12 + 1) - 1)  # (3, 13) x (2, 14) per cell
    assert a_crop.sum() == pytest.approx(a_full.sum())  # nothing but empty canvas was cut
    plt.close("all")


def test_traversal_grid_passes_the_crop_on():
    decode = lambda z: torch.tensor(sprites()[:1], dtype=torch.float32).reshape(1, -1).repeat(len(z), 1)
    fig = plots.traversal_grid(decode, torch.zeros(2), (1, 16, 16), steps=3, crop=True)
    assert fig.axes[0].images[0].get_array().shape == (2 * 5 - 1, 3 * 5 - 1)  # box (3, 7) x (2, 6)
    plt.close("all")


def test_seeds_and_interval_draws_every_seed_and_the_interval():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vaelib.stats import mean_interval

    values = np.array([1.0, 2.0, 4.0])
    iv = mean_interval(values)
    fig, ax = plt.subplots()
    plots.seeds_and_interval(ax, 5.0, values, iv, spread=0.2)
    dots = ax.collections[0].get_offsets()
    np.testing.assert_allclose(dots[:, 1], values)  # every seed, at its own value
    np.testing.assert_allclose(dots[:, 0], [4.8, 5.0, 5.2])
    bar = ax.containers[0]  # the errorbar: the mean and the interval's ends
    np.testing.assert_allclose(np.asarray(bar.lines[0].get_ydata(), dtype=float), [iv.estimate])
    np.testing.assert_allclose(sorted(bar.lines[2][0].get_segments()[0][:, 1]), [iv.lo, iv.hi])
    assert [t.get_text() for t in ax.legend().get_texts()] == ["one seed", "mean, 95% interval"]
    with pytest.raises(TypeError, match="Interval"):
        plots.seeds_and_interval(ax, 0, values, (1.0, 0.0, 2.0))
    plt.close(fig)
