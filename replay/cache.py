"""A disk cache of trained-and-scored streams, one ``.npz`` file per (dataset, scenario, seed).

Training the five models is most of a study's cost, and a stream seed always gives the same
predictions. The cache keeps every model's predictions of every request (int8), the labels
and the validation scores — everything the replay uses — under a key that covers what could
change them: the dataset and scenario, the stream seed, the chunking, the data files' bytes,
the source of the code that builds streams and trains models, and the scikit-learn and
numpy versions. A changed input is a different file, never a stale hit.

Default place: ``$MABDASH_VAR_DIR/replay-cache`` (``var/replay-cache`` in a checkout);
``python -m replay --no-cache`` trains everything afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from replay.streams import Scored, Stream

ROOT = Path(__file__).resolve().parents[1]
_CODE = (Path(__file__).with_name("streams.py"), Path(__file__).with_name("datasets.py"))


def default_directory() -> Path:
    return Path(os.environ.get("MABDASH_VAR_DIR", ROOT / "var")) / "replay-cache"


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def key(parts: dict[str, Any], data_files: list[Path]) -> str:
    """A hex digest of everything that decides a scored stream."""
    import sklearn

    described = {
        **{k: str(v) for k, v in parts.items()},
        "data": [_file_digest(p) for p in data_files],
        "code": [_file_digest(p) for p in _CODE],
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:32]


def load(directory: Path, digest: str) -> Scored | None:
    path = directory / f"{digest}.npz"
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            stream = Stream(
                name=meta["name"],
                kind=meta["kind"],
                X=np.zeros((0, 0)),  # the features are not needed once the models have predicted
                y=np.zeros(0),
                train=slice(*meta["train"]),
                validate=slice(*meta["validate"]),
                chunks=[tuple(c) for c in meta["chunks"]],
                drift_chunk=meta["drift_chunk"],
                synthetic=meta["synthetic"],
                drift_note=meta["drift_note"],
            )
            broken = tuple(meta["broken"]) if meta["broken"] else None
            return Scored(stream, data["predictions"], data["labels"], data["validation"], broken=broken)
    except (OSError, ValueError, KeyError):
        return None  # a damaged file is a miss: it is rebuilt and overwritten


def save(directory: Path, digest: str, scored: Scored) -> None:
    stream = scored.stream
    meta = {
        "name": stream.name,
        "kind": stream.kind,
        "train": [stream.train.start, stream.train.stop],
        "validate": [stream.validate.start, stream.validate.stop],
        "chunks": [list(c) for c in stream.chunks],
        "drift_chunk": stream.drift_chunk,
        "synthetic": stream.synthetic,
        "drift_note": stream.drift_note,
        "broken": list(scored.broken) if scored.broken else None,
    }
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / f"{digest}.{os.getpid()}.tmp.npz"
    np.savez_compressed(
        temporary,
        predictions=scored.predictions,
        labels=scored.labels,
        validation=scored.validation,
        meta=np.array(json.dumps(meta)),
    )
    temporary.replace(directory / f"{digest}.npz")  # atomic: a reader never sees half a file
