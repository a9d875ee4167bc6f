"""peerlens.narrative."""

__all__: list[str] = []
