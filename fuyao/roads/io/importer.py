"""`import_map(file)`: a SUMO network, an OpenStreetMap extract, a Lanelet2 map or an OpenDRIVE file to a Fuyao
map file.

`.net.xml` (or `.net.xml.gz`) is read with sumolib (`fuyao.roads.io.sumo_net`). An `.osm` file is either
OpenStreetMap or Lanelet2 (both OSM XML): one that holds a relation tagged `type=lanelet` is a Lanelet2 map and
is read directly (`fuyao.roads.io.lanelet2`: netconvert does not read Lanelet2, and Lanelet2's right of way
lives in its regulatory elements, which only a reader of its own can take); other `.osm` files and `.xodr` go
through SUMO's `netconvert` first (from the `eclipse-sumo` package: `pip install 'fuyao[maps]'`) with
`NETCONVERT_OPTIONS`, then the SUMO way. Results are cached by the input's SHA-256 (with the reader, its version
and its config) under `$FUYAO_CACHE_DIR` (default `~/.cache/fuyao`)`/maps/`: importing the same file again
copies the cached map file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fuyao.roads.io import lanelet2
from fuyao.roads.io.lanelet2 import Lanelet2ImportConfig, is_lanelet2, lanelet2_to_builder
from fuyao.roads.io.mapfile import SUFFIX, build_imported, file_sha256, read_header, save_map
from fuyao.roads.io.sumo_net import IMPORTER_VERSION, SumoImportConfig, sumo_net_to_builder
from fuyao.roads.lanegraph import MapError

SUPPORTED = {".net.xml": "SUMO network", ".net.xml.gz": "SUMO network", ".osm": "OpenStreetMap", ".xodr": "OpenDRIVE"}
LANELET2 = "Lanelet2"  # the source type of an `.osm` file that holds lanelets
# Right-hand traffic; U-turns left out (Fuyao's cities have none); OSM signals guessed and joined as SUMO's own
# OSM guide recommends; ramps recognised.
NETCONVERT_OPTIONS = {
    ".osm": [
        "--geometry.remove",
        "--ramps.guess",
        "--junctions.join",
        "--tls.guess-signals",
        "--tls.discard-simple",
        "--tls.join",
        "--no-turnarounds",
    ],
    ".xodr": ["--no-turnarounds"],
}
INPUT_FLAG = {".osm": "--osm-files", ".xodr": "--opendrive-files"}


@dataclass
class ImportResult:
    out: Path
    header: dict  # the map file's header: name, summary (built, skipped), source hash
    cached: bool
    seconds: float


def file_type(path: Path) -> str:
    """The supported suffix of `path`, or a `MapError` listing the supported ones."""
    name = path.name.lower()
    for suffix in sorted(SUPPORTED, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    allowed = ", ".join(f"{s} ({k}{' or ' + LANELET2 if s == '.osm' else ''})" for s, k in SUPPORTED.items())
    raise MapError(f"{path}: unsupported map file type; allowed: {allowed}")


def cache_dir() -> Path:
    return Path(os.environ.get("FUYAO_CACHE_DIR", Path.home() / ".cache" / "fuyao")) / "maps"


def netconvert_binary() -> Path:
    """SUMO's `netconvert` from the `eclipse-sumo` package (or `$SUMO_HOME/bin`)."""
    home = os.environ.get("SUMO_HOME")
    if not home:
        try:
            import sumo

            home = sumo.SUMO_HOME
        except ImportError:
            raise MapError(
                "netconvert: converting .osm / .xodr needs SUMO's netconvert; install it with "
                "`pip install 'fuyao[maps]'` (the eclipse-sumo package) or set SUMO_HOME"
            ) from None
    exe = Path(home) / "bin" / ("netconvert.exe" if os.name == "nt" else "netconvert")
    if not exe.is_file():
        raise MapError(f"netconvert: not found at {exe} (SUMO_HOME={home})")
    return exe


def netconvert(src: Path, out: Path) -> Path:
    """Convert an `.osm` / `.xodr` file to a SUMO network at `out`; errors carry netconvert's own message."""
    kind = file_type(src)
    cmd = [str(netconvert_binary()), INPUT_FLAG[kind], str(src), "--output-file", str(out), *NETCONVERT_OPTIONS[kind]]
    cmd += ["--no-warnings", "--log", os.devnull]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 or not out.is_file():
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise MapError(f"{src}: netconvert failed ({' | '.join(message[-3:]) or f'exit {proc.returncode}'})")
    return out


def import_map(
    src: str | Path,
    out: str | Path | None = None,
    cfg: SumoImportConfig | Lanelet2ImportConfig | None = None,
    use_cache: bool = True,
) -> ImportResult:
    """Import `src` into the map file `out` (default: the cache entry itself). `cfg`: the reader's config
    (`Lanelet2ImportConfig` for a Lanelet2 map, `SumoImportConfig` for the others; None: the defaults). Returns
    where it went and its header (with the import summary). A failed import leaves an earlier `out` as it was."""
    start = time.perf_counter()
    src = Path(src)
    if not src.is_file():
        raise MapError(f"{src}: no such file")
    kind = file_type(src)
    source_type = LANELET2 if kind == ".osm" and is_lanelet2(src) else SUPPORTED[kind]
    want = Lanelet2ImportConfig if source_type == LANELET2 else SumoImportConfig
    cfg = want() if cfg is None else cfg
    if not isinstance(cfg, want):
        raise MapError(
            f"{src}: cfg: got a {type(cfg).__name__} for a {source_type} file; allowed: {want.__name__} or None"
        )
    version = lanelet2.IMPORTER_VERSION if source_type == LANELET2 else IMPORTER_VERSION
    digest = file_sha256(src)
    # The cache key: the input's content, the reader, its version and its config.
    reader = "lanelet2-" if source_type == LANELET2 else ""
    key = f"{digest[:32]}-{reader}v{version}-{file_sha256_text(repr(sorted(asdict(cfg).items())))[:8]}"
    cached_file = cache_dir() / f"{key}{SUFFIX}"
    out = Path(out) if out is not None else cached_file
    if use_cache and cached_file.is_file():
        try:
            header = read_header(cached_file)
        except MapError:
            cached_file.unlink(missing_ok=True)  # a broken cache entry: import again
        else:
            if out != cached_file:
                _copy_atomic(cached_file, out)
            return ImportResult(out, header, True, time.perf_counter() - start)
    name = src.name[: -len(kind)] if src.name.lower().endswith(kind) else src.stem
    if source_type == LANELET2:
        builder, summary = lanelet2_to_builder(src, cfg, name=name)
    else:
        with tempfile.TemporaryDirectory(prefix="fuyao-import-") as tmp:
            net = src if kind.startswith(".net.xml") else netconvert(src, Path(tmp) / f"{name}.net.xml")
            builder, summary = sumo_net_to_builder(net, cfg, name=name)
            if net is not src:
                summary.source = str(src)
    try:
        build_imported(builder)  # refuse a map that would not load, before writing anything
    except MapError as err:
        raise MapError(f"{src}: {err}") from None
    meta = {
        "source": str(src),
        "source_type": source_type,
        "source_sha256": digest,
        "importer_version": version,
        "import_config": asdict(cfg),
        "netconvert_options": [] if source_type == LANELET2 else NETCONVERT_OPTIONS.get(kind, []),
        "summary": summary.to_json(),
    }
    if use_cache:
        save_map(cached_file, builder, meta)
        if out != cached_file:
            _copy_atomic(cached_file, out)
    else:
        save_map(out, builder, meta)
    return ImportResult(out, read_header(out), False, time.perf_counter() - start)


def file_sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["ImportResult", "NETCONVERT_OPTIONS", "SUPPORTED", "cache_dir", "file_type", "import_map", "netconvert"]
