import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vaelib import diagrams  # noqa: E402


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_the_graphical_model_names_both_distributions_and_both_parameter_sets():
    fig = diagrams.graphical_model()
    texts = " ".join(_texts(fig))
    for label in (r"\mathbf{z}", r"\mathbf{x}", r"p_\theta(\mathbf{x}\mid\mathbf{z})", r"q_\phi(\mathbf{z}\mid\mathbf{x})",
                  r"\theta", r"\phi", "$N$", r"\mathcal{N}(\mathbf{0}, \mathbf{I})"):
        assert label in texts, label
    plt.close(fig)


def test_the_architecture_labels_its_sizes_and_the_two_loss_terms():
    fig = diagrams.architecture(784, 16)
    texts = _texts(fig)
    joined = " ".join(texts)
    assert "(784 pixels)" in joined and "(16 each)" in joined
    assert any("KL term" in t for t in texts) and any("reconstruction" in t for t in texts)
    # symbols by default
    assert "(D pixels)" in " ".join(_texts(diagrams.architecture()))
    plt.close("all")
