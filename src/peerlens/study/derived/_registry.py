"""Every kind of derived result, by name: the one place a kind is added."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peerlens.study.derived._base import DerivedKind
from peerlens.study.derived._hrv import HRV
from peerlens.study.derived._scores import SCORES
from peerlens.study.derived._story import STORY

#: The kinds, in the order :func:`~peerlens.study.derived.derive` runs them by default.
KINDS: Mapping[str, DerivedKind[Any, Any]] = {k.what: k for k in (SCORES, HRV, STORY)}
#: What can be derived.
WHAT = tuple(KINDS)
#: The frames :func:`~peerlens.study.derived.derived_frame` shows, and the kind showing each.
VIEWS: Mapping[str, DerivedKind[Any, Any]] = {v: k for k in KINDS.values() for v in k.views}
