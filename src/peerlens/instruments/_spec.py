"""The instrument spec schema: one declarative file per instrument, validated on load.

A spec says everything needed to score an instrument: its items and response range, which items
are reverse-keyed, and an ordered list of *scores*, each one of a small set of declarative kinds
(see :class:`ItemScore`, :class:`CompositeScore`, :class:`BandScore`, :class:`FlagScore`,
:class:`ConversionScore`). The engine in :mod:`peerlens.instruments.scoring` scores every spec the
same way; there is no per-instrument scoring code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MissingRule(_Frozen):
    """How many items of a score may be missing, and what to do about them.

    ``max_missing`` items may be missing (``None``: any number, as long as one is answered and
    every score listed in ``requires`` is scored). With ``prorate`` a *sum* is replaced by
    ``mean(answered) * n_items`` when items are missing, then rounded per ``rounding``.
    """

    max_missing: int | None = 0
    prorate: bool = False
    rounding: Literal["none", "half_up"] = "none"


class ItemScore(_Frozen):
    """A sum or mean over a set of items, on raw or keyed (reverse-applied) values."""

    kind: Literal["items"] = "items"
    name: str
    label: str
    items: list[int] | Literal["all"]
    aggregate: Literal["sum", "mean"]
    keyed: bool = Field(False, description="apply the instrument's reverse keys before aggregating")
    missing: MissingRule = MissingRule()
    requires: list[str] = Field(
        default_factory=list, description="scores that must be scored for this one to be"
    )
    higher_is: str | None = Field(None, description="what a higher value means, in words")
    higher_is_better: bool | None = None
    note: str | None = None


class CompositeScore(_Frozen):
    """The mean of other (earlier) scores, some reversed as ``min + max - x``."""

    kind: Literal["composite"]
    name: str
    label: str
    of: list[str]
    reverse: list[str] = Field(default_factory=list)
    aggregate: Literal["mean"] = "mean"
    higher_is: str | None = None
    higher_is_better: bool | None = None
    note: str | None = None


class Band(_Frozen):
    """One band of a banded score: ``low <= value <= high`` gets ``label``."""

    label: str
    low: float
    high: float


class BandScore(_Frozen):
    """A categorical band of an earlier score (severity levels)."""

    kind: Literal["bands"]
    name: str
    label: str
    source: str
    bands: list[Band]
    citation: str | None = None
    note: str | None = None


class FlagScore(_Frozen):
    """A boolean safety or screening flag: ``item >= threshold`` (missing item gives missing)."""

    kind: Literal["flag"]
    name: str
    label: str
    item: int
    threshold: int
    note: str | None = None


class ConversionScore(_Frozen):
    """A lookup from an earlier integer score through a published conversion table."""

    kind: Literal["conversion"]
    name: str
    label: str
    source: str
    table: dict[int, float]
    citation: str | None = None
    higher_is: str | None = None
    higher_is_better: bool | None = None
    note: str | None = None


def _score_kind(value: object) -> str:
    """Discriminate score kinds; a score without ``kind`` is an item score."""
    if isinstance(value, dict):
        return str(value.get("kind", "items"))
    return str(getattr(value, "kind", "items"))


Score = Annotated[
    Annotated[ItemScore, Tag("items")]
    | Annotated[CompositeScore, Tag("composite")]
    | Annotated[BandScore, Tag("bands")]
    | Annotated[FlagScore, Tag("flag")]
    | Annotated[ConversionScore, Tag("conversion")],
    Discriminator(_score_kind),
]


class ResponseRange(_Frozen):
    """The allowed integer answers, inclusive."""

    min: int
    max: int

    @model_validator(mode="after")
    def _ordered(self) -> ResponseRange:
        if self.min >= self.max:
            raise ValueError(f"response.min ({self.min}) must be below response.max ({self.max})")
        return self


class Wording(_Frozen):
    """Whether the validated item wording may ship with peerlens, and under what licence."""

    shippable: bool
    licence: str


class InstrumentSpec(_Frozen):
    """One instrument, as declared in ``specs/<id>.yaml``.

    Attributes
    ----------
    id
        Lower-case identifier; item columns are ``<id>_<n>`` with 1-based ``n``.
    n_items, response
        Number of items and the inclusive integer response range.
    reverse_items
        1-based items reversed as ``min + max - x`` wherever a score is ``keyed``.
    scores
        Ordered score definitions; a score may refer only to scores declared before it.
    """

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    short_name: str
    version: str
    citation: str
    scoring_source: str
    n_items: int = Field(gt=0)
    response: ResponseRange
    response_labels: dict[int, str] = Field(default_factory=dict)
    reverse_items: list[int] = Field(default_factory=list)
    scores: list[Score]
    wording: Wording
    warnings: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    @property
    def response_min(self) -> int:
        """Lowest allowed answer."""
        return self.response.min

    @property
    def response_max(self) -> int:
        """Highest allowed answer."""
        return self.response.max

    @property
    def item_columns(self) -> tuple[str, ...]:
        """The item column names, ``<id>_1`` ... ``<id>_<n_items>``."""
        return tuple(f"{self.id}_{n}" for n in range(1, self.n_items + 1))

    @property
    def score_columns(self) -> tuple[str, ...]:
        """Every output column, in order: the scores, then ``n_answered`` and ``prorated``."""
        return (
            *(s.name for s in self.scores),
            f"{self.id}_n_answered",
            f"{self.id}_prorated",
        )

    def may_be_missing(self, item: int) -> bool:
        """True when every item score counting ``item`` (1-based) tolerates a missing item, so
        a questionnaire may offer "prefer not to answer" for it.

        Examples
        --------
        >>> from peerlens.instruments import load_spec
        >>> load_spec("phq9").may_be_missing(9)
        True
        """
        counting = [
            s
            for s in self.scores
            if isinstance(s, ItemScore) and (s.items == "all" or item in s.items)
        ]
        return bool(counting) and all(
            s.missing.max_missing is None or s.missing.max_missing > 0 for s in counting
        )

    def score(self, name: str) -> Score:
        """The score definition called ``name``."""
        for s in self.scores:
            if s.name == name:
                return s
        raise KeyError(f"{self.id} has no score {name!r}")

    @model_validator(mode="after")
    def _consistent(self) -> InstrumentSpec:
        n = self.n_items

        def check_items(where: str, items: list[int]) -> None:
            bad = [i for i in items if not 1 <= i <= n]
            if bad:
                raise ValueError(f"{where}: items {bad} outside 1..{n}")
            if len(set(items)) != len(items):
                raise ValueError(f"{where}: repeated items in {items}")

        check_items("reverse_items", self.reverse_items)
        for code in self.response_labels:
            if not self.response.min <= code <= self.response.max:
                raise ValueError(f"response_labels: {code} outside the response range")
        seen: dict[str, Score] = {}
        for s in self.scores:
            if not s.name.startswith(f"{self.id}_"):
                raise ValueError(f"score {s.name!r} must start with '{self.id}_'")
            if s.name in seen:
                raise ValueError(f"score {s.name!r} declared twice")
            refs: list[str] = []
            if isinstance(s, ItemScore):
                if s.items != "all":
                    check_items(f"score {s.name}", s.items)
                refs = s.requires
                n_score_items = n if s.items == "all" else len(s.items)
                mm = s.missing.max_missing
                if mm is not None and not 0 <= mm < n_score_items:
                    raise ValueError(f"score {s.name}: max_missing {mm} out of range")
                if s.missing.prorate and s.aggregate != "sum":
                    raise ValueError(f"score {s.name}: prorating applies to sums only")
                if s.aggregate == "sum" and mm != 0 and not s.missing.prorate:
                    # Summing the answered items of an incomplete response counts each missing
                    # answer as 0: the silent error this engine exists to prevent.
                    raise ValueError(
                        f"score {s.name}: a sum that allows missing items must prorate them"
                    )
            elif isinstance(s, CompositeScore):
                refs = s.of
                if not set(s.reverse) <= set(s.of):
                    raise ValueError(f"score {s.name}: reverse lists scores not in 'of'")
            elif isinstance(s, BandScore | ConversionScore):
                refs = [s.source]
            elif isinstance(s, FlagScore):
                check_items(f"flag {s.name}", [s.item])
            for r in refs:
                if r not in seen:
                    raise ValueError(f"score {s.name} refers to {r!r}, not declared before it")
            if isinstance(s, BandScore):
                _check_bands(s)
            if isinstance(s, ConversionScore):
                src = seen[s.source]
                if not (isinstance(src, ItemScore) and src.aggregate == "sum"):
                    raise ValueError(f"conversion {s.name}: source must be an item sum")
                if src.missing.prorate:
                    raise ValueError(f"conversion {s.name}: source must not be prorated")
                k = n if src.items == "all" else len(src.items)
                expected = set(range(k * self.response.min, k * self.response.max + 1))
                if set(s.table) != expected:
                    missing = sorted(expected - set(s.table))
                    extra = sorted(set(s.table) - expected)
                    raise ValueError(
                        f"conversion {s.name}: table must cover every raw score "
                        f"{min(expected)}..{max(expected)} (missing {missing}, extra {extra})"
                    )
            seen[s.name] = s
        return self


def _check_bands(s: BandScore) -> None:
    """Bands must be ordered, contiguous for integer scores, and non-overlapping."""
    for a, b in zip(s.bands, s.bands[1:], strict=False):
        if not a.low <= a.high < b.low:
            raise ValueError(f"bands of {s.name}: {a.label!r} and {b.label!r} overlap or unordered")
