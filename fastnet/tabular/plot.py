"""The ``--plot`` of ``fastnet train``: training loss and held-out score."""

import os

import numpy as np


def require_matplotlib(path):
    """matplotlib, and a file type it writes: checked before training."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ValueError(
            "--plot needs matplotlib: pip install 'fastnet[plot]'"
        ) from None
    kinds = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(path)[1][1:].lower()
    if ext not in kinds:
        raise ValueError(
            f"--plot {path}: give a file name ending in one of "
            f"{', '.join('.' + k for k in sorted(kinds))}"
        )


def plot_history(history, metric, path, title):
    """``history``'s training loss and held-out score (a
    :class:`~fastnet.tabular.commands.progress.History`) over the same epochs; a log
    loss axis when the loss spans more than a decade."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    loss = history.loss
    epochs = np.arange(history.first, history.first + len(loss))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lines = ax.plot(epochs, loss, color="C0", label="training loss")
    if min(loss) > 0 and max(loss) / min(loss) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("training loss")
    held = history.held_out
    if held:
        ax2 = ax.twinx()
        lines += ax2.plot(epochs, held, color="C1", label=f"held-out {metric}")
        ax2.set_ylabel(f"held-out {metric}")
    ax.set_title(title)
    ax.legend(
        lines,
        [ln.get_label() for ln in lines],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=2,
        frameon=False,
    )
    fig.savefig(path, bbox_inches="tight", dpi=100)
    plt.close(fig)
