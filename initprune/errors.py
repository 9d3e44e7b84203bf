"""The one exception a user sees: a bad input, said in one line with how to fix it."""


class InitpruneError(ValueError):
    """Raised for bad input before anything is trained or recorded."""


class DivergedError(RuntimeError):
    """Training produced a NaN or infinite loss; the run must not count as finished."""
