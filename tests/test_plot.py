"""`arl-bot plot`: a static chart drawn headless, with the best-so-far line people look for."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest
from arl_bot.cli import main
from arl_bot.errors import ArlError
from arl_bot.loop import RunOptions, Session
from arl_bot.plot import write_plot

from tests.labs import make_lab
from tests.sample_records import long_record

GREEN = (0x1A / 255, 0x7F / 255, 0x37 / 255)


def green_pixels(path: Path) -> int:
    """Pixels in the best-so-far line's colour."""
    image = matplotlib.image.imread(path)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return int(((abs(r - GREEN[0]) < 0.02) & (abs(g - GREEN[1]) < 0.02) & (abs(b - GREEN[2]) < 0.02)).sum())


def test_cli_plots_a_real_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = make_lab(tmp_path, ["8", "crash", "9", "5"])
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=4, dry_run=True)).run()
    out = tmp_path / "progress.png"
    assert main(["plot", "--repo", str(lab.root), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(out).shape[:2] == (495, 990)  # 9 x 4.5 inches at 110 dpi
    assert green_pixels(out) > 500  # the best-so-far line and the kept points are drawn


@pytest.mark.unit
def test_svg_names_its_series(tmp_path: Path) -> None:
    svg = write_plot(long_record(2_000), tmp_path / "progress.svg").read_text()
    assert "best so far" in svg and "no metric" in svg


@pytest.mark.unit
def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArlError, match=r"unknown image type '\.gif'"):
        write_plot(long_record(10), tmp_path / "progress.gif")


def test_cli_counts_off_the_axis_only_what_is_off_it(tmp_path: Path) -> None:
    # Best path 10 -> 8; 12.1 lies in the axis' padding above the fitted range (drawn), 1e9 beyond it.
    lab = make_lab(tmp_path, ["8", "12.1", "1e9"])
    Session(lab.repo, lab.config(), lab.loop(), RunOptions(experiments=3, dry_run=True)).run()
    out = tmp_path / "progress.svg"
    assert main(["plot", "--repo", str(lab.root), "-o", str(out)]) == 0
    svg = out.read_text()
    assert "off the axis (1)" in svg and "off the axis (2)" not in svg
