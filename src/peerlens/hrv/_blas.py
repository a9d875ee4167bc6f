"""Run HRV computations with a single BLAS thread (see :mod:`peerlens._blas`, the one copy of
the limiter, shared with the reliability estimators)."""

from peerlens._blas import single_blas_thread

__all__ = ["single_blas_thread"]
