"""peerlens.analysis."""

__all__: list[str] = []
