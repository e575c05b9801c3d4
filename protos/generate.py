"""Generate the Python stubs and Envoy's descriptor set from protos/ (run by `make proto`).

Usage: python protos/generate.py [OUTPUT_ROOT]

OUTPUT_ROOT defaults to the repository; the staleness test generates into a temporary
directory and compares. Stubs land in marketsync/<service>/v1/, the descriptor set in
gateway/descriptor.pb.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from google.api import annotations_pb2
from grpc_tools import protoc

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "protos"
DESCRIPTOR_PATH = Path("gateway/descriptor.pb")
# Envoy needs these in the set to turn rich error details into JSON.
GOOGLE_EXTRAS = ("google/rpc/status.proto", "google/rpc/error_details.proto")


def proto_files(proto_root: Path = PROTO_ROOT) -> list[str]:
    return sorted(str(p.relative_to(proto_root)) for p in proto_root.rglob("*.proto"))


def include_paths(proto_root: Path = PROTO_ROOT) -> list[str]:
    # googleapis-common-protos ships google/api/*.proto beside its generated modules.
    googleapis = Path(annotations_pb2.__file__).parents[2]
    grpc_tools_protos = Path(grpc_tools.__file__).parent / "_proto"
    return [f"-I{proto_root}", f"-I{googleapis}", f"-I{grpc_tools_protos}"]


def run_protoc(args: list[str], proto_root: Path = PROTO_ROOT) -> None:
    if protoc.main(["protoc", *include_paths(proto_root), *args]) != 0:
        raise SystemExit(f"protoc failed: {' '.join(args)}")


def generate(output_root: Path) -> None:
    files = proto_files()
    out = str(output_root)
    # mypy-protobuf's stubs type the gRPC modules too (protoc's own --pyi_out leaves them
    # untyped), which `mypy --strict` needs of everything our services call.
    plugins = Path(sys.executable).parent
    run_protoc(
        [
            f"--plugin=protoc-gen-mypy={plugins / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={plugins / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out}",
            f"--mypy_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_grpc_out={out}",
            *files,
        ]
    )
    for package_dir in {Path(f).parent for f in files}:
        for level in (package_dir, *package_dir.parents):
            if level != Path("."):
                (output_root / level / "__init__.py").touch()
    descriptor = output_root / DESCRIPTOR_PATH
    descriptor.parent.mkdir(parents=True, exist_ok=True)
    run_protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={descriptor}",
            *files,
            *GOOGLE_EXTRAS,
        ]
    )


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO)
