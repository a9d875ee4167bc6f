"""peerlens.hrv."""

__all__: list[str] = []
