"""Importers of real logs into `fuyao.data.scenario.Scenario`s, and `import_any` that picks one by file type.

| input | importer |
|---|---|
| Fuyao scenario `.parquet` (a `fuyao.scenario` header) | `fuyao.data.scenario.read_scenario` |
| Argoverse 2 `scenario_*.parquet` (+ `log_map_archive_*.json` beside it) | `import_argoverse2` |
| CommonRoad `.xml` | `import_commonroad` |
| highD-style `*tracks.csv` (+ `*tracksMeta.csv`, `*recordingMeta.csv`) | `import_highd` |
| ScenarioNet / MetaDrive `.pkl` (restricted unpickler) | `import_scenarionet` |
| a Fuyao recording folder (`_recording.json`, `part-*.parquet`) | `fuyao.data.record.recording_to_scenarios` |
| a folder | every supported file in it, recursively |
"""

from __future__ import annotations

from pathlib import Path

from fuyao.data.importers.argoverse2 import import_argoverse2, is_av2_table, read_av2_map
from fuyao.data.importers.common import DataImportError, ImportResult
from fuyao.data.importers.commonroad import import_commonroad
from fuyao.data.importers.highd import find_highd_files, import_highd
from fuyao.data.importers.scenarionet import SafeUnpickler, import_scenarionet, safe_load
from fuyao.data.scenario import is_scenario_file, read_scenario

SUPPORTED = (
    "Fuyao scenario .parquet",
    "Argoverse 2 scenario_*.parquet (+ log_map_archive_*.json)",
    "CommonRoad .xml",
    "highD *tracks.csv (+ *tracksMeta.csv, *recordingMeta.csv)",
    "ScenarioNet .pkl",
    "a Fuyao recording folder (_recording.json + part-*.parquet)",
    "a folder of these",
)

__all__ = [
    "DataImportError",
    "ImportResult",
    "SUPPORTED",
    "SafeUnpickler",
    "import_any",
    "import_argoverse2",
    "import_commonroad",
    "import_highd",
    "import_scenarionet",
    "read_av2_map",
    "safe_load",
]


def _unsupported(path: Path) -> DataImportError:
    return DataImportError(f"{path}: unsupported input type; supported: " + "; ".join(SUPPORTED))


def import_any(path: str | Path) -> ImportResult:
    """Every scenario in `path` (a file or a folder), by file type; see the module's table."""
    path = Path(path)
    if not path.exists():
        raise DataImportError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "_recording.json").is_file():
            from fuyao.data.record import recording_to_scenarios

            return ImportResult(scenarios=recording_to_scenarios(path))
        result = ImportResult()
        highd = find_highd_files(path)
        for tracks, meta, rec in highd:
            result.extend(import_highd(tracks, meta, rec))
        claimed = {p for f in highd for p in f if p is not None}
        found = 0
        for child in sorted(path.iterdir()):
            if child in claimed or child.name.startswith("."):
                continue
            try:
                kind = None if child.is_dir() else _kind(child)
            except DataImportError:
                kind = None
            if child.is_dir() or kind is not None:
                result.extend(import_any(child))
                found += 1
            elif child.suffix == ".json" and child.name.startswith("log_map_archive_"):
                continue  # read with its scenario
            else:
                result.skipped[f"unsupported file {child.suffix or child.name}"] += 1
        if not found and not highd and not result.scenarios:
            raise DataImportError(f"{path}: no supported files in this folder; supported: " + "; ".join(SUPPORTED))
        return result
    kind = _kind(path)
    if kind is None:
        raise _unsupported(path)
    if kind == "scenario":
        return ImportResult(scenarios=[read_scenario(path)])
    if kind == "av2":
        return import_argoverse2(path)
    if kind == "commonroad":
        return import_commonroad(path)
    if kind == "highd":
        return import_highd(path)
    return import_scenarionet(path)


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        if is_scenario_file(path):
            return "scenario"
        if is_av2_table(path):
            return "av2"
        if path.name.startswith("part-"):
            return None  # a recording's chunk: import its folder
        raise DataImportError(
            f"{path}: a Parquet file that is neither a Fuyao scenario (no 'fuyao.scenario' header) nor an "
            "Argoverse 2 scenario (no track_id / timestep / position_x columns)"
        )
    if suffix == ".xml":
        return "commonroad"
    if suffix == ".csv" and path.name.endswith("tracks.csv"):
        return "highd"
    if suffix in (".pkl", ".pickle"):
        return "scenarionet"
    return None
