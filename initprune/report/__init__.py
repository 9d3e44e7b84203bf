"""The report layer: results read back into statistics, claims, figures and the report page. It
imports the core and the lab."""

# the report's own modules of figures: each registers its figures (``figures.contributes``) on import,
# so that ``figures.every()`` holds them whichever module of the report was imported first
from . import (  # noqa: E402, F401
    figures_controls,
    figures_dissipating,
    figures_kstarts,
    figures_reconstruction,
    figures_seconds,
)
