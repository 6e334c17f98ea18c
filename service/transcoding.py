"""An orjson transcoder for the event store, wire-compatible with the library's JSONTranscoder.

Stored events are written and read on every webhook and every replay; the
library's stdlib-json transcoder is the largest single cost there. Custom types
keep the library's `{"_type_", "_data_"}` envelope, so either transcoder reads
what the other wrote.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

_MARK = b'"_type_"'


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_obj, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def decode(self, data: bytes) -> Any:
        document = orjson.loads(data)
        expected = data.count(_MARK)
        if not expected:
            return document
        if isinstance(document, dict):
            stamp = document.get("timestamp")
            if expected == 1 and isinstance(stamp, dict) and stamp.get("_type_") == "datetime_iso":
                document["timestamp"] = datetime.fromisoformat(stamp["_data_"])
                return document
            found = 0
            for key, value in document.items():
                if isinstance(value, dict) and len(value) == 2 and "_type_" in value:
                    document[key] = self._decode_obj(value)
                    found += 1
            if found == expected:
                return document
        return self._walk(document)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self._decode_obj({k: self._walk(v) for k, v in value.items()})
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value
