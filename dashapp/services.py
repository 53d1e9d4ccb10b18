"""Server-side services shared by one app's callbacks: settings and memoized results."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_caching import Cache

from dashapp import __version__
from dashapp.errors import PersonaError
from dashapp.pipeline import Result, content_hash, prepare, run
from dashapp.samples import SAMPLES
from dashapp.segment import SegmentParams
from dashapp.settings import Settings


@dataclass
class Services:
    """What callbacks reach the core through; one per app, never module-level."""

    settings: Settings
    cache: Cache = field(init=False)

    def __post_init__(self) -> None:
        cache_dir = self.settings.instance_dir / "cache"
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.cache = Cache(config={
            "CACHE_TYPE": "FileSystemCache",
            "CACHE_DIR": str(cache_dir),
            "CACHE_DEFAULT_TIMEOUT": 24 * 3600,
            "CACHE_THRESHOLD": 200,
        })

    def init_app(self, server) -> None:
        self.cache.init_app(server)

    def sample_result(self, key: str) -> Result:
        """The bundled sample ``key`` segmented with its default k (memoized on disk)."""
        sample = SAMPLES.get(key)
        if sample is None:
            raise PersonaError(f"Unknown sample {key!r}: choose one of {', '.join(SAMPLES)}.")
        data = sample.read_bytes()
        cache_key = f"sample-result:{__version__}:{content_hash(data)}:{sample.k}"
        result = self.cache.get(cache_key)
        if result is None:
            prepared = prepare(data, sample.filename)
            result = run(prepared, SegmentParams(features=prepared.default_features, k=sample.k))
            self.cache.set(cache_key, result)
        return result
