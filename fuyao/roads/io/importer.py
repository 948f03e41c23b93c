"""`import_map(file)`: a SUMO network, an OpenStreetMap extract or an OpenDRIVE file to a Fuyao map file.

`.net.xml` (or `.net.xml.gz`) is read with sumolib (`fuyao.roads.io.sumo_net`); `.osm` and `.xodr` go through
SUMO's `netconvert` first (from the `eclipse-sumo` package: `pip install 'fuyao[maps]'`) with
`NETCONVERT_OPTIONS`, then the same way. Results are cached by the input's SHA-256 (with the importer version
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

from fuyao.roads.io.mapfile import SUFFIX, build_imported, file_sha256, read_header, save_map
from fuyao.roads.io.sumo_net import IMPORTER_VERSION, SumoImportConfig, sumo_net_to_builder
from fuyao.roads.lanegraph import MapError

SUPPORTED = {".net.xml": "SUMO network", ".net.xml.gz": "SUMO network", ".osm": "OpenStreetMap", ".xodr": "OpenDRIVE"}
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
    allowed = ", ".join(f"{s} ({k})" for s, k in SUPPORTED.items())
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
    src: str | Path, out: str | Path | None = None, cfg: SumoImportConfig | None = None, use_cache: bool = True
) -> ImportResult:
    """Import `src` into the map file `out` (default: the cache entry itself). Returns where it went and its
    header (with the import summary). A failed import leaves an earlier `out` as it was."""
    start = time.perf_counter()
    src = Path(src)
    if not src.is_file():
        raise MapError(f"{src}: no such file")
    kind = file_type(src)
    cfg = cfg or SumoImportConfig()
    digest = file_sha256(src)
    # The cache key: the input's content, the importer's version and its config.
    key = f"{digest[:32]}-v{IMPORTER_VERSION}-{file_sha256_text(repr(sorted(asdict(cfg).items())))[:8]}"
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
    with tempfile.TemporaryDirectory(prefix="fuyao-import-") as tmp:
        net = src if kind.startswith(".net.xml") else netconvert(src, Path(tmp) / f"{name}.net.xml")
        builder, summary = sumo_net_to_builder(net, cfg, name=name)
        if net is not src:
            summary.source = str(src)
        build_imported(builder)  # refuse a map that would not load, before writing anything
    meta = {
        "source": str(src),
        "source_type": SUPPORTED[kind],
        "source_sha256": digest,
        "importer_version": IMPORTER_VERSION,
        "import_config": asdict(cfg),
        "netconvert_options": NETCONVERT_OPTIONS.get(kind, []),
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
