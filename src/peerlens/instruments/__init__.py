"""peerlens.instruments."""

__all__: list[str] = []
