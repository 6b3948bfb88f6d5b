"""The sink registry (``engine.sinks``): a target picks its sink, a query is a reducer in front of any sink, and a
new output format is one class plus one line in ``SINKS``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import engine
from engine import sinks
from engine.sinks import MemorySink, NetCDFSink, QuerySink, ZarrSink, sink_for


def _query(request):
    return engine.make_query(["mem_peak <= 4GiB"], "params_total", None, ["d_model", "n_layers"],
                             request.quantities, list(request.axes))


@pytest.mark.parametrize("target, kind", [(None, MemorySink), ("cube.zarr", ZarrSink), (Path("cube.nc"), NetCDFSink),
                                          ("cube", NetCDFSink), (".bashrc", NetCDFSink)])
def test_a_target_picks_its_sink(target, kind):
    sink = sink_for(target)
    assert type(sink) is kind and sink.target == (None if target is None else Path(target))


def test_a_share_writes_a_part_file_beside_the_target_or_its_region_of_one_store():
    assert sink_for("out.nc", part=(3, 16)).target == Path("out.part003-of-016.nc")
    store = sink_for("out.zarr", part=(3, 16))
    assert store.target == Path("out.zarr") and store.part == (3, 16)


def test_a_query_stands_in_front_of_the_sink_its_target_picks(small_spec):
    request = engine.load_spec(small_spec)
    for target, kind in ((None, MemorySink), ("q.nc", NetCDFSink), ("q.zarr", ZarrSink)):
        sink = sink_for(target, query=_query(request))
        assert type(sink) is QuerySink and type(sink.output) is kind and sink.kind == kind.kind


def test_what_no_sink_writes_is_refused_naming_every_valid_target():
    with pytest.raises(TypeError) as info:
        sink_for(3)
    message = str(info.value)
    assert "no sink writes 3 (int)" in message and all(cls.description in message for cls in sinks.SINKS)
    with pytest.raises(TypeError, match="NetCDFSink takes no option 'colour'; its options: inputs, track"):
        sink_for("cube.nc", colour="red")


@pytest.mark.parametrize("name", ["answer.nc", "answer.zarr"])
def test_a_query_answer_is_written_by_the_sink_of_its_target(small_spec, tmp_path, name):
    request = engine.load_spec(small_spec)
    memory = engine.run(request, sink_for(None, query=_query(request)))
    assert memory.path is None and memory.write_seconds == 0
    written = engine.run(request, sink_for(tmp_path / name, query=_query(request)))
    assert written.path == tmp_path / name and written.headline == ["params_total", "n_feasible"]
    with engine.open_cube(written.path) as back:
        xr.testing.assert_identical(back.drop_attrs(), memory.dataset.drop_attrs())
    assert written.report().splitlines()[-1] == f"  query     {_query(request).describe()}"


def test_run_takes_a_target_as_well_as_a_sink(small_spec, tmp_path):
    request = engine.load_spec(small_spec)
    by_target = engine.run(request, tmp_path / "a.nc")
    by_sink = engine.run(request, NetCDFSink(tmp_path / "b.nc"))
    with xr.open_dataset(by_target.path) as a, xr.open_dataset(by_sink.path) as b:
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    with pytest.raises(TypeError, match="no sink writes"):
        engine.run(request, 3.5)


class NpzSink(MemorySink):
    """The cube as a numpy ``.npz`` archive: what adding a sink takes (a class, then a line in ``SINKS``)."""

    kind = "npz"
    description = "a path ending .npz: a numpy archive"

    def __init__(self, target, track=None):
        super().__init__(None, track)
        self.target = Path(target)

    @classmethod
    def can_write(cls, target) -> bool:
        return isinstance(target, (str, Path)) and Path(target).suffix == ".npz"

    def finish(self, timing):
        result = super().finish(timing)
        np.savez(self.target, **{q: v.values for q, v in result.dataset.data_vars.items()})
        result.path = self.target
        return result


def test_a_new_sink_is_one_class_and_one_registry_line(small_spec, tmp_path, monkeypatch):
    monkeypatch.setattr(sinks, "SINKS", (NpzSink, *sinks.SINKS))
    request = engine.load_spec(small_spec)
    result = engine.run(request, tmp_path / "cube.npz")
    with np.load(tmp_path / "cube.npz") as archive:
        np.testing.assert_array_equal(archive["params_total"], result.dataset["params_total"].values)
    assert type(sink_for(tmp_path / "cube.nc")) is NetCDFSink  # the others still take their targets
