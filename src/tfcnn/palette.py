"""The one colour palette of every figure tfcnn draws (plots, web app, study report).

Okabe & Ito (2008): eight colours told apart by readers with any common colour-vision
deficiency. Where a colour has a meaning (the TF, the target, the samples a model
weighted most) it has that meaning everywhere; red and green are never a pair.
"""

from __future__ import annotations

#: The Okabe-Ito colours by name.
OKABE_ITO: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "sky_blue": "#56B4E9",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}
#: The same colours in the order series take them.
CYCLE: tuple[str, ...] = tuple(OKABE_ITO.values())
#: Colours with one meaning in every figure.
TF_COLOUR = OKABE_ITO["blue"]
TARGET_COLOUR = OKABE_ITO["orange"]
WINDOW_COLOUR = OKABE_ITO["yellow"]  # the samples a model weighted most
