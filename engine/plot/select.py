"""Fixing the dims a figure does not draw: ``at={"batch": 8}``, length-1 dims squeezed, the rest refused.

A figure draws a variable over one or two dims (``keep``). Every other dim of the variable must be
fixed: by ``at`` (a coordinate value of that dim, matched exactly), or by having one value only
(squeezed). A dim left over is a ``ValueError`` naming it. Dims in ``keep`` that the variable does
not have (``params_total`` over ``d_model, n_layers`` drawn against ``batch``) are added by
broadcasting against the dataset's coordinate: the value is the same for every coordinate.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import xarray as xr

SHOWN_VALUES = 8  # coordinates listed in an error message


def coordinate_list(values, limit: int = SHOWN_VALUES) -> str:
    """``1, 2, 4, 8, ...`` -- the first ``limit`` values of a coordinate, for error messages."""
    values = list(np.asarray(values).tolist())
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def check_dim(ds: xr.Dataset, dim: str, role: str = "dim") -> None:
    """ValueError unless ``dim`` is a dim of ``ds`` (``role`` says which argument named it)."""
    if dim not in ds.dims:
        raise ValueError(f"{role} {dim!r} is not a dim of the cube; dims: {', '.join(map(str, ds.dims))}")


def check_variable(ds: xr.Dataset, name: str) -> None:
    """ValueError unless ``name`` is a data variable of ``ds`` (listing the valid ones)."""
    if name not in ds.data_vars:
        raise ValueError(f"unknown variable {name!r}; variables: {', '.join(map(str, ds.data_vars))}")


def check_at(ds: xr.Dataset, at: Mapping[str, object] | None, keep: Sequence[str] = ()) -> dict:
    """``at`` validated against ``ds``: each key a dim not in ``keep``, each value one of its coordinates."""
    at = dict(at or {})
    for dim, value in at.items():
        check_dim(ds, dim, "at")
        if dim in keep:
            raise ValueError(f"at fixes {dim!r}, which the figure draws; leave it out of at")
        coordinate = ds[dim].values
        if not _is_coordinate(coordinate, value):
            raise ValueError(f"{dim}={value!r} is not a coordinate of {dim}; valid: {coordinate_list(coordinate)}")
    return at


def _is_coordinate(coordinate: np.ndarray, value) -> bool:
    """Whether ``value`` is one of ``coordinate``'s values (exactly; a value of another type never is)."""
    try:
        return bool(np.any(coordinate == value))
    except (TypeError, ValueError):
        return False


def leftover_dims(da: xr.DataArray, keep: Sequence[str]) -> list[str]:
    """Dims of ``da`` outside ``keep`` with more than one coordinate."""
    return [str(d) for d in da.dims if d not in keep and da.sizes[d] > 1]


def fix_dims(ds: xr.Dataset, da: xr.DataArray, keep: Sequence[str], at: Mapping[str, object] | None) -> xr.DataArray:
    """``da`` over exactly ``keep`` (in that order): ``at`` selected, length-1 dims squeezed, missing ones broadcast.

    ValueError naming the dims that are left over (give them in ``at``).
    """
    at = check_at(ds, at, keep)
    da = da.sel({d: v for d, v in at.items() if d in da.dims})
    rest = leftover_dims(da, keep)
    if rest:
        hint = ", ".join(f"{d!r}: {ds[d].values[:1].tolist()[0]!r}" for d in rest)
        raise ValueError(f"{da.name} also varies along {', '.join(rest)}: fix each with at={{{hint}}} (any of its "
                         "coordinates)")
    da = da.squeeze([d for d in da.dims if d not in keep], drop=False)
    for dim in keep:
        if dim not in da.dims:
            da = xr.broadcast(da, ds[dim])[0]
    return da.transpose(*keep)
