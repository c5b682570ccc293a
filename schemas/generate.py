"""Derive the published contract files from the payload Structs.

    python -m schemas.generate          # (re)write schemas/jsonschema/, schemas/asyncapi.json
    python -m schemas.generate --check  # exit 1 if the committed files differ (CI)

Output is deterministic: sorted keys, two-space indent, trailing newline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from schemas.contract import (
    CONTENT_TYPE,
    CREDENTIAL_TYPE_PREFIXES,
    CREDENTIALS_TOPIC,
    DEFAULT_PREFIX,
    EVENT_TOPIC,
    METADATA_HEADERS,
    SPECVERSION,
    TYPES,
    EventType,
)
from schemas.contract.codec import WATERMARK_SOURCE
from schemas.contract.types import (
    WATERMARK_STRUCT,
    WATERMARK_TYPE,
    WATERMARK_VERSION,
    schema_urn,
)

HERE = Path(__file__).resolve().parent
JSONSCHEMA_DIR = "jsonschema"
ASYNCAPI_FILE = "asyncapi.json"
CONTRACT_VERSION = "1.0.0"
"""info.version of the AsyncAPI document: bump the major version with a breaking change to
the envelope (headers, keys, topics); payload versions are per type (ce_dataversion)."""
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING = "0.5.0"
DOCS = "docs/subscribers.md"

_METADATA_DESCRIPTIONS = {
    "correlation_id": "Correlation id of the request that caused the event (X-Correlation-ID "
    "when the caller sent one, else the request id).",
    "causation_id": "Id of the request that caused the event.",
    "actor": "Who caused it: `operator`, or `key:<api key id>`.",
    "traceparent": "W3C trace context of the request that caused the event (the CloudEvents "
    "distributed-tracing extension), present when the request was traced.",
}


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_file(ce_type: str, version: int) -> str:
    return f"{JSONSCHEMA_DIR}/{ce_type}.v{version}.json"


def json_schema(struct: type[msgspec.Struct], ce_type: str, version: int) -> dict[str, Any]:
    """msgspec's JSON Schema of `struct`, with the Struct's definition at the top level."""
    _, definitions = msgspec.json.schema_components([struct], ref_template="#/$defs/{name}")
    document: dict[str, Any] = {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": schema_urn(ce_type, version),
        **definitions.pop(struct.__name__),
    }
    if definitions:
        document["$defs"] = definitions
    return document


def _versions(entry: EventType) -> list[tuple[int, type[msgspec.Struct]]]:
    return [*sorted(entry.previous.items()), (entry.version, entry.struct)]


# --- AsyncAPI ----------------------------------------------------------------------------------


def _text(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


def _digits(description: str) -> dict[str, str]:
    return {"type": "string", "pattern": "^[0-9]+$", "description": description}


def _headers(
    ce_type: str, version: int, properties: dict[str, Any], required: Iterable[str]
) -> dict[str, Any]:
    common = {
        "ce_specversion": {"const": SPECVERSION, "type": "string"},
        "ce_type": {"const": ce_type, "type": "string"},
        "ce_time": {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339, in UTC (+00:00), microseconds.",
        },
        "content-type": {"const": CONTENT_TYPE, "type": "string"},
        "ce_dataschema": {"const": schema_urn(ce_type, version), "type": "string"},
        "ce_dataversion": {
            "const": str(version),
            "type": "string",
            "description": "Version of the payload schema (extension attribute).",
        },
    }
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes, Kafka binding, binary mode (UTF-8 values).",
        "properties": {**common, **properties},
        "required": sorted({*common, *required}),
    }


def _shown(template: str) -> str:
    """'records/{source}/{key}' -> 'records/<source>/<key>' (stream_id: <ce_streamid>)."""
    return template.replace("{stream_id}", "{ce_streamid}").replace("{", "<").replace("}", ">")


def _event_message(entry: EventType) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "ce_id": _text(
            "`<ce_streamid>:<ce_streamversion>`: unique per event; the same on every "
            "re-delivery. Dedupe on it."
        ),
        "ce_source": {
            "type": "string",
            "pattern": "^/accounts/[^/]+$",
            "description": f"`/accounts/{_shown(entry.account)}`: the account.",
        },
        "ce_subject": _text(f"`{_shown(entry.subject)}` (payload fields, percent-encoded)"),
        "ce_position": _digits(
            "Global event-store position. Increases along a partition (re-sent duplicates "
            "excepted)."
        ),
        "ce_streamid": {
            "type": "string",
            "format": "uuid",
            "description": "The aggregate (stream) id; also the message key.",
        },
        "ce_streamversion": _digits("The aggregate's version after this event: 1, 2, 3, ..."),
    }
    for key, header in METADATA_HEADERS:
        properties[header] = _text(_METADATA_DESCRIPTIONS[key] + " Absent when unknown.")
    required = [
        "ce_id",
        "ce_source",
        "ce_subject",
        "ce_position",
        "ce_streamid",
        "ce_streamversion",
    ]
    message: dict[str, Any] = {
        "name": entry.ce_type,
        "title": entry.name,
        "summary": (entry.struct.__doc__ or entry.name).strip().splitlines()[0],
        "contentType": CONTENT_TYPE,
        "headers": _headers(entry.ce_type, entry.version, properties, required),
        "payload": {"$ref": f"#/components/schemas/{entry.struct.__name__}"},
        "bindings": {
            "kafka": {
                "bindingVersion": KAFKA_BINDING,
                "key": {
                    "type": "string",
                    "format": "uuid",
                    "description": "The stream id (canonical UUID text, UTF-8).",
                },
            }
        },
    }
    if entry.redacted:
        fields = ", ".join(sorted(entry.redacted))
        message["description"] = (
            f"On the public topic {fields} is redacted (absent); the internal credentials "
            "topic carries it."
        )
    return message


def _watermark_message() -> dict[str, Any]:
    properties = {
        "ce_id": _text("`watermark:<position>`."),
        "ce_source": {"const": WATERMARK_SOURCE, "type": "string"},
        "ce_position": _digits("The watermark's position (the same as the data's)."),
    }
    return {
        "name": WATERMARK_TYPE,
        "title": "Watermark (control)",
        "summary": "Every event up to `position` for this partition came before this. Skip it.",
        "description": (
            "Control message written by the relay to every partition. Subscribers skip every "
            "ce_type starting with `strata.control.`. No key."
        ),
        "contentType": CONTENT_TYPE,
        "headers": _headers(WATERMARK_TYPE, WATERMARK_VERSION, properties, properties),
        "payload": {"$ref": f"#/components/schemas/{WATERMARK_STRUCT.__name__}"},
    }


def _channel(
    address: str, title: str, description: str, message_ids: list[str], partitions: int | None
) -> dict[str, Any]:
    topic: dict[str, Any] = {"bindingVersion": KAFKA_BINDING, "topic": address}
    if partitions is not None:
        topic["partitions"] = partitions
    return {
        "address": address,
        "title": title,
        "description": description,
        "servers": [{"$ref": "#/servers/kafka"}],
        "messages": {mid: {"$ref": f"#/components/messages/{mid}"} for mid in message_ids},
        "bindings": {"kafka": topic},
    }


def _operation(channel: str, summary: str, message_ids: list[str]) -> dict[str, Any]:
    return {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        "messages": [{"$ref": f"#/channels/{channel}/messages/{mid}"} for mid in message_ids],
    }


def asyncapi(types: Sequence[EventType] = TYPES) -> dict[str, Any]:
    public = [t.ce_type for t in types] + [WATERMARK_TYPE]
    internal = [t.ce_type for t in types if t.name.startswith(CREDENTIAL_TYPE_PREFIXES)]
    internal.append(WATERMARK_TYPE)
    structs = [s for t in types for _, s in _versions(t)] + [WATERMARK_STRUCT]
    _, schemas = msgspec.json.schema_components(structs, ref_template="#/components/schemas/{name}")
    messages = {t.ce_type: _event_message(t) for t in types}
    messages[WATERMARK_TYPE] = _watermark_message()
    return {
        "asyncapi": "3.0.0",
        "id": "urn:strata:events",
        "info": {
            "title": "Strata events",
            "version": CONTRACT_VERSION,
            "description": (
                "Every event committed to Strata's event store, as CloudEvents 1.0 (Kafka "
                "protocol binding, binary content mode, JSON data). Keyed by stream id: "
                "ordered per aggregate, delivered at least once; dedupe on ce_id. Topic names "
                f"carry a configurable prefix (default `{DEFAULT_PREFIX}`). Guide: {DOCS}."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "kafka.example.invalid:9092",
                "protocol": "kafka",
                "description": "Placeholder: the bootstrap address depends on the environment.",
            }
        },
        "channels": {
            "events": _channel(
                DEFAULT_PREFIX + EVENT_TOPIC,
                "All events (public)",
                "Every event of every type, keyed by stream id; ApiKey events redacted (no "
                "secret_hash). N partitions, never changed. Watermarks on every partition.",
                public,
                None,
            ),
            "credentials": _channel(
                DEFAULT_PREFIX + CREDENTIALS_TOPIC,
                "ApiKey events, unredacted (internal)",
                "Internal to Strata's own stream processors: not for other teams. Full "
                "ApiKey events (with secret_hash), one partition, same encoding.",
                internal,
                1,
            ),
        },
        "operations": {
            "receiveEvents": _operation("events", "Consume every Strata event.", public),
            "receiveCredentials": _operation(
                "credentials", "Strata's own processors: full ApiKey and Webhook events.", internal
            ),
        },
        "components": {"messages": messages, "schemas": schemas},
    }


# --- files -------------------------------------------------------------------------------------


def render(types: Sequence[EventType] = TYPES) -> dict[str, str]:
    """Every generated file: path relative to schemas/ -> content."""
    files = {
        schema_file(entry.ce_type, version): _dump(json_schema(struct, entry.ce_type, version))
        for entry in types
        for version, struct in _versions(entry)
    }
    files[schema_file(WATERMARK_TYPE, WATERMARK_VERSION)] = _dump(
        json_schema(WATERMARK_STRUCT, WATERMARK_TYPE, WATERMARK_VERSION)
    )
    files[ASYNCAPI_FILE] = _dump(asyncapi(types))
    return dict(sorted(files.items()))


def _on_disk(root: Path) -> set[str]:
    folder = root / JSONSCHEMA_DIR
    found = (
        {f"{JSONSCHEMA_DIR}/{p.name}" for p in folder.glob("*.json")} if folder.is_dir() else set()
    )
    return found | ({ASYNCAPI_FILE} if (root / ASYNCAPI_FILE).exists() else set())


def problems(root: Path = HERE, files: dict[str, str] | None = None) -> list[str]:
    """How the files under `root` differ from what the code generates (empty: up to date)."""
    files = render() if files is None else files
    found = _on_disk(root)
    issues = []
    for name, content in files.items():
        if name not in found:
            issues.append(f"missing: schemas/{name}")
        elif (root / name).read_text(encoding="utf-8") != content:
            issues.append(f"stale:   schemas/{name}")
    issues.extend(f"extra:   schemas/{name}" for name in sorted(found - files.keys()))
    return issues


def write(root: Path = HERE, files: dict[str, str] | None = None) -> list[str]:
    """Bring the files under `root` up to date; the names written or removed."""
    files = render() if files is None else files
    changed = []
    (root / JSONSCHEMA_DIR).mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            changed.append(f"wrote   schemas/{name}")
    for name in sorted(_on_disk(root) - files.keys()):
        (root / name).unlink()
        changed.append(f"removed schemas/{name}")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail if the committed files are not up to date"
    )
    args = parser.parse_args(argv)
    if args.check:
        issues = problems()
        if issues:
            print(
                "The event contract files do not match the code (schemas/contract):\n  "
                + "\n  ".join(issues)
                + "\nRun `python -m schemas.generate` and commit the result.",
                file=sys.stderr,
            )
            return 1
        print(f"event contract files up to date ({len(render())} files)")
        return 0
    for line in write() or ["event contract files already up to date"]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
