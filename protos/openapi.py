"""Generate the OpenAPI 3.1 document of the REST API from Envoy's descriptor set (`make openapi`).

Usage: python protos/openapi.py [DESCRIPTOR] [OUTPUT]

The document describes what Envoy's gRPC-JSON transcoder does with the `google.api.http`
annotations of the public services (gateway/envoy_config.py): JSON field names are the proto
names, every field without presence is printed (so answers always carry them), 64-bit integers
travel as strings, timestamps as RFC 3339 strings, fields not bound to the path or the body are
query parameters, and errors are a google.rpc.Status as JSON. Descriptions are the protos'
comments, which is why the descriptor set keeps source info.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parent.parent
DESCRIPTOR_PATH = REPO / "gateway" / "descriptor.pb"
OPENAPI_PATH = REPO / "gateway" / "docs" / "openapi.json"
sys.path.insert(0, str(REPO))

from gateway.envoy_config import PUBLIC_SERVICES  # noqa: E402 - needs the repository on the path

# Operations anyone may call; every other one needs a bearer token.
PUBLIC_METHODS = {"marketsync.auth.v1.AuthService." + name for name in ("Register", "Login")}
HTTP_METHODS = ("get", "put", "post", "delete", "patch")

FieldType = descriptor_pb2.FieldDescriptorProto
SCALARS: dict[int, dict[str, Any]] = {
    FieldType.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldType.TYPE_FLOAT: {"type": "number", "format": "float"},
    FieldType.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldType.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldType.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldType.TYPE_UINT32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    FieldType.TYPE_FIXED32: {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
    # The transcoder prints 64-bit integers as strings (JavaScript numbers cannot hold them).
    FieldType.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    FieldType.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    FieldType.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    FieldType.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    FieldType.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    FieldType.TYPE_BOOL: {"type": "boolean"},
    FieldType.TYPE_STRING: {"type": "string"},
    FieldType.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
WELL_KNOWN: dict[str, dict[str, Any]] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Struct": {"type": "object"},
}
ERROR_SCHEMA: dict[str, Any] = {
    "description": "A failed call: the gRPC status code (3 invalid argument, 5 not found, ...)"
    " and a message saying what went wrong. The HTTP status follows the gRPC code.",
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "description": "The gRPC status code."},
        "message": {"type": "string"},
        "details": {"type": "array", "items": {"type": "object"}},
    },
}

# Envoy answers these itself (gateway/envoy_config.py): no proto describes them.
GATEWAY_CHECKS = {
    "/healthz": ("HealthCheck", "Envoy and every service behind it are serving"),
    "/readyz": ("ReadinessCheck", "Envoy itself takes requests, whatever the services do"),
}


@dataclass(frozen=True)
class Message:
    proto: descriptor_pb2.DescriptorProto
    comments: dict[int, str]  # field number -> its comment
    comment: str


class Document:
    """Builds the document from the descriptor set: an operation per annotated public RPC."""

    def __init__(self, descriptors: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, Message] = {}
        self.services: dict[str, tuple[descriptor_pb2.ServiceDescriptorProto, str, list[str]]] = {}
        for file in descriptors.file:
            self._index(file)
        # Schema name -> schema; a message seen in requests and answers has one of each.
        self.schemas: dict[str, dict[str, Any]] = {}
        self.schema_sources: dict[str, str] = {}  # schema name -> its message's full name

    def _index(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        comments = {
            tuple(location.path): _comment(location)
            for location in file.source_code_info.location
            if location.leading_comments
        }
        for path, message, name in _messages(file.message_type, f".{file.package}", (4,)):
            fields = {
                field.number: comments.get((*path, 2, index), "")
                for index, field in enumerate(message.field)
            }
            self.messages[name] = Message(message, fields, comments.get(path, ""))
        for index, service in enumerate(file.service):
            methods = [comments.get((6, index, 2, m), "") for m in range(len(service.method))]
            full_name = f"{file.package}.{service.name}"
            self.services[full_name] = (service, comments.get((6, index), ""), methods)

    def render(self) -> dict[str, Any]:
        public = [service for services in PUBLIC_SERVICES.values() for service in services]
        paths: dict[str, dict[str, Any]] = {}
        tags = []
        for full_name in public:
            service, comment, method_comments = self.services[full_name]
            tags.append({"name": service.name, "description": comment})
            for method, method_comment in zip(service.method, method_comments, strict=True):
                rule = method.options.Extensions[annotations_pb2.http]
                path, operation = self._operation(full_name, service.name, method, rule)
                paths.setdefault(path, {})[_verb(rule)] = operation | {
                    "summary": _summary(method.name, method_comment),
                    "description": method_comment or _summary(method.name, ""),
                }
        tags.append({"name": "Gateway", "description": "Envoy's own answers."})
        for path, (operation_id, summary) in GATEWAY_CHECKS.items():
            paths[path] = {"get": _gateway_check(operation_id, summary)}
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Marketplace Sync REST API",
                "version": "v1",
                "description": "The public REST API, transcoded by Envoy from the gRPC services"
                " (generated from protos/ by `make openapi`). Identifiers are 64-bit integers"
                " printed as strings; compare them as strings. Request bodies may also name"
                " fields in lowerCamelCase; fields the API does not know are ignored (unknown"
                " query parameters are refused).",
            },
            "servers": [{"url": "/", "description": "The gateway serving this document"}],
            "security": [{"bearer": []}],
            "tags": tags,
            "paths": paths,
            "components": {
                "securitySchemes": {
                    "bearer": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "JWT",
                        "description": "The token of POST /api/auth/register or /api/auth/login.",
                    }
                },
                "responses": {
                    "Error": {
                        "description": "The call failed.",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                        },
                    }
                },
                "schemas": {"Error": ERROR_SCHEMA} | dict(sorted(self.schemas.items())),
            },
        }

    def _operation(
        self,
        service: str,
        tag: str,
        method: descriptor_pb2.MethodDescriptorProto,
        rule: http_pb2.HttpRule,
    ) -> tuple[str, dict[str, Any]]:
        request = self.messages[method.input_type]
        template = getattr(rule, _verb(rule))
        path_fields = re.findall(r"{([^}=]+)(?:=[^}]*)?}", template)
        path = re.sub(r"{([^}=]+)(?:=[^}]*)?}", r"{\1}", template)
        fields = {field.name: field for field in request.proto.field}
        parameters = [
            self._parameter(request, fields[name], "path", required=True) for name in path_fields
        ]
        operation: dict[str, Any] = {"operationId": method.name, "tags": [tag]}
        # Not required: the transcoder takes a missing body for an empty message.
        if rule.body == "*":
            rest = [field for field in request.proto.field if field.name not in path_fields]
            operation["requestBody"] = {
                "content": {"application/json": {"schema": self._object(request, rest, False)}},
            }
        else:
            if rule.body:
                body_field = fields[rule.body]
                operation["requestBody"] = {
                    "content": {
                        "application/json": {"schema": self._field_schema(body_field, False)}
                    },
                }
            parameters += [
                self._parameter(request, field, "query", required=False)
                for field in request.proto.field
                if field.name not in path_fields
                and field.name != rule.body
                and field.type != FieldType.TYPE_MESSAGE
            ]
        if parameters:
            operation["parameters"] = parameters
        answer = self._message_schema(method.output_type, output=True)
        errors = {"400": {"$ref": "#/components/responses/Error"}}
        if f"{service}.{method.name}" in PUBLIC_METHODS:
            operation["security"] = []
        else:
            errors["401"] = {"$ref": "#/components/responses/Error"}
        operation["responses"] = {
            "200": {
                "description": self.messages[method.output_type].comment or "OK",
                "content": {"application/json": {"schema": answer}},
            },
            **errors,
            "default": {"$ref": "#/components/responses/Error"},
        }
        return path, operation

    def _parameter(
        self, message: Message, field: descriptor_pb2.FieldDescriptorProto, where: str, **kw: bool
    ) -> dict[str, Any]:
        parameter = {"name": field.name, "in": where, **kw}
        if description := message.comments[field.number]:
            parameter["description"] = description
        return parameter | {"schema": self._field_schema(field, False)}

    def _message_schema(self, type_name: str, *, output: bool) -> dict[str, Any]:
        if type_name in WELL_KNOWN:
            return dict(WELL_KNOWN[type_name])
        message = self.messages[type_name]
        name = message.proto.name if output else f"{message.proto.name}Input"
        # Schemas are named without their package: two public messages may not share a name.
        if self.schema_sources.setdefault(name, type_name) != type_name:
            raise SystemExit(f"{type_name} and {self.schema_sources[name]} are both {name}")
        if name not in self.schemas:
            self.schemas[name] = {}  # a recursive message refers to itself
            self.schemas[name] = self._object(message, list(message.proto.field), output)
        return {"$ref": f"#/components/schemas/{name}"}

    def _object(
        self, message: Message, fields: list[descriptor_pb2.FieldDescriptorProto], output: bool
    ) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "object"}
        if message.comment:
            schema["description"] = message.comment
        properties = {}
        for field in fields:
            prop = self._field_schema(field, output)
            if comment := message.comments[field.number]:
                prop = {"description": comment, **prop} if "$ref" not in prop else prop
            properties[field.name] = prop
        schema["properties"] = properties
        # always_print_primitive_fields: answers carry every field without presence.
        required = [field.name for field in fields if output and not _has_presence(field)]
        if required:
            schema["required"] = required
        return schema

    def _field_schema(self, field: descriptor_pb2.FieldDescriptorProto, output: bool) -> Any:
        if field.type == FieldType.TYPE_MESSAGE:
            entry = self.messages.get(field.type_name)
            if entry and entry.proto.options.map_entry:
                value = entry.proto.field[1]
                return {"type": "object", "additionalProperties": self._field_schema(value, output)}
            item = self._message_schema(field.type_name, output=output)
        elif field.type == FieldType.TYPE_ENUM:
            item = {"type": "string"}
        else:
            item = dict(SCALARS[field.type])
        if field.label == FieldType.LABEL_REPEATED:
            return {"type": "array", "items": item}
        return item


def _gateway_check(operation_id: str, summary: str) -> dict[str, Any]:
    serving = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "serving"}},
    }
    return {
        "operationId": operation_id,
        "tags": ["Gateway"],
        "summary": summary,
        "description": f"200 while {summary}; 503 otherwise.",
        "security": [],
        "responses": {
            "200": {
                "description": "Serving.",
                "content": {"application/json": {"schema": serving}},
            },
            # Envoy refuses a malformed request on any path.
            "400": {"$ref": "#/components/responses/Error"},
            "503": {"$ref": "#/components/responses/Error"},
        },
    }


def _messages(
    messages: Any, scope: str, path: tuple[int, ...]
) -> Iterator[tuple[tuple[int, ...], descriptor_pb2.DescriptorProto, str]]:
    for index, message in enumerate(messages):
        name = f"{scope}.{message.name}"
        yield (*path, index), message, name
        yield from _messages(message.nested_type, name, (*path, index, 3))


def _has_presence(field: descriptor_pb2.FieldDescriptorProto) -> bool:
    if field.label == FieldType.LABEL_REPEATED:
        return False
    return field.type == FieldType.TYPE_MESSAGE or field.HasField("oneof_index")


def _comment(location: descriptor_pb2.SourceCodeInfo.Location) -> str:
    return " ".join(line.strip() for line in location.leading_comments.splitlines()).strip()


def _verb(rule: http_pb2.HttpRule) -> str:
    return next(verb for verb in HTTP_METHODS if getattr(rule, verb))


def _summary(method_name: str, comment: str) -> str:
    if comment:
        return comment.split(". ")[0].rstrip(".")
    return re.sub(r"(?<!^)([A-Z])", r" \1", method_name).capitalize()


def generate(descriptor: Path, output: Path) -> None:
    descriptors = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(Document(descriptors).render(), indent=2) + "\n")


if __name__ == "__main__":
    arguments = [Path(argument) for argument in sys.argv[1:3]]
    generate(*arguments) if len(arguments) == 2 else generate(DESCRIPTOR_PATH, OPENAPI_PATH)
