"""Latin letters rendered from the TrueType fonts bundled with matplotlib, in MNIST's format
(white on black, fitted into 20 x 20, centred by centre of mass): inputs of no digit class
that need no download. Letters easily read as a digit (O, I, l, S, Z, B, ...) are left out.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from headlab.shift.transforms import to_mnist_formats

#: no O/o (0), I/l/i/j (1), Z/z (2), S/s (5), G/b (6), B/g/q (8, 9), D/Q (0)
LETTERS = "ACEFHJKLMNPRTUVWXYacdefhkmnprtuvwxy"
#: text fonts among matplotlib's bundled ones (its display, symbol and fallback fonts left out)
FONT_PREFIXES = ("DejaVuSans", "DejaVuSerif", "STIXGeneral", "cmr10", "cmb10", "cmss10", "cmtt10")
RENDER_PT, RENDER_DPI = 48, 72


def font_files() -> list[Path]:
    """The bundled text fonts, sorted by name so every machine draws the same set."""
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return sorted(
        path
        for path in folder.glob("*.ttf")
        if path.stem.startswith(FONT_PREFIXES) and "Display" not in path.stem
    )


def render(font: Path, letters: str = LETTERS) -> list[np.ndarray]:
    """Each letter as a white-on-black uint8 bitmap at 48 pt (matplotlib's FreeType wrapper)."""
    from matplotlib.ft2font import FT2Font

    face = FT2Font(str(font))
    face.set_size(RENDER_PT, RENDER_DPI)
    bitmaps = []
    for letter in letters:
        face.set_text(letter, 0.0)
        face.draw_glyphs_to_bitmap(antialiased=True)
        bitmaps.append(np.asarray(face.get_image(), dtype=np.uint8).copy())
    return bitmaps


@lru_cache(maxsize=1)
def glyph_bank() -> torch.Tensor:
    """Every (font, letter) pair in MNIST's format: (fonts x letters, 1, 28, 28) uint8."""
    return to_mnist_formats([bitmap for font in font_files() for bitmap in render(font)])


def letters(n: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` letters drawn with replacement from the bank, each moved by up to 1 px."""
    from headlab.shift.transforms import shift

    bank = glyph_bank()
    picked = bank[torch.from_numpy(rng.integers(0, len(bank), n))]
    dx, dy = (torch.from_numpy(rng.integers(-1, 2, n)) for _ in range(2))
    return shift(picked, dx, dy)
