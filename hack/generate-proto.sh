#!/usr/bin/env bash
# Regenerates operator/src/gen/proto from proto/ with ts-proto. Deterministic: the output depends
# only on the .proto files and the pinned protoc/ts-proto versions, so a second run leaves no diff.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

plugin="node_modules/.bin/protoc-gen-ts_proto"
out_dir="operator/src/gen/proto"

command -v protoc >/dev/null || { echo "protoc not found: run 'make deps'" >&2; exit 1; }
[[ -x "$plugin" ]] || { echo "$plugin not found: run 'npm ci'" >&2; exit 1; }

# Why each option:
#   outputServices=grpc-js         service definition + client class for @grpc/grpc-js
#   esModuleInterop,importSuffix   ESM under module NodeNext (imports end in .js)
#   env=node                       Buffer for bytes fields, no browser shims
#   oneof=unions-value             AgentMessage.body is a tagged union: switch on body.$case
#   useOptionals=messages          sub-messages are optional keys
#   forceLong=number               64-bit ints as number; decode throws above 2^53 (edge rejects)
#   outputJsonMethods=false        the wire is binary only; smaller, less surface
#   useExactTypes=false            fromPartial accepts wider objects without Exact<> gymnastics
opts="outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,oneof=unions-value"
opts+=",useOptionals=messages,forceLong=number,outputJsonMethods=false,useExactTypes=false"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mapfile -t protos < <(cd proto && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
(( ${#protos[@]} > 0 )) || { echo "no .proto files under proto/" >&2; exit 1; }

protoc \
  --plugin="protoc-gen-ts_proto=$plugin" \
  --proto_path=proto \
  --ts_proto_out="$tmp" \
  --ts_proto_opt="$opts" \
  "${protos[@]}"

# Replace the output directory wholesale so deleted .proto files leave no stale output behind.
rm -rf "$out_dir"
mkdir -p "$out_dir"
cp -R "$tmp"/. "$out_dir"/
echo "generated $(find "$out_dir" -name '*.ts' | wc -l) file(s) in $out_dir"
