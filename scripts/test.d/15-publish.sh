# The library crates can be published under their names: each one packages on its own and
# all of them together, and no name is held on crates.io by someone else.
#
# The trap this step avoids: `cargo publish --dry-run -p pcnet-std` alone can never pass
# before pcnet-core is on crates.io, because a dry run resolves pcnet-std's `pcnet-core`
# dependency from the registry, not from the path; and `cargo publish --dry-run -p
# pcnet-core -p pcnet-std` passes even when a name is taken, because a workspace publish
# resolves its members from a local overlay (that is how the old `pc-core` name, blocked by
# crates.io's unrelated `pc_core`, went unnoticed). So the step checks three things apart:
#   1. `cargo package --no-verify --exclude-lockfile -p <crate>` for each library crate
#      alone: its manifest metadata, and its README and licence files inside the .crate,
#      with no registry lookup of its path dependencies;
#   2. `cargo publish --dry-run` of pcnet-core alone (it has no path dependency) and of
#      every library crate together (cargo >= 1.90 publishes a workspace in order), which
#      builds each .crate as crates.io would;
#   3. `cargo info <name>` from outside the workspace for each name: a crate found on
#      crates.io fails the step unless its repository or description is ours. crates.io
#      treats `-` and `_` as the same name, and `cargo info` does too. When crates.io
#      cannot be reached, the name check says it was skipped, name by name.
set -euo pipefail
libraries=(pcnet-core pcnet-std)
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
# What a crates.io page needs, present and non-empty in every library manifest; and
# "name<TAB>version<TAB>description" of every workspace package, for the checks below.
packages=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
libraries = sys.argv[1:]
fields = ["description", "license", "readme", "documentation", "keywords", "categories"]
bad = []
for package in json.load(sys.stdin)["packages"]:
    name = package["name"]
    print("\t".join([name, package["version"], package.get("description") or ""]))
    if name in libraries:
        bad += [f"{name}: no `{field}` in its manifest" for field in fields if not package.get(field)]
        if not package.get("repository"):
            print(f"warning: {name} has no `repository` in its manifest", file=sys.stderr)
if bad:
    sys.exit("\n".join(bad))
' "${libraries[@]}")
field() { awk -F'\t' -v name="$1" -v column="$2" '$1 == name { print $column }' <<<"$packages"; }
for crate in "${libraries[@]}"; do
    cargo package --quiet --allow-dirty --no-verify --exclude-lockfile -p "$crate"
    stem="$crate-$(field "$crate" 2)"
    contents=$(tar tzf "$target/package/$stem.crate")
    for file in README.md LICENSE-MIT LICENSE-APACHE; do
        if ! grep -qx "$stem/$file" <<<"$contents"; then
            echo "$crate's package has no $file" >&2
            exit 1
        fi
    done
done
# The dry runs build each .crate, and pcnet-std against pcnet-core as a registry crate,
# which cargo keeps built by name and version only: in the workspace's target directory a
# pcnet-core 0.1.0 built by an earlier run would stand in for today's (a false failure, or
# a false pass). So they build in a target directory of their own, new each time.
publish_target=$(mktemp -d)
publish_args=()
for crate in "${libraries[@]}"; do publish_args+=(-p "$crate"); done
CARGO_TARGET_DIR="$publish_target" cargo publish --quiet --allow-dirty --dry-run -p pcnet-core
CARGO_TARGET_DIR="$publish_target" cargo publish --quiet --allow-dirty --dry-run "${publish_args[@]}"
rm -rf "$publish_target"
# The name check, from an empty directory so `cargo info` asks crates.io, not the
# workspace. A crate found there is ours when it carries our description.
outside=$(mktemp -d)
trap 'rm -rf "$outside"' EXIT
# cargo offline answers "could not find" from its cache: that proves nothing, so skip.
reachable=yes
if [[ ${CARGO_NET_OFFLINE:-false} == true ]] || ! (cd "$outside" && cargo info --quiet serde >/dev/null 2>&1); then
    reachable=no
fi
for crate in $(cut -f1 <<<"$packages"); do
    if [[ $reachable == no ]]; then
        echo "crates.io unreachable (or cargo offline): the name check of $crate was skipped"
    elif info=$(cd "$outside" && cargo info --quiet "$crate" 2>&1); then
        if ! grep -qF "$(field "$crate" 3)" <<<"$info"; then
            echo "the name $crate is taken on crates.io by another crate:" >&2
            head -3 <<<"$info" >&2
            exit 1
        fi
        echo "crates.io has $crate, and it is ours"
    elif grep -q "could not find \`$crate\` in registry" <<<"$info"; then
        echo "the name $crate is free on crates.io"
    else
        echo "crates.io unreachable: the name check of $crate was skipped ($(head -1 <<<"$info"))"
    fi
done
